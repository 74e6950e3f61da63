"""Resolution: the partition of linkable identifiers into customers, as a pure function.

The partition depends on the evidence and the rules only, never on arrival
order: edges are taken in a canonical order (strongest link first, then the
keys) and joined with union-find, refusing any join that would break a
per-type limit. Incremental ingest and a full rebuild run this same function,
so they agree by construction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from graph.identifiers import IdentifierRegistry
from graph.models import Key, Pair
from graph.pacing import every_few


@dataclass(frozen=True, slots=True)
class RefusedLink:
    """An evidence edge that was not followed because the join broke a limit."""

    edge: Pair
    limit_type: str
    limit: int


@dataclass
class Partition:
    components: list[frozenset[Key]]
    accepted: list[Pair] = field(default_factory=list)
    refused: list[RefusedLink] = field(default_factory=list)

    def component_of(self) -> dict[Key, int]:
        return {key: index for index, comp in enumerate(self.components) for key in comp}


def partition(
    registry: IdentifierRegistry,
    nodes: Iterable[Key],
    edges: Iterable[Pair],
    plain: list[list[Key]] | None = None,
) -> Partition:
    """Constrained connected components over linkable nodes; see the module docstring.

    Order matters only where a limit can refuse a join: in a plain connected
    component that holds more identifiers of a limited type than the limit
    allows. Every other component is taken whole, in any order; only the
    over-limit ones are joined edge by edge, strongest first. A caller that
    already knows the plain components passes them as ``plain``.
    """
    limits = {name: t.limit for name, t in registry.types.items() if t.limit is not None}
    inside = set(nodes)
    live = [e for e in every_few(edges) if e[0] in inside and e[1] in inside and e[0] != e[1]]
    if plain is None:
        plain = _plain_components(inside, live)
    group_of = {key: index for index, group in every_few(enumerate(plain)) for key in group}
    over = {index for index, group in every_few(enumerate(plain)) if _over_limit(group, limits)}
    result = Partition(components=[])
    result.accepted = [e for e in every_few(live) if group_of[e[0]] not in over]
    groups = [group for index, group in enumerate(plain) if index not in over]
    if over:
        joined = constrained(
            registry,
            [key for index in sorted(over) for key in plain[index]],
            [e for e in live if group_of[e[0]] in over],
        )
        groups.extend(joined.groups.values())
        result.accepted += joined.accepted
        result.refused = joined.refused
    result.components = sorted((frozenset(g) for g in groups), key=min)
    return result


def _plain_components(nodes: set[Key], edges: list[Pair]) -> list[list[Key]]:
    parent = {key: key for key in nodes}
    for a, b in every_few(edges):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[Key, list[Key]] = {}
    for key in every_few(parent):
        groups.setdefault(_find(parent, key), []).append(key)
    return list(groups.values())


def _over_limit(group: list[Key], limits: Mapping[str, int]) -> bool:
    if not limits:
        return False
    counts = Counter(key[0] for key in group if key[0] in limits)
    return any(n > limits[kind] for kind, n in counts.items())


def _find(parent: dict[Key, Key], key: Key) -> Key:
    root = key
    while parent[root] != root:
        root = parent[root]
    while parent[key] != root:
        parent[key], key = root, parent[key]
    return root


@dataclass
class Constrained:
    groups: dict[Key, list[Key]]
    accepted: list[Pair]
    refused: list[RefusedLink]


def constrained(registry: IdentifierRegistry, nodes: list[Key], edges: list[Pair]) -> Constrained:
    """Union-find over edges strongest first, refusing any join that would break a limit.

    ``edges`` are canonical pairs (``models.pair``) between ``nodes``.
    """
    limits = {name: t.limit for name, t in registry.types.items() if t.limit is not None}
    parent = {key: key for key in nodes}
    counts = {key: Counter({key[0]: 1}) if key[0] in limits else Counter() for key in nodes}
    priority = {name: kind.priority for name, kind in registry.types.items()}

    def strongest_first(edge: Pair) -> tuple[int, int, Pair]:
        """A link is as strong as its weaker end, then its stronger end; keys break ties."""
        pa, pb = priority.get(edge[0][0], 0), priority.get(edge[1][0], 0)
        return (-min(pa, pb), -max(pa, pb), edge)

    result = Constrained({}, [], [])
    for edge in sorted(edges, key=strongest_first):
        ra, rb = _find(parent, edge[0]), _find(parent, edge[1])
        if ra == rb:
            continue
        broken = _broken_limit(counts[ra], counts[rb], limits)
        if broken is not None:
            result.refused.append(RefusedLink(edge, broken, limits[broken]))
            continue
        # Attach the smaller root under the larger key-wise to stay order-free.
        if rb < ra:
            ra, rb = rb, ra
        parent[rb] = ra
        counts[ra] += counts.pop(rb)
        result.accepted.append(edge)
    for key in parent:
        result.groups.setdefault(_find(parent, key), []).append(key)
    return result


def _broken_limit(
    a: Mapping[str, int], b: Mapping[str, int], limits: Mapping[str, int]
) -> str | None:
    for type_name in sorted(set(a) & set(b)):
        if a[type_name] + b[type_name] > limits[type_name]:
            return type_name
    return None
