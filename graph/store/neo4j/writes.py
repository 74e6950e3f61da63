"""The Neo4j store's writes: a change set, deferred (bulk) events, and their resolution.

Each function runs inside the transaction it is given; the store decides
when a transaction starts and commits (``Neo4jStore.exclusive``). Rows go
over the wire as lists in ``UNWIND`` statements of at most ``_UNWIND_SLICE``
rows, and moments as [epoch seconds, nanoseconds] (``records``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import neo4j
from neo4j import ManagedTransaction

from graph import jsontext
from graph.models import (
    ChangeSet,
    EdgeObservation,
    Key,
    NodeRecord,
    Pair,
    pair,
)
from graph.store.neo4j.records import (
    cypher_at,
    cypher_when,
    instant,
    key_of,
    moment_of,
    node_row,
)

EventRow = tuple[int, str, datetime, list[Key]]  # seq, source, timestamp, keys


@dataclass
class Deferred:
    """Deferred events this process wrote, from the first one pending on, summed up.

    Each identifier's events and each source's evidence per pair are summed up
    chunk by chunk while Neo4j writes the chunk, so resolving the events does
    not begin by going over all of them again.
    """

    first: int
    rows: list[EventRow]
    blocked: set[Key]
    seqs: dict[Key, list[int]]
    evidence: dict[tuple[Pair, str], EdgeObservation]

    def extend(self, later: Deferred) -> None:
        self.rows.extend(later.rows)
        self.blocked.update(later.blocked)
        for key, seqs in later.seqs.items():
            self.seqs.setdefault(key, []).extend(seqs)
        for found, o in later.evidence.items():
            seen = self.evidence.get(found)
            if seen is None:
                self.evidence[found] = o
                continue
            seen.first_seen = min(seen.first_seen, o.first_seen)
            seen.last_seen = max(seen.last_seen, o.last_seen)
            seen.count += o.count


def summed_deferred(rows: list[EventRow], blocked: set[Key]) -> Deferred:
    return Deferred(rows[0][0], rows, blocked, _event_lists(rows), _evidence_by_pair(rows))


Tx = ManagedTransaction | neo4j.Transaction


def write_changes(tx: Tx, c: ChangeSet, remembered: Deferred | None = None) -> int | None:
    """One transaction: everything in ``c`` is kept, or none of it.

    Returns the first pending deferred event before a deferred write (None if
    there was none), so the store knows whether it has seen them all.
    """
    for key in c.removed_nodes:
        found = tx.run(
            "MATCH (i:Identifier {type: $t, value: $v}) RETURN coalesce(i.events, []) AS seqs",
            t=key[0],
            v=key[1],
        ).single()
        events = tx.run(
            "UNWIND $seqs AS seq MATCH (e:Event {seq: seq}) RETURN e.seq AS seq, e.keys AS keys",
            seqs=found["seqs"] if found else [],
        ).data()
        _unwind(
            tx,
            "UNWIND $rows AS r MATCH (e:Event {seq: r.seq}) SET e.keys = r.keys",
            rows=[
                {
                    "seq": e["seq"],
                    "keys": jsontext.dumps(
                        [k for k in jsontext.loads(e["keys"]) if key_of(k) != key]
                    ),
                }
                for e in events
            ],
        )
        tx.run("MATCH (i:Identifier {type: $t, value: $v}) DETACH DELETE i", t=key[0], v=key[1])
    _unwind(
        tx,
        "UNWIND $rows AS r CREATE (:Customer {oneId: r.oneId, seq: r.seq,"
        f" createdAt: {cypher_at('r.createdAt')}, retired: r.retired, anchor: r.anchor}})",
        rows=[
            {
                "oneId": x.one_id,
                "seq": x.seq,
                "createdAt": instant(x.created_at),
                "retired": x.retired,
                "anchor": x.anchor,
            }
            for x in c.new_customers
        ],
    )
    created: set[Key] = set()
    last_node = max((n.seq for n in c.new_nodes), default=0)
    if c.settles_deferred:
        pending = pending_from(tx)
        if pending is not None:
            given = {n.key: n for n in c.new_nodes}
            created, last = materialise_deferred(tx, pending, given, c.assignments, remembered)
            last_node = max(last_node, last)
    _unwind(
        tx,
        "UNWIND $rows AS r MERGE (i:Identifier {type: r.type, value: r.value})"
        f" SET i.seq = r.seq, i.firstSeen = {cypher_at('r.firstSeen')},"
        f" i.lastSeen = {cypher_at('r.lastSeen')},"
        " i.blocked = r.blocked, i.shared = r.shared, i.strongNeighbours = r.strongNeighbours",
        rows=[
            node_row(n) for n in [*c.new_nodes, *c.node_updates.values()] if n.key not in created
        ],
    )
    assigned = dict(c.assignments)
    for n in c.new_nodes:
        if n.key not in assigned and n.one_id is not None:
            assigned[n.key] = n.one_id
    _unwind(
        tx,
        "UNWIND $rows AS r MATCH (i:Identifier {type: r.type, value: r.value})"
        " OPTIONAL MATCH (i)-[old:BELONGS_TO]->() DELETE old"
        " WITH i, r WHERE r.oneId IS NOT NULL"
        " MATCH (c:Customer {oneId: r.oneId}) CREATE (i)-[:BELONGS_TO]->(c)",
        rows=[
            {"type": k[0], "value": k[1], "oneId": o}
            for k, o in assigned.items()
            if k not in created
        ],
    )
    # The events of one write share their receivedAt: it is sent once per run of equal ones.
    for received, group in itertools.groupby(c.events, key=lambda e: e.received_at):
        create_events(
            tx,
            [
                [
                    e.seq,
                    e.event_id,
                    e.source,
                    instant(e.timestamp),
                    jsontext.dumps(e.keys),
                    jsontext.dumps(e.traits),
                    jsontext.dumps(e.blocked),
                    e.name,
                    None if e.properties is None else jsontext.dumps(e.properties),
                ]
                for e in group
            ],
            instant(received),
        )
    pending_before: int | None = None
    if c.deferred and c.events:
        pending_before = defer_events(tx, min(e.seq for e in c.events), 0)
    else:
        _link(tx, [(e.seq, e.source, e.timestamp, e.keys) for e in c.events])
    _unwind(
        tx,
        "UNWIND $rows AS r MATCH (c:Customer {oneId: r.oneId})"
        " SET c.retired = r.retired, c.anchor = r.anchor"
        " WITH c, r OPTIONAL MATCH (c)-[was:MERGED_INTO]->(other:Customer)"
        " WHERE other.oneId <> r.mergedInto OR r.mergedInto IS NULL DELETE was"
        " WITH DISTINCT c, r WHERE r.mergedInto IS NOT NULL"
        " MATCH (s:Customer {oneId: r.mergedInto}) MERGE (c)-[:MERGED_INTO]->(s)",
        rows=[
            {
                "oneId": x.one_id,
                "retired": x.retired,
                "mergedInto": x.merged_into,
                "anchor": x.anchor,
            }
            for x in c.customer_updates
        ],
    )
    if c.history:
        (start,) = tx.run("MATCH (h:History) RETURN count(h) AS n").single() or (0,)
        _unwind(
            tx,
            "UNWIND $rows AS r CREATE (h:History {seq: r.seq, kind: r.kind, oneId: r.oneId,"
            f" others: r.others, at: {cypher_at('r.at')}, reason: r.reason, eventIds: r.eventIds,"
            " evidence: r.evidence})"
            " WITH h, r UNWIND r.subjects AS id MATCH (c:Customer {oneId: id})"
            " MERGE (h)-[:CONCERNS]->(c)",
            rows=[
                {
                    "seq": start + n,
                    "kind": h.kind,
                    "oneId": h.one_id,
                    "others": h.others,
                    "at": instant(h.at),
                    "reason": h.reason,
                    "eventIds": jsontext.dumps(h.event_ids),
                    "evidence": jsontext.dumps(h.evidence),
                    "subjects": sorted({h.one_id, *h.others}),
                }
                for n, h in enumerate(c.history)
            ],
        )
    if c.settles_deferred:
        tx.run("MATCH (s:IdgraphState {id: 1}) REMOVE s.unresolvedFrom")
    tx.run(
        "MATCH (s:IdgraphState {id: 1})"
        " SET s.nodeSeq = CASE WHEN $node > s.nodeSeq THEN $node ELSE s.nodeSeq END,"
        " s.customerSeq = CASE WHEN $customer > s.customerSeq THEN $customer"
        " ELSE s.customerSeq END,"
        " s.eventSeq = CASE WHEN $event > s.eventSeq THEN $event ELSE s.eventSeq END",
        node=last_node,
        customer=max((x.seq for x in c.new_customers), default=0),
        event=max((e.seq for e in c.events), default=0),
    )
    return pending_before


def create_events(tx: Tx, rows: list[list[Any]], received: list[int]) -> None:
    """Event nodes from rows of [seq, eventId, source, timestamp, keys, traits, blocked,
    name, properties]; an identity event has neither of the last two (null is not stored)."""
    _unwind(
        tx,
        f"WITH {cypher_at('$received')} AS received UNWIND $rows AS r"
        " CREATE (:Event {seq: r[0], eventId: r[1], source: r[2],"
        f" timestamp: {cypher_at('r[3]')}, receivedAt: received, keys: r[4], traits: r[5],"
        " blocked: r[6], name: r[7], properties: r[8]})",
        rows,
        received=received,
    )


def defer_events(tx: Tx, first: int, last: int) -> int | None:
    """Mark events from ``first`` on as deferred; returns the first one pending before.

    Deferred (bulk) events are kept as they are; their identifiers, evidence
    and event lists are materialised when they are resolved. ``last`` raises
    the event counter to the last event written (0 leaves it to the caller).
    """
    record = tx.run(
        "MATCH (s:IdgraphState {id: 1}) WITH s, s.pendingFrom AS before"
        " SET s.unresolvedFrom = coalesce(s.unresolvedFrom, $first),"
        " s.pendingFrom = coalesce(s.pendingFrom, $first),"
        " s.eventSeq = CASE WHEN $last > s.eventSeq THEN $last ELSE s.eventSeq END"
        " RETURN before",
        first=first,
        last=last,
    ).single()
    return record["before"] if record else None


def keys_of(text: str) -> list[Key]:
    return [key_of(k) for k in jsontext.loads(text)]


_UNWIND_SLICE = 10_000


class Rows(list[Any]):
    """A list parameter that prints as its length.

    The driver formats every statement's parameters with ``repr`` for a debug
    log line before the logger drops it: for 10,000 rows that costs about as
    much as sending them. Packing takes the list as a list.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


