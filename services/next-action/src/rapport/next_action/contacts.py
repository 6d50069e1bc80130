"""Contact limits, counted per person across every channel, atomically.

A contact counts when an offer is made: returned as an action of a decision, on any
channel. One Lua script checks every candidate's limits in rank order and records the
ones it makes, so two channels asking at once cannot both pass a cap of 1. Outcomes
(an acceptance, a rejection) are recorded once per decision, action and outcome.

The history lives in one hash per person (``keys.contacts``): ``made:<offer>`` and
``rejected:<offer>`` hold the times (epoch seconds, comma-separated, the latest 200
within a year) and ``accepted:<offer>`` is set once accepted anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.privacy import Fingerprints

from .catalog import Offer

KEEP_S = 366 * 86400
MARKER_TTL_S = 90 * 86400

_LIB = """
local function times(raw, since)
  local out = {}
  if raw then
    for t in string.gmatch(raw, '[^,]+') do
      local n = tonumber(t)
      if n and n > since then out[#out + 1] = n end
    end
  end
  return out
end
local function push(key, field, now, keep)
  local kept = times(redis.call('HGET', key, field), now - keep)
  kept[#kept + 1] = now
  local first = math.max(1, #kept - 199)
  redis.call('HSET', key, field, table.concat(kept, ',', first))
end
"""

# KEYS[1] contacts hash; ARGV: now, limit, keep_s, then per candidate in rank order:
# offer_id, max (0: none), days_s, pause_k (0: none), pause_s, stop_after_accept (0/1).
_RESERVE = _LIB + """
local now, limit, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local verdicts, made = {}, 0
for i = 4, #ARGV, 6 do
  local offer = ARGV[i]
  local max, days, k, pause = tonumber(ARGV[i+1]), tonumber(ARGV[i+2]),
    tonumber(ARGV[i+3]), tonumber(ARGV[i+4])
  local verdict = 'made'
  if made >= limit then
    verdict = 'not_needed'
  elseif ARGV[i+5] == '1' and redis.call('HEXISTS', KEYS[1], 'accepted:' .. offer) == 1 then
    verdict = 'accepted'
  elseif k > 0 and #times(redis.call('HGET', KEYS[1], 'rejected:' .. offer), now - pause) >= k then
    verdict = 'paused'
  elseif max > 0 and #times(redis.call('HGET', KEYS[1], 'made:' .. offer), now - days) >= max then
    verdict = 'capped'
  end
  if verdict == 'made' then
    push(KEYS[1], 'made:' .. offer, now, keep)
    made = made + 1
  end
  verdicts[#verdicts + 1] = verdict
end
if made > 0 then redis.call('EXPIRE', KEYS[1], keep) end
return verdicts
"""

# KEYS[1] contacts hash, KEYS[2] once-marker; ARGV: offer_id, outcome, now, keep_s, ttl.
_OUTCOME = _LIB + """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5]) then return 0 end
local now, keep = tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[2] == 'accepted' then
  redis.call('HSET', KEYS[1], 'accepted:' .. ARGV[1], now)
elseif ARGV[2] == 'rejected' then
  push(KEYS[1], 'rejected:' .. ARGV[1], now, keep)
end
redis.call('EXPIRE', KEYS[1], keep)
return 1
"""


def limited(offer: Offer) -> bool:
    c = offer.contact
    return c is not None and (c.max is not None or c.pause_after_rejections is not None
                              or c.stop_after_accept)


class ContactBook:
    def __init__(self, redis: Redis, fingerprints: Fingerprints) -> None:
        self._redis = redis
        self._fp = fingerprints
        self._reserve = redis.register_script(_RESERVE)
        self._outcome = redis.register_script(_OUTCOME)

    async def reserve(self, customer_id: str, ranked: Sequence[Offer], limit: int,
                      at: datetime) -> dict[str, str]:
        """The first ``limit`` candidates (in rank order) that their limits allow are
        made and counted; every candidate's verdict: made, capped, paused, accepted,
        not_needed."""
        args: list[str | int | float] = [int(at.timestamp()), limit, KEEP_S]
        for offer in ranked:
            c = offer.contact
            args += [offer.offer_id, c.max or 0 if c else 0,
                     int((c.days or 0) * 86400) if c else 0,
                     c.pause_after_rejections or 0 if c else 0,
                     int((c.pause_days or 0) * 86400) if c else 0,
                     1 if c and c.stop_after_accept else 0]
        verdicts = await self._reserve(keys=[keys.contacts(self._fp.profile(customer_id))],
                                       args=args)
        return {o.offer_id: v.decode() if isinstance(v, bytes) else v
                for o, v in zip(ranked, verdicts, strict=True)}

    async def record(self, customer_id: str, decision_id: str, action_id: str,
                     offer_id: str, outcome: str, at: datetime) -> bool:
        """Record an outcome once (True when it was new)."""
        marker = keys.outcome_seen(decision_id, action_id, f"contact-{outcome}")
        done = await self._outcome(keys=[keys.contacts(self._fp.profile(customer_id)), marker],
                                   args=[offer_id, outcome, int(at.timestamp()), KEEP_S,
                                         MARKER_TTL_S])
        return bool(done)
