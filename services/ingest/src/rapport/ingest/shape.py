"""JSON shape guards that cannot fail themselves, for values of any depth or size.

A request may nest up to 1024 levels (orjson's parse limit), but orjson encodes at
most 255 and Python's recursion ends near 1000: so depth is measured without
recursion, and what goes to the dead-letter topic is encoded in a way that always
succeeds and always fits a Kafka record. Pure functions, no I/O."""

from __future__ import annotations

from typing import Any

import orjson

KEPT_DEPTH = 64
"""Levels of a rejected message kept on the dead-letter topic when it is deeper than
orjson can encode; deeper objects and arrays are replaced by a note."""
MAX_LETTER_BYTES = 512 * 1024
"""Largest dead letter: half of Kafka's default 1 MB record limit (a 500 KB request can
re-encode larger, e.g. ``1e15`` becomes ``1000000000000000.0``)."""

_INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson encodes
_CONTAINERS = (dict, list, tuple)  # a tuple, not a union: isinstance is twice as fast


def _container(value: Any) -> bool:
    return isinstance(value, _CONTAINERS)


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels deep (the
    value itself is level 1). Iterative and stops at ``limit + 1``, so any depth is safe."""
    if not _container(value):
        return False
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, _CONTAINERS):  # inlined: this is ingest's hot path
                stack.append((child, level + 1))
    return False


def encoded_size(value: Any) -> int | None:
    """Bytes of ``value`` as JSON, or None when orjson cannot encode it (over 255 levels,
    an integer beyond 64 bits, a non-JSON type)."""
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return None


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | float):
        return value
    if isinstance(value, int):
        return value if _INT_RANGE[0] <= value <= _INT_RANGE[1] else str(value)
    return repr(value)[:200]


def bounded_copy(value: Any, depth: int = KEPT_DEPTH) -> Any:
    """A copy of ``value`` that orjson can always encode: objects and arrays below
    ``depth`` levels become a note, integers beyond 64 bits and other types become text."""
    if not _container(value):
        return _scalar(value)
    root: Any = {} if isinstance(value, dict) else []
    stack = [(value, root, 1)]
    while stack:
        src, dst, level = stack.pop()
        for key, child in src.items() if isinstance(src, dict) else enumerate(src):
            if not _container(child):
                copy = _scalar(child)
            elif level >= depth:
                copy = f"<nested deeper than {depth} levels: left out>"
            else:
                copy = {} if isinstance(child, dict) else []
                stack.append((child, copy, level + 1))
            if isinstance(dst, dict):
                dst[key if isinstance(key, str) else str(key)] = copy
            else:
                dst.append(copy)
    return root


def letter_bytes(fields: dict[str, Any], message: Any,
                 max_bytes: int = MAX_LETTER_BYTES) -> bytes:
    """A dead letter's JSON: ``fields`` plus the message as received. Never raises: a
    message orjson cannot encode is kept as a :func:`bounded_copy`, one too large is cut
    to a JSON text prefix, each time with a ``messageNote`` saying so."""
    try:
        out = orjson.dumps({**fields, "message": message})
        if len(out) <= max_bytes:
            return out
        note = f"over {max_bytes} bytes encoded: cut"
    except orjson.JSONEncodeError as exc:
        note = f"not encodable as JSON ({exc}): kept as a bounded copy"
    kept: Any = bounded_copy(message)
    text = orjson.dumps(kept)
    # Kept as a JSON string, the text's quotes and backslashes are escaped: at most twice.
    budget = max(0, (max_bytes - len(orjson.dumps(fields)) - len(note) - 200) // 2)
    if len(text) > budget:
        kept = text[:budget].decode("utf-8", "ignore")
        note += f" (the first {budget} bytes of its JSON text)"
    return orjson.dumps({**fields, "message": kept, "messageNote": note})