def _unwind(tx: Tx, query: LiteralString, rows: list[Any], **params: Any) -> None:
    """Run an ``UNWIND $rows`` statement in slices, and not at all with no rows.

    Neo4j counts a statement's parameters against the transaction's memory
    limit, so a first import's hundred thousand identifiers go in slices of
    ``_UNWIND_SLICE``. Every statement costs a round trip, and query planning
    the first time it is seen; a bulk load's batches leave most with no rows.
    Nothing waits for the statement: the client goes on with what follows
    while Neo4j runs it, and the next statement or the commit waits for it
    (and raises its error).
    """
    for start in range(0, len(rows), _UNWIND_SLICE):
        tx.run(query, params, rows=Rows(rows[start : start + _UNWIND_SLICE]))


def pending_from(tx: Tx) -> int | None:
    record = tx.run("MATCH (s:IdgraphState {id: 1}) RETURN s.pendingFrom AS p").single()
    return None if record is None else record["p"]


def materialise_deferred(
    tx: Tx,
    first: int,
    given: Mapping[Key, NodeRecord],
    assignments: Mapping[Key, str | None],
    remembered: Deferred | None,
) -> tuple[set[Key], int]:
    """Bring in the identifiers, evidence and event lists of deferred events from ``first`` on.

    Identifiers the resolver hands over a new record for (all of them on a
    first bulk load, the new ones on a later part of it) are created as they
    are, with their event lists and customers (``assignments`` first, else the
    record's OneID); so is every SEEN_WITH that
    touches one of them, as it cannot exist yet. Only the rest is merged:
    known identifiers widen their sightings and get the new events, unknown
    ones are numbered in order of first sighting, like a loader numbering
    them would, and evidence between known identifiers accumulates.
    ``remembered`` spares reading back events this process wrote itself.
    Returns the keys created from ``given`` and the last sequence number used.
    """
    if remembered is not None and remembered.first == first:
        events, blocked = remembered.rows, remembered.blocked
        seqs, by_pair = remembered.seqs, remembered.evidence
    else:
        events, blocked = [], set()
        for r in tx.run(
            "MATCH (e:Event) WHERE e.seq >= $first RETURN e.seq AS seq, e.source AS source,"
            f" {cypher_when('e.timestamp')} AS ts, e.keys AS keys, e.blocked AS blocked"
            " ORDER BY seq",
            first=first,
        ):
            carried = [key_of(k) for k in jsontext.loads(r["keys"])]
            events.append((r["seq"], r["source"], moment_of(r["ts"]), carried))
            blocked.update(key_of(k) for k in jsontext.loads(r["blocked"]))
        seqs, by_pair = _event_lists(events), _evidence_by_pair(events)
    keys = dict.fromkeys(k for *_, ks in events for k in ks)
    tx.run("MATCH (s:IdgraphState {id: 1}) REMOVE s.pendingFrom")
    created = [k for k in keys if k in given]
    evidence = list(by_pair.values())
    if created:
        one_id = {k: assignments[k] if k in assignments else given[k].one_id for k in created}
        evidence = _create_identifiers(tx, [given[k] for k in created], one_id, seqs, evidence)
    last = max((given[k].seq for k in created), default=0)
    rest = [k for k in keys if k not in given]
    if rest:
        record = tx.run("MATCH (s:IdgraphState {id: 1}) RETURN s.nodeSeq AS n").single()
        last = max(last, record["n"] if record else 0)
        seen: dict[Key, list[Any]] = {}
        for _, _, ts, event_keys in events:
            for key in event_keys:
                if key in given:
                    continue
                row = seen.get(key)
                if row is None:
                    last += 1
                    seen[key] = [key[0], key[1], last, ts, ts, key in blocked, seqs[key]]
                elif ts < row[3]:
                    row[3] = ts
                elif ts > row[4]:
                    row[4] = ts
        _unwind(
            tx,
            f"UNWIND $rows AS r WITH r, {cypher_at('r[3]')} AS first, {cypher_at('r[4]')} AS last"
            " MERGE (i:Identifier {type: r[0], value: r[1]})"
            " ON CREATE SET i.seq = r[2], i.firstSeen = first, i.lastSeen = last,"
            " i.blocked = r[5], i.shared = false, i.strongNeighbours = 0, i.events = r[6]"
            " ON MATCH SET i.firstSeen = CASE WHEN first < i.firstSeen THEN first"
            " ELSE i.firstSeen END, i.lastSeen = CASE WHEN last > i.lastSeen THEN last"
            " ELSE i.lastSeen END, i.events = coalesce(i.events, []) + r[6]",
            rows=[[*row[:3], instant(row[3]), instant(row[4]), *row[5:]] for row in seen.values()],
        )
    _evidence_into(tx, evidence, set(created))
    return set(created), last


