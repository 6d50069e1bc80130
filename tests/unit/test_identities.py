"""Identifier rules, pure, by properties: normalisation is idempotent, never lets a
control, format or bidi character, a placeholder, an email that is not one or a phone
with too few digits through, and founders' profile ids never collide across kinds."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rapport.profile.identities import founder, identities_of, lookup, profile_id_for
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.identifiers import (
    MAX_PHONE_DIGITS,
    MIN_PHONE_DIGITS,
    PLACEHOLDERS,
    normalize,
)
from rapport.shared.profiles import Identity

KINDS = ("user_id", "anonymous_id", "email", "phone", "loyalty_id")
FOUNDER_KINDS = ("user_id", "anonymous_id")
BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
FW_ALICE = "\uff41\uff4c\uff49\uff43\uff45"  # "alice" in fullwidth letters: NFKC -> "alice"
CYR_ALICE = "\u0430lice"  # a Cyrillic a, then "lice": looks like "alice", is not
FW_PHONE = "+\uff11 \uff15\uff15\uff15 \uff10\uff11\uff10\uff10"  # fullwidth "+1 555 0100"

SPECIAL = [
    "~", "~a:", "~u:", "|", ":", "/", "@", "+", "-", ".", "(", ")", " ", "\t", "\n",
    "\u00a0", "\u3000", "\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066",
    "\u0000", "\u001f", "\u0085", "\u2028", "\u00b4", "\u0301", "\ufe0f", "\uff41",
    "\uff21", "\uff11", "\u0663", "\u0967", "\u2460", "\u00b2", "\u0430", "\u00df",
    "\u0130", "\u212a", "\ufb01", "example.com", "n/a", "null",
]


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else
                   "\u3000" if c == " " else c for c in text)


placeholder_variants = st.builds(
    lambda p, f: f(p), st.sampled_from(sorted(PLACEHOLDERS)),
    st.sampled_from([lambda p: p, str.upper, str.title, lambda p: f"  {p}\t",
                     fullwidth, lambda p: fullwidth(p.upper()) + " "]))
phone_like = st.text(st.sampled_from("0123456789+-.() /x\uff11\uff12\uff13\u0663\u0664\u0665"),
                     max_size=24)
email_like = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(st.sampled_from("abcXYZ019.+_-|~\uff41"), min_size=1, max_size=10),
    st.text(st.sampled_from("abcXYZ019-\uff41"), min_size=1, max_size=10),
    st.sampled_from(["com", "COM", "co.uk", "\uff43\uff4f\uff4d", "c"]))
values = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=12).map(
        "".join),
    st.lists(st.sampled_from(SPECIAL), max_size=6).map("".join),
    placeholder_variants, phone_like, email_like)
kinds = st.sampled_from(KINDS)


def digits_of(value: str) -> int:
    return sum(ch.isdigit() for ch in unicodedata.normalize("NFKC", value))


# --- normalize ------------------------------------------------------------------------

@settings(max_examples=600, deadline=None)
@given(kinds, values)
@example("user_id", "\u00b4")          # NFKC gives " \u0301", trimmed to "\u0301"
@example("phone", "+\uff11 (555) \uff10\uff11\uff10\uff10")
@example("email", "\uff21\uff2c\uff29\uff23\uff25@Example.com")
def test_normalize_is_idempotent_and_clean(kind: str, value: str) -> None:
    out = normalize(kind, value)
    if out is None:
        return
    assert normalize(kind, out) == out
    assert out == out.strip() and out
    assert unicodedata.is_normalized("NFKC", out)
    for ch in out:
        assert unicodedata.category(ch) not in REFUSED_CATEGORIES, (out, hex(ord(ch)))
        assert unicodedata.bidirectional(ch) not in BIDI_CONTROLS, (out, hex(ord(ch)))
    assert out.casefold() not in PLACEHOLDERS
    assert lookup(kind, value) == out


@settings(max_examples=300, deadline=None)
@given(kinds, values)
def test_compatibility_look_alikes_are_one_identifier(kind: str, value: str) -> None:
    assert normalize(kind, unicodedata.normalize("NFKC", value)) == normalize(kind, value)
    if value.isascii() and value.isprintable():
        assert normalize(kind, fullwidth(value)) == normalize(kind, value)


@settings(max_examples=300, deadline=None)
@given(kinds, placeholder_variants)
def test_placeholders_never_identify(kind: str, value: str) -> None:
    assert normalize(kind, value) is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [None, 42, 4.2, True, ["alice"], {"a": 1}, b"alice"])
def test_only_text_identifies(kind: str, value: object) -> None:
    assert normalize(kind, value) is None


@settings(max_examples=400, deadline=None)
@given(st.one_of(values, email_like))
def test_emails_are_casefolded_addresses(value: str) -> None:
    out = normalize("email", value)
    if "@" not in unicodedata.normalize("NFKC", value):
        assert out is None
    if out is not None:
        assert out == out.casefold() and out.isascii() and out.count("@") == 1
        assert normalize("email", value.upper()) in (out, None)
        if value.isascii():
            assert normalize("email", value.upper()) == out == normalize("email", value.lower())


@settings(max_examples=400, deadline=None)
@given(st.one_of(values, phone_like))
def test_phones_are_plus_and_seven_to_fifteen_digits(value: str) -> None:
    out = normalize("phone", value)
    if not MIN_PHONE_DIGITS <= digits_of(value) <= MAX_PHONE_DIGITS:
        assert out is None
    if out is not None:
        assert out[0] == "+" and out[1:].isdigit()
        assert MIN_PHONE_DIGITS <= len(out) - 1 <= MAX_PHONE_DIGITS
        assert len(set(out[1:])) > 1


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("user_id", FW_ALICE, "alice"),
    ("user_id", " alice ", "alice"),
    ("user_id", CYR_ALICE, CYR_ALICE),       # Cyrillic a: another identifier
    ("user_id", "\u200balice", None),
    ("user_id", "ali\u202ece", None),
    ("user_id", "x|alice", "x|alice"),
    ("user_id", "~a:foo", "~a:foo"),
    ("user_id", "N/A ", None),
    ("user_id", "", None),
    ("user_id", "   ", None),
    ("email", "Alice@Example.COM", "alice@example.com"),
    ("email", FW_ALICE + "@example.com", "alice@example.com"),
    ("email", CYR_ALICE + "@example.com", None),
    ("email", "alice", None),
    ("email", "TEST@test.com", None),
    ("phone", "+1 (555) 010-0100", "+15550100100"),
    ("phone", FW_PHONE, "+15550100"),
    ("phone", "123", None),
    ("phone", "555 010", None),                # six digits
    ("phone", "555 0101", "+5550101"),         # seven
    ("phone", "+12 3456 7890 12345", "+123456789012345"),  # fifteen
    ("phone", "+12 3456 7890 123456", None),   # sixteen
    ("phone", "n/a", None),
    ("phone", "555 0100 ext 2", None),
    ("phone", "1111111", None),
    ("loyalty_id", "unknown", None),
])
def test_normal_forms(kind: str, value: str, expected: str | None) -> None:
    assert normalize(kind, value) == expected


@pytest.mark.parametrize("value", [
    "\u0665\u0665\u0665\u0660\u0661\u0660\u0660",             # Arabic-Indic "5550100"
    "+\u0967 \u096b\u096b\u096b \u0966\u0967\u0966\u0966",   # Devanagari "+1 555 0100"
])
def test_phone_digits_of_any_script_are_the_same_number(value: str) -> None:
    out = normalize("phone", value)
    assert out is not None and re.fullmatch(r"\+[0-9]{7,15}", out), out
    assert out == normalize("phone", "".join(
        str(unicodedata.decimal(c)) if c.isdecimal() else c for c in value))


@pytest.mark.parametrize("value", ["123-456-7890", "(123) 456 7890", "+1234567890"])
def test_placeholder_phones_never_identify_however_formatted(value: str) -> None:
    assert normalize("phone", "1234567890") is None
    assert normalize("phone", value) is None


# --- profile ids ----------------------------------------------------------------------

ids = st.one_of(values, st.builds(lambda p, v: p + v,
                                  st.sampled_from(["~", "~a:", "~u:", "~u:~a:", "~a:~u:"]),
                                  values))


@settings(max_examples=500, deadline=None)
@given(st.tuples(st.sampled_from(FOUNDER_KINDS), ids),
       st.tuples(st.sampled_from(FOUNDER_KINDS), ids))
@example(("user_id", "~a:v"), ("anonymous_id", "v"))
@example(("user_id", "~u:x"), ("user_id", "x"))
@example(("user_id", "~a:v"), ("anonymous_id", "~a:v"))
def test_founders_profile_ids_are_injective(a: tuple[str, str], b: tuple[str, str]) -> None:
    if a != b:
        assert profile_id_for(*a) != profile_id_for(*b)
    # Only a user id's own profile may be known by the raw id, never an anonymous one.
    for kind, value in (a, b):
        pid = profile_id_for(kind, value)
        if kind == "anonymous_id":
            assert pid == f"~a:{value}"
        elif value.startswith("~"):
            assert pid == f"~u:{value}"
        else:
            assert pid == value


def test_only_user_and_anonymous_ids_found_profiles() -> None:
    """profile_id_for is injective across the founding kinds only, so no other kind may
    ever found a profile: founder() gives a user or an anonymous id, or nothing."""
    tp = Touchpoint.model_construct(message_id="m", source="s", type=MessageType.IDENTIFY,
                                    user_id="n/a", anonymous_id=None, channel=Channel.WEB,
                                    timestamp=T0, received_at=T0,
                                    traits={"email": "v@example.com"})
    assert founder(tp) is None


# --- identities_of --------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
maybe = st.one_of(st.none(), values)
traits = st.fixed_dictionaries({}, optional={
    "email": st.one_of(values, email_like, st.integers()),
    "phone": st.one_of(values, phone_like, st.integers()),
    "loyalty_id": st.one_of(values, st.integers()),
    "name": values})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(MessageType)), maybe, maybe, maybe, traits)
def test_identities_of_are_the_normalised_identifiers(mtype, user, anon, previous,
                                                      tr) -> None:
    tp = Touchpoint.model_construct(
        message_id="m", source="s", type=mtype, user_id=user, anonymous_id=anon,
        previous_id=previous, channel=Channel.WEB, timestamp=T0, received_at=T0,
        traits=tr)
    out = identities_of(tp)
    expected = {("user_id", normalize("user_id", user)),
                ("anonymous_id", normalize("anonymous_id", anon))}
    if previous:  # one identifier; resolution decides whether a user or anonymous id
        expected.add(("previous_id", normalize("user_id", previous)))
    expected |= {(k, normalize(k, tr[k])) for k in ("email", "phone", "loyalty_id")
                 if k in tr}
    assert {(i.type, i.value) for i in out} == {(k, v) for k, v in expected if v}
    assert len(out) == len(set(out))
    f = founder(tp)
    if f is None:
        assert normalize("user_id", user) is None and normalize("anonymous_id", anon) is None
    else:
        assert out[0] == f
        assert f == (Identity(type="user_id", value=normalize("user_id", user))
                     if normalize("user_id", user) else
                     Identity(type="anonymous_id", value=normalize("anonymous_id", anon)))
