"""JSON text for the event log and the import files: orjson's speed, the standard library's reach.

orjson parses and writes JSON several times faster than ``json``, which matters
when a file of millions of events is read and written again. It refuses a few
things ``json`` accepts (integers beyond 64 bits, NaN); those rare values take
the standard library's path, so the fast path changes no result.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_encode = json.JSONEncoder(ensure_ascii=False).encode


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # raises json.JSONDecodeError when it is not JSON at all


def dumps(value: Any) -> str:
    """Compact JSON text; non-ASCII stays as it is."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _encode(value)