# An identifier created from a row ``n`` made by ``_identifier_row``.
_NEW_IDENTIFIER: LiteralString = (
    "(i:Identifier {type: n[0], value: n[1], seq: n[2],"
    f" firstSeen: {cypher_at('n[3]')}, lastSeen: {cypher_at('n[4]')}, blocked: n[5],"
    " shared: n[6], strongNeighbours: n[7], events: n[8]})"
)
_CREATE_CUSTOMERS_IDENTIFIERS: LiteralString = (
    "UNWIND $rows AS r OPTIONAL MATCH (c:Customer {oneId: r[0]})"
    f" CALL (c, r) {{ UNWIND r[1] AS n CREATE {_NEW_IDENTIFIER}"
    " FOREACH (_ IN CASE WHEN c IS NULL THEN [] ELSE [1] END | CREATE (i)-[:BELONGS_TO]->(c))"
    # Positions in r[1] are in order of seq: ORDER BY makes collect keep that order.
    " WITH i ORDER BY i.seq RETURN collect(i) AS nodes }"
    " CALL (r, nodes) { UNWIND r[2] AS e WITH nodes[e[0]] AS a, nodes[e[1]] AS b, e"
    f" CREATE (a)-[:SEEN_WITH {{source: e[2], firstSeen: {cypher_at('e[3]')},"
    f" lastSeen: {cypher_at('e[4]')}, count: e[5]}}]->(b) }}"
)


