"""The sharing rules of ``graph.sharing``, judged for a whole graph at once.

``sharing.Rejudge`` re-judges what one batch may have changed, reaching the
graph lazily through the batch. A bulk import or a rebuild has every node
dirty; walking the graph through those indirections then costs more than the
rules themselves. This module evaluates the same three rules in one pass over
integer node ids, numbered in key order so that every "smallest key" and
"sorted" of the lazy version means the same here. The property tests hold the
two to the same answer on every graph they generate.

The edges live in numpy arrays (both directions, sorted): what is the same
for every node (dropping repeated edges, counting strong neighbours, which
components break a limit) is done on whole arrays, and Python walks only the
nodes a rule has to look at one by one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from graph.identifiers import IdentifierRegistry
from graph.models import Key, Pair
from graph.resolution import constrained
from graph.sharing import corroborated, packed

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


class WholeGraph:
    """Integer view of a closed graph: every neighbour of every node is a node."""

    def __init__(
        self,
        registry: IdentifierRegistry,
        keys: list[Key],
        blocked: Sequence[bool],
        edges: npt.ArrayLike,
    ) -> None:
        """``edges`` holds positions in ``keys`` two by two, one pair per edge.

        An edge may come more than once, either way round. Nodes are renumbered
        in key order: ``order[i]`` is the caller's position of node ``i`` and
        ``rank[p]`` the node at the caller's position ``p``.
        """
        size = len(keys)
        order_list, runs = _key_order(keys)
        self.order = np.array(order_list, dtype=np.int64)
        self.rank = np.empty(size, dtype=np.int64)
        self.rank[self.order] = np.arange(size)
        self.keys = list(map(keys.__getitem__, order_list))
        self.blocked_at: Flags = np.array(blocked, dtype=bool)[self.order]
        ends = self.rank[np.asarray(edges, dtype=np.int64)]
        self.src, self.dst = _both_ways(ends, size)
        bounds = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.src, minlength=size), out=bounds[1:])
        self.adj = _Adjacency(self.dst.tolist(), bounds.tolist())
        # Keys are in type order, so each type is one run of nodes.
        self.kind_at: Ints = np.repeat(
            np.arange(len(runs), dtype=np.int64), [count for _, count in runs]
        )
        self.kind: list[int] = self.kind_at.tolist()
        types = registry.types
        spec = [types.get(name) for name, _ in runs]
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
        edges = [end for a, key in enumerate(keys) for o in adjacency[key] for end in (a, index[o])]
        return cls(registry, keys, [blocked[key] for key in keys], edges)

    def linked_edges(self, shared: list[bool], within: Flags | None = None) -> list[Pair]:
        """Every edge between two nodes that are neither blocked nor shared, as key pairs;
        only those between nodes ``within`` (by key order) if given."""
        linkable = self._linkable(shared)
        if within is not None:
            linkable &= within
        src, dst = self.src, self.dst
        keep = (src < dst) & linkable[src] & linkable[dst]
        keys, ends = self.keys, zip(src[keep].tolist(), dst[keep].tolist(), strict=True)
        return [(keys[a], keys[b]) for a, b in ends]

    def judge(self) -> tuple[list[int], list[bool]]:
        """Each node's count of strong neighbours and its shared flag."""
        size, kind, blocked = len(self.keys), self.kind_at, self.blocked_at
        src, dst = self.src, self.dst
        strong_type = np.array(self.strong_type, dtype=bool)[kind]
        strong = strong_type & ~blocked
        counts = np.bincount(src[strong[dst]], minlength=size)
        has_hub = np.array([h is not None for h in self.hub_at], dtype=bool)[kind]
        hub_at = np.array([h or 0 for h in self.hub_at], dtype=np.int64)[kind]
        hub = has_hub & (counts > hub_at)
        anchor0 = strong & ~hub
        shared = hub & ~blocked
        threshold = self.threshold
        has_threshold = np.array([t is not None for t in threshold], dtype=bool)[kind]
        limit_at = np.array([t or 0 for t in threshold], dtype=np.int64)[kind]
        member0: list[bool] = anchor0.tolist()
        joining = np.flatnonzero(anchor0 & has_threshold)
        shared[joining] = [
            self._groups_without(n, member0) > limit
            for n, limit in zip(joining.tolist(), limit_at[joining].tolist(), strict=True)
        ]
        anchor = anchor0 & ~shared
        groups1 = _components(src, dst, anchor)
        # Any other identifier: the distinct anchor groups next to it.
        corroborator = ~strong_type & ~blocked & ~hub
        judged = corroborator & has_threshold
        touch = judged[src] & anchor[dst]
        near, _ = _distinct(src[touch] * size + groups1[dst[touch]])
        who, group = np.divmod(near, size)
        seen = np.bincount(who, minlength=size)
        lone = judged & (seen < 2)
        shared[lone] = seen[lone] > limit_at[lone]
        several = np.flatnonzero(judged & (seen >= 2))
        if several.size:
            members1 = _members(groups1)
            around: dict[int, set[int]] = {}
            corroborators: list[bool] = corroborator.tolist()
            first = np.searchsorted(who, several)
            names = group.tolist()
            shared[several] = [
                self._packed(
                    self._corroborated(names[f : f + count], members1, around, corroborators)
                )
                > limit
                for f, count, limit in zip(
                    first.tolist(), seen[several].tolist(), limit_at[several].tolist(), strict=True
                )
            ]
        return counts.tolist(), shared.tolist()

    def customers(self, shared: list[bool]) -> list[list[int]]:
        """``resolution.partition`` of the linkable nodes, as lists of nodes, by smallest key.

        The same partition, without taking every key and edge as tuples: most
        components break no per-type limit and are taken whole, as they come
        out of the integer walk (in order of their smallest node, and each in
        key order). Only one that holds more of a limited type than the limit
        allows goes through ``resolution.constrained``, edge by edge.
        """
        linkable = self._linkable(shared)
        labels = _components(self.src, self.dst, linkable)
        groups = _members(labels)
        types = len(self.limit)
        limit = np.array([-1 if n is None else n for n in self.limit], dtype=np.int64)
        limited = linkable & (limit >= 0)[self.kind_at]
        if not limited.any():
            return list(groups.values())
        held, count = _distinct(labels[limited] * types + self.kind_at[limited])
        over = count > limit[held % types]
        broken = set((held[over] // types).tolist())
        if not broken:
            return list(groups.values())
        keys, adj = self.keys, self.adj
        found: list[list[int]] = []
        for name, members in groups.items():
            if name not in broken:
                found.append(members)
                continue
            index = {keys[n]: n for n in members}
            inside = set(members)  # a member's linkable neighbours are the other members
            edges = [(keys[a], keys[b]) for a in members for b in adj[a] if a < b and b in inside]
            parts = constrained(self.registry, list(index), edges).groups.values()
            found.extend(sorted(index[k] for k in part) for part in parts)
        found.sort(key=lambda members: members[0])
        return found

    def linked_labels(self, shared: list[bool]) -> Ints:
        """Each node's plain connected component over the nodes that are neither blocked
        nor shared, named by its smallest node; -1 for those."""
        return _components(self.src, self.dst, self._linkable(shared))

    def linked_components(self, shared: list[bool], within: Flags | None = None) -> list[list[Key]]:
        """Plain connected components over the nodes that are neither blocked nor shared;
        only those of nodes ``within`` (by key order, whole components) if given."""
        labels = self.linked_labels(shared)
        if within is not None:
            labels = np.where(within, labels, -1)
        keys = self.keys
        groups = _members(labels)
        return [[keys[n] for n in members] for members in groups.values()]

    def _linkable(self, shared: list[bool]) -> Flags:
        linkable: Flags = ~(self.blocked_at | np.array(shared, dtype=bool))
        return linkable

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


class _Adjacency:
    """Each node's neighbours, sliced from the sorted edges when asked for.

    The rules that walk the graph node by node visit a small part of it: a
    list per node, made up front, cost more than all their walks.
    """

    __slots__ = ("_bounds", "_targets")

    def __init__(self, targets: list[int], bounds: list[int]) -> None:
        self._targets = targets  # neighbours of node n: targets[bounds[n]:bounds[n + 1]]
        self._bounds = bounds

    def __getitem__(self, n: int) -> list[int]:
        return self._targets[self._bounds[n] : self._bounds[n + 1]]


def _key_order(keys: list[Key]) -> tuple[list[int], list[tuple[str, int]]]:
    """Positions of ``keys`` in key order (by type, then by value), and each type's count.

    Sorting positions by their keys compares tuples, several times slower
    than comparing strings: the positions of each type are sorted by value
    alone, and the types taken in order.
    """
    by_type: dict[str, list[int]] = {}
    for n, key in enumerate(keys):
        by_type.setdefault(key[0], []).append(n)
    order: list[int] = []
    runs: list[tuple[str, int]] = []
    for name in sorted(by_type):
        positions = by_type[name]
        values = [keys[n][1] for n in positions]
        ranked = sorted(range(len(positions)), key=values.__getitem__)
        order.extend(map(positions.__getitem__, ranked))
        runs.append((name, len(positions)))
    return order, runs


def _both_ways(ends: Ints, size: int) -> tuple[Ints, Ints]:
    """Distinct edges between distinct nodes, each way round, sorted by source then target."""
    pairs = ends.reshape(-1, 2)
    low, high = pairs.min(axis=1), pairs.max(axis=1)
    apart = low != high  # an identifier is not its own neighbour
    once, _ = _distinct(low[apart] * size + high[apart])
    low, high = np.divmod(once, size)
    both = np.sort(np.concatenate((low * size + high, high * size + low)))
    src, dst = np.divmod(both, size)
    return src, dst


def _distinct(values: Ints) -> tuple[Ints, Ints]:
    """The distinct values, in order, and how often each comes.

    What ``np.unique(values, return_counts=True)`` gives, by a sort: numpy's
    ``unique`` hashes integers first, tens of times slower on the hundreds of
    thousands of edge codes of an import.
    """
    ordered = np.sort(values)
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(ordered)))
    return ordered[starts], counts


