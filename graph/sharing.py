"""Shared-identifier protection: which identifiers are used by several customers.

A kiosk, a family tablet, an internet-cafe browser or a couple's common email
is seen with the strong identifiers (phones, emails, member ids...) of several
people. Such an identifier is marked shared and links nothing, so the people
it touched stay apart. The rules are functions of the evidence alone, never
of the partition they protect, so they cannot feed back on themselves:

1. **Hubs.** An identifier seen with more than ``hub_threshold`` distinct strong
   identifiers is shared outright (a store kiosk, a company switchboard).
2. **Anchor groups.** Strong identifiers that are not hubs, joined by
   strong-to-strong evidence alone (a registration carrying phone, email and
   member id together), form *anchor groups*: roughly, people. A strong
   identifier is shared when its strong neighbours fall into more than
   ``shared_threshold`` groups once it is taken out (the couple's email joins
   two). Strong identifiers that pass both rules are the *anchors*.
3. Any other identifier (a device, a cookie, an OpenID) is shared when its
   anchor neighbours fall into more than ``shared_threshold`` groups of anchors
   (the family tablet joins two).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from graph.identifiers import IdentifierRegistry
from graph.models import Key

Neighbours = Callable[[Iterable[Key]], dict[Key, set[Key]]]


def is_strong(registry: IdentifierRegistry, key: Key) -> bool:
    kind = registry.types.get(key[0])
    return kind is not None and kind.strong


def is_hub(registry: IdentifierRegistry, key: Key, strong_neighbours: int) -> bool:
    kind = registry.types.get(key[0])
    return (
        kind is not None
        and kind.hub_threshold is not None
        and (strong_neighbours > kind.hub_threshold)
    )


def has_group_rule(registry: IdentifierRegistry, key: Key) -> bool:
    kind = registry.types.get(key[0])
    return kind is not None and kind.shared_threshold is not None


class AnchorGroups:
    """Labels nodes with their group (component over ``member`` nodes), lazily."""

    def __init__(self, neighbours: Neighbours, member: Callable[[Key], bool]) -> None:
        self._neighbours = neighbours
        self._member = member
        self.group: dict[Key, Key] = {}
        self.types: dict[Key, Counter[str]] = {}

    def label(self, seeds: Iterable[Key]) -> None:
        for seed in seeds:
            if seed in self.group or not self._member(seed):
                continue
            members = {seed}
            frontier = [seed]
            while frontier:
                found = self._neighbours(frontier)
                frontier = []
                for others in found.values():
                    for other in others:
                        if other not in members and self._member(other):
                            members.add(other)
                            frontier.append(other)
            name = min(members)
            for m in members:
                self.group[m] = name
            self.types[name] = Counter(m[0] for m in members)

    def customers(self, nodes: Iterable[Key], capacity: Mapping[str, int]) -> int:
        """How many customers at least the groups of ``nodes`` must be.

        Groups are packed greedily, in a canonical order, into customers that
        hold no more identifiers of a type than its capacity: a person's phone
        group and email group fit in one customer; two phone groups do not.
        """
        inside = [n for n in nodes if self._member(n)]
        self.label(inside)
        names = {self.group[n] for n in inside}
        if len(names) < 2:
            return len(names)
        packed: list[Counter[str]] = []
        for name in sorted(names):
            kinds = self.types[name]
            for customer in packed:
                if all(
                    customer[t] + c <= capacity.get(t, c + customer[t]) for t, c in kinds.items()
                ):
                    customer.update(kinds)
                    break
            else:
                packed.append(Counter(kinds))
        return len(packed)


def joins_too_many(registry: IdentifierRegistry, key: Key, groups: int) -> bool:
    threshold = registry.types[key[0]].shared_threshold
    return threshold is not None and groups > threshold


def capacities(registry: IdentifierRegistry) -> dict[str, int]:
    return {
        name: kind.capacity for name, kind in registry.types.items() if kind.capacity is not None
    }