def _create_identifiers(
    tx: Tx,
    nodes: list[NodeRecord],
    one_id: Mapping[Key, str | None],
    seqs: Mapping[Key, list[int]],
    evidence: list[EdgeObservation],
) -> list[EdgeObservation]:
    """Create identifiers that do not exist yet, with their customers and the evidence inside them.

    One row per customer carries its identifiers and the SEEN_WITH evidence
    between them by position in that list, so the statement creates the
    relationships between the nodes it has just made: a first load spares two
    index lookups per relationship and one per identifier for its customer,
    about a sixth of its final transaction. Identifiers of no customer are
    created one row each. Returns the rest of ``evidence``, still to write.
    """
    members: dict[str, list[NodeRecord]] = {}
    loose: list[list[Any]] = []
    for node in sorted(nodes, key=lambda n: n.seq):
        owner = one_id[node.key]
        if owner is None:
            loose.append(_identifier_row(node, seqs[node.key]))
        else:
            members.setdefault(owner, []).append(node)
    place = {n.key: (owner, p) for owner, group in members.items() for p, n in enumerate(group)}
    inside: dict[str, list[list[Any]]] = {}
    rest: list[EdgeObservation] = []
    for o in evidence:
        a, b = place.get(o.a), place.get(o.b)
        if a is None or b is None or a[0] != b[0]:
            rest.append(o)
            continue
        inside.setdefault(a[0], []).append(
            [a[1], b[1], o.source, instant(o.first_seen), instant(o.last_seen), o.count]
        )
    rows: list[list[Any]] = []
    size = 0
    for owner, group in members.items():
        rows.append(
            [
                owner,
                [_identifier_row(n, seqs[n.key]) for n in group],
                inside.get(owner, []),
            ]
        )
        size += len(group)
        # Not waited for, like _unwind's: Neo4j creates a slice while the next is built.
        if size >= _UNWIND_SLICE // 4:
            tx.run(_CREATE_CUSTOMERS_IDENTIFIERS, rows=Rows(rows))
            rows, size = [], 0
    if rows:
        tx.run(_CREATE_CUSTOMERS_IDENTIFIERS, rows=Rows(rows))
    _unwind(tx, f"UNWIND $rows AS n CREATE {_NEW_IDENTIFIER}", loose)
    return rest


