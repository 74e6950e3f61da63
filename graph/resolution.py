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
    registry: IdentifierRegistry, nodes: Iterable[Key], edges: Iterable[Pair]
) -> Partition:
    """Constrained connected components over linkable nodes; see the module docstring."""
    parent: dict[Key, Key] = {}
    counts: dict[Key, Counter[str]] = {}
    limits = {name: t.limit for name, t in registry.types.items() if t.limit is not None}
    for key in nodes:
        parent[key] = key
        counts[key] = Counter({key[0]: 1}) if key[0] in limits else Counter()

    def find(key: Key) -> Key:
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:
            parent[key], key = root, parent[key]
        return root

    result = Partition(components=[])
    priority = {name: kind.priority for name, kind in registry.types.items()}

    def strongest_first(edge: Pair) -> tuple[int, int, Pair]:
        """A link is as strong as its weaker end, then its stronger end; keys break ties."""
        pa, pb = priority.get(edge[0][0], 0), priority.get(edge[1][0], 0)
        return (-min(pa, pb), -max(pa, pb), edge)

    ordered = sorted(
        (e for e in edges if e[0] in parent and e[1] in parent and e[0] != e[1]),
        key=strongest_first,
    )
    for edge in ordered:
        ra, rb = find(edge[0]), find(edge[1])
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
    groups: dict[Key, list[Key]] = {}
    for key in parent:
        groups.setdefault(find(key), []).append(key)
    result.components = sorted((frozenset(g) for g in groups.values()), key=min)
    return result


def _broken_limit(
    a: Mapping[str, int], b: Mapping[str, int], limits: Mapping[str, int]
) -> str | None:
    for type_name in sorted(set(a) & set(b)):
        if a[type_name] + b[type_name] > limits[type_name]:
            return type_name
    return None
