"""Identity resolution against the real Redis, checked by properties: random
identify/track/alias streams whose ids come from a small adversarial pool
(separators, placeholders, blanks, look-alikes, one string used as different kinds
of identifier by different people) end in exactly the profiles a reference
union-find of what really links says, and the over-merge guard refuses exactly the
links a reference model of its counters says.

The pools come with their normal forms written out by hand, so which identifiers a
touchpoint carries is checked independently of :mod:`rapport.shared.identifiers`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from rapport.profile.identities import MAX_IDENTITIES, founder, identities_of, profile_id_for
from rapport.profile.identity import IdentityStore, Resolution, ResolveRequest
from rapport.shared import keys
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.identifiers import PLACEHOLDERS
from rapport.shared.privacy import Fingerprints
from rapport.shared.profiles import Identity

CLUSTER = True  # run on the single Redis and on the local Redis Cluster

DB = 11
SECRET = "identity-property-test-secret"
LARGE = 10**6
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RECEIVED_MS = int(T0.timestamp() * 1000)
FW_ALICE = "\uff41\uff4c\uff49\uff43\uff45"  # "alice" in fullwidth letters: NFKC -> "alice"
CYR_ALICE = "\u0430lice"  # a Cyrillic a, then "lice": looks like "alice", is not
FW_PHONE = "+\uff11 \uff15\uff15\uff15 \uff10\uff11\uff10\uff10"  # fullwidth "+1 555 0100"

# Raw id -> its normal form as an id (user, anonymous, previous or loyalty id), or None
# when it must never link anyone. Written out by hand: the oracle of identities_of.
IDS: dict[str, str | None] = {
    "alice": "alice",
    FW_ALICE: "alice",           # fullwidth: NFKC makes it "alice", the same id
    " alice ": "alice",
    CYR_ALICE: CYR_ALICE,        # Cyrillic a: another person
    "\u200balice": None,         # zero-width space: refused, never "alice"
    "bob": "bob",
    "x|alice": "x|alice",
    "x|bob": "x|bob",
    "a:b": "a:b",
    "a/b": "a/b",
    "~a:foo": "~a:foo",          # looks like the profile id anonymous "foo" founds
    "foo": "foo",
    "~u:x": "~u:x",
    "42": "42",
    "": None,
    "   ": None,
    "n/a": None,
    "N/A ": None,
    "unknown": None,
    "null": None,
    "guest": None,
    "x": None,
}
EMAILS: dict[object, str | None] = {
    "alice@example.com": "alice@example.com",
    "Alice@Example.COM": "alice@example.com",
    FW_ALICE + "@example.com": "alice@example.com",
    CYR_ALICE + "@example.com": None,   # Cyrillic: not an email address at all
    "bob@example.com": "bob@example.com",
    "x|alice@example.com": "x|alice@example.com",
    "alice": None,
    "n/a": None,
    "unknown": None,
    "test@test.com": None,
    "": None,
    42: None,
}
PHONES: dict[object, str | None] = {
    "+1 555 0100": "+15550100",
    "1-555-0100": "+15550100",
    FW_PHONE: "+15550100",  # fullwidth digits
    "(555) 0100": "+5550100",
    "555 0199": "+5550199",
    "n/a": None,
    "123": None,
    "0000000": None,
    "call 5550100": None,
    "": None,
}
KINDS = ("user_id", "anonymous_id", "email", "phone", "loyalty_id")

# Every identifier the pools can produce: far below the identity cap, so the cap never
# decides anything here (it is not modelled).
_ALL = ({(k, v) for k in ("user_id", "anonymous_id", "loyalty_id") for v in IDS.values() if v}
        | {("email", v) for v in EMAILS.values() if v}
        | {("phone", v) for v in PHONES.values() if v})
assert len(_ALL) < MAX_IDENTITIES


def expected_identities(tp: Touchpoint) -> set[Identity]:
    """What the touchpoint carries by the hand-written normal forms."""
    out: set[tuple[str, str | None]] = {("user_id", IDS.get(tp.user_id or "")),
                                        ("anonymous_id", IDS.get(tp.anonymous_id or ""))}
    if tp.previous_id:  # an alias' old id: one identifier, its kind decided on resolution
        out.add(("previous_id", IDS[tp.previous_id]))
    if "email" in tp.traits:
        out.add(("email", EMAILS[tp.traits["email"]]))
    if "phone" in tp.traits:
        out.add(("phone", PHONES[tp.traits["phone"]]))
    if "loyalty_id" in tp.traits:
        out.add(("loyalty_id", IDS[tp.traits["loyalty_id"]]))
    return {Identity(type=k, value=v) for k, v in out if v is not None}


def check_identifiers(tp: Touchpoint) -> list[Identity]:
    """identities_of(tp), checked: normalised, never a placeholder, no repeats, the
    founder first, and exactly the identifiers the hand-written table says."""
    ids = identities_of(tp)
    assert len(ids) == len(set(ids)), ids
    for ident in ids:
        v = ident.value
        assert ident.type in (*KINDS, "previous_id")
        assert v and v == v.strip() and unicodedata.is_normalized("NFKC", v), ident
        assert v.casefold() not in PLACEHOLDERS, ident
        assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in v), ident
        if ident.type == "email":
            assert v == v.casefold() and v.count("@") == 1, ident
        if ident.type == "phone":
            assert v[0] == "+" and v[1:].isascii() and v[1:].isdigit(), ident
            assert 7 <= len(v) - 1 <= 15, ident
    assert set(ids) == expected_identities(tp), tp
    f = founder(tp)
    if f is not None:
        assert f.type in ("user_id", "anonymous_id") and ids[0] == f
    return ids


# --- touchpoints ----------------------------------------------------------------------

def touchpoint(i: int, mtype: MessageType, user: str | None = None, anon: str | None = None,
               previous: str | None = None, **traits: object) -> Touchpoint:
    return Touchpoint.model_construct(
        message_id=f"m{i}", source="prop", type=mtype, user_id=user, anonymous_id=anon,
        previous_id=previous, channel=Channel.WEB, timestamp=T0, received_at=T0,
        traits={k: v for k, v in traits.items() if v is not None})


def _maybe(pool: object) -> st.SearchStrategy:
    return st.one_of(st.none(), st.sampled_from(sorted(pool, key=repr)))


@st.composite
def touchpoints(draw: st.DrawFn, i: int) -> Touchpoint:
    mtype = draw(st.sampled_from([MessageType.IDENTIFY, MessageType.TRACK, MessageType.ALIAS]))
    traits = {}
    if mtype is not MessageType.ALIAS or draw(st.booleans()):
        traits = draw(st.fixed_dictionaries({}, optional={
            "email": st.sampled_from(sorted(EMAILS, key=repr)),
            "phone": st.sampled_from(sorted(PHONES, key=repr)),
            "loyalty_id": st.sampled_from(sorted(IDS))}))
    return touchpoint(i, mtype, draw(_maybe(IDS)), draw(_maybe(IDS)),
                      draw(_maybe(IDS)) if mtype is MessageType.ALIAS else None, **traits)


@st.composite
def streams(draw: st.DrawFn, max_size: int = 25) -> list[list[Touchpoint]]:
    """Touchpoints cut into the batches they are resolved in (one at a time or not)."""
    n = draw(st.integers(1, max_size))
    tps = [draw(touchpoints(i)) for i in range(n)]
    if draw(st.booleans()):
        return [[t] for t in tps]
    batches, at = [], 0
    while at < n:
        size = draw(st.integers(1, 6))
        batches.append(tps[at:at + size])
        at += size
    return batches


def describe(batches: list[list[Touchpoint]]) -> str:
    """The stream as a failing example shows it."""
    def one(t: Touchpoint) -> str:
        fields = {"user": t.user_id, "anon": t.anonymous_id, "prev": t.previous_id, **t.traits}
        args = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
        return f"{t.type.value}({args})"
    return "\n".join(" ; ".join(map(one, b)) for b in batches)


def request(tp: Touchpoint) -> ResolveRequest:
    return ResolveRequest(founder(tp), identities_of(tp), RECEIVED_MS, tp.message_id)


# --- reference models -----------------------------------------------------------------

class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Identity, Identity] = {}

    def add(self, x: Identity) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: Identity) -> Identity:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Identity, b: Identity) -> Identity:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
        return ra


def user_founded(pid: str) -> bool:
    return not pid.startswith("~a:")


# Decided (test_a_touchpoint_whose_ids_are_placeholders_links_nothing): a touchpoint
# whose user and anonymous ids are both absent or placeholders resolves "unidentified"
# and links nothing, even when it carries an email, phone, loyalty id or previous id.
FOUNDERLESS_TOUCHPOINTS_LINK = False


@dataclass
class Reference:
    """What really links (a union-find over normalised identifiers) and, per linked
    set, the profile id the resolver answered for it (any of the set's live profiles
    may survive a merge, but a user-id-founded one when there is one)."""

    uf: UnionFind = field(default_factory=UnionFind)
    pid: dict[Identity, str] = field(default_factory=dict)  # root -> its profile id
    absorbed: dict[str, str] = field(default_factory=dict)  # profile id -> merged into
    resolved: list[list[Identity]] = field(default_factory=list)
    """Each touchpoint's identifiers, an alias' old id as the kind it was read as."""

    def links(self, tp: Touchpoint, ids: list[Identity]) -> bool:
        return bool(ids) and (founder(tp) is not None or FOUNDERLESS_TOUCHPOINTS_LINK)

    def kind_of(self, ident: Identity) -> Identity:
        """An alias' old id is the user id of that value when one is linked already,
        else the anonymous id (never both)."""
        if ident.type != "previous_id":
            return ident
        user = Identity(type="user_id", value=ident.value)
        return user if user in self.uf.parent else Identity(type="anonymous_id",
                                                            value=ident.value)

    def apply(self, tp: Touchpoint, res: Resolution) -> None:
        ids = list(dict.fromkeys(self.kind_of(i) for i in check_identifiers(tp)))
        self.resolved.append(ids)
        if not self.links(tp, ids):
            assert (res.status, res.profile_id, res.refused) == ("unidentified", None, []), tp
            return
        assert res.status == "ok" and res.refused == [], (tp, res)
        f = founder(tp)
        assert f is not None
        live = {self.pid[self.uf.find(i)] for i in ids if i in self.uf.parent}
        if f.type == "user_id" and f not in self.uf.parent:
            live.add(profile_id_for(f.type, f.value))  # a new user id founds its own
        if not live:
            live.add(profile_id_for(f.type, f.value))
        survivor = res.profile_id
        assert survivor in live, (tp, res, live)
        if any(map(user_founded, live)):
            assert user_founded(survivor), (tp, res, live)
        for gone in live - {survivor}:
            self.absorbed[gone] = survivor
        for i in ids:
            self.uf.add(i)
        root = ids[0]
        for i in ids[1:]:
            root = self.uf.union(root, i)
        self.pid[self.uf.find(root)] = survivor


async def resolve(store: IdentityStore, batch: list[Touchpoint]) -> list[Resolution]:
    return await store.resolve_many([request(t) for t in batch])


async def mapping(redis: Redis, ids: list[Identity]) -> list[str | None]:
    if not ids:
        return []
    raws = await redis.mget([keys.identity(i.type, i.value) for i in ids])
    return [None if r is None else r.decode() for r in raws]


# --- the properties -------------------------------------------------------------------

@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(batches=streams())
async def test_resolution_matches_what_really_links(redis: Redis, batches) -> None:
    note(describe(batches))
    await redis.flushdb()
    store = IdentityStore(redis, Fingerprints(SECRET), join_limit=LARGE)
    ref = Reference()
    stream: list[Touchpoint] = []
    for batch in batches:
        answers = await resolve(store, batch)
        assert len(answers) == len(batch)
        for tp, res in zip(batch, answers, strict=True):
            ref.apply(tp, res)
        stream += batch

    # Every identifier ever linked points at its linked set's profile, and at nothing
    # else; each profile's identity set is exactly its linked set.
    linked = list(ref.uf.parent)
    now = dict(zip(linked, await mapping(redis, linked), strict=True))
    members: dict[str, set[str]] = {}
    for ident in linked:
        expected = ref.pid[ref.uf.find(ident)]
        assert now[ident] == expected, (ident, now[ident], expected)
        members.setdefault(expected, set()).add(keys.identity(ident.type, ident.value))
    for pid, ks in members.items():
        stored = {k.decode() for k in await redis.smembers(keys.profile_identities(pid))}
        assert stored == ks, pid
    # Nothing else was linked (no placeholder, no stray key).
    stored_keys = {k.decode() async for k in redis.scan_iter(f"{keys.tagged(keys.IDS)}:identity:*")}
    assert stored_keys - {keys.merge_outbox()} == {
        keys.identity(i.type, i.value) for i in linked}
    # Every absorbed profile's merge marker leads to the profile it ended in.
    for gone in ref.absorbed:
        at, hops = gone, 0
        while at in ref.absorbed:
            raw = await redis.get(keys.merged_into(at))
            assert raw is not None and raw.decode() == ref.absorbed[at], at
            at, hops = raw.decode(), hops + 1
            assert hops <= len(ref.absorbed)
        assert at in members, (gone, at)

    # (a) two touchpoints end in one profile iff their identifiers are connected.
    final: list[str | None] = []
    for tp, ids in zip(stream, ref.resolved, strict=True):
        if not ref.links(tp, ids):
            final.append(None)
            continue
        pids = {now[i] for i in ids}
        assert len(pids) == 1, (tp, pids)  # all of a touchpoint's identifiers agree
        final.append(pids.pop())
    for i, a in enumerate(stream):
        for j in range(i + 1, len(stream)):
            if final[i] is None or final[j] is None:
                continue
            connected = ref.uf.find(ref.resolved[i][0]) == ref.uf.find(ref.resolved[j][0])
            assert (final[i] == final[j]) == connected, (a, stream[j], final[i], final[j])

    # (b) profile ids never collide across kinds: anonymous "v" and user "v" (or any two
    # identifiers not linked) are different profiles, and the profile of a linked set
    # is one founded by a founder of that set.
    for ident in linked:
        if ident.type == "anonymous_id":
            twin = Identity(type="user_id", value=ident.value)
            if twin in ref.uf.parent and ref.uf.find(twin) != ref.uf.find(ident):
                assert now[twin] != now[ident], ident
    roots = {ref.uf.find(i) for i in linked}
    assert len({ref.pid[r] for r in roots}) == len(roots)
    founded: dict[Identity, set[str]] = {}
    for tp in stream:
        f = founder(tp)
        if f is not None:
            founded.setdefault(ref.uf.find(f), set()).add(profile_id_for(f.type, f.value))
    for r in roots:
        assert ref.pid[r] in founded[r], (r, ref.pid[r], founded[r])

    # (c) is checked as each answer arrives (Reference.apply): no linkable identifier,
    # status "unidentified".


async def test_look_alikes_link_only_when_normalisation_makes_them_one(redis: Redis) -> None:
    store = IdentityStore(redis, Fingerprints(SECRET), join_limit=LARGE)
    first, full, cyrillic, zero_width = await resolve(store, [
        touchpoint(0, MessageType.IDENTIFY, "alice", email="Alice@Example.COM"),
        touchpoint(1, MessageType.TRACK, FW_ALICE),
        touchpoint(2, MessageType.TRACK, CYR_ALICE, email=CYR_ALICE + "@example.com"),
        touchpoint(3, MessageType.TRACK, "\u200balice", anon="~a:foo"),
    ])
    assert first.profile_id == full.profile_id == "alice"
    assert cyrillic.profile_id == CYR_ALICE != "alice"
    assert zero_width.profile_id == "~a:~a:foo"
    case, = await resolve(store, [touchpoint(4, MessageType.TRACK, anon="foo",
                                             email="ALICE@example.com")])
    assert case.profile_id == "alice"


async def test_an_anonymous_id_equal_to_a_user_id_is_another_person(redis: Redis) -> None:
    store = IdentityStore(redis, Fingerprints(SECRET), join_limit=LARGE)
    answers = await resolve(store, [
        touchpoint(0, MessageType.IDENTIFY, "v"),
        touchpoint(1, MessageType.TRACK, anon="v"),
        touchpoint(2, MessageType.TRACK, "~a:v"),
        touchpoint(3, MessageType.TRACK, anon="~a:v"),
        touchpoint(4, MessageType.IDENTIFY, "w", loyalty_id="v"),
    ])
    assert [r.profile_id for r in answers] == ["v", "~a:v", "~u:~a:v", "~a:~a:v", "w"]


async def test_a_touchpoint_whose_ids_are_placeholders_links_nothing(redis: Redis) -> None:
    """Decided: a touchpoint whose user and anonymous ids identify nobody links nothing,
    even with an email (ingest rejects such messages; a record that reaches the stream
    anyway is set aside on the dead-letter topic): an email alone must not attach
    whatever a "guest" session did to a customer."""
    store = IdentityStore(redis, Fingerprints(SECRET), join_limit=LARGE)
    known, guest = await resolve(store, [
        touchpoint(0, MessageType.IDENTIFY, "alice", email="alice@example.com"),
        touchpoint(1, MessageType.IDENTIFY, "guest", email="alice@example.com"),
    ])
    assert known.profile_id == "alice"
    assert (guest.status, guest.profile_id) == ("unidentified", None)



async def test_an_alias_does_not_fuse_a_user_id_with_its_anonymous_namesake(
        redis: Redis) -> None:
    store = IdentityStore(redis, Fingerprints(SECRET), join_limit=LARGE)
    dave, bob, carol = await resolve(store, [
        touchpoint(0, MessageType.IDENTIFY, "v", email="dave@example.com"),
        touchpoint(1, MessageType.TRACK, anon="v", email="bob@example.com"),
        touchpoint(2, MessageType.ALIAS, "carol", previous="v"),
    ])
    assert (dave.profile_id, bob.profile_id) == ("v", "~a:v")
    ends = await mapping(redis, [Identity(type="email", value="dave@example.com"),
                                 Identity(type="email", value="bob@example.com")])
    assert ends[0] != ends[1], (carol, ends)

# --- the over-merge guard -------------------------------------------------------------

LIMIT = 2


async def test_a_shared_email_joins_at_most_the_limit(redis: Redis) -> None:
    store = IdentityStore(redis, Fingerprints(SECRET), join_limit=LIMIT)
    family = ["fam@example.com", "FAM@example.com", "Fam@Example.com"]
    answers = await resolve(store, [
        touchpoint(i, MessageType.IDENTIFY, f"m{i}", email=family[i % 3]) for i in range(6)])
    assert [r.profile_id for r in answers] == ["m0", "m0", "m0", "m3", "m4", "m5"]
    assert [r.refused for r in answers] == [[], [], [], ["m0"], ["m0"], ["m0"]]
    assert await mapping(redis, [Identity(type="user_id", value=f"m{i}") for i in range(6)]) \
        == ["m0", "m0", "m0", "m3", "m4", "m5"]
    assert await mapping(redis, [Identity(type="email", value="fam@example.com")]) == ["m0"]
    # Refused ones stay apart later too, whichever way they come back.
    again, = await resolve(store, [touchpoint(9, MessageType.TRACK, "m4", anon="a9",
                                              email="fam@example.com")])
    assert (again.profile_id, again.refused) == ("m4", ["m0"])


@dataclass
class Guarded:
    """The resolver's rules with the over-merge guard, as a direct mapping."""

    fp: Fingerprints
    limit: int
    owner: dict[Identity, str] = field(default_factory=dict)
    joins: dict[Identity, int] = field(default_factory=dict)

    def apply(self, tp: Touchpoint, res: Resolution) -> None:
        ids, f = identities_of(tp), founder(tp)
        if f is None:
            assert res.status == "unidentified"
            return
        newpid = profile_id_for(f.type, f.value)
        live = {self.owner[i] for i in ids if i in self.owner}
        if f.type == "user_id" and f not in self.owner:
            live.add(newpid)
        if len(live) > 1 and any(self.joins.get(i, 0) >= self.limit
                                 for i in ids if i.type != "user_id"):
            survivor = self.owner.get(f, newpid)
            assert res.profile_id == survivor, (tp, res, live)
            assert sorted(res.refused) == sorted(live - {survivor}), (tp, res, live)
        else:
            assert res.refused == [], (tp, res)
            survivor = res.profile_id
            assert survivor in (live or {newpid}), (tp, res, live)
            if any(map(user_founded, live)):
                assert user_founded(survivor)
            gone = live - {survivor}
            for i, pid in self.owner.items():
                if pid in gone:
                    self.owner[i] = survivor
            if gone:
                for i in ids:
                    if i.type != "user_id":
                        self.joins[i] = self.joins.get(i, 0) + len(gone)
        for i in ids:
            self.owner.setdefault(i, survivor)