def _identifier_row(node: NodeRecord, events: list[int]) -> list[Any]:
    return [
        *node.key,
        node.seq,
        instant(node.first_seen),
        instant(node.last_seen),
        node.blocked,
        node.shared,
        node.strong_neighbours,
        events,
    ]


def _link(tx: Tx, events: list[EventRow]) -> None:
    """Each identifier's list of events, and each source's SEEN_WITH evidence per pair.

    The events are the evidence (as in every store): each source's SEEN_WITH
    relationship accumulates the events that carried both identifiers.
    """
    _unwind(
        tx,
        "UNWIND $rows AS r MATCH (i:Identifier {type: r[0], value: r[1]})"
        " SET i.events = coalesce(i.events, []) + r[2]",
        rows=[[k[0], k[1], s] for k, s in _event_lists(events).items()],
    )
    _evidence_into(tx, _evidence(events), set())


def _evidence_into(tx: Tx, evidence: list[EdgeObservation], created: set[Key]) -> None:
    """Write SEEN_WITH evidence, created outright where an end is in ``created``.

    Those ends were created in this transaction, so no SEEN_WITH of theirs can
    exist yet. Evidence between identifiers stored before accumulates on what
    is there. Both ends are found by key: asking for the element ids of the
    identifiers just written cost more than the index lookups it spared.
    """
    fresh: list[EdgeObservation] = []
    known: list[EdgeObservation] = []
    for o in evidence:
        (fresh if o.a in created or o.b in created else known).append(o)
    ends: LiteralString = (
        "UNWIND $rows AS r MATCH (a:Identifier {type: r[0][0], value: r[0][1]}),"
        " (b:Identifier {type: r[1][0], value: r[1][1]})"
    )
    _unwind(
        tx,
        ends + f" CREATE (a)-[:SEEN_WITH {{source: r[2], firstSeen: {cypher_at('r[3]')},"
        f" lastSeen: {cypher_at('r[4]')}, count: r[5]}}]->(b)",
        rows=_evidence_rows(fresh),
    )
    _unwind(
        tx,
        ends + f" WITH a, b, r, {cypher_at('r[3]')} AS first, {cypher_at('r[4]')} AS last"
        " MERGE (a)-[s:SEEN_WITH {source: r[2]}]->(b)"
        " ON CREATE SET s.firstSeen = first, s.lastSeen = last, s.count = r[5]"
        " ON MATCH SET s.firstSeen = CASE WHEN first < s.firstSeen THEN first"
        " ELSE s.firstSeen END, s.lastSeen = CASE WHEN last > s.lastSeen THEN last"
        " ELSE s.lastSeen END, s.count = s.count + r[5]",
        rows=_evidence_rows(known),
    )


