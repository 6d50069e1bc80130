"""The local stack's profiles (``run``, ``test``, ``bench``: ports that cannot collide) and
the checks on ports and processes it starts and stops by."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    kafka_port: int
    controller_port: int
    redis_port: int
    service_ports: dict[str, int] = field(default_factory=dict)


# Test and bench ports stay below Linux's ephemeral range (32768-60999), where any
# outgoing connection could take them between our check and the server's bind.
PROFILES = {
    "run": Profile("run", 9092, 9093, 6390,
                   {"ingest": 8001, "profile": 8002, "scoring": 8003, "next-action": 8004,
                    "console": 8005}),
    "test": Profile("test", 19092, 19093, 16390,
                    {"ingest": 18001, "profile": 18002, "scoring": 18003, "next-action": 18004,
                     "console": 18005}),
    "bench": Profile("bench", 29092, 29093, 26390,
                     {"ingest": 28001, "profile": 28002, "scoring": 28003, "next-action": 28004,
                     "console": 28005}),
}


def shifted(profile: Profile, offset: int) -> Profile:
    """A profile's ports moved by ``offset`` (``RAPPORT_STACK_PORT_OFFSET``): several
    checkouts can run their tests side by side."""
    if not offset:
        return profile
    return Profile(profile.name, profile.kafka_port + offset, profile.controller_port + offset,
                   profile.redis_port + offset,
                   {k: v + offset for k, v in profile.service_ports.items()})


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def port_taken(port: int, wait: float = 15) -> bool:
    """Whether another process holds the port, allowing one that is shutting down to go."""
    deadline = time.monotonic() + wait
    while port_open(port):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.3)
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
