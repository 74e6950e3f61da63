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

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from graph.batch import Batch
from graph.models import Key, NodeRecord
from graph.pacing import step_aside

Neighbours = Callable[[Iterable[Key]], dict[Key, set[Key]]]


Name = TypeVar("Name", Key, int)  # a group's name: its smallest member
Kind = TypeVar("Kind", str, int)  # an identifier type


def corroborated(
    names: list[Name], touching: Iterable[list[Name]], needed: int
) -> list[list[Name]]:
    """Groups seen together on at least ``needed`` distinct identifiers count as one.

    ``touching`` holds, for each corroborating identifier, the groups it is
    next to (in ``names`` order). Returns the merged groups, in a canonical
    order, each as the names it joins.
    """
    seen_together: Counter[tuple[Name, Name]] = Counter()
    for groups in touching:
        for pair in itertools.combinations(groups, 2):
            seen_together[pair] += 1
    parent = {n: n for n in names}

    def find(n: Name) -> Name:
        while parent[n] != n:
            n = parent[n]
        return n

    for (a, b), count in sorted(seen_together.items()):
        if count >= needed:
            ra, rb = sorted((find(a), find(b)))
            parent[rb] = ra
    merged: dict[Name, list[Name]] = {}
    for n in names:
        merged.setdefault(find(n), []).append(n)
    return [merged[root] for root in sorted(merged)]


def packed(sets: list[Counter[Kind]], capacity: Mapping[Kind, int]) -> int:
    """How many customers the groups make, packed greedily in order within each capacity."""
    customers: list[Counter[Kind]] = []
    for kinds in sets:
        for customer in customers:
            if all(customer[t] + c <= capacity.get(t, c + customer[t]) for t, c in kinds.items()):
                customer.update(kinds)
                break
        else:
            customers.append(Counter(kinds))
    return len(customers)


class AnchorGroups:
    """Labels nodes with their group (component over ``member`` nodes), lazily."""

    def __init__(self, neighbours: Neighbours, member: Callable[[Key], bool]) -> None:
        self._neighbours = neighbours
        self._member = member
        self.group: dict[Key, Key] = {}
        self.members: dict[Key, list[Key]] = {}
        self._neighbourhood: dict[Key, set[Key]] = {}

    def label(self, seeds: Iterable[Key]) -> None:
        """Label the groups of ``seeds``, reading neighbours one level at a time for all.

        A networked store pays a round trip per read, so the groups of every
        seed are explored together and told apart afterwards.
        """
        todo = [s for s in dict.fromkeys(seeds) if s not in self.group and self._member(s)]
        adjacency: dict[Key, list[Key]] = {}
        reached = set(todo)
        frontier = todo
        while frontier:
            found = self._neighbours(frontier)
            frontier = []
            for key, others in found.items():
                inside = adjacency[key] = [o for o in others if o in reached or self._member(o)]
                for other in inside:
                    if other not in reached:
                        reached.add(other)
                        frontier.append(other)
        for seed in todo:
            step_aside()
            if seed in self.group:
                continue
            members = {seed}
            stack = [seed]
            while stack:
                for other in adjacency.get(stack.pop(), ()):
                    if other not in members:
                        members.add(other)
                        stack.append(other)
            name = min(members)
            for m in members:
                self.group[m] = name
            self.members[name] = list(members)

    def customers(
        self,
        nodes: Iterable[Key],
        capacity: Mapping[str, int],
        corroborating: Callable[[Key], bool] | None = None,
        corroboration: int = 0,
    ) -> int:
        """How many customers at least the groups of ``nodes`` must be.

        Groups seen together on at least ``corroboration`` distinct
        ``corroborating`` identifiers (say a person's phone and second phone,
        both used on their laptop and on their phone) count as one. Then the
        groups are packed greedily, in a canonical order, into customers that
        hold no more identifiers of a type than its capacity: a person's phone
        group and email group fit in one customer; two phone groups do not.
        """
        inside = [n for n in nodes if self._member(n)]
        self.label(inside)
        names = sorted({self.group[n] for n in inside})
        if len(names) < 2:
            return len(names)
        return packed(self._corroborated(names, corroborating, corroboration), capacity)

    def _corroborated(
        self, names: list[Key], corroborating: Callable[[Key], bool] | None, needed: int
    ) -> list[Counter[str]]:
        """Merge groups that enough distinct corroborating identifiers have seen together."""
        if corroborating is None or needed < 1:
            return [self.types(n) for n in names]
        touching: dict[Key, list[Key]] = {}
        for name in names:
            for other in self._around(name):
                if corroborating(other):
                    touching.setdefault(other, []).append(name)
        return [
            sum((self.types(n) for n in together), Counter())
            for together in corroborated(names, touching.values(), needed)
        ]

    def types(self, name: Key) -> Counter[str]:
        """How many identifiers of each type a group holds (needed only to pack groups)."""
        return Counter(m[0] for m in self.members[name])

    def _around(self, name: Key) -> set[Key]:
        """Every identifier next to a group (its members' neighbours), computed once."""
        found = self._neighbourhood.get(name)
        if found is None:
            members = self.members[name]
            found = set().union(*self._neighbours(members).values()) - set(members)
            self._neighbourhood[name] = found
        return found


