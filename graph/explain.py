"""Why two identifiers are, or are not, one customer.

The answer is recomputed from the evidence with the same partition function
resolution uses, so an explanation can never disagree with the result.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from graph.identifiers import IdentifierRegistry, IdentifierStatus, Normalised
from graph.models import EdgeObservation, Key, NodeRecord, Pair, pair
from graph.resolution import partition
from graph.store.protocol import GraphReads


@dataclass
class LinkStep:
    a: Key
    b: Key
    observations: list[EdgeObservation]


@dataclass
class Explanation:
    joined: bool
    reason: (
        str  # SAME_CUSTOMER | DIFFERENT_CUSTOMERS | LIMIT | SHARED | BLOCKED | INVALID | UNKNOWN
    )
    message: str
    one_id_a: str | None = None
    one_id_b: str | None = None
    path: list[LinkStep] = field(default_factory=list)
    via: list[Key] = field(default_factory=list)
    limit_type: str | None = None


def _status_reason(side: str, n: Normalised, node: NodeRecord | None) -> Explanation | None:
    if n.status is IdentifierStatus.INVALID:
        return Explanation(False, "INVALID", f"{side} is not a valid {n.type}: {n.reason}")
    if n.status is IdentifierStatus.BLOCKED:
        return Explanation(False, "BLOCKED", f"{side} {n.type}:{n.value} is a blocked placeholder")
    if node is None:
        return Explanation(False, "UNKNOWN", f"{side} {n.type}:{n.value} was never seen")
    if node.shared:
        return Explanation(
            False,
            "SHARED",
            f"{side} {n.type}:{n.value} is shared by too many customers and links nothing",
            via=[n.key],
        )
    return None


def _path(edges: list[Pair], start: Key, goal: Key) -> list[Pair]:
    adjacency: dict[Key, list[Key]] = {}
    for a, b in edges:
        adjacency.setdefault(a, []).append(b)
        adjacency.setdefault(b, []).append(a)
    previous: dict[Key, Key | None] = {start: None}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        if key == goal:
            break
        for other in sorted(adjacency.get(key, ())):
            if other not in previous:
                previous[other] = key
                queue.append(other)
    steps: list[Pair] = []
    node: Key | None = goal
    while node is not None and previous.get(node) is not None:
        before = previous[node]
        assert before is not None
        steps.append((before, node))
        node = before
    return list(reversed(steps))


def explain_link(
    store: GraphReads, registry: IdentifierRegistry, a: Normalised, b: Normalised
) -> Explanation:
    nodes = store.nodes(n.key for n in (a, b) if n.value is not None)
    for side, n in (("a", a), ("b", b)):
        early = _status_reason(side, n, nodes.get(n.key) if n.value is not None else None)
        if early is not None:
            return early
    one_a, one_b = nodes[a.key].one_id, nodes[b.key].one_id
    region, edges = store.component([a.key], {})
    result = partition(registry, region, edges)
    where = result.component_of()
    if a.key == b.key or where.get(b.key) == where.get(a.key):
        # Any evidence inside the customer explains the link, not only the edges
        # union-find happened to take, so the shortest such path is shown.
        inside = [e for e in edges if where.get(e[0]) == where.get(e[1]) == where[a.key]]
        steps = _path(inside, a.key, b.key)
        found: dict[Pair, list[EdgeObservation]] = {pair(x, y): [] for x, y in steps}
        for o in store.observations(found):
            found[pair(o.a, o.b)].append(o)
        return Explanation(
            True,
            "SAME_CUSTOMER",
            f"joined by a path of {len(steps)} evidence link(s)",
            one_a,
            one_b,
            [LinkStep(x, y, found[pair(x, y)]) for x, y in steps],
        )
    if b.key in region:
        ca, cb = where[a.key], where[b.key]
        for refused in result.refused:
            sides = {where[refused.edge[0]], where[refused.edge[1]]}
            if sides == {ca, cb}:
                return Explanation(
                    False,
                    "LIMIT",
                    f"joining them would give one customer more than {refused.limit} "
                    f"{refused.limit_type}; the link {refused.edge[0][0]}:{refused.edge[0][1]} - "
                    f"{refused.edge[1][0]}:{refused.edge[1][1]} was refused",
                    one_a,
                    one_b,
                    limit_type=refused.limit_type,
                    path=[
                        LinkStep(
                            refused.edge[0], refused.edge[1], store.observations([refused.edge])
                        )
                    ],
                )
        return Explanation(
            False, "LIMIT", "their customers are kept apart by per-type limits", one_a, one_b
        )
    members_b = store.members([one_b]).get(one_b, set()) if one_b else {b.key}
    members_a = {k for k in region if where.get(k) == where[a.key]}
    around_a = store.neighbours(members_a)
    bridges: set[Key] = set()
    for neighbours in around_a.values():
        bridges |= neighbours
    bridge_nodes = store.nodes(bridges - members_a)
    via = sorted(k for k, n in bridge_nodes.items() if not n.linkable)
    touching_b = [k for k, others in store.neighbours(via).items() if others & members_b]
    if touching_b:
        kind = "SHARED" if any(bridge_nodes[k].shared for k in touching_b) else "BLOCKED"
        names = ", ".join(f"{k[0]}:{k[1]}" for k in touching_b[:5])
        return Explanation(
            False,
            kind,
            f"they are seen together only through {names}, which links nothing "
            f"({'shared by too many customers' if kind == 'SHARED' else 'a placeholder'})",
            one_a,
            one_b,
            via=touching_b,
        )
    return Explanation(False, "DIFFERENT_CUSTOMERS", "no evidence connects them", one_a, one_b)
