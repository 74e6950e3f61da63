"""The shape written to a file, so opening a data dir need not read every event again.

A snapshot is the base's arrays as they are in memory (numpy's ``.npz``:
each array a zip member with its CRC-32, so a damaged file fails to load)
and the generation of the SQLite file it was taken from. It is used only
when that generation is the file's now; any other snapshot (stale, from
another format, unreadable) is ignored, and the shape is rebuilt from the
file and written again.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from graph.store.embedded.keys import KeyIndex
from graph.store.embedded.shape import Base, Counters, Overlay, Shape

FORMAT = 1
_KEY_FIELDS = [f.name for f in fields(KeyIndex) if f.name not in ("types", "values")]
_BASE_FIELDS = [f.name for f in fields(Base) if f.name != "keys"]


def save(shape: Shape, path: Path) -> None:
    """Write a shape with an empty overlay and nothing deferred, atomically and durably."""
    assert not shape.overlay.size and not shape.dirty and not shape.unwritten
    base, keys = shape.base, shape.base.keys
    header = {
        "format": FORMAT,
        "generation": shape.generation,
        "counters": [shape.counters.node, shape.counters.customer, shape.counters.event],
        "node_count": shape.node_count,
        "types": list(keys.types),
    }
    arrays: dict[str, Any] = {
        "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        "key_values": np.frombuffer(keys.values, dtype=np.uint8),
    }
    arrays.update({f"key_{name}": getattr(keys, name) for name in _KEY_FIELDS})
    arrays.update({name: getattr(base, name) for name in _BASE_FIELDS})
    scratch = path.with_name(path.name + ".tmp")
    with open(scratch, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)


def load(path: Path, generation: int) -> Shape | None:
    """The snapshot at ``path`` if it is whole and of ``generation``; else None."""
    try:
        with np.load(path, allow_pickle=False) as found:
            header = json.loads(found["header"].tobytes())
            if header.get("format") != FORMAT or header.get("generation") != generation:
                return None
            keys = KeyIndex(
                types=tuple(header["types"]),
                values=found["key_values"].tobytes(),
                **{name: found[f"key_{name}"] for name in _KEY_FIELDS},
            )
            base = Base(keys=keys, **{name: found[name] for name in _BASE_FIELDS})
    except FileNotFoundError:
        return None
    except Exception:  # damaged or foreign: the file is the truth, rebuild from it
        return None
    node, customer, event = header["counters"]
    return Shape(base, Overlay(), Counters(node, customer, event), generation, header["node_count"])
