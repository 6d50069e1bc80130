"""Contact limits and the contact policy, per person across every channel, atomically.

One Lua script per decision, on the person's hash only (one Redis Cluster slot), checks
every ranked candidate's limits and the contact policy (:mod:`.limits`), chooses among
the allowed ones exactly as :func:`.exploration.choose` does, and records what it made,
so two channels asking at once cannot both pass a cap of 1. Daily budgets are checked
before and counted after, apart (:mod:`.budgets`). Outcomes (an acceptance, a
rejection) are recorded once per decision, action and outcome.

The history lives in one hash per person (``keys.contacts``): ``made:<offer>`` and
``rejected:<offer>`` hold the times (epoch seconds, comma-separated, the latest 200
within a year), ``accepted:<offer>`` is set once accepted anywhere, and ``sent:<medium>``
holds the times of the decisions that made marketing on a medium (the policy's count).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.events import Channel
from rapport.shared.privacy import Fingerprints

from . import exploration
from .budgets import BudgetBook
from .catalog import Offer
from .limits import KEEP_TIMES, ContactRule, Reservation, budget_reason, in_effect, media

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
  local first = math.max(1, #kept - KEEP_LESS_ONE)
  redis.call('HSET', key, field, table.concat(kept, ',', first))
end
""".replace("KEEP_LESS_ONE", str(KEEP_TIMES - 1))

# KEYS[1] contacts hash; ARGV: now, limit, keep_s, epsilon, u, r, n_rules, n_media, then
# per rule: name, field, max, days_s; the media fields; per candidate in rank order:
# offer_id, marketing (0/1), max (0: none), days_s, pause_k (0: none), pause_s,
# stop_after_accept (0/1), verdict decided before ('' or 'budget').
# Returns {verdicts, count per rule, explored (0/1)}.
_RESERVE = _LIB + """
local now, limit, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local epsilon, u, r = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local i, blocked, counts, fields = 9, false, {}, {}
for _ = 1, tonumber(ARGV[7]) do
  local n = #times(redis.call('HGET', KEYS[1], ARGV[i+1]), now - tonumber(ARGV[i+3]))
  counts[#counts + 1] = n
  if not blocked and n >= tonumber(ARGV[i+2]) then blocked = 'rule:' .. ARGV[i] end
  i = i + 4
end
for _ = 1, tonumber(ARGV[8]) do fields[#fields + 1] = ARGV[i]; i = i + 1 end
local offers, marketing, verdicts, allowed = {}, {}, {}, {}
while i <= #ARGV do
  local offer, mk = ARGV[i], ARGV[i+1] == '1'
  local max, days, k, pause = tonumber(ARGV[i+2]), tonumber(ARGV[i+3]),
    tonumber(ARGV[i+4]), tonumber(ARGV[i+5])
  local v = false
  if ARGV[i+6] == '1' and redis.call('HEXISTS', KEYS[1], 'accepted:' .. offer) == 1 then
    v = 'accepted'
  elseif k > 0 and #times(redis.call('HGET', KEYS[1], 'rejected:' .. offer), now - pause) >= k then
    v = 'paused'
  elseif max > 0 and #times(redis.call('HGET', KEYS[1], 'made:' .. offer), now - days) >= max then
    v = 'capped'
  elseif mk and blocked then
    v = blocked
  elseif ARGV[i+7] ~= '' then
    v = ARGV[i+7]
  end
  offers[#offers + 1], marketing[#offers + 1], verdicts[#offers + 1] = offer, mk, v or 'not_chosen'
  if not v then allowed[#allowed + 1] = #offers end
  i = i + 8
end
-- exploration.choose on the allowed ones (1-based): the first k-1, then the k-th, or
-- with u < epsilon the (k + floor(r * pool))-th
local k, explored, any = math.max(0, math.min(limit, #allowed)), 0, false
if k > 0 then
  local pool, last = #allowed - k + 1, k
  if pool > 1 and u < epsilon then
    explored = 1
    last = k + math.min(pool - 1, math.floor(r * pool))
  end
  local chosen = {}
  for s = 1, k - 1 do chosen[#chosen + 1] = allowed[s] end
  chosen[#chosen + 1] = allowed[last]
  for _, j in ipairs(chosen) do
    verdicts[j] = 'made'
    push(KEYS[1], 'made:' .. offers[j], now, keep)
    any = any or marketing[j]
  end
  if any then for _, f in ipairs(fields) do push(KEYS[1], f, now, keep) end end
  redis.call('EXPIRE', KEYS[1], keep)
end
return {verdicts, counts, explored}
"""

