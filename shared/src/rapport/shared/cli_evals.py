"""The evaluation commands of ``rapport`` (``eval-*``): each measures a model or the
whole service against a known truth and prints the figures; apart from the runtime
commands in :mod:`rapport.shared.cli`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import orjson

from . import localstack
from .cli import console, say


def cmd_eval_spikes(args: argparse.Namespace) -> int:
    from rapport.profile.demand import evaluate  # the workspace installs every service

    published = getattr(args, "published", None)
    for path in (args.data, args.windows, *([published] if published else [])):
        if not path.exists():
            say(f"[red]{path} does not exist[/]")
            return 2
    try:
        if getattr(args, "leave_one_out", False):
            from rapport.profile.evaluation import loo

            loo.run(args.data, args.windows, workers=args.workers, published=published)
        elif getattr(args, "explain", False):
            from rapport.profile.evaluation import explain

            explain.run(args.data, args.windows)
        else:
            evaluate.run(args.data, args.windows, args.results, drop=args.drop,
                         seed=args.seed, cut=args.cut)
    except ValueError as exc:  # a malformed CSV or windows file: say which, no traceback
        say(f"[red]{exc}[/]")
        return 2
    return 0


def cmd_eval_forecast(args: argparse.Namespace) -> int:
    if args.live:
        return _eval_forecast_live(args)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from rapport.profile.demand import evaluate  # the workspace installs every service
    from rapport.profile.evaluation import forecasts

    if not args.data.exists():
        say(f"[red]{args.data} does not exist[/]")
        return 2
    try:
        corpus = evaluate.load_corpus(args.data)
    except ValueError as exc:
        say(f"[red]{exc}[/]")
        return 2
    if not corpus:
        say(f"[red]no CSV files under {args.data}[/]")
        return 2
    jobs = [(s.name, [t.timestamp() for t in s.timestamps], s.values,
             evaluate.step_of(s.timestamps)) for s in corpus]
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("points", total=sum(len(j[2]) for j in jobs))
        scores = forecasts.score_corpus(jobs, progress=lambda n: bar.advance(task, n))
    groups = forecasts.by_group(scores, lambda name: name.split("/")[0])
    console.print(forecasts.table(
        f"Demand forecasts, rolling origin every hour over {len(scores)} series "
        "(MASE: mean absolute error over the seasonal-naive forecast's, under 1 beats it)",
        groups))
    overall = forecasts.summary_row(scores)
    print(orjson.dumps({k: round(v, 4) if isinstance(v, float) else v
                        for k, v in overall.items()}).decode())
    return 0


def _eval_forecast_live(args: argparse.Namespace) -> int:
    from rapport.profile.evaluation import forecast_live

    backfill = str(int(args.days * 86400 + 7200))
    found = _on_wiped_stack(args.profile, {
        "RAPPORT_DEMAND_BACKFILL_S": backfill, "RAPPORT_DEMAND_CLOSE_INTERVAL_S": "0.2"},
        lambda urls: asyncio.run(forecast_live.run(
            urls, days=args.days, per_bucket=args.per_bucket, seed=args.seed,
            say=lambda m: say(f"[dim]{m}[/]"))))
    if found is None:
        return 1
    console.print(forecast_live.table(
        found, f"The running system's own forecast scores on its live demand series "
               f"({args.days:g} simulated days, seed {args.seed})"))
    print(orjson.dumps({k: {h: v[h] and {"mase_mean": v[h]["mase_mean"],
                                         "coverage": v[h]["coverage"]}
                            for h in ("next_hour", "next_day")}
                        for k, v in found.items()}).decode())
    return 0


def cmd_eval_churn(args: argparse.Namespace) -> int:
    from rapport.scoring import evaluate  # the workspace installs every service
    from rapport.scoring.fitting import FitRejected

    if not args.data.exists():
        say(f"[red]{args.data} does not exist[/]")
        return 2
    try:
        result = evaluate.evaluate_churn_cdnow(args.data)
    except FitRejected as exc:
        say(f"[red]the models could not be fitted: {exc.reason}[/]")
        return 1
    except ValueError as exc:  # a malformed row: say which, no traceback
        say(f"[red]{exc}[/]")
        return 2
    for table in evaluate.report(result):
        console.print(table)
    return 0


def _on_wiped_stack(profile: str, extra_env: dict[str, str], work: Any) -> Any:
    """``work(urls)`` against a wiped stack of the services started for it (what the
    service learns, it learns in this run); None when it could not run (said why)."""
    stack = localstack.Stack(profile, say=lambda m: say(f"[dim]{m}[/]"))
    stack.wipe()
    try:
        stack.up(services=False)
        stack.start_services(extra_env={"RAPPORT_LOG_LEVEL": "WARNING",
                                        "RAPPORT_REFIT_FIRST_DELAY_S": "86400", **extra_env})
        stack.wait_services()
        return work({name: stack.url(name) for name in ("ingest", "profile", "next-action")})
    except KeyboardInterrupt:
        say("\nInterrupted.")
        return None
    except (localstack.StackError, RuntimeError) as exc:
        say(f"[red]{exc}[/]")
        return None
    finally:
        stack.down()


def cmd_eval_decisions(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from rapport.next_action.simworld import run  # the workspace installs every service

    def work(urls: dict[str, str]) -> Any:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            task = bar.add_task("decisions", total=args.decisions)
            return asyncio.run(run.run_world(
                urls, args.customers, args.decisions, args.seed, limit=args.limit,
                epsilon=args.epsilon,
                progress=lambda done: bar.update(task, completed=done), say=bar.console.print))

    # No contact policy: the static and oracle policies it is compared with have none.
    report = _on_wiped_stack(args.profile, {"RAPPORT_CONTACT_RULES": "[]"}, work)
    if report is None:
        return 1
    console.print(report.table())
    if report.judged:
        from rapport.next_action.simworld import judging
        console.print(judging.table(report.judged))
    if args.trace and report.sample is not None:
        console.print_json(data={k: v for k, v in report.sample.items()
                                 if k not in ("features", "scores")})
    console.print(f"learned/static {report.learned_over_static:.2f} (second half "
                  f"{report.second_half_over_static:.2f}); learned/oracle "
                  f"{report.learned_over_oracle:.2f} (second half "
                  f"{report.second_half_over_oracle:.2f})", highlight=False)
    return 0


def cmd_eval_learners(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from rapport.next_action.simworld import learners  # the workspace installs every service

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    h = learners.Hyper()
    results: list[learners.Result] = []
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("decisions", total=len(seeds) * len(learners.POLICIES)
                            * args.decisions)
        for seed in seeds:
            results += learners.run_seed(args.customers, args.decisions, seed, h,
                                         progress=lambda n: bar.advance(task, n))
    console.print(learners.table(
        results, f"Response learners offline in the simulated world: {args.customers:,} "
                 f"customers, {args.decisions:,} decisions, mean of seeds "
                 f"{', '.join(map(str, seeds))}"))
    console.print(f"hyperparameters: {h}", highlight=False)
    return 0


def cmd_eval_uplift(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from rapport.next_action.simworld import uplift_eval  # the workspace installs every service

    if args.live:
        return _eval_uplift_live(args)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    setup = uplift_eval.Setup()
    results: list[uplift_eval.Result] = []
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("decisions", total=len(seeds) * 5 * args.customers * args.rounds)
        for seed in seeds:
            results += uplift_eval.run_seed(args.customers, args.rounds, seed, setup=setup,
                                            progress=lambda n: bar.advance(task, n))
    for t in uplift_eval.tables(
            results, f"Uplift: true incremental profit per decision in the uplift world, "
                     f"{args.customers:,} customers x {args.rounds} rounds, mean of seeds "
                     f"{', '.join(map(str, seeds))}"):
        console.print(t)
    console.print(f"setup: {setup}", highlight=False)
    return 0


def _eval_uplift_live(args: argparse.Namespace) -> int:
    from rapport.next_action.simworld import uplift_run

    window = 10.0
    run = _on_wiped_stack(args.profile, {
        "RAPPORT_ATTRIBUTION_WINDOW_S": str(window), "RAPPORT_ATTRIBUTION_GRACE_S": "4",
        "RAPPORT_ATTRIBUTION_CLOSE_INTERVAL_S": "0.5"},
        lambda urls: asyncio.run(uplift_run.run_uplift_world(
            urls, args.customers, args.rounds, args.first_seed, window_s=window,
            say=lambda m: say(f"[dim]{m}[/]"))))
    if run is None:
        return 1
    console.print(run.table())
    console.print(uplift_run.report_table(run.report))
    return 0


def add_parsers(sub: Any) -> None:
    """The ``eval-*`` commands of ``rapport``."""
    e = sub.add_parser("eval-spikes", help="score the demand spike detector on a corpus in "
                                           "the Numenta Anomaly Benchmark's format")
    e.add_argument("--data", type=Path, required=True, help="folder of timestamp,value CSVs")
    e.add_argument("--windows", type=Path, required=True,
                   help="labelled anomaly windows (NAB's combined_windows.json)")
    e.add_argument("--results", type=Path, default=None,
                   help="write per-file scores in NAB's results format here")
    e.add_argument("--leave-one-out", action="store_true",
                   help="per-category scores, leave-one-category-out over a grid of "
                        "configurations and knob sensitivity (2 processes, a few minutes)")
    e.add_argument("--explain", action="store_true",
                   help="per category at its own best threshold: which view found each "
                        "window, which were missed, what lateness and false detections cost")
    e.add_argument("--workers", type=int, default=2,
                   help="processes for --leave-one-out")
    e.add_argument("--drop", type=float, default=0.0, metavar="SHARE",
                   help="drop this share of every file's points at random first (a "
                        "robustness check: irregular clocks)")
    e.add_argument("--cut", type=int, default=0, metavar="POINTS",
                   help="score short cuts of the files instead: per window a cut of this "
                        "many points around it (a robustness check: short series)")
    e.add_argument("--seed", type=int, default=1, help="for --drop and --cut")
    e.add_argument("--published", type=Path, default=None, metavar="NAB_RESULTS",
                   help="with --leave-one-out: a NAB checkout's results/ folder, to score "
                        "its published detectors on the same files alike")
    e.set_defaults(func=cmd_eval_spikes)

    f = sub.add_parser("eval-forecast", help="score the demand forecasts (MASE against the "
                                             "seasonal-naive forecast, 80%% interval coverage)")
    f.add_argument("--data", type=Path, default=Path("../shared/data/nab-dev/data"),
                   help="folder of timestamp,value CSVs (NAB's format), scored rolling origin")
    f.add_argument("--live", action="store_true", help=(
        "instead: the running system's own scores on its live demand series (a wiped stack "
        "of its own, simulated customers over --days of event time)"))
    f.add_argument("--days", type=float, default=10.0)
    f.add_argument("--per-bucket", type=float, default=8.0,
                   help="customer journeys per 5-minute bucket at average activity")
    f.add_argument("--seed", type=int, default=7)
    f.add_argument("--profile", choices=["bench", "test"], default="bench")
    f.set_defaults(func=cmd_eval_forecast)

    c = sub.add_parser("eval-churn", help="score the churn risk on CDNOW: calibrate to "
                                          "1997-09-30, predict who buys nothing in 39 weeks")
    c.add_argument("--data", type=Path, default=Path("tests/data/cdnow_sample.txt"),
                   help="CDNOW transactions (master id, sample id, YYYYMMDD, CDs, dollars)")
    c.set_defaults(func=cmd_eval_churn)

    d = sub.add_parser("eval-decisions", help="judge next-best-action in a simulated world "
                                              "of customers with hidden tastes (starts and "
                                              "stops its own stack)")
    d.add_argument("--customers", type=int, default=2000)
    d.add_argument("--decisions", type=int, default=20_000)
    d.add_argument("--seed", type=int, default=12)
    d.add_argument("--limit", type=int, default=1, help="actions asked per decision")
    d.add_argument("--trace", action="store_true", help="print one late decision's trace")
    d.add_argument("--epsilon", type=float, default=0.05,
                   help="the served policy's exploration share (more: better evaluations)")
    d.add_argument("--profile", choices=["bench", "test"], default="bench",
                   help="the local stack's ports and data (wiped first)")
    d.set_defaults(func=cmd_eval_decisions)

    lr = sub.add_parser("eval-learners", help="compare next-action's response learners "
                                             "offline in the simulated world (no services)")
    lr.add_argument("--customers", type=int, default=2000)
    lr.add_argument("--decisions", type=int, default=20_000)
    lr.add_argument("--seeds", type=int, default=3, help="how many seeds (their mean)")
    lr.add_argument("--first-seed", type=int, default=1)
    lr.set_defaults(func=cmd_eval_learners)

    u = sub.add_parser("eval-uplift", help="compare next-action's uplift learners offline "
                                          "in the uplift world (no services)")
    u.add_argument("--customers", type=int, default=2000)
    u.add_argument("--rounds", type=int, default=10, help="decisions per customer")
    u.add_argument("--seeds", type=int, default=3, help="how many seeds (their mean)")
    u.add_argument("--first-seed", type=int, default=1)
    u.add_argument("--live", action="store_true", help=(
        "instead: the uplift world through the running services (a wiped stack of its "
        "own, attribution windows of 10 s): one seed, the service's learned policy"))
    u.add_argument("--profile", choices=["bench", "test"], default="bench")
    u.set_defaults(func=cmd_eval_uplift)
