"""Identity resolution in Redis: which profile a touchpoint's identifiers belong
to, merging profiles found to be one person, within the over-merge guard.

One script call per touchpoint decides atomically, so resolution is correct
whichever partition or worker the touchpoint came through. Decided merges go
into an outbox that the resolver drains onto Kafka, so a crash between the
decision and the publish never loses a merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.privacy import Fingerprints
from rapport.shared.profiles import Identity

from .identities import MAX_IDENTITIES, PREVIOUS, profile_id_for

# ARGV: prefix, join limit, identity cap, then a JSON list of [new profile id, founder
# kind, founder value, received ms, message id, [kind, value, fingerprint, fingerprint as
# an anonymous id (for an alias' previous id, else ""), ...], resolution
# log key, record offset] for every touchpoint of a batch, resolved in order. Values are
# only ever compared or concatenated after a fixed kind, never split: any character may
# appear in an id. Returns a JSON list of [status, profile id, [merged ids], [refused ids]].
_RESOLVE = """
local prefix, limit, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function rank(pid)  -- profiles founded by a user id survive anonymous ones
  if string.sub(pid, 1, 3) == '~a:' then return 1 end
  return 0
end
local function resolve(newpid, fkind, fvalue, received, message_id, flat)
local ids = {}
for i = 1, #flat, 4 do
  local id = {flat[i], flat[i + 1], flat[i + 2]}
  if id[1] == 'previous_id' then  -- an alias' old id: a known user id, else an anonymous id
    if redis.call('EXISTS', prefix .. ':identity:user_id:' .. id[2]) == 1 then
      id[1] = 'user_id'
    else
      id[1], id[3] = 'anonymous_id', flat[i + 3]
    end
  end
  ids[#ids + 1] = id
end
if #ids == 0 then return {'unidentified', '', {}, {}, ''} end
for _, id in ipairs(ids) do
  local at = redis.call('GET', prefix .. ':erased:' .. id[3])
  if at and tonumber(at) >= received then return {'erased', '', {}, {}, ''} end
end
local owners, order = {}, {}
for _, id in ipairs(ids) do
  id[4] = prefix .. ':identity:' .. id[1] .. ':' .. id[2]
  local pid = redis.call('GET', id[4])
  id[5] = pid
  if pid and not owners[pid] then owners[pid] = true; order[#order + 1] = pid end
end
-- A user id seen for the first time founds its own profile, which absorbs the
-- anonymous ones it is linked to (so a logged-in customer is known by their user id).
local new_user = false
for _, id in ipairs(ids) do
  if fkind == 'user_id' and id[1] == fkind and id[2] == fvalue and not id[5]
      and not owners[newpid] then
    owners[newpid] = true
    new_user = true
    order[#order + 1] = newpid
  end
end
local survivor = newpid
local merged, refused = {}, {}
if #order > 0 then
  local ranks = {}
  for _, pid in ipairs(order) do ranks[pid] = rank(pid) end
  table.sort(order, function(a, b)
    if ranks[a] ~= ranks[b] then return ranks[a] < ranks[b] end
    return a < b
  end)
  survivor = order[1]
  if #order > 1 then
    local blocked = false
    for _, id in ipairs(ids) do
      if id[1] ~= 'user_id' then
        local joins = redis.call('GET', prefix .. ':identity-joins:' .. id[3])
        if tonumber(joins or '0') >= limit then blocked = true end
      end
    end
    if blocked then
      -- Refused: the touchpoint stays with the profile of its own identifier.
      survivor = newpid
      for _, id in ipairs(ids) do
        if id[1] == fkind and id[2] == fvalue and id[5] then survivor = id[5] end
      end
      for _, pid in ipairs(order) do
        if pid ~= survivor then refused[#refused + 1] = pid end
      end
    else
      for i = 2, #order do
        local gone = order[i]
        local members = redis.call('SMEMBERS', prefix .. ':profile-identities:' .. gone)
        for _, key in ipairs(members) do
          redis.call('SET', key, survivor)
          redis.call('SADD', prefix .. ':profile-identities:' .. survivor, key)
        end
        redis.call('DEL', prefix .. ':profile-identities:' .. gone)
        redis.call('SET', prefix .. ':merged-into:' .. gone, survivor)
        redis.call('HSET', prefix .. ':identity:outbox', gone,
                   cjson.encode({survivor, message_id}))
        merged[#merged + 1] = gone
      end
    end
    if #merged > 0 then
      for _, id in ipairs(ids) do
        if id[1] ~= 'user_id' then
          redis.call('INCRBY', prefix .. ':identity-joins:' .. id[3], #merged)
        end
      end
    end
  end
end
local members = prefix .. ':profile-identities:' .. survivor
for _, id in ipairs(ids) do
  if not id[5] then
    -- Past the cap a profile links no new identifier (but its founder), so no
    -- touchpoint stream can make one person's identity set grow without bound.
    local founding = id[1] == fkind and id[2] == fvalue
    if founding or redis.call('SCARD', members) < cap then
      redis.call('SET', id[4], survivor)
      redis.call('SADD', members, id[4])
    end
  end
end
-- The touchpoint goes to the survivor, unless its founder's own profile was merged
-- away and not yet handed over: that profile keeps folding until its hand-over, which
-- carries everything (a resend of what it folded included) ahead of anything sent to
-- the survivor after it. Followed along a chain of merges, hand-over by hand-over.
local route, hops = survivor, 0
if newpid ~= survivor then
  local pid = newpid
  while hops < 16 do
    local into = redis.call('GET', prefix .. ':merged-into:' .. pid)
    if not into then break end
    if redis.call('EXISTS', prefix .. ':handed-over:' .. pid) == 0 then route = pid; break end
    pid, hops = into, hops + 1
  end
end
return {'ok', survivor, merged, refused, route}
end
local out = {}
for i, req in ipairs(cjson.decode(ARGV[4])) do
  -- A record resolved before a crash gets the same answer when it is redelivered.
  local log, pos = req[7], req[8]
  local logged = log ~= '' and redis.call('HGET', log, pos)
  if logged then
    out[i] = {'ok', logged, {}, {}, logged}
  else
    out[i] = resolve(req[1], req[2], req[3], req[4], req[5], req[6])
    if log ~= '' and out[i][1] == 'ok' then redis.call('HSET', log, pos, out[i][5]) end
  end
end
return cjson.encode(out)
"""

# ARGV: prefix, profile id, erased-at ms, the profile id's fingerprint. Returns the
# identity keys that pointed at it.
_ERASE = """
local prefix, pid, at, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local members = redis.call('SMEMBERS', prefix .. ':profile-identities:' .. pid)
for _, key in ipairs(members) do
  if redis.call('GET', key) == pid then redis.call('DEL', key) end
end
redis.call('DEL', prefix .. ':profile-identities:' .. pid)
redis.call('SET', prefix .. ':erased-profile:' .. fp, at)
return members
"""


def _ids(value: object) -> list[str]:
    """Lua's cjson writes an empty table as ``{}``: read it as an empty list."""
    return list(value) if isinstance(value, list) else []


@dataclass(frozen=True)
class Resolution:
    profile_id: str | None
    """The person's profile (None when the touchpoint must be dropped: ``status`` says
    why)."""
    refused: list[str] = field(default_factory=list)
    status: str = "ok"
    route: str | None = None
    """Where the touchpoint is folded: the person's profile, or a profile of theirs
    merged away but not yet handed over (it keeps folding until then)."""
    """``ok``, ``erased`` (its person was erased after it was received) or
    ``unidentified`` (no identifier that may identify anyone)."""


@dataclass(frozen=True)
class ResolveRequest:
    founder: Identity | None
    """The identifier a new person's profile is founded by (:func:`identities.founder`)."""
    identities: list[Identity]
    received_ms: int
    message_id: str
    log_key: str = ""
    """Where the answer is logged until the record's batch is committed ("" = not)."""
    offset: int = -1


def identity_of_key(key: str) -> Identity:
    """The identifier an identity key names (its kind never holds a colon)."""
    kind, _, value = key.removeprefix(f"{keys.tagged(keys.IDS)}:identity:").partition(":")
    return Identity(type=kind, value=value)


class IdentityStore:
    def __init__(self, redis: Redis, fingerprints: Fingerprints, *, join_limit: int,
                 max_identities: int = MAX_IDENTITIES) -> None:
        self._redis = redis
        self._fp = fingerprints
        self._resolve = redis.register_script(_RESOLVE)
        self._erase = redis.register_script(_ERASE)
        self._limit = join_limit
        self._cap = max_identities

    def fingerprint(self, ident: Identity) -> str:
        return self._fp.of(ident.type, ident.value)

    def _encoded(self, ident: Identity) -> tuple[str, str, str, str]:
        if ident.type == PREVIOUS:  # which kind it is, the script decides
            return (ident.type, ident.value, self._fp.of("user_id", ident.value),
                    self._fp.of("anonymous_id", ident.value))
        return ident.type, ident.value, self.fingerprint(ident), ""

    async def resolve_many(self, requests: list[ResolveRequest]) -> list[Resolution]:
        """Resolve touchpoints in order.

        Each answer is logged under its record's position until the batch is committed
        (:meth:`ProfileStore.commit` forgets it), so a record redelivered after a crash
        resolves to the very profile its first publication went to, even if merges
        happened in between: stage 2 then recognises it as a resend.
        """
        if not requests:
            return []
        batch = []
        for r in requests:
            founder = r.founder
            batch.append([
                profile_id_for(founder.type, founder.value) if founder else "",
                founder.type if founder else "", founder.value if founder else "",
                r.received_ms, r.message_id,
                [part for ident in (r.identities if founder else [])
                 for part in self._encoded(ident)],
                r.log_key, str(r.offset)])
        raw = await self._resolve(keys=[keys.merge_outbox()],  # routes it to {ids}
                                   args=[keys.tagged(keys.IDS), self._limit, self._cap,
                                                 orjson.dumps(batch)])
        out = []
        for status, pid, _merged, refused, route in orjson.loads(raw):
            if status != "ok":
                out.append(Resolution(None, status=status))
                continue
            out.append(Resolution(pid, _ids(refused), route=route))
        return out

    async def outbox(self) -> dict[str, tuple[str, str]]:
        """Decided merges not yet published: absorbed id -> (survivor id, message id)."""
        raw = await self._redis.hgetall(keys.merge_outbox())
        out = {}
        for gone, value in raw.items():
            survivor, message_id = orjson.loads(value)
            out[gone.decode()] = (survivor, message_id)
        return out

    async def clear_outbox(self, absorbed: list[str]) -> None:
        if absorbed:
            await self._redis.hdel(keys.merge_outbox(), *absorbed)

    async def erase(self, profile_id: str, identities: list[Identity],
                    at_ms: int) -> list[Identity]:
        """Forget a person's identifiers and remember (by keyed fingerprint only) that
        they were erased; returns every identifier that was the person's."""
        members = await self._erase(keys=[keys.merge_outbox()], args=[
            keys.tagged(keys.IDS), profile_id, at_ms, self._fp.profile(profile_id)])
        everyone = [*identities]
        everyone += [i for i in map(identity_of_key, (m.decode() for m in members))
                     if i not in everyone]
        await self.remember_erasures({self.fingerprint(i): at_ms for i in everyone})
        return everyone

    async def remember_erasures(self, erased: dict[str, int]) -> None:
        if erased:
            await self._redis.mset({keys.erased_identity(fp): at for fp, at in erased.items()})

    async def mark_handed_over(self, handed: dict[str, str]) -> None:
        """Copy stored hand-overs (merged-away profile -> survivor) beside the graph."""
        await self._redis.mset({keys.handed_over(keys.IDS, pid): into
                                for pid, into in handed.items()})

    async def erased_profiles(self, profile_ids: list[str]) -> dict[str, int]:
        """Erased profile ids among these, with the time (ms) they were erased."""
        if not profile_ids:
            return {}
        raws = await self._redis.mget([keys.erased_profile(self._fp.profile(p))
                                       for p in profile_ids])
        return {p: int(raw) for p, raw in zip(profile_ids, raws, strict=True) if raw is not None}
