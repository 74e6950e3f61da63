"""Tags in Neo4j, beside the identity graph: nodes holding rows, found by indexed properties.

Definitions, each customer's tags, manual tags, the change log and due times
are nodes of their own labels, keyed by OneID (and tag), their JSON as text.
A ``TagWrites`` that follows an identity change is written in that change's
transaction (``write_rows``); one of its own in an exclusive batch of its own.

Rollups are not stored here: the events they sum are, and writing a rollup
beside every event cost as much again as the event. The writing process
keeps the rollups, tags and due times of the customers it wrote or read
last, as the embedded store does; a customer not held has its rollup made
from its events. Every idgraph writer takes the lock node and counts its
batch on it, so a process knows what it holds is still so when the batch it
starts follows the last one it saw; when another process wrote in between,
it lets go of all of it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, LiteralString

import neo4j

from graph import jsontext
from graph.store.recent import Recent
from graph.tags.models import (
    CustomerTag,
    ManualTag,
    StoredDefinition,
    TagChange,
    TagSource,
    TagStatus,
    TagWrites,
)
from graph.tags.rollups import Rollup, micros, moment_of

TAG_SCHEMA: list[LiteralString] = [
    "CREATE CONSTRAINT tag_definition IF NOT EXISTS FOR (d:TagDefinition) REQUIRE d.id IS UNIQUE",
    "CREATE INDEX tag_definition_version IF NOT EXISTS FOR (v:TagDefinitionVersion) ON (v.id)",
    "CREATE INDEX customer_tag IF NOT EXISTS FOR (t:CustomerTag) ON (t.oneId)",
    "CREATE INDEX customer_tag_by_tag IF NOT EXISTS FOR (t:CustomerTag) ON (t.tagId)",
    "CREATE INDEX manual_tag IF NOT EXISTS FOR (m:ManualTag) ON (m.oneId)",
    "CREATE INDEX tag_change IF NOT EXISTS FOR (c:TagChange) ON (c.oneId)",
    "CREATE INDEX tag_change_by_tag IF NOT EXISTS FOR (c:TagChange) ON (c.tagId)",
    "CREATE CONSTRAINT tag_due IF NOT EXISTS FOR (d:TagDue) REQUIRE d.oneId IS UNIQUE",
    "CREATE INDEX tag_due_time IF NOT EXISTS FOR (d:TagDue) ON (d.due)",
]
# Rollups were once stored as nodes: a database that has them lets them go at start.
RETIRED_TAG_NODES: list[LiteralString] = [
    "MATCH (r:TagRollup) CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS",
    "MATCH (t:TagTraits) CALL (t) { DELETE t } IN TRANSACTIONS OF 10000 ROWS",
]
RETIRED_TAG_SCHEMA: list[LiteralString] = [
    "DROP INDEX tag_rollup IF EXISTS",
    "DROP CONSTRAINT tag_traits IF EXISTS",
]

Read = Callable[..., list[neo4j.Record]]
Tx = neo4j.ManagedTransaction | neo4j.Transaction
# Runs work on a transaction in an exclusive batch, then ``done`` once it is committed.
Write = Callable[[Callable[[Tx], None], Callable[[], None]], None]
_dumps = jsontext.dumps


def _definition(r: neo4j.Record) -> StoredDefinition:
    return StoredDefinition(
        StoredDefinition.parse(r["definition"]),
        r["version"],
        TagStatus(r["status"]),
        r["progress"],
        datetime.fromisoformat(r["changedAt"]),
    )


def _value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Neo4jTags:
    """The tag store protocol on a Neo4j database.

    ``read`` runs a query in the current exclusive batch or a read
    transaction; ``write`` runs work in the current exclusive batch or one of
    its own; ``batch`` is the number of the exclusive batch this thread is in
    (None outside one). What is held is used inside batches only: a read
    outside one cannot tell whether another process wrote since.
    """

    def __init__(
        self,
        read: Read,
        write: Write,
        batch: Callable[[], int | None],
        cached: int = 20_000,
        logged: Callable[[Tx, TagWrites], None] | None = None,
    ) -> None:
        self._read = read
        self._write = write
        self._batch = batch
        self._logged = logged  # tells other processes which customers a write touched
        self._lock = threading.Lock()
        self._as_of: int | None = None  # the batch after which what is held is so
        self._wrote_in: int | None = None  # the batch that wrote tag rows last
        self._rollups: Recent[Rollup] = Recent(cached)
        self._tags: Recent[dict[str, CustomerTag]] = Recent(cached)
        self._due: Recent[tuple[datetime | None]] = Recent(cached)  # (None,): never due

    # --- what is held ----------------------------------------------------------------------
    def _in_batch(self) -> int | None:
        """The exclusive batch this thread is in, once what is held is good for it."""
        batch = self._batch()
        if batch is None:
            return None
        with self._lock:
            if self._as_of != batch - 1:  # another process wrote since, or nothing is held
                self._let_go()
                self._as_of = batch - 1
        return batch

    def _let_go(self) -> None:
        self._rollups.clear()
        self._tags.clear()
        self._due.clear()

    def _keeps_reads(self, batch: int) -> bool:
        """A read may be kept until this batch writes tag rows: it would see them uncommitted."""
        with self._lock:
            return self._wrote_in != batch

    def committed(self, writes: TagWrites | None = None) -> None:
        """``writes`` is committed: what it wrote is held now, what it dropped is not.

        Without ``writes``, a batch that changed no customer's state (a definition).
        """
        batch = self._batch()
        with self._lock:
            if batch is None or self._as_of not in (batch - 1, batch):
                # A later batch already began after it (what it held is gone then).
                self._let_go()
                return
            self._as_of = batch
            if writes is None:
                return
            for rollup in writes.rollups.values():
                rollup.settle()
            self._rollups.committed(writes.rollups, writes.dropped | writes.rebuilt)
            self._tags.committed(writes.tags, writes.dropped)
            due = {o: (d,) for o, d in writes.due.items() if d is not None}
            self._due.committed(due, writes.dropped)

    # --- definitions -----------------------------------------------------------------------
    def tag_definitions(self) -> list[StoredDefinition]:
        rows = self._read(
            "MATCH (d:TagDefinition) RETURN d.id AS id, d.version AS version,"
            " d.definition AS definition, d.status AS status, d.progress AS progress,"
            " d.changedAt AS changedAt ORDER BY id"
        )
        return [_definition(r) for r in rows]

    def definition_versions(self, tag_id: str) -> list[StoredDefinition]:
        rows = self._read(
            "MATCH (v:TagDefinitionVersion {id: $id}) RETURN v.version AS version,"
            " v.definition AS definition, 'READY' AS status, 1.0 AS progress,"
            " v.changedAt AS changedAt ORDER BY version",
            id=tag_id,
        )
        return [_definition(r) for r in rows]

    def save_definition(self, stored: StoredDefinition, keep_version: bool = True) -> None:
        self._write(lambda tx: save_definition(tx, stored, keep_version), self.committed)

    def delete_definition(self, tag_id: str) -> None:
        def delete(tx: Tx) -> None:
            tx.run("MATCH (d:TagDefinition {id: $id}) DELETE d", id=tag_id)

        self._write(delete, self.committed)

    # --- each customer's state -------------------------------------------------------------
    def rollups(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        if self._in_batch() is None:
            return {}
        return self._rollups.read(set(one_ids), _none, keep=False)

    def rollup_heads(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        return {}  # Neo4j keeps no rollups: a reader makes them from the events

    def tag_state(
        self, one_ids: Iterable[str]
    ) -> tuple[dict[str, Rollup], dict[str, dict[str, CustomerTag]], dict[str, datetime]]:
        wanted = set(one_ids)
        batch = self._in_batch()
        if batch is None:
            tags, due = self._stored_state(wanted)
            return {}, _held_tags(tags), _held_due(due)
        keep = self._keeps_reads(batch)
        due_read: dict[str, tuple[datetime | None]] = {}

        def stored_tags(missing: set[str]) -> dict[str, dict[str, CustomerTag]]:
            # Due times are read beside them for every customer not held whole.
            lacking = missing | (wanted - self._due.read(wanted, _none, keep=False).keys())
            tags, due = self._stored_state(lacking)
            due_read.update(due)
            return {o: tags[o] for o in missing}

        def stored_due(missing: set[str]) -> dict[str, tuple[datetime | None]]:
            unread = missing - due_read.keys()
            if unread:
                due_read.update(self._stored_state(unread)[1])
            return {o: due_read[o] for o in missing}

        tags = self._tags.read(wanted, stored_tags, keep)
        due = self._due.read(wanted, stored_due, keep)
        rollups = self._rollups.read(wanted, _none, keep=False)
        return rollups, _held_tags(tags), _held_due(due)

    def _stored_state(
        self, one_ids: set[str]
    ) -> tuple[dict[str, dict[str, CustomerTag]], dict[str, tuple[datetime | None]]]:
        """Every one of these customers' tags and due time as stored (none: empty, never)."""
        if not one_ids:
            return {}, {}
        (row,) = self._read(
            "CALL () { UNWIND $ids AS id MATCH (t:CustomerTag {oneId: id})"
            " RETURN collect([t.oneId, t.tagId, t.value, t.since, t.source, t.by]) AS tags }"
            " CALL () { UNWIND $ids AS id MATCH (d:TagDue {oneId: id})"
            " RETURN collect([d.oneId, d.due]) AS due }"
            " RETURN tags, due",
            ids=sorted(one_ids),
        )
        tags: dict[str, dict[str, CustomerTag]] = {o: {} for o in one_ids}
        for one_id, tag_id, value, since, source, by in row["tags"]:
            tags[one_id][tag_id] = CustomerTag(
                json.loads(value), datetime.fromisoformat(since), TagSource(source), by
            )
        due: dict[str, tuple[datetime | None]] = {o: (None,) for o in one_ids}
        due.update((one_id, (moment_of(at),)) for one_id, at in row["due"])
        return tags, due

    def customer_tags(self, one_ids: Iterable[str]) -> dict[str, dict[str, CustomerTag]]:
        return self.tag_state(one_ids)[1]

    def due_of(self, one_ids: Iterable[str]) -> dict[str, datetime]:
        return self.tag_state(one_ids)[2]

    def manual_tags(self, one_ids: Iterable[str]) -> list[ManualTag]:
        rows = self._read(
            "UNWIND $ids AS id MATCH (m:ManualTag {oneId: id})"
            " RETURN m.oneId AS oneId, m.tagId AS tagId, m.by AS by, m.at AS at",
            ids=sorted(set(one_ids)),
        )
        return [
            ManualTag(r["oneId"], r["tagId"], r["by"], datetime.fromisoformat(r["at"]))
            for r in rows
        ]

    def tag_changes(self, one_ids: Iterable[str], tag_id: str | None) -> list[TagChange]:
        rows = self._read(
            "UNWIND $ids AS id MATCH (c:TagChange {oneId: id})"
            " WHERE $tag IS NULL OR c.tagId = $tag"
            " RETURN c.oneId AS oneId, c.tagId AS tagId, c.before AS before, c.after AS after,"
            " c.at AS at, c.cause AS cause ORDER BY c.n",
            ids=sorted(set(one_ids)),
            tag=tag_id,
        )
        return [
            TagChange(
                r["oneId"],
                r["tagId"],
                _value(r["before"]),
                _value(r["after"]),
                datetime.fromisoformat(r["at"]),
                json.loads(r["cause"]),
            )
            for r in rows
        ]

    def segment_log(self, tag_id: str) -> list[TagChange]:
        rows = self._read(
            "MATCH (c:TagChange {tagId: $tag}) RETURN c.oneId AS oneId, c.before AS before,"
            " c.after AS after, c.at AS at, c.cause AS cause ORDER BY c.n",
            tag=tag_id,
        )
        return [
            TagChange(
                r["oneId"],
                tag_id,
                _value(r["before"]),
                _value(r["after"]),
                datetime.fromisoformat(r["at"]),
                json.loads(r["cause"]),
            )
            for r in rows
        ]

    def due(self, until: datetime, limit: int) -> list[str]:
        rows = self._read(
            "MATCH (d:TagDue) WHERE d.due <= $until RETURN d.oneId AS oneId"
            " ORDER BY d.due LIMIT $limit",
            until=micros(until),
            limit=limit,
        )
        return [r["oneId"] for r in rows]

    def tagged(self, tag_id: str) -> list[str]:
        rows = self._read("MATCH (t:CustomerTag {tagId: $tag}) RETURN t.oneId AS oneId", tag=tag_id)
        return [r["oneId"] for r in rows]

    # --- writes ----------------------------------------------------------------------------
    def forget_rollups(self) -> None:
        # An empty batch: it counts, so every process lets go of what it holds.
        self._write(lambda tx: None, self._let_go)

    def write_tags(self, writes: TagWrites) -> None:
        if writes:
            self._write(lambda tx: self.write_rows(tx, writes), lambda: self.committed(writes))

    def write_rows(self, tx: Tx, writes: TagWrites, logged: bool = True) -> None:
        """``writes`` as nodes, inside the caller's transaction: one statement, one round trip.

        The caller calls ``committed`` once the transaction is; ``logged``
        False when the caller logs the customers touched itself.
        """
        with self._lock:
            self._wrote_in = self._batch()
        write_tag_rows(tx, writes)
        if logged and self._logged is not None:
            self._logged(tx, writes)