@st.composite
def family_streams(draw: st.DrawFn) -> list[list[Touchpoint]]:
    n = draw(st.integers(1, 20))
    tps = []
    for i in range(n):
        traits = draw(st.fixed_dictionaries({}, optional={
            "email": st.sampled_from(["fam@example.com", "FAM@example.com",
                                      "solo@example.com"]),
            "phone": st.sampled_from(["+1 555 0100", "555 0199"]),
            "loyalty_id": st.sampled_from(["card-1", "m1"])}))
        tps.append(touchpoint(i, MessageType.IDENTIFY,
                              draw(st.one_of(st.none(), st.sampled_from(
                                  [f"m{k}" for k in range(6)]))),
                              draw(st.one_of(st.none(), st.sampled_from(["a0", "a1", "m1"]))),
                              **traits))
    cut = draw(st.integers(1, 5))
    return [tps[at:at + cut] for at in range(0, n, cut)]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(batches=family_streams())
async def test_the_guard_refuses_exactly_links_through_saturated_values(
        redis: Redis, batches) -> None:
    note(describe(batches))
    await redis.flushdb()
    fp = Fingerprints(SECRET)
    store = IdentityStore(redis, fp, join_limit=LIMIT)
    ref = Guarded(fp, LIMIT)
    for batch in batches:
        for tp, res in zip(batch, await resolve(store, batch), strict=True):
            ref.apply(tp, res)
    idents = list(ref.owner)
    assert await mapping(redis, idents) == [ref.owner[i] for i in idents]
    for ident in idents:
        raw = await redis.get(keys.identity_joins(fp.of(ident.type, ident.value)))
        assert int(raw or 0) == (ref.joins.get(ident, 0) if ident.type != "user_id" else 0)



