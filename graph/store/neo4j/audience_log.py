"""Which customers each write touched, for the other processes serving the same Neo4j.

Every process keeps its own audience index (``graph.segments``) and brings
it up to date from its own writes as they commit. What another process
wrote it learns from this log: each write that touches customers appends
one entry (a number from a counter, the writing process, the OneIDs), in
the write's transaction; a reader asks for the entries after the last one
it saw, skips its own, and reads again only the customers named. Entries
older than an hour are let go; a process that fell further behind than
that makes its index again.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

import neo4j

from graph.models import ChangeSet
from graph.tags.models import TagWrites
from graph.tags.rollups import micros

Tx = neo4j.Transaction | neo4j.ManagedTransaction
Read = Callable[..., list[neo4j.Record]]

AUDIENCE_LOG_SCHEMA: list[LiteralString] = [
    "CREATE INDEX audience_log IF NOT EXISTS FOR (l:AudienceLog) ON (l.n)",
]
KEPT = timedelta(hours=1)
PRUNE_EVERY = 500  # entries this process writes between two prunings

_APPEND: LiteralString = """
MERGE (c:AudienceLogCounter {id: 1}) SET c.n = coalesce(c.n, 0) + 1
CREATE (:AudienceLog {n: c.n, writer: $writer, at: $at, oneIds: $ids})
"""
_PRUNE: LiteralString = """
MATCH (l:AudienceLog) WHERE l.at < $before WITH l LIMIT 10000 DELETE l
"""


def touched_by(changes: ChangeSet) -> set[str]:
    """The customers an identity change may move in or out of an audience."""
    found = {c.one_id for c in changes.new_customers} | {u.one_id for u in changes.customer_updates}
    if isinstance(changes.tags, TagWrites):
        found |= touched_by_tags(changes.tags)
    return found


def touched_by_tags(writes: TagWrites) -> set[str]:
    return set(writes.rows) | set(writes.rollups) | writes.dropped


class AudienceLog:
    def __init__(self, read: Read) -> None:
        self.writer = uuid.uuid4().hex  # this process
        self._read = read
        self._appended = itertools.count(1)

    def append(self, tx: Tx, one_ids: Iterable[str]) -> None:
        """One entry naming ``one_ids``, in the caller's transaction."""
        ids = sorted(set(one_ids))
        if not ids:
            return
        now = datetime.now(UTC)
        tx.run(_APPEND, writer=self.writer, at=micros(now), ids=ids)
        if next(self._appended) % PRUNE_EVERY == 0:
            tx.run(_PRUNE, before=micros(now - KEPT))

    def since(self, position: int | None) -> tuple[int, list[str]] | None:
        """The last entry's number and the OneIDs other processes named after ``position``.

        None: entries after ``position`` were let go already (the reader is too
        far behind to catch up from the log).
        """
        if position is None:
            rows = self._read("MATCH (c:AudienceLogCounter {id: 1}) RETURN c.n AS n")
            return (rows[0]["n"] if rows else 0), []
        rows = self._read(
            "MATCH (l:AudienceLog) WHERE l.n > $after"
            " RETURN l.n AS n, l.writer AS writer, l.oneIds AS ids ORDER BY l.n",
            after=position,
        )
        if rows and rows[0]["n"] != position + 1:
            return None
        found: dict[str, Any] = {}
        for r in rows:
            if r["writer"] != self.writer:
                found.update(dict.fromkeys(r["ids"]))
        return (rows[-1]["n"] if rows else position), list(found)
