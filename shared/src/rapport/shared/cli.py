"""The ``rapport`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import orjson
from rich.console import Console

from . import localstack, simulate
from .kafka import ensure_topics
from .topics import ALL_TOPICS

console = Console()


def say(message: str) -> None:
    """Print, but never let a closed terminal or pipe interrupt a shutdown."""
    try:
        console.print(message, highlight=False)
    except OSError:
        pass


def _stack(args: argparse.Namespace) -> localstack.Stack:
    return localstack.Stack(args.profile, say=say)


def cmd_stack(args: argparse.Namespace) -> int:
    stack = _stack(args)
    if args.action == "up":
        stack.up(services=not args.infra_only)
        console.print("[green]Stack is up.[/]")
    elif args.action == "down":
        stack.down()
    elif args.action == "wipe":
        stack.wipe()
    else:
        for name, pid in stack.status().items():
            console.print(f"{name:12} {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    created = asyncio.run(ensure_topics(args.bootstrap, ALL_TOPICS))
    console.print(f"created: {', '.join(created) or 'none (all exist)'}")
    return 0


def load_offers(url: str, admin_key: str, path: Path) -> int:
    offers = orjson.loads(path.read_bytes())
    resp = httpx.put(f"{url}/v1/offers", json=offers,
                     headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
    if resp.status_code != 200:
        raise SystemExit(f"catalog refused ({resp.status_code}): {resp.text}")
    return len(offers)


def cmd_offers(args: argparse.Namespace) -> int:
    n = load_offers(args.url, args.key, Path(args.file))
    console.print(f"loaded {n} offers")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        sent = asyncio.run(simulate.send(args.ingest, args.write_key, customers=args.customers,
                                         rate=args.rate, total=args.events, seed=args.seed,
                                         batch_size=args.batch_size))
    except KeyboardInterrupt:
        return 0
    console.print(f"sent {sent:,} events")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    stack = _stack(args)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        stack.up()
        n = load_offers(stack.url("next-action"), "dev-admin",
                        stack.root / "deploy/local/sample-offers.json")
        console.print(f"Loaded the sample offer catalog ({n} offers).")
        console.print(_banner_text(stack, args.customers), highlight=False)

        async def show_try(customer_id: str) -> None:
            if await simulate.profile_visible(stack.url("profile"), "dev-agent", customer_id):
                console.print(_try_text(stack, customer_id), highlight=False)
            else:
                say(f"[yellow]{customer_id} is not on the profile API yet; see "
                    f"{stack.logs / 'profile.log'}[/]")

        asyncio.run(simulate.send(stack.url("ingest"), "dev-write-key",
                                  customers=args.customers, rate=args.rate, total=args.events,
                                  started=show_try))
        if args.events is not None:
            console.print("Simulation finished; the system stays up until Ctrl-C.")
            signal.pause()
    except KeyboardInterrupt:
        rc = 0
    except localstack.StackError as exc:
        say(f"[red]{exc}[/]")
        rc = 1
    else:
        rc = 0
    # Whatever ended the run (Ctrl-C, a closed terminal, an error), stop all we started.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    say("\nStopping ...")
    stack.down()
    return rc


def _banner_text(stack: localstack.Stack, customers: int) -> str:
    return (f"\n[bold green]Rapport is live.[/]\n"
            f"  ingest       {stack.url('ingest')}/docs    write key: dev-write-key (Basic user)\n"
            f"  profile      {stack.url('profile')}/docs    "
            f"api keys: dev-channel, dev-agent, dev-ops, dev-admin\n"
            f"  scoring      {stack.url('scoring')}/docs\n"
            f"  next-action  {stack.url('next-action')}/docs\n"
            f"  console      agent screen {stack.url('console')}/agent   (sign in: dev-agent)\n"
            f"               ops dashboard {stack.url('console')}/ops   (sign in: dev-ops)\n"
            f"  Kafka {stack.kafka_bootstrap}   Redis {stack.redis_url}   logs: {stack.logs}\n\n"
            f"Simulating touchpoints for {customers:,} customers; Ctrl-C stops everything.\n")


def _try_text(stack: localstack.Stack, customer_id: str) -> str:
    """Example requests naming a customer the profile API has just been seen to know."""
    return (f"Try (the simulation identified {customer_id} first):\n"
            f"  curl -s -H 'Authorization: Bearer dev-agent' "
            f"{stack.url('profile')}/v1/customers/{customer_id}\n"
            f"  curl -s -H 'Authorization: Bearer dev-agent' "
            f"{stack.url('scoring')}/v1/customers/{customer_id}/scores\n"
            f"  curl -s -H 'Authorization: Bearer dev-channel' -H 'Content-Type: application/json'"
            f" -d '{{\"customer_id\": \"{customer_id}\", \"channel\": \"web\"}}' "
            f"{stack.url('next-action')}/v1/next-best-action\n")


_BENCH_DEFAULTS = {  # the options the targets share, with each target's default
    "ingest": {"seconds": 30, "connections": 32, "workers": 2},
    "profile": {"seconds": 30, "customers": 20_000, "profiles": 1_000_000,
                "rate": [5000.0, 1000.0]},
    "scoring": {"seconds": 20, "customers": 1_000_000, "profiles": 100_000,
                "rate": [200.0, 2000.0]},
    "next-action": {"seconds": 20, "customers": 20_000, "rate": [500.0], "connections": 8,
                    "workers": 1},
}


def cmd_bench(args: argparse.Namespace) -> int:
    if args.target == "summary":
        from . import bench_summary

        bench_summary.main()
        return 0
    for name, default in _BENCH_DEFAULTS[args.target].items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.target == "profile":
        from rapport.profile import bench as profile_bench  # the workspace installs all

        profile_bench.main(events=args.events, customers=args.customers,
                           profiles=args.profiles, rates=args.rate, seconds=args.seconds,
                           demand_rounds=args.demand_rounds, pyspy=args.pyspy)
        return 0
    if args.target == "scoring":
        from rapport.scoring import bench as scoring_bench  # the workspace installs all

        scoring_bench.main(customers=args.customers, profiles=args.profiles,
                           seconds=args.seconds, rates=args.rate)
        return 0
    if args.target == "next-action":
        from rapport.next_action import bench as nba_bench  # the workspace installs all

        nba_bench.main(nba_bench.Options(offers=args.offers, customers=args.customers,
                                         rate=args.rate[0], seconds=args.seconds,
                                         concurrency=args.connections,
                                         workers=args.workers))
        return 0
    from rapport.ingest import bench  # the workspace installs every service

    bench.main(workers=args.workers, connections=args.connections, seconds=args.seconds,
               sustain=args.sustain, perf_records=args.perf_records)
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from rapport.profile import rebuild  # the workspace installs every service

    kafka = redis = None
    stack = None
    if args.profile:
        stack = _stack(args)
        kafka, redis = stack.kafka_bootstrap, stack.redis_url
        # Like the local stack's services (Stack.service_env): development keys and privacy
        # secret unless told otherwise, or the settings would refuse to start.
        os.environ.setdefault("RAPPORT_DEV_KEYS", "1")
    restart = stack is not None and stack.pid("profile") is not None
    if restart:
        say("Stopping the profile service for the rebuild ...")
        stack.stop_service("profile")
    try:
        report = asyncio.run(rebuild.rebuild_at(kafka, redis, wait_s=args.wait))
    except rebuild.RebuildRefused as exc:
        say(f"[red]{exc}[/]")
        return 1
    say(f"Forgot {report.keys_deleted:,} profile keys, reloaded {report.erasures_reloaded:,} "
        f"erasures; {report.touchpoints_to_replay:,} touchpoints will be replayed.")
    if restart:
        stack.start_services(("profile",))
        stack.wait_services(services=("profile",))
        say("Profile service restarted: it is rebuilding now.")
    else:
        say("Start the profile workers: they rebuild every profile as they catch up.")
    return 0


def parser() -> argparse.ArgumentParser:
    from . import cli_evals  # it imports this module's console
    p = argparse.ArgumentParser(prog="rapport", description="Rapport command line")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("stack", help="start/stop the local Kafka, Redis and services")
    s.add_argument("action", choices=["up", "down", "status", "wipe"])
    s.add_argument("--profile", choices=sorted(localstack.PROFILES), default="run")
    s.add_argument("--infra-only", action="store_true", help="only Kafka, Redis and topics")
    s.set_defaults(func=cmd_stack)

    r = sub.add_parser("run", help="bring the system up and keep it live with simulated traffic")
    r.add_argument("--profile", choices=sorted(localstack.PROFILES), default="run")
    r.add_argument("--customers", type=int, default=3000)
    r.add_argument("--rate", type=float, default=200.0, help="events per second")
    r.add_argument("--events", type=int, default=None, help="stop simulating after N events")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("topics", help="create the project's Kafka topics")
    t.add_argument("--bootstrap", default="127.0.0.1:9092")
    t.set_defaults(func=cmd_topics)

    o = sub.add_parser("offers", help="replace the offer catalog from a JSON file")
    o.add_argument("file")
    o.add_argument("--url", default="http://127.0.0.1:8004")
    o.add_argument("--key", default="dev-admin")
    o.set_defaults(func=cmd_offers)

    b = sub.add_parser("bench", help="measure a service against the physical limit (prints)")
    b.add_argument("target", choices=["ingest", "profile", "scoring", "next-action",
                                       "summary"],
                   help="summary: one table of the figures the other benches left in .bench/")
    b.add_argument("--workers", type=int, default=None,
                   help="worker processes of ingest (2) or next-action (1)")
    b.add_argument("--connections", type=int, default=None,
                   help="ingest: wrk connections (32); next-action: requests in flight at "
                        "saturation (8)")
    b.add_argument("--seconds", type=int, default=None,
                   help="length of each measured run (ingest, profile: 30; scoring, "
                        "next-action: 20)")
    b.add_argument("--sustain", type=int, default=300, help="sustained run for memory (s)")
    b.add_argument("--perf-records", type=int, default=1_000_000, help="ingest")
    b.add_argument("--events", type=int, default=200_000, help="profile: events folded")
    b.add_argument("--customers", type=int, default=None,
                   help="profile: the events' customers (20,000); scoring: customers the "
                        "refit is timed on (1,000,000; 0: skip); next-action: customers "
                        "decided for (20,000)")
    b.add_argument("--profiles", type=int, default=None,
                   help="profile: profiles built and rebuilt for the scale figures "
                        "(1,000,000; 0: skip); scoring: profiles the score reads pick from "
                        "(100,000; 0: skip)")
    b.add_argument("--rate", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   help="profile: events/s through ingest for freshness (5000,1000); "
                        "scoring: score reads/s, open loop (200,2000); next-action: "
                        "decisions/s, open loop (500) (comma-separated)")
    b.add_argument("--offers", type=int, default=200, help="next-action: catalog size")
    b.add_argument("--demand-rounds", type=int, default=2,
                   help="profile: demand on/off runs of one worker each (on, off, off, on, "
                        "...; 0: skip)")
    b.add_argument("--pyspy", default=None,
                   help="profile: py-spy's path, to record the demand on and off workers")
    b.set_defaults(func=cmd_bench)

    pr = sub.add_parser("profiles", help="profile maintenance: rebuild from Kafka after "
                                         "Redis was lost or flushed")
    pr.add_argument("action", choices=["rebuild"])
    pr.add_argument("--profile", choices=sorted(localstack.PROFILES), default=None,
                    help="a local stack (stops and restarts its profile service); "
                         "without it, RAPPORT_* settings say where Kafka and Redis are")
    pr.add_argument("--wait", type=float, default=90,
                    help="seconds to wait for stopped workers to leave the consumer group")
    pr.set_defaults(func=cmd_profiles)

    cli_evals.add_parsers(sub)

    m = sub.add_parser("simulate", help="send realistic touchpoints to ingest")
    m.add_argument("--ingest", default="http://127.0.0.1:8001")
    m.add_argument("--write-key", default="dev-write-key")
    m.add_argument("--customers", type=int, default=3000)
    m.add_argument("--rate", type=float, default=200.0, help="events per second")
    m.add_argument("--events", type=int, default=None, help="stop after N events")
    m.add_argument("--batch-size", type=int, default=50)
    m.add_argument("--seed", type=int, default=7)
    m.set_defaults(func=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except localstack.StackError as exc:
        console.print(f"[red]{exc}[/]")
        return 1


if __name__ == "__main__":
    sys.exit(main())
