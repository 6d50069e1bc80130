"""Identity resolution in Redis: which profile a touchpoint's identifiers belong
to, merging profiles found to be one person, within the over-merge guard.

One script call per touchpoint decides atomically, so resolution is correct
whichever partition or worker the touchpoint came through. Decided merges go
into an outbox that the resolver drains onto Kafka, so a crash between the
decision and the publish never loses a merge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.profiles import Identity

# ARGV: prefix, join limit, then a JSON list of [new profile id, received ms, message id,
# [type, value, type, value, ...], resolution log key, record offset] for every
# touchpoint of a batch, resolved in order.
# Returns a JSON list of [status, profile id, [merged ids], [refused ids]].
_RESOLVE = """
local prefix, limit = ARGV[1], tonumber(ARGV[2])
local function resolve(newpid, received, message_id, flat)
local ids = {}
for i = 1, #flat, 2 do ids[#ids + 1] = {flat[i], flat[i + 1]} end
for _, id in ipairs(ids) do
  local at = redis.call('GET', prefix .. ':erased:' .. redis.sha1hex(id[1] .. ':' .. id[2]))
  if at and tonumber(at) >= received then return {'erased', '', {}, {}} end
end
local owners, order = {}, {}
for _, id in ipairs(ids) do
  id[3] = prefix .. ':identity:' .. id[1] .. ':' .. id[2]
  local pid = redis.call('GET', id[3])
  id[4] = pid
  if pid and not owners[pid] then owners[pid] = true; order[#order + 1] = pid end
end
local function rank(pid)
  if redis.call('GET', prefix .. ':identity:user_id:' .. pid) == pid then return 0 end
  return 1
end
-- A user id seen for the first time founds its own profile, which absorbs the
-- anonymous ones it is linked to (so a logged-in customer is known by their user id).
local new_user = false
for _, id in ipairs(ids) do
  if id[1] == 'user_id' and id[2] == newpid and not id[4] and not owners[newpid] then
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
  if new_user then ranks[newpid] = 0 end
  table.sort(order, function(a, b)
    if ranks[a] ~= ranks[b] then return ranks[a] < ranks[b] end
    return a < b
  end)
  survivor = order[1]
  if #order > 1 then
    local blocked = false
    for _, id in ipairs(ids) do
      if id[1] ~= 'user_id' then
        local joins = redis.call('GET', prefix .. ':identity-joins:' .. id[1] .. ':' .. id[2])
        if tonumber(joins or '0') >= limit then blocked = true end
      end
    end
    if blocked then
      -- Refused: the touchpoint stays with the profile of its own identifier.
      survivor = newpid
      for _, id in ipairs(ids) do
        if id[2] == newpid and (id[1] == 'user_id' or id[1] == 'anonymous_id') and id[4] then
          survivor = id[4]
        end
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
        redis.call('HSET', prefix .. ':identity:outbox', gone, survivor .. '|' .. message_id)
        merged[#merged + 1] = gone
      end
    end
    if #merged > 0 then
      for _, id in ipairs(ids) do
        if id[1] ~= 'user_id' then
          redis.call('INCRBY', prefix .. ':identity-joins:' .. id[1] .. ':' .. id[2], #merged)
        end
      end
    end
  end
end
for _, id in ipairs(ids) do
  if not id[4] then
    redis.call('SET', id[3], survivor)
    redis.call('SADD', prefix .. ':profile-identities:' .. survivor, id[3])
  end
end
return {'ok', survivor, merged, refused}
end
local out = {}
for i, req in ipairs(cjson.decode(ARGV[3])) do
  -- A record resolved before a crash gets the same answer when it is redelivered.
  local log, pos = req[5], req[6]
  local logged = log ~= '' and redis.call('HGET', log, pos)
  if logged then
    out[i] = {'ok', logged, {}, {}}
  else
    out[i] = resolve(req[1], req[2], req[3], req[4])
    if log ~= '' and out[i][1] == 'ok' then redis.call('HSET', log, pos, out[i][2]) end
  end
end
return cjson.encode(out)
"""

# ARGV: prefix, profile id, erased-at ms. Returns the identity keys that pointed at it.
_ERASE = """
local prefix, pid, at = ARGV[1], ARGV[2], ARGV[3]
local members = redis.call('SMEMBERS', prefix .. ':profile-identities:' .. pid)
for _, key in ipairs(members) do
  if redis.call('GET', key) == pid then redis.call('DEL', key) end
end
redis.call('DEL', prefix .. ':profile-identities:' .. pid)
redis.call('SET', prefix .. ':erased-profile:' .. pid, at)
return members
"""


def _ids(value: object) -> list[str]:
    """Lua's cjson writes an empty table as ``{}``: read it as an empty list."""
    return list(value) if isinstance(value, list) else []


def identifier_fingerprint(kind: str, value: str) -> str:
    """What the erasure log keeps of an identifier: no personal data, just its hash."""
    return hashlib.sha1(f"{kind}:{value}".encode()).hexdigest()


@dataclass(frozen=True)
class Resolution:
    profile_id: str | None
    """None when the touchpoint belongs to an erased person and must be dropped."""
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ResolveRequest:
    new_id: str
    """The profile id a new person gets (the touchpoint's customer key)."""
    identities: list[Identity]
    received_ms: int
    message_id: str
    log_key: str = ""
    """Where the answer is logged until the record's batch is committed ("" = not)."""
    offset: int = -1


class IdentityStore:
    def __init__(self, redis: Redis, *, join_limit: int) -> None:
        self._redis = redis
        self._resolve = redis.register_script(_RESOLVE)
        self._erase = redis.register_script(_ERASE)
        self._limit = join_limit

    async def resolve_many(self, requests: list[ResolveRequest]) -> list[Resolution]:
        """Resolve touchpoints in order.

        Each answer is logged under its record's position until the batch is committed
        (:meth:`ProfileStore.commit` forgets it), so a record redelivered after a crash
        resolves to the very profile its first publication went to, even if merges
        happened in between: stage 2 then recognises it as a resend.
        """
        if not requests:
            return []
        batch = [[r.new_id, r.received_ms, r.message_id,
                  [part for ident in r.identities for part in (ident.type, ident.value)],
                  r.log_key, str(r.offset)] for r in requests]
        raw = await self._resolve(keys=[], args=[keys.PREFIX, self._limit, orjson.dumps(batch)])
        out = []
        for status, pid, _merged, refused in orjson.loads(raw):
            if status == "erased":
                out.append(Resolution(None))
                continue
            out.append(Resolution(pid, _ids(refused)))
        return out

    async def outbox(self) -> dict[str, tuple[str, str]]:
        """Decided merges not yet published: absorbed id -> (survivor id, message id)."""
        raw = await self._redis.hgetall(keys.merge_outbox())
        out = {}
        for gone, value in raw.items():
            survivor, _, message_id = value.decode().partition("|")
            out[gone.decode()] = (survivor, message_id)
        return out

    async def clear_outbox(self, absorbed: list[str]) -> None:
        if absorbed:
            await self._redis.hdel(keys.merge_outbox(), *absorbed)

    async def erase(self, profile_id: str, identities: list[Identity], at_ms: int) -> None:
        """Forget a person's identifiers and remember that they were erased."""
        await self._erase(keys=[], args=[keys.PREFIX, profile_id, at_ms])
        await self.remember_erasures(
            {identifier_fingerprint(i.type, i.value): at_ms for i in identities})

    async def remember_erasures(self, erased: dict[str, int]) -> None:
        if erased:
            await self._redis.mset({keys.erased_identity(fp): at for fp, at in erased.items()})

    async def erased_profiles(self, profile_ids: list[str]) -> dict[str, int]:
        """Erased profile ids among these, with the time (ms) they were erased."""
        if not profile_ids:
            return {}
        raws = await self._redis.mget([keys.erased_profile(p) for p in profile_ids])
        return {p: int(raw) for p, raw in zip(profile_ids, raws, strict=True) if raw is not None}
