"""Stable OneIDs: bookkeeping over the difference between an old and a new partition.

The partition decides who belongs together; this module only decides names.
A OneID remembers the identifier it was first issued for, and stays with the
part holding it (else with the part holding its oldest identifier). When
several customers come together the oldest OneID survives and the others
become aliases of it. When they come apart again, a part that inherits no
living OneID takes back the one first issued for one of its identifiers, so
a client that stored it reads the same person as before the merge; only a
part with neither gets a fresh OneID.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from graph.models import Key
from graph.pacing import step_aside


@dataclass
class Renaming:
    assignment: dict[Key, str]
    minted: list[str] = field(default_factory=list)
    anchors: dict[str, Key] = field(default_factory=dict)  # minted OneID -> issued for
    merges: dict[str, list[str]] = field(default_factory=dict)  # survivor -> absorbed
    splits: dict[str, list[str]] = field(default_factory=dict)  # heir's OneID -> new parts
    retired: list[str] = field(default_factory=list)
    restored: dict[str, str | None] = field(default_factory=dict)  # given back -> it meant
    repointed: dict[str, str] = field(default_factory=dict)  # alias -> the OneID it now means

    @property
    def wants_dormant(self) -> bool:
        """Whether a part may be owed a OneID no node holds (see ``Dormant``)."""
        return bool(self.splits or self.retired or self.minted)


@dataclass(frozen=True, slots=True)
class Dormant:
    """A OneID that no identifier holds now: an alias of another, or retired.

    It was first issued for ``anchor``; a part that holds that identifier and
    has no living OneID of its own takes it back, so a client that stored it
    reads the same person again after a merge is undone.
    """

    one_id: str
    seq: int
    anchor: Key
    means: str | None  # the OneID it resolves to now; None if retired


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
    anchors: Mapping[str, Key] | None = None,
    dormant: Iterable[Dormant] = (),
) -> Renaming:
    """Give every component a OneID, keeping old OneIDs where the rules say they survive.

    ``old`` maps each node of the region to its previous OneID; ``old_one_ids``
    are all OneIDs that held nodes of the region (some may have lost them all).
    A OneID held before stays with the identifier it was issued for
    (``anchors``) while that identifier is still one of its own, else with its
    oldest identifier; where several come together the oldest OneID survives.
    A part that inherits none takes back the oldest ``dormant`` OneID issued
    for one of its identifiers, and only then is a fresh one minted.
    """
    anchors = anchors or {}
    dormant = list(dormant)
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
    for one_id, anchor in anchors.items():
        if one_id in heir and anchor in where and old.get(anchor) == one_id:
            heir[one_id] = where[anchor]

    heirs_by_component: dict[int, list[str]] = {}
    for one_id, index in heir.items():
        heirs_by_component.setdefault(index, []).append(one_id)
    owed: dict[int, list[Dormant]] = {}
    for d in dormant:
        if d.anchor in where:
            owed.setdefault(where[d.anchor], []).append(d)

    renaming = Renaming(assignment={})
    names: list[str] = []
    for index, comp in enumerate(components):
        step_aside()
        claimants = sorted(heirs_by_component.get(index, []), key=lambda o: (customer_seq[o], o))
        given_back = sorted(owed.get(index, []), key=lambda d: (d.seq, d.one_id))
        if claimants:
            name = claimants[0]
            if len(claimants) > 1:
                renaming.merges[name] = claimants[1:]
        elif given_back:
            name = given_back[0].one_id
            renaming.restored[name] = given_back[0].means
            given_back = given_back[1:]
        else:
            name = mint()
            renaming.minted.append(name)
            renaming.anchors[name] = min(comp, key=lambda k: (node_seq[k], k))
        names.append(name)
        for key in comp:
            renaming.assignment[key] = name
        for d in given_back:  # issued for an identifier of this part: they mean it now
            renaming.repointed[d.one_id] = name

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
    # An alias that already leads to its part's name through a survivor keeps its link.
    final = {one_id: names[index] for one_id, index in heir.items()}
    means = {d.one_id: d.means for d in dormant}
    renaming.repointed = {
        alias: name
        for alias, name in renaming.repointed.items()
        if final.get(means[alias] or "") != name
    }
    return renaming
