"""The local stack: a real Apache Kafka (KRaft) broker from Maven Central jars,
a real Redis from Debian's package, the project's topics and the five services,
each as a background process with a pid file and a log file.

Two profiles that cannot collide: ``run`` (``make run``/``make up``) and
``test`` (``make test``), with their own ports and data folders. When
``RAPPORT_KAFKA_BOOTSTRAP`` / ``RAPPORT_REDIS_URL`` are set, those servers are
used and nothing local is started for them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from .kafka import ensure_topics
from .localports import PROFILES, alive, port_open, port_taken, shifted
from .topics import ALL_TOPICS

SERVICES = ("ingest", "profile", "scoring", "next-action", "console")
_MODULES = {"ingest": "rapport.ingest", "profile": "rapport.profile",
            "scoring": "rapport.scoring", "next-action": "rapport.next_action",
            "console": "rapport.console"}
_PORT_VARS = {"ingest": "RAPPORT_INGEST_PORT", "profile": "RAPPORT_PROFILE_PORT",
              "scoring": "RAPPORT_SCORING_PORT", "next-action": "RAPPORT_NEXT_ACTION_PORT",
              "console": "RAPPORT_CONSOLE_PORT"}


class StackError(RuntimeError):
    pass


def repo_root() -> Path:
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "deploy" / "local" / "pom.xml").exists():
            return candidate
    raise StackError("run this from the Rapport repository (deploy/local/pom.xml not found)")


class Stack:
    def __init__(self, profile: str = "run", root: Path | None = None,
                 say: Callable[[str], object] = print) -> None:
        self.profile = shifted(PROFILES[profile], int(os.environ.get(
            "RAPPORT_STACK_PORT_OFFSET", "0") or 0) if profile != "run" else 0)
        self.root = root or repo_root()
        self.state = self.root / ".cache" / "stack" / profile
        self.logs = self.root / ".logs" / profile
        self.kafka_libs = self.root / ".cache" / "kafka" / "libs"
        self.say = say
        self.external_kafka = os.environ.get("RAPPORT_KAFKA_BOOTSTRAP")
        self.external_redis = os.environ.get("RAPPORT_REDIS_URL")

    # --- addresses -------------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.external_kafka or f"127.0.0.1:{self.profile.kafka_port}"

    @property
    def redis_url(self) -> str:
        return self.external_redis or f"redis://127.0.0.1:{self.profile.redis_port}/0"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.profile.service_ports[service]}"

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"RAPPORT_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
                    "RAPPORT_REDIS_URL": self.redis_url,
                    "RAPPORT_DEV_KEYS": env.get("RAPPORT_DEV_KEYS", "1"),
                    "PYTHONUNBUFFERED": "1"})
        for svc, var in _PORT_VARS.items():
            env[var] = str(self.profile.service_ports[svc])
            # Where the console (and any caller) finds each service's API.
            env[var.replace("_PORT", "_URL")] = self.url(svc)
        return env

    # --- process bookkeeping -----------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.state / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """Process id of a running component of this stack (``kafka``, ``redis``, a service)."""
        return self._running(name)

    def _running(self, name: str) -> int | None:
        pidfile = self._pidfile(name)
        if not pidfile.exists():
            return None
        pid = int(pidfile.read_text().strip() or 0)
        if pid and alive(pid):
            return pid
        pidfile.unlink(missing_ok=True)
        return None

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
               log_name: str | None = None) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / (log_name or f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=self.root,
                                start_new_session=True)
        log.close()
        self._pidfile(name).write_text(str(proc.pid))
        return proc.pid

    def _stop(self, name: str, timeout: float = 30) -> bool:
        pid = self._running(name)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.2)
        if alive(pid):
            self.say(f"  {name} did not stop in {timeout:.0f}s; killing it")
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._pidfile(name).unlink(missing_ok=True)
        return True

    # --- Kafka --------------------------------------------------------------------------
    def fetch_kafka(self) -> None:
        """Copy the pinned Kafka runtime jars from Maven Central (once)."""
        pom = self.root / "deploy" / "local" / "pom.xml"
        stamp = self.kafka_libs / ".pom-stamp"
        if stamp.exists() and stamp.read_bytes() == pom.read_bytes():
            return
        if shutil.which("mvn") is None:
            raise StackError("Maven (mvn) is needed to fetch Apache Kafka's jars")
        self.say("Fetching Apache Kafka jars from Maven Central (first time only) ...")
        if self.kafka_libs.exists():
            shutil.rmtree(self.kafka_libs)
        subprocess.run(["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"],
                       check=True, cwd=self.root)
        stamp.write_bytes(pom.read_bytes())

    def java(self, *args: str, heap: str = "256m") -> list[str]:
        """A command line running a class from the pinned Kafka jars."""
        return self._java(*args, heap=heap)

    def _java(self, *args: str, heap: str = "256m") -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise StackError("Java 17+ is needed to run Apache Kafka")
        return [java, f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dkafka.logs.dir={self.logs}",
                f"-Dlog4j2.configurationFile={self.root / 'deploy/local/log4j2.properties'}",
                "-cp", f"{self.kafka_libs}/*", *args]

    def start_kafka(self) -> None:
        if self.external_kafka:
            self.say(f"Kafka: using {self.external_kafka}")
            return
        if self._running("kafka"):
            return
        if port_taken(self.profile.kafka_port):
            raise StackError(f"port {self.profile.kafka_port} is taken by another process")
        self.fetch_kafka()
        data = self.state / "kafka-data"
        config = self.state / "server.properties"
        template = (self.root / "deploy/local/server.properties.template").read_text()
        config.write_text(template.format(kafka_port=self.profile.kafka_port,
                                          controller_port=self.profile.controller_port,
                                          data_dir=data))
        if not (data / "meta.properties").exists():
            shutil.rmtree(data, ignore_errors=True)  # a half-written log from a killed run
            cid = "-"
            while cid.startswith("-"):  # the tool would read a leading dash as an option
                cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            done = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cid,
                                             "-c", str(config)),
                                  cwd=self.root, capture_output=True, text=True)
            if done.returncode:
                raise StackError(f"formatting Kafka's log failed: "
                                 f"{(done.stdout + done.stderr).strip()[-800:]}")
        self.say(f"Kafka: starting on 127.0.0.1:{self.profile.kafka_port} (KRaft)")
        self._spawn("kafka", self._java("kafka.Kafka", str(config), heap="768m"),
                    log_name="kafka.stdout.log")

    def wait_kafka(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.external_kafka and not self._running("kafka"):
                raise StackError(f"Kafka exited; see {self.logs / 'kafka.stdout.log'}")
            if not self.external_kafka and not port_open(self.profile.kafka_port):
                time.sleep(0.5)
                continue
            try:
                created = asyncio.run(ensure_topics(self.kafka_bootstrap, ALL_TOPICS))
                if created:
                    self.say(f"Kafka: created topics {', '.join(created)}")
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(1)
        raise StackError(f"Kafka not ready after {timeout:.0f}s: {last!r}")

    # --- Redis --------------------------------------------------------------------------
    def _redis_server(self) -> str:
        found = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
        if found:
            return found
        self.say("Installing redis-server from Debian's packages ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "redis-server", "redis-tools"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        return "/usr/bin/redis-server"

    def start_redis(self) -> None:
        if self.external_redis:
            self.say(f"Redis: using {self.external_redis}")
            return
        if self._running("redis"):
            return
        if port_taken(self.profile.redis_port):
            raise StackError(f"port {self.profile.redis_port} is taken by another process")
        server = self._redis_server()
        data = self.state / "redis-data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.state / "redis.conf"
        template = (self.root / "deploy/local/redis.conf.template").read_text()
        config.write_text(template.format(redis_port=self.profile.redis_port, data_dir=data))
        self.say(f"Redis: starting on 127.0.0.1:{self.profile.redis_port} (AOF on)")
        self._spawn("redis", [server, str(config)])

    def wait_redis(self, timeout: float = 30) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.redis_url, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                time.sleep(0.3)
        raise StackError(f"Redis not ready after {timeout:.0f}s; see {self.logs / 'redis.log'}")

    # --- services -------------------------------------------------------------------------
    def start_services(self, services: tuple[str, ...] = SERVICES,
                       extra_env: dict[str, str] | None = None) -> None:
        env = {**self.service_env(), **(extra_env or {})}
        for svc in services:
            if self._running(svc):
                continue
            port = self.profile.service_ports[svc]
            if port_taken(port):
                raise StackError(f"port {port} for {svc} is taken by another process")
            self._spawn(svc, [sys.executable, "-m", _MODULES[svc]], env=env)

    def wait_services(self, timeout: float = 120,
                      services: tuple[str, ...] = SERVICES) -> None:
        pending = set(services)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while pending and time.monotonic() < deadline:
                for svc in sorted(pending):
                    if not self._running(svc):
                        raise StackError(f"{svc} exited; see {self.logs / (svc + '.log')}")
                    try:
                        if client.get(f"{self.url(svc)}/readyz").status_code == 200:
                            pending.discard(svc)
                            self.say(f"{svc}: ready at {self.url(svc)}")
                    except httpx.HTTPError:
                        pass
                if pending:
                    time.sleep(0.5)
        if pending:
            raise StackError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}; "
                             f"see {self.logs}")

    # --- whole stack ----------------------------------------------------------------------
    def up(self, services: bool = True) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.start_redis()
        self.start_kafka()
        self.wait_redis()
        self.wait_kafka()
        if services:
            self.start_services()
            self.wait_services()

    def stop_service(self, name: str) -> bool:
        """Stop one component; False when it was not running."""
        return self._stop(name)

    def stop_services(self) -> list[str]:
        return [name for name in reversed(SERVICES) if self._stop(name)]

    def down(self) -> None:
        stopped = self.stop_services()
        stopped += [name for name in ("kafka", "redis") if self._stop(name)]
        self.say(f"Stopped: {', '.join(stopped)}" if stopped else "Nothing was running.")

    def wipe(self) -> None:
        """Stop everything and delete the profile's data (a fresh start)."""
        self.down()
        shutil.rmtree(self.state, ignore_errors=True)

    def status(self) -> dict[str, int | None]:
        return {name: self._running(name) for name in ("redis", "kafka", *SERVICES)}
