"""The other services' HTTP APIs, called with the signed-in person's own key: each
service decides what that key may see (the console adds no privilege of its own)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class Refused(Exception):
    """An upstream answered with an error status (its contract's {code, message})."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Upstreams:
    def __init__(self, urls: dict[str, str], timeout_s: float) -> None:
        self.urls = urls
        self._http = httpx.AsyncClient(timeout=timeout_s,
                                       limits=httpx.Limits(max_connections=50))

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, service: str, path: str, key: str,
                    **kwargs: Any) -> Any:
        try:
            answer = await self._http.request(method, self.urls[service] + path,
                                              headers={"Authorization": f"Bearer {key}"},
                                              **kwargs)
        except httpx.HTTPError as exc:
            raise Refused(503, f"{service} is not reachable ({type(exc).__name__})") from exc
        if answer.status_code >= 400:
            try:
                message = answer.json().get("message", answer.reason_phrase)
            except ValueError:
                message = answer.reason_phrase
            raise Refused(answer.status_code, f"{service}: {message}")
        return answer.json() if answer.content else None

    async def get(self, service: str, path: str, key: str, **params: Any) -> Any:
        return await self._call("GET", service, path, key,
                                params={k: v for k, v in params.items() if v is not None})

    async def post(self, service: str, path: str, key: str, body: Any) -> Any:
        return await self._call("POST", service, path, key, json=body)

    # --- the calls the screens make -----------------------------------------------------
    async def customer(self, key: str, customer_id: str) -> dict[str, Any]:
        return await self.get("profile", f"/v1/customers/{quote(customer_id, safe='')}", key)

    async def find(self, key: str, kind: str, value: str) -> dict[str, Any]:
        if kind == "customer_id":
            return await self.customer(key, value)
        return await self.get("profile", "/v1/customers", key, **{kind: value})

    async def timeline(self, key: str, customer_id: str, limit: int = 25) -> dict[str, Any]:
        return await self.get("profile",
                              f"/v1/customers/{quote(customer_id, safe='')}/timeline", key,
                              limit=limit)

    async def scores(self, key: str, customer_id: str) -> dict[str, Any]:
        return await self.get("scoring",
                              f"/v1/customers/{quote(customer_id, safe='')}/scores", key)

    async def next_best_action(self, key: str, customer_id: str) -> dict[str, Any]:
        return await self.post("next-action", "/v1/next-best-action", key,
                               {"customer_id": customer_id, "channel": "call_center",
                                "placement": "agent-console", "limit": 3})

    async def decision(self, key: str, decision_id: str) -> dict[str, Any]:
        return await self.get("next-action", f"/v1/decisions/{quote(decision_id, safe='')}",
                              key)

    async def outcome(self, key: str, decision_id: str, action_id: str, outcome: str) -> None:
        await self.post("next-action", "/v1/outcomes", key,
                        {"decision_id": decision_id, "action_id": action_id,
                         "outcome": outcome})
