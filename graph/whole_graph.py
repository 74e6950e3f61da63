"""The sharing rules of ``graph.sharing``, judged for a whole graph at once.

``sharing.Rejudge`` re-judges what one batch may have changed, reaching the
graph lazily through the batch. A bulk import or a rebuild has every node
dirty; walking the graph through those indirections then costs more than the
rules themselves. This module evaluates the same three rules in one pass over
integer node ids, numbered in key order so that every "smallest key" and
"sorted" of the lazy version means the same here. The property tests hold the
two to the same answer on every graph they generate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from graph.identifiers import IdentifierRegistry
from graph.models import Key, Pair
from graph.resolution import constrained
from graph.sharing import corroborated, packed


class WholeGraph:
    """Integer view of a closed graph: every neighbour of every node is a node."""

    def __init__(
        self,
        registry: IdentifierRegistry,
        keys: list[Key],
        blocked: list[bool],
        adjacency: list[list[int]],
    ) -> None:
        """``adjacency[n]`` lists node ``n``'s neighbours by position in ``keys`` (repeats allowed).

        Nodes are renumbered in key order; ``order[i]`` is the caller's position
        of node ``i``.
        """
        self.order = _key_order(keys)
        rank = [0] * len(keys)
        for new, old in enumerate(self.order):
            rank[old] = new
        self.keys = [keys[old] for old in self.order]
        self.blocked = [blocked[old] for old in self.order]
        renumber = rank.__getitem__
        self.adj = [list(set(map(renumber, adjacency[old]))) for old in self.order]
        types = registry.types
        names = sorted({key[0] for key in self.keys})
        type_of = {name: t for t, name in enumerate(names)}
        self.kind = [type_of[key[0]] for key in self.keys]
        spec = [types.get(name) for name in names]
        self.strong_type = [s is not None and s.strong for s in spec]
        self.hub_at = [None if s is None else s.hub_threshold for s in spec]
        self.threshold = [None if s is None else s.shared_threshold for s in spec]
        self.limit = [None if s is None else s.limit for s in spec]
        self.registry = registry
        self.capacity = {
            t: s.capacity for t, s in enumerate(spec) if s is not None and s.capacity is not None
        }
        self.corroboration = registry.config.sharing.corroboration

    @classmethod
    def of(
        cls,
        registry: IdentifierRegistry,
        blocked: Mapping[Key, bool],
        adjacency: Mapping[Key, set[Key]],
    ) -> WholeGraph:
        keys = list(blocked)
        index = {key: n for n, key in enumerate(keys)}
        return cls(
            registry,
            keys,
            [blocked[key] for key in keys],
            [[index[o] for o in adjacency[key]] for key in keys],
        )

    def linked_edges(self, shared: list[bool]) -> list[Pair]:
        """Every edge between two nodes that are neither blocked nor shared, as key pairs."""
        keys, blocked = self.keys, self.blocked
        linkable = [not (blocked[n] or shared[n]) for n in range(len(keys))]
        return [
            (keys[a], keys[b])
            for a, others in enumerate(self.adj)
            if linkable[a]
            for b in others
            if a < b and linkable[b]
        ]

    def judge(self) -> tuple[list[int], list[bool]]:
        """Each node's count of strong neighbours and its shared flag."""
        kind, blocked, adj, strong_type = self.kind, self.blocked, self.adj, self.strong_type
        size = len(kind)
        strong = [strong_type[kind[n]] and not blocked[n] for n in range(size)]
        counts = [sum(map(strong.__getitem__, others)) for others in adj]
        hub_at = self.hub_at
        hub = [(limit := hub_at[kind[n]]) is not None and counts[n] > limit for n in range(size)]
        anchor0 = [strong[n] and not hub[n] for n in range(size)]
        shared = [hub[n] and not blocked[n] for n in range(size)]
        threshold = self.threshold
        for n in range(size):
            limit = threshold[kind[n]]
            if strong_type[kind[n]] and anchor0[n] and limit is not None:
                shared[n] = self._groups_without(n, anchor0) > limit
        anchor = [anchor0[n] and not shared[n] for n in range(size)]
        groups1 = _components(adj, anchor)
        members1: dict[int, list[int]] = {}
        for n, g in enumerate(groups1):
            if g >= 0:
                members1.setdefault(g, []).append(n)
        corroborator = [
            not strong_type[kind[n]] and not blocked[n] and not hub[n] for n in range(size)
        ]
        around: dict[int, set[int]] = {}
        for n in range(size):
            limit = threshold[kind[n]]
            if strong_type[kind[n]] or blocked[n] or hub[n] or limit is None:
                continue
            names = sorted({groups1[o] for o in adj[n] if anchor[o]})
            if len(names) < 2:
                shared[n] = len(names) > limit
            else:
                sets = self._corroborated(names, members1, around, corroborator)
                shared[n] = self._packed(sets) > limit
        return counts, shared

    def customers(self, shared: list[bool]) -> list[list[int]]:
        """``resolution.partition`` of the linkable nodes, as lists of nodes, by smallest key.

        The same partition, without taking every key and edge as tuples: most
        components break no per-type limit and are taken whole, as they come
        out of the integer walk (already in order of their smallest node, and
        each in key order). Only one that holds more of a limited type than
        the limit allows goes through ``resolution.constrained``, edge by edge.
        """
        blocked, keys, adj, kind = self.blocked, self.keys, self.adj, self.kind
        linkable = [not (blocked[n] or shared[n]) for n in range(len(keys))]
        groups: dict[int, list[int]] = {}
        for n, label in enumerate(_components(adj, linkable)):
            if label >= 0:
                groups.setdefault(label, []).append(n)
        limit = {t: n for t, n in enumerate(self.limit) if n is not None}
        if not limit:
            return list(groups.values())
        found: list[list[int]] = []
        split = False
        for members in groups.values():
            limited = [kind[n] for n in members if kind[n] in limit]
            # Every limit is at least one: a single limited node breaks none.
            if len(limited) < 2 or all(c <= limit[t] for t, c in Counter(limited).items()):
                found.append(members)
                continue
            split = True
            index = {keys[n]: n for n in members}
            edges = [(keys[a], keys[b]) for a in members for b in adj[a] if a < b and linkable[b]]
            parts = constrained(self.registry, list(index), edges).groups.values()
            found.extend(sorted(index[k] for k in part) for part in parts)
        if split:
            found.sort(key=lambda members: members[0])
        return found

    def linked_components(self, shared: list[bool]) -> list[list[Key]]:
        """Plain connected components over the nodes that are neither blocked nor shared."""
        blocked, keys = self.blocked, self.keys
        linkable = [not (blocked[n] or shared[n]) for n in range(len(keys))]
        groups: dict[int, list[Key]] = {}
        for n, label in enumerate(_components(self.adj, linkable)):
            if label >= 0:
                groups.setdefault(label, []).append(keys[n])
        return list(groups.values())

    def _groups_without(self, k: int, member: list[bool]) -> int:
        """How many customers the anchor groups around ``k`` make once ``k`` is taken out."""
        adj = self.adj
        inside = [o for o in adj[k] if member[o] and o != k]
        if not inside:
            return 0
        label: dict[int, int] = {}
        for seed in inside:
            if seed in label:
                continue
            found = [seed]
            seen = {seed}
            for n in found:
                for o in adj[n]:
                    if o != k and o not in seen and member[o]:
                        seen.add(o)
                        found.append(o)
            name = min(seen)
            for n in seen:
                label[n] = name
        names = sorted({label[o] for o in inside})
        if len(names) < 2:
            return len(names)
        members: dict[int, list[int]] = {}
        for n, name in label.items():
            members.setdefault(name, []).append(n)
        return self._packed([self._types(members[name]) for name in names])

    def _types(self, members: list[int]) -> Counter[int]:
        kind = self.kind
        return Counter(kind[m] for m in members)

    def _corroborated(
        self,
        names: list[int],
        members: Mapping[int, list[int]],
        around: dict[int, set[int]],
        corroborator: list[bool],
    ) -> list[Counter[int]]:
        """Merge groups that enough distinct corroborating identifiers have seen together."""
        needed = self.corroboration
        if needed < 1:
            return [self._types(members[name]) for name in names]
        adj = self.adj
        touching: dict[int, list[int]] = {}
        for name in names:
            near = around.get(name)
            if near is None:
                inside = members[name]
                near = {o for m in inside for o in adj[m]} - set(inside)
                around[name] = near
            for other in near:
                if corroborator[other]:
                    touching.setdefault(other, []).append(name)
        return [
            sum((self._types(members[n]) for n in together), Counter())
            for together in corroborated(names, touching.values(), needed)
        ]

    def _packed(self, sets: list[Counter[int]]) -> int:
        return packed(sets, self.capacity)


def _key_order(keys: list[Key]) -> list[int]:
    """Positions of ``keys`` in key order: by type, then by value.

    Sorting positions by their keys compares tuples, several times slower
    than comparing strings: the positions of each type are sorted by value
    alone, and the types taken in order.
    """
    by_type: dict[str, list[int]] = {}
    for n, key in enumerate(keys):
        by_type.setdefault(key[0], []).append(n)
    order: list[int] = []
    for name in sorted(by_type):
        positions = by_type[name]
        values = [keys[n][1] for n in positions]
        ranked = sorted(range(len(positions)), key=values.__getitem__)
        order.extend(map(positions.__getitem__, ranked))
    return order


def _components(adj: list[list[int]], member: list[bool]) -> list[int]:
    """Each member's component over member-to-member edges, named by its smallest node; -1 else."""
    label = [-1] * len(adj)
    for start in range(len(adj)):
        if not member[start] or label[start] >= 0:
            continue
        found = [start]
        label[start] = start  # nodes are visited in increasing order: start is the smallest
        for n in found:
            for o in adj[n]:
                if member[o] and label[o] < 0:
                    label[o] = start
                    found.append(o)
    return label