async def test_a_merged_away_profile_gets_its_own_touchpoints_until_its_hand_over(
        redis: Redis) -> None:
    """The visitor's anonymous profile was merged into the user's by a login. Until
    stage 2 has handed it over, the visitor's own touchpoints still go to it (a
    producer's resend of what it folded included: it knows the fingerprint), and the
    hand-over carries them; sent straight to the user's profile, a resend could arrive
    before the hand-over and count twice. After the hand-over they go to the user."""
    store = IdentityStore(redis, Fingerprints(SECRET), join_limit=LARGE)
    browsing = touchpoint(0, MessageType.TRACK, anon="visitor")
    first, login, resend, later = await resolve(store, [
        browsing, touchpoint(1, MessageType.IDENTIFY, "bea", anon="visitor"), browsing,
        touchpoint(2, MessageType.TRACK, anon="visitor")])
    assert first.route == first.profile_id == "~a:visitor"
    assert login.route == login.profile_id == "bea"
    assert (resend.profile_id, resend.route) == ("bea", "~a:visitor")
    assert (later.profile_id, later.route) == ("bea", "~a:visitor")
    await store.mark_handed_over({"~a:visitor": "bea"})  # stage 2 stored its hand-over
    after, = await resolve(store, [browsing])
    assert after.route == after.profile_id == "bea"
    # Along a chain: bea merged into ann (not handed over yet) sends to bea.
    await resolve(store, [touchpoint(3, MessageType.IDENTIFY, "ann", email="e@x.org"),
                          touchpoint(4, MessageType.IDENTIFY, "bea", email="e@x.org")])
    chained, = await resolve(store, [browsing])
    assert (chained.profile_id, chained.route) == ("ann", "bea")
