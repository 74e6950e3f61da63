"""Stable OneIDs: bookkeeping over the difference between an old and a new partition.

The partition decides who belongs together; this module only decides names.
A customer's OneID passes to the part holding its oldest identifier. When
several customers come together the oldest OneID survives and the others
become aliases of it; a part that inherits nothing gets a fresh OneID.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from graph.models import Key


@dataclass
class Renaming:
    assignment: dict[Key, str]
    minted: list[str] = field(default_factory=list)
    merges: dict[str, list[str]] = field(default_factory=dict)  # survivor -> absorbed
    splits: dict[str, list[str]] = field(default_factory=dict)  # heir's OneID -> new parts
    retired: list[str] = field(default_factory=list)


def new_one_id() -> str:
    return uuid.uuid4().hex


def new_one_ids(count: int) -> list[str]:
    """``count`` fresh OneIDs like ``new_one_id``'s, from one read of the system's randomness.

    A first import names tens of thousands of customers at once; one read
    instead of one per OneID saves most of the time naming them takes.
    """
    random = bytearray(os.urandom(16 * count))
    for i in range(0, 16 * count, 16):  # the bits uuid.UUID(..., version=4) sets
        random[i + 6] = random[i + 6] & 0x0F | 0x40  # version 4
        random[i + 8] = random[i + 8] & 0x3F | 0x80  # RFC 4122 variant
    text = random.hex()
    return [text[i : i + 32] for i in range(0, 32 * count, 32)]


def rename(
    components: list[frozenset[Key]],
    old: Mapping[Key, str | None],
    node_seq: Mapping[Key, int],
    customer_seq: Mapping[str, int],
    old_one_ids: set[str],
    mint: Callable[[], str] = new_one_id,
) -> Renaming:
    """Give every component a OneID, keeping old OneIDs where the rules say they survive.

    ``old`` maps each node of the region to its previous OneID; ``old_one_ids``
    are all OneIDs that held nodes of the region (some may have lost them all).
    """
    where = {key: index for index, comp in enumerate(components) for key in comp}
    heir: dict[str, int] = {}
    oldest: dict[str, tuple[int, Key]] = {}
    for key, one_id in old.items():
        if one_id is None or key not in where:
            continue
        rank = (node_seq[key], key)
        if one_id not in oldest or rank < oldest[one_id]:
            oldest[one_id] = rank
            heir[one_id] = where[key]

    heirs_by_component: dict[int, list[str]] = {}
    for one_id, index in heir.items():
        heirs_by_component.setdefault(index, []).append(one_id)

    renaming = Renaming(assignment={})
    names: list[str] = []
    for index, comp in enumerate(components):
        claimants = sorted(heirs_by_component.get(index, []), key=lambda o: (customer_seq[o], o))
        if claimants:
            name = claimants[0]
            if len(claimants) > 1:
                renaming.merges[name] = claimants[1:]
        else:
            name = mint()
            renaming.minted.append(name)
        names.append(name)
        for key in comp:
            renaming.assignment[key] = name

    parts: dict[str, set[int]] = {}
    for key, was in old.items():
        if was is not None and key in where:
            parts.setdefault(was, set()).add(where[key])
    for one_id in sorted(old_one_ids):
        if one_id not in heir:
            renaming.retired.append(one_id)
            continue
        others = sorted(names[i] for i in parts.get(one_id, ()) if i != heir[one_id])
        if others:
            renaming.splits[one_id] = others
    return renaming