def _members(labels: Ints) -> dict[int, list[int]]:
    """Nodes by label (labels below 0 left out), in order of label, each in node order."""
    nodes = np.flatnonzero(labels >= 0)
    by_label = np.argsort(labels[nodes], kind="stable")
    nodes = nodes[by_label]
    names = labels[nodes]
    cuts = (np.flatnonzero(np.diff(names)) + 1).tolist()
    starts, stops = [0, *cuts], [*cuts, len(nodes)]
    flat = nodes.tolist()
    if not flat:
        return {}
    return {
        name: flat[start:stop]
        for name, start, stop in zip(names[starts].tolist(), starts, stops, strict=True)
    }


def _components(src: Ints, dst: Ints, member: Flags) -> Ints:
    """Each member's component over member-to-member edges, named by its smallest node; -1 else.

    Every node starts as its own label. Each round, across every edge, both
    ends and both ends' labels take the smaller of the two labels; then each
    node jumps to its label's label until none moves (after Shiloach and
    Vishkin). Labels only fall and always name a node of the component, so
    they settle on its smallest node. Rounds stay few (4 on the benchmark
    graph, 13 for a path of a million nodes in random order), each a few
    passes over the edge arrays.
    """
    inside = (src < dst) & member[src] & member[dst]
    a, b = src[inside], dst[inside]
    label = np.arange(len(member), dtype=np.int64)
    while True:
        low = np.minimum(label[a], label[b])
        lowered = label.copy()
        for ends in (a, b, label[a], label[b]):
            np.minimum.at(lowered, ends, low)
        while not np.array_equal(jumped := lowered[lowered], lowered):
            lowered = jumped
        if np.array_equal(lowered, label):
            break
        label = lowered
    label[~member] = -1
    return label