# KEYS[1] contacts hash; ARGV: now, then fields: one time ``now`` taken off each (what a
# reservation recorded for an action its budget then refused).
_UNRESERVE = """
for i = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local kept, gone = {}, false
    local all = {}
    for t in string.gmatch(raw, '[^,]+') do all[#all + 1] = t end
    for j = #all, 1, -1 do
      if not gone and all[j] == ARGV[1] then gone = true else table.insert(kept, 1, all[j]) end
    end
    if #kept == 0 then redis.call('HDEL', KEYS[1], ARGV[i])
    else redis.call('HSET', KEYS[1], ARGV[i], table.concat(kept, ',')) end
  end
end
return 1
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
    return offer.budget is not None or (c is not None and (
        c.max is not None or c.pause_after_rejections is not None or c.stop_after_accept))


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class ContactBook:
    def __init__(self, redis: Redis, fingerprints: Fingerprints,
                 rules: Sequence[ContactRule] = (), ahead: float = 1 / 24) -> None:
        self._redis = redis
        self._fp = fingerprints
        self.rules = tuple(rules)
        self.budgets = BudgetBook(redis, ahead)
        self._reserve = redis.register_script(_RESERVE)
        self._unreserve = redis.register_script(_UNRESERVE)
        self._outcome = redis.register_script(_OUTCOME)

    def needed(self, ranked: Sequence[Offer], channel: Channel, sms: bool = False) -> bool:
        """Whether a decision must reserve: an offer has limits or a budget, or a
        marketing one meets a rule (else the first ``limit`` are made, nothing counted)."""
        return any(limited(o) for o in ranked) or (
            any(o.marketing for o in ranked) and bool(in_effect(self.rules, channel, sms)))

    async def reserve(self, customer_id: str, ranked: Sequence[Offer], limit: int,
                      at: datetime, *, channel: Channel, sms: bool = False,
                      epsilon: float = 0.0, u: float | None = None,
                      r: float | None = None) -> Reservation:
        """Check every ranked candidate (best first), choose among the allowed ones as
        :func:`.exploration.choose` with the draws ``u``, ``r`` (random when not given),
        record and budget what is made; every candidate's verdict, and each allowed
        one's chance of being made."""
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be within [0, 1]")
        u = random.random() if u is None else u
        r = random.random() if r is None else r
        spent = await self.budgets.spent(ranked, at)
        rules = in_effect(self.rules, channel, sms)
        fields = [f"sent:{m}" for m in media(channel, sms)]
        args: list[str | int | float] = [int(at.timestamp()), limit, KEEP_S, repr(epsilon),
                                         repr(u), repr(r), len(rules), len(fields)]
        for rule in rules:
            args += [rule.name, f"sent:{rule.medium}", rule.max, int(rule.days * 86400)]
        args += fields
        for offer in ranked:
            c = offer.contact
            args += [offer.offer_id, 1 if offer.marketing else 0, c.max or 0 if c else 0,
                     int((c.days or 0) * 86400) if c else 0,
                     c.pause_after_rejections or 0 if c else 0,
                     int((c.pause_days or 0) * 86400) if c else 0,
                     1 if c and c.stop_after_accept else 0,
                     "budget" if offer.offer_id in spent and spent[offer.offer_id].exhausted
                     else ""]
        hash_key = keys.contacts(self._fp.profile(customer_id))
        raw, counts, explored = await self._reserve(keys=[hash_key], args=args)
        verdicts = {o.offer_id: _text(v) for o, v in zip(ranked, raw, strict=True)}
        allowed = [o for o in ranked if verdicts[o.offer_id] in ("made", "not_chosen")]
        chances = exploration.probabilities(len(allowed), limit, epsilon)
        reasons = {o.offer_id: budget_reason(o.budget, spent[o.offer_id].counted,
                                             spent[o.offer_id].cap)
                   for o in ranked if verdicts[o.offer_id] == "budget" and o.budget}
        held = {f"rule:{rule.name}": rule.describe(int(n))
                for rule, n in zip(rules, counts, strict=True)}
        reasons |= {o: held[v] for o, v in verdicts.items() if v in held}
        if explored:  # the candidates the exploring last slot passed over
            last = max(i for i, o in enumerate(ranked) if verdicts[o.offer_id] == "made")
            reasons |= {o.offer_id: "not chosen: this decision explored; its last slot went "
                                    "to a lower-ranked candidate"
                        for o in ranked[:last] if verdicts[o.offer_id] == "not_chosen"}
        await self._count(hash_key, ranked, verdicts, reasons, fields, at)
        return Reservation(
            verdicts=verdicts, explored=bool(explored), reasons=reasons,
            probabilities={o.offer_id: p for o, p in zip(allowed, chances, strict=True)})

    async def _count(self, hash_key: str, ranked: Sequence[Offer], verdicts: dict[str, str],
                     reasons: dict[str, str], fields: list[str], at: datetime) -> None:
        """Count the made offers against their budgets; the refused ones are dropped
        (verdict ``budget``) and taken off the person's history again."""
        made = [o for o in ranked if verdicts[o.offer_id] == "made"]
        refused = await self.budgets.count(made, at)
        if not refused:
            return
        for offer in made:
            if offer.offer_id in refused and offer.budget:
                verdicts[offer.offer_id] = "budget"
                spent = refused[offer.offer_id]
                reasons[offer.offer_id] = budget_reason(offer.budget, spent.counted, spent.cap)
        gone = [f"made:{o}" for o in refused]
        if any(o.marketing for o in made) and not any(
                o.marketing for o in made if o.offer_id not in refused):
            gone += fields  # no marketing left: the decision is no contact after all
        await self._unreserve(keys=[hash_key], args=[int(at.timestamp()), *gone])

    async def record(self, customer_id: str, decision_id: str, action_id: str,
                     offer_id: str, outcome: str, at: datetime, *,
                     offer: Offer | None = None) -> bool:
        """Record an outcome once (True when it was new); a new acceptance of ``offer``
        counts against its budget when that counts acceptances."""
        marker = keys.contact_outcome_seen(self._fp.profile(customer_id), decision_id,
                                           action_id, outcome)
        done = await self._outcome(keys=[keys.contacts(self._fp.profile(customer_id)), marker],
                                   args=[offer_id, outcome, int(at.timestamp()), KEEP_S,
                                         MARKER_TTL_S])
        if done and outcome == "accepted" and offer is not None:
            await self.budgets.accepted(offer, at)
        return bool(done)

