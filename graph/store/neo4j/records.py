"""Neo4j values to and from the graph's records, and the Cypher that reads them as such.

The driver turns temporal values into Python objects in Python, at tens of
microseconds each, so moments travel as [epoch seconds, nanoseconds] both
ways; a read returns nodes and customers in the fields these helpers expect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

from graph import jsontext
from graph.models import (
    CustomerRecord,
    HistoryEntry,
    Key,
    NodeRecord,
    StoredEvent,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant(moment: datetime) -> list[int]:
    """A moment sent as [epoch seconds, nanoseconds], made a DateTime again by ``cypher_at``.

    The driver encodes datetime parameters in Python, at tens of microseconds
    each: on a bulk load that was most of the time spent writing events. Two
    integers cost next to nothing and Cypher stores the same DateTime.
    """
    delta = moment - _EPOCH
    return [delta.days * 86_400 + delta.seconds, delta.microseconds * 1000]


def cypher_at(sent: str) -> str:
    """Cypher turning a parameter made by ``instant`` back into a DateTime."""
    return f"datetime({{epochSeconds: {sent}[0], nanosecond: {sent}[1]}})"


def cypher_when(stored: str) -> str:
    """Cypher reading a DateTime as [epoch seconds, nanoseconds], for ``moment_of``.

    The driver decodes DateTime values in Python at about 50 microseconds
    each, which made reading identifiers back the slowest part of resolving.
    """
    return f"[{stored}.epochSeconds, {stored}.nanosecond]"


def moment_of(sent: list[int]) -> datetime:
    return _EPOCH + timedelta(seconds=sent[0], microseconds=sent[1] // 1000)


NODE_FIELDS = (
    "i.type AS type, i.value AS value, i.seq AS seq,"
    f" {cypher_when('i.firstSeen')} AS firstSeen, {cypher_when('i.lastSeen')} AS lastSeen,"
    " i.blocked AS blocked, i.shared AS shared, i.strongNeighbours AS strongNeighbours"
)


# Each OneID in $ids (as id) with its customer now, aliases followed (as survivor),
# those whose survivor was retired left out.
SURVIVORS = (
    "UNWIND $ids AS id MATCH (c:Customer {oneId: id})"
    " OPTIONAL MATCH (c)-[:MERGED_INTO*1..]->(s:Customer) WHERE NOT (s)-[:MERGED_INTO]->()"
    " WITH id, coalesce(s, c) AS survivor WHERE NOT coalesce(survivor.retired, false)"
)

# The same fields as a map, for a list of nodes in one row.
NODE_MAP = (
    "type: i.type, value: i.value, seq: i.seq,"
    f" firstSeen: {cypher_when('i.firstSeen')}, lastSeen: {cypher_when('i.lastSeen')},"
    " blocked: i.blocked, shared: i.shared, strongNeighbours: i.strongNeighbours"
)


def key_of(raw: Any) -> Key:
    return (raw[0], raw[1])


def node_of(record: Any, one_id: str | None) -> NodeRecord:
    return NodeRecord(
        (record["type"], record["value"]),
        record["seq"],
        moment_of(record["firstSeen"]),
        moment_of(record["lastSeen"]),
        record["blocked"],
        record["shared"],
        record["strongNeighbours"],
        one_id,
    )


def node_row(node: NodeRecord) -> dict[str, Any]:
    return {
        "type": node.key[0],
        "value": node.key[1],
        "seq": node.seq,
        "firstSeen": instant(node.first_seen),
        "lastSeen": instant(node.last_seen),
        "blocked": node.blocked,
        "shared": node.shared,
        "strongNeighbours": node.strong_neighbours,
    }


CUSTOMER_FIELDS: LiteralString = (
    " OPTIONAL MATCH (c)-[:MERGED_INTO]->(s:Customer)"
    f" RETURN c.oneId AS oneId, c.seq AS seq, {cypher_when('c.createdAt')} AS createdAt,"
    " s.oneId AS mergedInto, c.retired AS retired, c.anchor AS anchor"
)


def customer_of(r: Any) -> CustomerRecord:
    return CustomerRecord(
        r["oneId"], r["seq"], moment_of(r["createdAt"]), r["mergedInto"], r["retired"], r["anchor"]
    )


def history_of(h: Any) -> HistoryEntry:
    return HistoryEntry(
        h["kind"],
        h["oneId"],
        list(h["others"]),
        moment_of(h["at"]),
        h["reason"],
        jsontext.loads(h["eventIds"]),
        jsontext.loads(h["evidence"]),
    )


def event_of(e: Any) -> StoredEvent:
    return StoredEvent(
        e["seq"],
        e["eventId"],
        e["source"],
        moment_of(e["timestamp"]),
        moment_of(e["receivedAt"]),
        [key_of(k) for k in jsontext.loads(e["keys"])],
        jsontext.loads(e["traits"]),
        [key_of(k) for k in jsontext.loads(e["blocked"])],
        e.get("name"),
        None if e.get("properties") is None else jsontext.loads(e["properties"]),
    )
