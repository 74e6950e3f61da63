"""Tags in Neo4j, beside the identity graph: nodes holding rows, found by indexed properties.

Definitions, each customer's tags, manual tags, the change log, due times and
rollup buckets are nodes of their own labels, keyed by OneID (and tag or
bucket), their JSON as text. A ``TagWrites`` that follows an identity change
is written in that change's transaction (``write_tag_rows``); one of its own
inside the current exclusive batch, or in a write transaction of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, LiteralString

import neo4j

from graph import jsontext
from graph.tags.models import (
    CustomerTag,
    ManualTag,
    StoredDefinition,
    TagChange,
    TagSource,
    TagStatus,
    TagWrites,
)
from graph.tags.rollups import Bucket, Rollup, bucket_key, bucket_key_text, micros, moment_of

TAG_SCHEMA: list[LiteralString] = [
    "CREATE CONSTRAINT tag_definition IF NOT EXISTS FOR (d:TagDefinition) REQUIRE d.id IS UNIQUE",
    "CREATE INDEX tag_definition_version IF NOT EXISTS FOR (v:TagDefinitionVersion) ON (v.id)",
    "CREATE INDEX customer_tag IF NOT EXISTS FOR (t:CustomerTag) ON (t.oneId)",
    "CREATE INDEX customer_tag_by_tag IF NOT EXISTS FOR (t:CustomerTag) ON (t.tagId)",
    "CREATE INDEX manual_tag IF NOT EXISTS FOR (m:ManualTag) ON (m.oneId)",
    "CREATE INDEX tag_change IF NOT EXISTS FOR (c:TagChange) ON (c.oneId)",
    "CREATE CONSTRAINT tag_due IF NOT EXISTS FOR (d:TagDue) REQUIRE d.oneId IS UNIQUE",
    "CREATE INDEX tag_due_time IF NOT EXISTS FOR (d:TagDue) ON (d.due)",
    "CREATE INDEX tag_rollup IF NOT EXISTS FOR (r:TagRollup) ON (r.oneId)",
    "CREATE CONSTRAINT tag_traits IF NOT EXISTS FOR (t:TagTraits) REQUIRE t.oneId IS UNIQUE",
]

Read = Callable[..., list[neo4j.Record]]
Tx = neo4j.ManagedTransaction | neo4j.Transaction
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
    transaction; ``write`` runs work on a transaction in the current batch or
    a write transaction of its own.
    """

    def __init__(self, read: Read, write: Callable[[Callable[[Tx], None]], None]) -> None:
        self._read = read
        self._write = write

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
        self._write(lambda tx: save_definition(tx, stored, keep_version))

    def delete_definition(self, tag_id: str) -> None:
        def delete(tx: Tx) -> None:
            tx.run("MATCH (d:TagDefinition {id: $id}) DELETE d", id=tag_id)

        self._write(delete)

    def rollups(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        return self.tag_state(one_ids)[0]

    def tag_state(
        self, one_ids: Iterable[str]
    ) -> tuple[dict[str, Rollup], dict[str, dict[str, CustomerTag]], dict[str, datetime]]:
        (row,) = self._read(
            "CALL () { UNWIND $ids AS id MATCH (t:TagTraits {oneId: id})"
            " RETURN collect([t.oneId, t.traits]) AS traits }"
            " CALL () { UNWIND $ids AS id MATCH (r:TagRollup {oneId: id})"
            " RETURN collect([r.oneId, r.bucket, r.events]) AS buckets }"
            " CALL () { UNWIND $ids AS id MATCH (t:CustomerTag {oneId: id})"
            " RETURN collect([t.oneId, t.tagId, t.value, t.since, t.source, t.by]) AS tags }"
            " CALL () { UNWIND $ids AS id MATCH (d:TagDue {oneId: id})"
            " RETURN collect([d.oneId, d.due]) AS due }"
            " RETURN traits, buckets, tags, due",
            ids=sorted(set(one_ids)),
        )
        tags: dict[str, dict[str, CustomerTag]] = {}
        for one_id, tag_id, value, since, source, by in row["tags"]:
            tags.setdefault(one_id, {})[tag_id] = CustomerTag(
                json.loads(value), datetime.fromisoformat(since), TagSource(source), by
            )
        due = {one_id: moment_of(at) for one_id, at in row["due"]}
        return self._rollups_of(row), tags, due

    @staticmethod
    def _rollups_of(row: neo4j.Record) -> dict[str, Rollup]:
        found: dict[str, Rollup] = {}
        for one_id, traits in row["traits"]:
            found[one_id] = Rollup.from_head(json.loads(traits))
        for one_id, key, events in row["buckets"]:
            rollup = found.get(one_id)
            if rollup is None:
                rollup = found[one_id] = Rollup()
            rollup.buckets[bucket_key(key)] = Bucket.stored(events)
        return found

    def customer_tags(self, one_ids: Iterable[str]) -> dict[str, dict[str, CustomerTag]]:
        rows = self._read(
            "UNWIND $ids AS id MATCH (t:CustomerTag {oneId: id}) RETURN t.oneId AS oneId,"
            " t.tagId AS tagId, t.value AS value, t.since AS since, t.source AS source,"
            " t.by AS by",
            ids=sorted(set(one_ids)),
        )
        found: dict[str, dict[str, CustomerTag]] = {}
        for r in rows:
            found.setdefault(r["oneId"], {})[r["tagId"]] = CustomerTag(
                json.loads(r["value"]),
                datetime.fromisoformat(r["since"]),
                TagSource(r["source"]),
                r["by"],
            )
        return found

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

    def due_of(self, one_ids: Iterable[str]) -> dict[str, datetime]:
        rows = self._read(
            "UNWIND $ids AS id MATCH (d:TagDue {oneId: id}) RETURN d.oneId AS oneId, d.due AS due",
            ids=sorted(set(one_ids)),
        )
        return {r["oneId"]: moment_of(r["due"]) for r in rows}

    def forget_rollups(self) -> None:
        def forget(tx: Tx) -> None:
            tx.run("MATCH (r:TagRollup) DELETE r")
            tx.run("MATCH (t:TagTraits) DELETE t")

        self._write(forget)

    def write_tags(self, writes: TagWrites) -> None:
        if writes:
            self._write(lambda tx: write_tag_rows(tx, writes))


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
CALL () { UNWIND $gone AS id MATCH (r:TagRollup {oneId: id}) DELETE r }
CALL () { UNWIND $gone AS id MATCH (t:TagTraits {oneId: id}) DELETE t }
CALL () { UNWIND $dropped AS id MATCH (t:CustomerTag {oneId: id}) DELETE t }
CALL () { UNWIND $dropped AS id MATCH (d:TagDue {oneId: id}) DELETE d }
CALL () {
  UNWIND $buckets AS r MERGE (b:TagRollup {oneId: r.o, bucket: r.b})
  SET b.events = r.e
}
CALL () { UNWIND $heads AS r MERGE (t:TagTraits {oneId: r.o}) SET t.traits = r.t }
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
    """``w`` as nodes, inside the caller's transaction: one statement, one round trip."""
    buckets, heads = [], []
    for one_id, rollup in w.rollups.items():
        whole = one_id in w.rebuilt
        for key, bucket in rollup.buckets.items():
            if whole or bucket.changed:
                buckets.append({"o": one_id, "b": bucket_key_text(key), "e": bucket.text()})
        if whole or rollup.head_changed:
            heads.append({"o": one_id, "t": _dumps(rollup.head_json())})
    tx.run(
        _WRITE,
        gone=sorted(w.dropped | w.rebuilt),
        dropped=sorted(w.dropped),
        buckets=buckets,
        heads=heads,
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