def _evidence_rows(evidence: list[EdgeObservation]) -> list[list[Any]]:
    return [
        [list(o.a), list(o.b), o.source, instant(o.first_seen), instant(o.last_seen), o.count]
        for o in evidence
    ]


def _event_lists(events: list[EventRow]) -> dict[Key, list[int]]:
    seqs: dict[Key, list[int]] = {}
    for seq, _, _, keys in events:
        for key in dict.fromkeys(keys):
            seqs.setdefault(key, []).append(seq)
    return seqs


def _evidence(events: list[EventRow]) -> list[EdgeObservation]:
    """Each source's evidence per pair, aggregated over ``events``."""
    return list(_evidence_by_pair(events).values())


def _evidence_by_pair(events: list[EventRow]) -> dict[tuple[Pair, str], EdgeObservation]:
    found: dict[tuple[Pair, str], EdgeObservation] = {}
    for _, source, ts, keys in events:
        for a, b in itertools.combinations(dict.fromkeys(keys), 2):
            p = pair(a, b)
            seen = found.get((p, source))
            if seen is None:
                found[(p, source)] = EdgeObservation(p[0], p[1], source, ts, ts)
            else:
                seen.first_seen = min(seen.first_seen, ts)
                seen.last_seen = max(seen.last_seen, ts)
                seen.count += 1
    return found
