"""Console settings (``RAPPORT_*``): where the other services are, and the sessions."""

from __future__ import annotations

from pydantic import Field

from rapport.shared.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    console_port: int = 8005
    ingest_url: str = "http://127.0.0.1:8001"
    profile_url: str = "http://127.0.0.1:8002"
    scoring_url: str = "http://127.0.0.1:8003"
    next_action_url: str = "http://127.0.0.1:8004"
    upstream_timeout_s: float = Field(default=2.0, gt=0, description=(
        "Time allowed for one call to another service"))
    session_ttl_s: float = Field(default=8 * 3600, gt=0, description=(
        "How long a sign-in lasts without use (sessions live in this process's memory)"))
    secure_cookies: bool = Field(default=False, description=(
        "Mark the session cookie Secure (set it behind HTTPS)"))
    ops_sample_s: float = Field(default=2.0, gt=0, description=(
        "How often the ops collector reads Kafka's offsets and the services' /metrics"))
    lag_window_s: float = Field(default=15 * 60, gt=0, description=(
        "How much consumer-lag history the ops page keeps (its trend and time to clear)"))
    screen_pop_window_s: float = Field(default=120, gt=0, description=(
        "A call older than this when its profile update arrives does not pop a screen"))

    def upstreams(self) -> dict[str, str]:
        return {"ingest": self.ingest_url, "profile": self.profile_url,
                "scoring": self.scoring_url, "next-action": self.next_action_url}