class Rejudge:
    """Re-judges the shared flag of every identifier a batch may have changed.

    First the strong identifiers in every anchor group the batch touched (rule
    2), then the other identifiers next to those groups (rule 3); hubs (rule 1)
    on the way. A node whose flag does not change is not written.
    """

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        types = batch.registry.types
        self.strong_types = {name for name, kind in types.items() if kind.strong}
        self.hubs = {n: k.hub_threshold for n, k in types.items() if k.hub_threshold is not None}
        self.thresholds = {
            n: k.shared_threshold for n, k in types.items() if k.shared_threshold is not None
        }
        self.capacity = {n: k.capacity for n, k in types.items() if k.capacity is not None}
        self.corroboration = batch.registry.config.sharing.corroboration

    def _is_anchor0(self, key: Key, node: NodeRecord | None) -> bool:
        if key[0] not in self.strong_types or node is None or node.blocked:
            return False
        hub = self.hubs.get(key[0])
        return hub is None or node.strong_neighbours <= hub

    def _is_hub(self, key: Key, node: NodeRecord | None) -> bool:
        hub = self.hubs.get(key[0])
        return node is not None and hub is not None and node.strong_neighbours > hub

    def anchor0(self, key: Key) -> bool:
        """Strong, not blocked, not a hub: may form anchor groups."""
        return key not in self.batch.removed and self._is_anchor0(key, self.batch.record(key))

    def anchor(self, key: Key) -> bool:
        """A strong identifier that passed every sharing rule."""
        node = self.batch.record(key)
        return node is not None and not node.shared and self.anchor0(key)

    def corroborator(self, key: Key) -> bool:
        """Any identifier but a strong, blocked or hub one can vouch for two groups."""
        if key[0] in self.strong_types:
            return False
        node = self.batch.record(key)
        return node is not None and not node.blocked and not self._is_hub(key, node)

    def _anchor0_except(self, excluded: Key) -> Callable[[Key], bool]:
        return lambda key: key != excluded and self.anchor0(key)

    def _counts_groups(self, key: Key) -> bool:
        """Whether the groups-per-identifier rule applies: a threshold, and not a hub."""
        return key[0] in self.thresholds and not self._is_hub(key, self.batch.record(key))

    def _judge(self, key: Key, groups: int | None) -> None:
        node = self.batch.record(key)
        if node is None:
            return
        hub = self.hubs.get(key[0])
        threshold = self.thresholds.get(key[0])
        shared = not node.blocked and (
            (hub is not None and node.strong_neighbours > hub)
            or (groups is not None and threshold is not None and groups > threshold)
        )
        if shared != node.shared:
            self.batch.load([key])
            self.batch.pending[key].shared = shared

    def run(self) -> None:
        batch = self.batch
        live = [k for k in batch.changed if k not in batch.removed]
        # Nodes whose part in the rules changed: anchors that stopped being one, and
        # identifiers that became or stopped being hubs (they vouch for groups).
        left = [
            k
            for k, stored in batch.original.items()
            if (self._is_anchor0(k, stored) and not self.anchor0(k))
            or self._is_hub(k, stored) != self._is_hub(k, batch.record(k))
        ]
        seeds = {k for k in live if k[0] in self.strong_types}
        for others in batch.neighbours(left).values():
            seeds |= {o for o in others if o[0] in self.strong_types}
        level0 = AnchorGroups(batch.neighbours, self.anchor0)
        level0.label(seeds)
        touched = {level0.group[k] for k in seeds if k in level0.group}
        members = [k for k, g in level0.group.items() if g in touched]
        strong = (set(members) | seeds) - batch.removed
        # Only identifiers with a threshold that are not hubs count groups around
        # them; a hub's neighbours (a kiosk's thousands) are never read.
        counted = {k for k in strong if self._counts_groups(k)}
        around = batch.neighbours(counted)
        for key in strong:
            step_aside()
            groups = None
            if key in counted:
                without = AnchorGroups(batch.neighbours, self._anchor0_except(key))
                groups = without.customers(around[key], self.capacity)
            self._judge(key, groups)
        weak = {k for k in live if k[0] not in self.strong_types}
        # Next to a touched group, or next to a node that stopped being an anchor:
        # either way the anchors an identifier sees may have changed.
        for others in batch.neighbours([*members, *left]).values():
            weak |= {o for o in others if o[0] not in self.strong_types}
        weak -= batch.removed
        counted = {k for k in weak if self._counts_groups(k)}
        around = batch.neighbours(counted)
        level1 = AnchorGroups(batch.neighbours, self.anchor)
        # Every group the loop looks at, labelled in one walk: a read per level, not per node.
        level1.label(o for k in counted for o in around[k])
        for key in weak:
            step_aside()
            groups = None
            if key in counted:
                groups = level1.customers(
                    around[key], self.capacity, self.corroborator, self.corroboration
                )
            self._judge(key, groups)


def refresh_shared(batch: Batch) -> None:
    """Bring every shared flag the batch may have changed up to date."""
    Rejudge(batch).run()