def _none(missing: set[str]) -> dict[str, Any]:
    return {}


def _held_tags(found: dict[str, dict[str, CustomerTag]]) -> dict[str, dict[str, CustomerTag]]:
    return {o: tags for o, tags in found.items() if tags}


def _held_due(found: dict[str, tuple[datetime | None]]) -> dict[str, datetime]:
    return {o: due for o, (due,) in found.items() if due is not None}


def save_definition(tx: Tx, stored: StoredDefinition, keep_version: bool) -> None:
    params = {
        "id": stored.definition.id,
        "version": stored.version,
        "definition": stored.as_json(),
        "status": stored.status.value,
        "progress": stored.progress,
        "at": stored.changed_at.isoformat(),
    }
    tx.run(
        "MERGE (d:TagDefinition {id: $id}) SET d.version = $version,"
        " d.definition = $definition, d.status = $status, d.progress = $progress,"
        " d.changedAt = $at",
        params,
    )
    if keep_version:
        tx.run(
            "MERGE (v:TagDefinitionVersion {id: $id, version: $version})"
            " SET v.definition = $definition, v.changedAt = $at",
            params,
        )


_WRITE: LiteralString = """
CALL () { UNWIND $dropped AS id MATCH (t:CustomerTag {oneId: id}) DELETE t }
CALL () { UNWIND $dropped AS id MATCH (d:TagDue {oneId: id}) DELETE d }
CALL () {
  UNWIND $retagged AS r MATCH (t:CustomerTag {oneId: r[0]}) USING INDEX t:CustomerTag(oneId)
  WHERE t.tagId = r[1] DELETE t
}
CALL () {
  UNWIND $tags AS r
  CREATE (:CustomerTag {oneId: r.o, tagId: r.t, value: r.v, since: r.s, source: r.src, by: r.by})
}
CALL () { UNWIND $due AS r MERGE (d:TagDue {oneId: r.o}) SET d.due = r.d }
CALL () {
  UNWIND $added AS r MERGE (m:ManualTag {oneId: r.o, tagId: r.t}) SET m.by = r.by, m.at = r.at
}
CALL () { UNWIND $removed AS r MATCH (m:ManualTag {oneId: r[0], tagId: r[1]}) DELETE m }
CALL () {
  WITH size($changes) AS count WHERE count > 0
  MERGE (c:TagLogCounter {id: 1}) SET c.n = coalesce(c.n, 0) + count
  WITH c.n - count AS first, count
  UNWIND range(0, count - 1) AS i
  WITH first + i AS n, $changes[i] AS r
  CREATE (:TagChange {n: n, oneId: r.o, tagId: r.t, before: r.b, after: r.a, at: r.at,
                      cause: r.c})
}
RETURN 1 AS done
"""


def write_tag_rows(tx: Tx, w: TagWrites) -> None:
    """``w``'s rows as nodes (its rollups are held, not written): one statement."""
    tx.run(
        _WRITE,
        dropped=sorted(w.dropped),
        retagged=[[o, t] for o, rows in w.rows.items() for t in rows],
        tags=[
            {
                "o": o,
                "t": t,
                "v": _dumps(x.value),
                "s": x.since.isoformat(),
                "src": x.source.value,
                "by": x.by,
            }
            for o, rows in w.rows.items()
            for t, x in rows.items()
            if x is not None
        ],
        # A customer never due keeps NEVER from the tagger; None is not written.
        due=[{"o": o, "d": micros(d)} for o, d in w.due.items() if d is not None],
        added=[
            {"o": m.one_id, "t": m.tag_id, "by": m.by, "at": m.at.isoformat()}
            for m in w.manual_added
        ],
        removed=[list(r) for r in w.manual_removed],
        changes=[
            {
                "o": c.one_id,
                "t": c.tag_id,
                "b": None if c.before is None else _dumps(c.before),
                "a": None if c.after is None else _dumps(c.after),
                "at": c.at.isoformat(),
                "c": _dumps(c.cause),
            }
            for c in w.changes
        ],
    ).consume()
