"""JSON text for the event log, import files and the API: orjson's speed, json's reach.

orjson parses and writes JSON several times faster than ``json``, which matters
when a file of millions of events is read and written again. It refuses a few
things ``json`` accepts (NaN, a lone surrogate; on writing, integers beyond 64
bits), and it reads an integer beyond 64 bits as a float without a word: a
20-digit account number in a trait would come back rounded. Text with such a
number in it, and whatever orjson refuses, takes the standard library's path,
so the fast path changes no result.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_encode = json.JSONEncoder(ensure_ascii=False).encode

# Every digit becomes "0" and every other byte a space: a run of 19 digits is
# then one find away. 19 digits start below -2**63 and 2**64, orjson's limits.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def has_long_number(text: str | bytes) -> bool:
    """Whether ``text`` has a run of 19 digits, which may be an integer orjson would round.

    A run inside a string (an order number, say) answers yes as well and only
    costs the slower, exact path. About 90 µs for a batch of 500 events.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return _LONG_RUN in raw.translate(_DIGITS_ONLY)


def loads(text: str | bytes) -> Any:
    """The JSON value of ``text``; bytes must be UTF-8.

    Raises ``json.JSONDecodeError`` when it is not JSON (or is nested too
    deeply to read), ``UnicodeDecodeError`` when bytes are not UTF-8 (JSON
    between systems is UTF-8; ``json`` alone would also guess UTF-16 and UTF-32).
    """
    if not has_long_number(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except RecursionError:  # arrays in arrays a few thousand deep: bad input, not a crash
        raise json.JSONDecodeError("nested too deeply", "", 0) from None


def dumps(value: Any) -> str:
    """Compact JSON text; non-ASCII stays as it is."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _encode(value)
