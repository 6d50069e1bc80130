"""A local Redis Cluster for the tests: three masters from Debian's ``redis-server``
(``cluster-enabled yes``), the 16,384 slots split evenly by ``redis-cli --cluster
create``, beside a stack profile's single Redis (ports from its Redis port + 10, cluster
bus ports + 1000 more), so the profile service's tests run on both."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from .localports import port_taken
from .localstack import Stack, StackError

_CONFIG = """bind 127.0.0.1
port {port}
cluster-port {bus}
cluster-enabled yes
cluster-config-file nodes-{port}.conf
cluster-node-timeout 5000
dir {data}
daemonize no
appendonly no
save ""
protected-mode yes
"""


class LocalCluster:
    def __init__(self, stack: Stack, masters: int = 3) -> None:
        self._stack = stack
        self.ports = [stack.profile.redis_port + 10 + i for i in range(masters)]
        self._dir = stack.state / "redis-cluster"

    @property
    def url(self) -> str:
        """What ``rapport.shared.redis_store.connect`` takes for a cluster."""
        return f"redis-cluster://127.0.0.1:{self.ports[0]}"

    def _name(self, port: int) -> str:
        return f"redis-cluster-{port}"

    def start(self, timeout: float = 60) -> None:
        """Start the masters (a fresh, empty cluster) and wait until it serves every slot."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir.mkdir(parents=True)
        server = self._stack._redis_server()
        for port in self.ports:
            if port_taken(port) or port_taken(port + 1000):
                raise StackError(f"port {port} or {port + 1000} is taken by another process")
            config = self._dir / f"{port}.conf"
            config.write_text(_CONFIG.format(port=port, bus=port + 1000, data=self._dir))
            self._stack._spawn(self._name(port), [server, str(config)])
        for port in self.ports:
            self._wait(lambda p=port: redis.Redis(port=p, socket_timeout=1).ping(), timeout)
        subprocess.run(["redis-cli", "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait(self._formed, timeout)
        self._stack.say(f"Redis Cluster: {len(self.ports)} masters on 127.0.0.1:"
                        f"{self.ports[0]}-{self.ports[-1]}")

    def _formed(self) -> bool:
        for port in self.ports:
            info = redis.Redis(port=port, socket_timeout=1).cluster("info")
            if info.get("cluster_state") != "ok" or \
                    int(info.get("cluster_known_nodes", 0)) != len(self.ports):
                return False
        return True

    @staticmethod
    def _wait(ready, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except redis.RedisError as exc:
                last = exc
            time.sleep(0.2)
        raise StackError(f"Redis Cluster not ready after {timeout:.0f}s: {last!r}")

    def flush(self) -> None:
        """Empty every master (a test's fresh start)."""
        for port in self.ports:
            redis.Redis(port=port, socket_timeout=5).flushall()

    def keys_per_master(self) -> dict[int, int]:
        return {port: int(redis.Redis(port=port, socket_timeout=5).dbsize())
                for port in self.ports}

    def stop(self) -> None:
        for port in self.ports:
            self._stack._stop(self._name(port))
