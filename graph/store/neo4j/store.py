"""The Neo4j store: the identity graph as a graph a Neo4j user can query in Cypher.

    (:Identifier {type, value, seq, firstSeen, lastSeen, blocked, shared, strongNeighbours,
                  events})
    (:Identifier)-[:SEEN_WITH {source, firstSeen, lastSeen, count}]->(:Identifier)
    (:Identifier)-[:BELONGS_TO]->(:Customer {oneId, seq, createdAt, retired, anchor})
    (:Customer)-[:MERGED_INTO]->(:Customer)
    (:Event {seq, eventId, source, timestamp, receivedAt, keys, traits, blocked, name,
             properties})
    (:History {kind, oneId, others, at, reason, eventIds, evidence})-[:CONCERNS]->(:Customer)

``SEEN_WITH`` points from the smaller key to the larger, one relationship per
source; an identifier's ``events`` lists the sequence numbers of the events
that carried it. The ``(:IdgraphState)`` node keeps the sequence counters and, during a
bulk load, the first event whose resolution is deferred. Every read is one
round trip; every ``apply`` is one managed write transaction of batched
``UNWIND`` statements, retried by the driver on transient errors. Several
service processes can share one database: what a writing process holds
between batches (the graph it read and wrote last, ``HeldGraph``; tags and
rollups, ``tags``) it lets go of when another process wrote in between.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, LiteralString, TypeVar

import neo4j
from neo4j import GraphDatabase, RoutingControl
from neo4j.exceptions import DriverError, Neo4jError, TransientError

from graph import jsontext
from graph.errors import StoreConflict, StoreUnavailable
from graph.event_chunk import EventChunk
from graph.models import (
    ChangeSet,
    CustomerRecord,
    CustomerSource,
    EdgeObservation,
    FirstLoad,
    HistoryEntry,
    Key,
    Neighbourhood,
    NodeRecord,
    Pair,
    StoredEvent,
    pair,
)
from graph.store.held_graph import HeldGraph
from graph.store.neo4j.accounts import ACCOUNT_SCHEMA, Neo4jAccounts
from graph.store.neo4j.audience_log import (
    AUDIENCE_LOG_SCHEMA,
    AudienceLog,
    touched_by,
    touched_by_tags,
)
from graph.store.neo4j.records import (
    CUSTOMER_FIELDS,
    NODE_FIELDS,
    NODE_MAP,
    SURVIVORS,
    customer_of,
    cypher_when,
    event_of,
    history_of,
    instant,
    key_of,
    moment_of,
    node_of,
)
from graph.store.neo4j.tags import (
    RETIRED_TAG_NODES,
    RETIRED_TAG_SCHEMA,
    TAG_SCHEMA,
    Neo4jTags,
)
from graph.store.neo4j.writes import (
    Deferred,
    EventRow,
    Rows,
    Tx,
    create_events,
    defer_events,
    keys_of,
    materialise_deferred,
    pending_from,
    summed_deferred,
    write_changes,
)
from graph.store.read_retry import read_steadily

T = TypeVar("T")

# Community edition has uniqueness constraints (composite ones too) and range indexes.
_SCHEMA: list[LiteralString] = [
    "CREATE CONSTRAINT state_id IF NOT EXISTS FOR (s:IdgraphState) REQUIRE s.id IS UNIQUE",
    "CREATE CONSTRAINT identifier_key IF NOT EXISTS"
    " FOR (i:Identifier) REQUIRE (i.type, i.value) IS UNIQUE",
    "CREATE CONSTRAINT customer_one_id IF NOT EXISTS FOR (c:Customer) REQUIRE c.oneId IS UNIQUE",
    "CREATE CONSTRAINT event_id IF NOT EXISTS FOR (e:Event) REQUIRE e.eventId IS UNIQUE",
    "CREATE CONSTRAINT event_seq IF NOT EXISTS FOR (e:Event) REQUIRE e.seq IS UNIQUE",
    "CREATE INDEX identifier_seq IF NOT EXISTS FOR (i:Identifier) ON (i.seq)",
    "CREATE INDEX customer_anchor IF NOT EXISTS FOR (c:Customer) ON (c.anchor)",
]


STALE_COMMIT_MARK_SECONDS = 10.0  # see Neo4jStore.version


class Neo4jStore:
    """A ``GraphStore`` in a Neo4j database, through the official driver."""

    reads_block = True  # every read is a round trip to the database
    writes_block = True  # and so is every write

    def __init__(
        self,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        resolve_every: int = 40_000,
    ) -> None:
        # Neo4j holds a transaction's changes in memory (by default at most 70% of the
        # heap for all of them): on a 1 GiB heap a first import of 100,000 events
        # resolved at once is refused, 40,000 at a time is not.
        self.resolve_every: int | None = resolve_every
        auth = (user, password or "") if user else None
        self._driver = GraphDatabase.driver(
            uri,
            auth=auth,
            connection_timeout=5,
            connection_acquisition_timeout=10,
            max_transaction_retry_time=5,  # rides out a blip; an outage is reported
            notifications_min_severity="OFF",  # "property does not exist yet" on a new graph
        )
        self._database = database or "neo4j"
        self._local = threading.local()  # the exclusive batch this thread is in, if any
        self._deferred: Deferred | None = None
        self._schema_ready = False
        self._lock_id = ""
        self._commits_id = ""
        self._in_flight = itertools.count(-1, -1)
        self._seen_committing: tuple[int, int, float] | None = None  # marks, since when
        self._held = HeldGraph()  # what this process's batches read and wrote last
        self.account_store = Neo4jAccounts(
            self._driver, self._database, self._guard, self._ensure_schema
        )
        self.audience_log = AudienceLog(self._read)
        self.tag_store = Neo4jTags(
            self._read,
            self._write_tags,
            lambda: getattr(self._local, "batch", None),
            logged=lambda tx, writes: self.audience_log.append(tx, touched_by_tags(writes)),
        )
        self._ensure_schema()

    # --- plumbing -------------------------------------------------------------------
    def _guard(self, work: Callable[[], T]) -> T:
        """Run ``work``; a database that cannot be reached is the store's problem, typed."""
        try:
            return work()
        except (DriverError, Neo4jError) as exc:
            _refused(exc)
            if isinstance(exc, Neo4jError) and exc.code and ".ClientError." in exc.code:
                raise
            if isinstance(exc, TransientError):
                raise StoreConflict(f"Neo4j asked to retry: {exc}") from exc
            raise StoreUnavailable(f"Neo4j could not serve the request: {exc}") from exc

    def _read(self, query: LiteralString, **params: Any) -> list[neo4j.Record]:
        self._ensure_schema()
        params = {k: Rows(v) if type(v) is list else v for k, v in params.items()}
        tx: neo4j.Transaction | None = getattr(self._local, "tx", None) or getattr(
            self._local, "read_tx", None
        )
        if tx is not None:  # an exclusive batch reads what it has written so far
            return self._guard(lambda: list(tx.run(query, params)))
        return self._guard(
            lambda: (
                self._driver.execute_query(
                    query, params, database_=self._database, routing_=RoutingControl.READ
                ).records
            )
        )

    def _holder(self) -> HeldGraph | None:
        """What is held, for the reads of the batch this thread runs before it writes.

        Never for any other reader: only the batch knows that no other process
        wrote since what is held was so.
        """
        if getattr(self._local, "tx", None) is None or not self._held.answering:
            return None
        return self._held

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One explicit transaction that first takes the write lock of the lock node.

        Every idgraph writer takes that lock first, so batches from several
        processes run one after another and cannot deadlock one another. If
        the batch fails it is rolled back whole; ingest is idempotent by
        eventId, so the client sends it again.
        """
        if getattr(self._local, "tx", None) is not None:
            yield
            return
        self._ensure_schema()
        session = self._guard(lambda: self._driver.session(database=self._database))
        try:
            tx = self._guard(session.begin_transaction)
            # Found by id, not by an index: a writer waiting here holds no label lock
            # that the writer it waits for could need (that would be a deadlock).
            batch: int = self._guard(
                lambda: tx.run(
                    "MATCH (l) WHERE elementId(l) = $lock"
                    " SET l.batches = coalesce(l.batches, 0) + 1 RETURN l.batches AS n",
                    lock=self._lock_id,
                ).single(strict=True)["n"]
            )
            self._local.tx = tx
            self._local.batch = batch
            self._local.committed = []
            self._held.begin(batch)
            try:
                yield
            except BaseException:
                self._deferred = None
                self._held.let_go()
                with contextlib.suppress(DriverError, Neo4jError):
                    tx.rollback()
                raise
            finally:
                self._local.tx = None
            self._mark_commits(
                # Holding the lock, every earlier batch has committed whole or not at all.
                "SET c.settled = coalesce(c.committing, 0), c.committing = $n",
                batch,
            )
            try:
                self._guard(tx.commit)
            except BaseException:
                self._deferred = None
                self._held.let_go()
                raise
            finally:
                self._mark_commits(  # never left unequal but by a writer that died
                    "SET c.settled = CASE WHEN coalesce(c.settled, 0) < $n THEN $n"
                    " ELSE c.settled END",
                    batch,
                )
            for done in self._local.committed:
                done()
            self._held.finished(batch)
        finally:
            self._local.batch = None
            session.close()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Neo4jStore]:
        """One read transaction for one API request, from the driver's pool; no lock of ours."""
        if getattr(self._local, "tx", None) is not None or getattr(self._local, "read_tx", None):
            yield self
            return
        self._ensure_schema()
        session = self._guard(
            lambda: self._driver.session(
                database=self._database, default_access_mode=neo4j.READ_ACCESS
            )
        )
        try:
            tx = self._guard(session.begin_transaction)
            self._local.read_tx = tx
            try:
                yield self
            finally:
                self._local.read_tx = None
                with contextlib.suppress(DriverError, Neo4jError):
                    tx.close()
        finally:
            session.close()

    def load(self) -> None:
        self._ensure_schema()  # quietly: a database that is down now is reported per call

    def version(self) -> int:
        """The last batch that committed; while one is committing, a number never repeated.

        Neo4j makes a transaction's changes visible record by record as it
        applies them, so a statement can see part of a batch and a count on the
        lock node, one more record, could still show the batch before it. Each
        batch therefore marks the commits node "committing" in a transaction
        of its own, finished before its own commit starts, and "settled" in
        another once the commit has returned: a read that finds the two equal
        both before and after it, and the same both times, saw no batch in part.
        """
        rows = self._read(
            "MATCH (c) WHERE elementId(c) = $commits"
            " RETURN coalesce(c.committing, 0) AS committing, coalesce(c.settled, 0) AS settled",
            commits=self._commits_id,
        )
        if not rows:
            return 0
        return self._version_of(rows[0]["committing"], rows[0]["settled"])

    def _version_of(self, committing: int, settled: int) -> int:
        """``version`` from the two commit marks as read."""
        committing, settled = int(committing), int(settled)
        if committing == settled:
            return committing
        # A commit is applied in milliseconds: marks left unequal for longer are
        # those of a writer that died between its commit and its second mark
        # (the next batch mends them); nothing is half applied any more.
        now = time.monotonic()
        seen = self._seen_committing
        if seen is None or seen[:2] != (committing, settled):
            self._seen_committing = (committing, settled, now)
        elif now - seen[2] > STALE_COMMIT_MARK_SECONDS:
            return committing
        return next(self._in_flight)

    def _mark_commits(self, change: LiteralString, batch: int) -> None:
        """``change`` to the commits node, in a transaction of its own, committed on return."""
        query: LiteralString = "MATCH (c) WHERE elementId(c) = $commits " + change
        self._guard(
            lambda: self._driver.execute_query(
                query, commits=self._commits_id, n=batch, database_=self._database
            )
        )

    def _ensure_schema(self) -> None:
        """Constraints and indexes, idempotently; retried until the database answers once."""
        if self._schema_ready:
            return
        try:
            for statement in [*_SCHEMA, *ACCOUNT_SCHEMA, *TAG_SCHEMA, *AUDIENCE_LOG_SCHEMA]:
                self._driver.execute_query(statement, database_=self._database)
            with self._driver.session(database=self._database) as session:
                for statement in RETIRED_TAG_NODES:  # in transactions of their own
                    session.run(statement).consume()
            for statement in RETIRED_TAG_SCHEMA:
                self._driver.execute_query(statement, database_=self._database)
            found = self._driver.execute_query(
                "MERGE (s:IdgraphState {id: 1}) ON CREATE SET s.nodeSeq = 0,"
                " s.customerSeq = 0, s.eventSeq = 0"
                " MERGE (s)-[:WRITE_LOCK]->(l:IdgraphLock)"
                " MERGE (s)-[:COMMITS]->(c:IdgraphCommits)"
                " RETURN elementId(l) AS lock, elementId(c) AS commits",
                database_=self._database,
            )
            self._lock_id = found.records[0]["lock"]
            self._commits_id = found.records[0]["commits"]
        except (DriverError, Neo4jError) as exc:
            _refused(exc)
            if isinstance(exc, Neo4jError) and exc.code and ".ClientError." in exc.code:
                raise
            return  # unreachable now; every later call tries again and reports it typed
        self._schema_ready = True

    def close(self) -> None:
        self._driver.close()

    def healthy(self) -> bool:
        try:
            with self._driver.session(database=self._database) as session:
                session.run("RETURN 1").consume()  # one try: a health check must answer fast
        except (DriverError, Neo4jError):
            return False
        self._ensure_schema()
        return self._schema_ready

    # --- resolver reads -------------------------------------------------------------
    def nodes(self, keys: Iterable[Key]) -> dict[Key, NodeRecord]:
        held = self._holder()
        found, missing = held.records(set(keys)) if held else ({}, list(set(keys)))
        if not missing:
            return found
        rows = self._read(
            "UNWIND $keys AS k MATCH (i:Identifier {type: k[0], value: k[1]})"
            " OPTIONAL MATCH (i)-[:BELONGS_TO]->(c:Customer)"
            f" RETURN {NODE_FIELDS}, c.oneId AS oneId",
            keys=[list(k) for k in missing],
        )
        read = {(r["type"], r["value"]): node_of(r, r["oneId"]) for r in rows}
        if held:
            held.keep_records(read.values())
        return {**found, **read}

    def existing_pairs(self, pairs: Iterable[Pair]) -> set[Pair]:
        held = self._holder()
        found, missing = held.pairs(set(pairs)) if held else (set(), list(set(pairs)))
        if not missing:
            return found
        rows = self._read(
            "UNWIND $pairs AS p MATCH (a:Identifier {type: p[0][0], value: p[0][1]})"
            "-[:SEEN_WITH]-(b:Identifier {type: p[1][0], value: p[1][1]})"
            " RETURN DISTINCT p",
            pairs=[[list(a), list(b)] for a, b in missing],
        )
        return found | {(key_of(r["p"][0]), key_of(r["p"][1])) for r in rows}

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        held = self._holder()
        found, wanted = held.neighbours(set(keys)) if held else ({}, list(set(keys)))
        if not wanted:
            return found
        rows = self._read(
            "UNWIND $keys AS k MATCH (i:Identifier {type: k[0], value: k[1]})-[:SEEN_WITH]-(o)"
            " RETURN k, collect(DISTINCT [o.type, o.value]) AS others",
            keys=[list(k) for k in wanted],
        )
        read: dict[Key, set[Key]] = {k: set() for k in wanted}
        for r in rows:
            read[key_of(r["k"])] = {key_of(o) for o in r["others"]}
        if held:
            held.keep_neighbours(read, {})
        return {**found, **read}

    def neighbourhood(self, keys: Iterable[Key]) -> Neighbourhood:
        held = self._holder()
        around, wanted = held.neighbours(set(keys)) if held else ({}, list(set(keys)))
        records: dict[Key, NodeRecord] = {}
        if held and around:
            records, _ = held.records({o for others in around.values() for o in others})
        if not wanted:
            return around, records
        rows = self._read(
            "UNWIND $keys AS k MATCH (:Identifier {type: k[0], value: k[1]})-[:SEEN_WITH]-(i)"
            " WITH DISTINCT k, i OPTIONAL MATCH (i)-[:BELONGS_TO]->(c:Customer)"
            f" RETURN k, collect({{{NODE_MAP}, oneId: c.oneId}}) AS others",
            keys=[list(k) for k in wanted],
        )
        read: dict[Key, set[Key]] = {k: set() for k in wanted}
        for r in rows:
            others = read[key_of(r["k"])]
            for o in r["others"]:
                other = (o["type"], o["value"])
                others.add(other)
                if other not in records:
                    records[other] = node_of(o, o["oneId"])
        if held:
            held.keep_neighbours(read, records)
        return {**around, **read}, records

    def component(
        self, seeds: Iterable[Key], linkable: Mapping[Key, bool]
    ) -> tuple[set[Key], set[Pair]]:
        """Breadth first, one round trip per level: components are small by design.

        The first level's read also tells which seeds are stored: seeds that
        are neither stored nor in ``linkable`` are not part of the answer.
        """
        frontier = list(dict.fromkeys(seeds))
        seen: set[Key] = set()
        edges: set[Pair] = set()

        def can_link(key: Key, stored: bool) -> bool:
            return linkable.get(key, stored)

        first = True
        while frontier:
            stored = self._linkable_around(frontier)
            if first:
                frontier = [k for k in frontier if k in stored or k in linkable]
                seen.update(frontier)
                first = False
            next_frontier: list[Key] = []
            for key in frontier:
                row = stored.get(key)
                if row is None or not can_link(key, row[0]):
                    continue
                for other, other_linkable in row[1]:
                    if not can_link(other, other_linkable):
                        continue
                    edges.add(pair(key, other))
                    if other not in seen:
                        seen.add(other)
                        next_frontier.append(other)
            frontier = next_frontier
        return seen, edges

    def _linkable_around(self, keys: list[Key]) -> dict[Key, tuple[bool, list[tuple[Key, bool]]]]:
        """Whether each stored key among ``keys`` may link, and its neighbours and theirs."""
        found: dict[Key, tuple[bool, list[tuple[Key, bool]]]] = {}
        held = self._holder()
        wanted = keys
        if held:
            around, wanted = held.neighbours(keys)
            records, _ = held.records({*around, *(o for v in around.values() for o in v)})
            for key, others in around.items():
                found[key] = (records[key].linkable, [(o, records[o].linkable) for o in others])
        if not wanted:
            return found
        rows = self._read(
            "UNWIND $keys AS k MATCH (i:Identifier {type: k[0], value: k[1]})"
            " OPTIONAL MATCH (i)-[:SEEN_WITH]-(o)"
            " RETURN k, NOT (i.blocked OR i.shared) AS linkable,"
            " collect(DISTINCT [o.type, o.value, NOT (o.blocked OR o.shared)]) AS others",
            keys=[list(k) for k in wanted],
        )
        for r in rows:
            nearby = [((o[0], o[1]), bool(o[2])) for o in r["others"] if o[0] is not None]
            found[key_of(r["k"])] = (bool(r["linkable"]), nearby)
        return found

    def customers(self, one_ids: Iterable[str]) -> dict[str, CustomerRecord]:
        rows = self._read(
            "UNWIND $ids AS id MATCH (c:Customer {oneId: id})" + CUSTOMER_FIELDS,
            ids=list(set(one_ids)),
        )
        return {r["oneId"]: customer_of(r) for r in rows}

    def anchored(self, seqs: Iterable[int]) -> list[CustomerRecord]:
        rows = self._read(
            "UNWIND $seqs AS seq MATCH (c:Customer {anchor: seq})" + CUSTOMER_FIELDS,
            seqs=list(set(seqs)),
        )
        return sorted((customer_of(r) for r in rows), key=lambda c: c.one_id)

    def members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]:
        held = self._holder()
        found, wanted = held.members(set(one_ids)) if held else ({}, list(set(one_ids)))
        if not wanted:
            return found
        rows = self._read(
            "UNWIND $ids AS id MATCH (c:Customer {oneId: id})<-[:BELONGS_TO]-(i:Identifier)"
            " RETURN id, collect([i.type, i.value]) AS keys",
            ids=wanted,
        )
        read: dict[str, set[Key]] = {o: set() for o in wanted}
        for r in rows:
            read[r["id"]] = {key_of(k) for k in r["keys"]}
        if held:
            held.keep_members(read)
        return {**found, **read}

    def known_events(self, event_ids: Iterable[str]) -> set[str]:
        rows = self._read(
            "UNWIND $ids AS id MATCH (e:Event {eventId: id}) RETURN e.eventId AS id",
            ids=list(set(event_ids)),
        )
        return {r["id"] for r in rows}

    def dirty_keys(self) -> list[Key]:
        """The identifiers of events whose resolution was deferred, materialised first."""
        state = self._read(
            "MATCH (s:IdgraphState {id: 1})"
            " RETURN s.pendingFrom IS NULL AND s.unresolvedFrom IS NULL AS settled"
        )
        if not state or state[0]["settled"]:
            return []  # the common case, in one read
        tx: neo4j.Transaction | None = getattr(self._local, "tx", None)

        remembered = self._deferred

        def materialise(work: Tx) -> None:
            first = pending_from(work)
            if first is not None:
                materialise_deferred(work, first, {}, {}, remembered)

        self._held.wrote()
        self._held.let_go()  # identifiers and edges of events deferred until now
        if tx is not None:
            self._guard(lambda: materialise(tx))
        else:

            def write() -> None:
                with self._driver.session(database=self._database) as session:
                    session.execute_write(materialise)

            self._guard(write)
        rows = self._read(
            "MATCH (s:IdgraphState {id: 1}) WHERE s.unresolvedFrom IS NOT NULL"
            " MATCH (e:Event) WHERE e.seq >= s.unresolvedFrom RETURN e.keys AS keys"
        )
        keys = {key_of(k) for r in rows for k in jsontext.loads(r["keys"])}
        nodes = self.nodes(keys)
        return sorted(nodes, key=lambda k: nodes[k].seq)

    def node_count(self) -> int:
        rows = self._read("MATCH (i:Identifier) RETURN count(i) AS n")
        count: int = rows[0]["n"]
        return count

    def last_event_seq(self) -> int:
        return self.counters()[2]

    def counters(self) -> tuple[int, int, int]:
        rows = self._read(
            "MATCH (s:IdgraphState {id: 1}) RETURN s.nodeSeq AS n, s.customerSeq AS c,"
            " s.eventSeq AS e"
        )
        if not rows:
            return 0, 0, 0
        return rows[0]["n"], rows[0]["c"], rows[0]["e"]

    # --- API reads ------------------------------------------------------------------
    def canonical_one_id(self, one_id: str) -> str | None:
        rows = self._read(
            "MATCH (c:Customer {oneId: $id})"
            " OPTIONAL MATCH path = (c)-[:MERGED_INTO*1..]->(s:Customer)"
            " WHERE NOT (s)-[:MERGED_INTO]->()"
            " RETURN coalesce(s.oneId, c.oneId) AS oneId",
            id=one_id,
        )
        return rows[0]["oneId"] if rows else None

    def canonical_one_ids(self, one_ids: Iterable[str]) -> dict[str, str]:
        rows = self._read(
            SURVIVORS + " RETURN id, survivor.oneId AS oneId",
            ids=sorted(set(one_ids)),
        )
        return {r["id"]: r["oneId"] for r in rows}

    def placements(
        self, one_ids: Iterable[str], keys: Iterable[Key]
    ) -> tuple[dict[str, str], dict[Key, str | None]]:
        row = self._read_unchanged(
            "CALL () { " + SURVIVORS + " RETURN collect([id, survivor.oneId]) AS canonical }"
            " CALL () { UNWIND $keys AS k MATCH (i:Identifier {type: k[0], value: k[1]})"
            " OPTIONAL MATCH (i)-[:BELONGS_TO]->(c:Customer)"
            " RETURN collect([i.type, i.value, c.oneId]) AS holders }"
            " RETURN canonical, holders",
            ids=sorted(set(one_ids)),
            keys=[list(k) for k in set(keys)],
        )
        return (
            {one_id: survivor for one_id, survivor in row["canonical"]},
            {(t, v): one_id for t, v, one_id in row["holders"]},
        )

    def customer_sources(self, one_ids: Iterable[str]) -> dict[str, CustomerSource]:
        row = self._read_unchanged(
            SURVIVORS + " CALL (survivor) { MATCH (survivor)<-[:BELONGS_TO]-(i:Identifier)"
            f" RETURN collect({{{NODE_MAP}}}) AS nodes, collect(i.events) AS seqs }}"
            " WITH id, survivor, nodes, seqs WHERE size(nodes) > 0"
            " CALL (survivor) { OPTIONAL MATCH (survivor)<-[:MERGED_INTO*1..]-(a:Customer)"
            " WHERE a <> survivor RETURN collect(DISTINCT a.oneId) AS aliases }"
            " CALL (seqs) { UNWIND seqs AS list UNWIND list AS seq WITH DISTINCT seq"
            " MATCH (e:Event {seq: seq})"
            f" RETURN collect(e {{.*, timestamp: {cypher_when('e.timestamp')},"
            f" receivedAt: {cypher_when('e.receivedAt')}}}) AS events }}"
            " CALL (survivor, aliases) { MATCH (x:Customer)<-[:CONCERNS]-(h:History)"
            " WHERE x.oneId IN [survivor.oneId] + aliases WITH DISTINCT h"
            f" RETURN collect(h {{.*, at: {cypher_when('h.at')}}}) AS history }}"
            " RETURN collect({asked: id, oneId: survivor.oneId, nodes: nodes,"
            " aliases: aliases, events: events, history: history}) AS found",
            ids=sorted(set(one_ids)),
        )
        return {
            r["asked"]: CustomerSource(
                r["oneId"],
                [node_of(n, r["oneId"]) for n in r["nodes"]],
                sorted((event_of(e) for e in r["events"]), key=lambda e: e.seq),
                sorted(r["aliases"]),
                [history_of(h) for h in sorted(r["history"], key=lambda h: h["seq"])],
            )
            for r in row["found"]
        }

    def _read_unchanged(self, body: LiteralString, **params: Any) -> neo4j.Record:
        """The one row of ``body``, read in one statement between two looks at the commit marks.

        The same check as ``version`` before and after a read, in the same
        round trip: the marks are read first, then ``body`` whole (it returns
        one aggregated row), then the marks again.
        """
        marks: LiteralString = (
            "OPTIONAL MATCH (m) WHERE elementId(m) = $commits"
            " RETURN [coalesce(m.committing, 0), coalesce(m.settled, 0)]"
        )
        query: LiteralString = (
            "CALL () { " + marks + " AS before }"
            " CALL () { " + body + " }"
            " CALL () { " + marks + " AS after } RETURN *"
        )

        def attempt() -> tuple[neo4j.Record, bool]:
            (row,) = self._read(query, commits=self._commits_id, **params)
            return row, self._version_of(*row["before"]) == self._version_of(*row["after"])

        return read_steadily(attempt)

    def aliases(self, one_id: str) -> list[str]:
        rows = self._read(
            "MATCH (:Customer {oneId: $id})<-[:MERGED_INTO*1..]-(a:Customer)"
            " WHERE a.oneId <> $id RETURN DISTINCT a.oneId AS oneId ORDER BY oneId",
            id=one_id,
        )
        return [r["oneId"] for r in rows]

    def events_for(self, keys: Iterable[Key], traits_only: bool = False) -> list[StoredEvent]:
        rows = self._read(
            _TRAIT_EVENTS_OF_KEYS if traits_only else _EVENTS_OF_KEYS,
            keys=[list(k) for k in set(keys)],
        )
        return [event_of(r["e"]) for r in rows]

    def observations(self, pairs: Iterable[Pair]) -> list[EdgeObservation]:
        """Each pair's evidence, in the order the pairs were asked for, then by source."""
        pairs = list(pairs)
        rows = self._read(
            "UNWIND $pairs AS p MATCH (a:Identifier {type: p[0][0], value: p[0][1]})"
            "-[r:SEEN_WITH]-(b:Identifier {type: p[1][0], value: p[1][1]})"
            " RETURN a.seq < b.seq AS ordered, p, r.source AS source,"
            f" {cypher_when('r.firstSeen')} AS first, {cypher_when('r.lastSeen')} AS last,"
            " r.count AS count",
            pairs=[[list(a), list(b)] for a, b in pairs],
        )
        position = {p: n for n, p in reversed(list(enumerate(pairs)))}
        found = []
        for r in rows:
            a, b = key_of(r["p"][0]), key_of(r["p"][1])
            lo, hi = (a, b) if r["ordered"] else (b, a)
            observation = EdgeObservation(
                lo, hi, r["source"], moment_of(r["first"]), moment_of(r["last"]), r["count"]
            )
            found.append((position[(a, b)], r["source"], observation))
        return [o for *_, o in sorted(found, key=lambda f: (f[0], f[1]))]

    def history(self, one_ids: Iterable[str]) -> list[HistoryEntry]:
        rows = self._read(
            "UNWIND $ids AS id MATCH (:Customer {oneId: id})<-[:CONCERNS]-(h:History)"
            f" WITH DISTINCT h RETURN h {{.*, at: {cypher_when('h.at')}}} AS h ORDER BY h.seq",
            ids=list(set(one_ids)),
        )
        return [history_of(r["h"]) for r in rows]

    def all_keys(self) -> Iterator[Key]:
        rows = self._read(
            "MATCH (i:Identifier) RETURN i.type AS type, i.value AS value ORDER BY i.seq"
        )
        for r in rows:
            yield (r["type"], r["value"])

    def assignments(self) -> Iterator[tuple[Key, str | None]]:
        rows = self._read(
            "MATCH (i:Identifier) OPTIONAL MATCH (i)-[:BELONGS_TO]->(c:Customer)"
            " RETURN i.type AS type, i.value AS value, c.oneId AS oneId ORDER BY i.seq"
        )
        for r in rows:
            yield (r["type"], r["value"]), r["oneId"]

    # --- writes ---------------------------------------------------------------------
    def append_deferred(self, events: EventChunk, first_seq: int, received_at: datetime) -> None:
        # The chunk's text goes out as it is: decoding it into events only to
        # encode them again was most of the client's share of a bulk load.
        if not events:
            return
        events = events.loaded()
        rows: list[EventRow] = []
        sent: list[list[Any]] = []
        for position, event_id in enumerate(events.event_ids):
            seq = first_seq + position
            timestamp = datetime.fromisoformat(events.timestamps[position])
            keys_text = events.keys[position]
            rows.append((seq, events.sources[position], timestamp, keys_of(keys_text)))
            sent.append(
                [
                    seq,
                    event_id,
                    events.sources[position],
                    instant(timestamp),
                    keys_text,
                    events.traits[position],
                    events.blocked[position],
                    events.names[position],
                    events.properties[position],
                ]
            )
        blocked = {k for text in events.blocked if text != "[]" for k in keys_of(text)}
        summary: Deferred | None = None

        def append(tx: Tx) -> int | None:
            nonlocal summary
            create_events(tx, sent, instant(received_at))
            summary = summed_deferred(rows, blocked)  # while Neo4j creates the events
            return defer_events(tx, first_seq, first_seq + len(sent) - 1)

        def done(before: int | None) -> None:
            assert summary is not None
            self._remember(summary, before)
            self._held.let_go()  # resolved later, in bulk

        self._in_write(append, done)

    def apply_first_load(self, load: FirstLoad) -> None:
        self.apply(load.changes())

    def apply(self, changes: ChangeSet) -> None:
        remembered = self._deferred
        in_batch = getattr(self._local, "tx", None) is not None

        def done(before: int | None) -> None:
            if in_batch:
                self._held.applied(changes)
            if changes.tags:
                self.tag_store.committed(changes.tags)
            if changes.settles_deferred:
                self._deferred = None
            if changes.deferred and changes.events:
                rows = [(e.seq, e.source, e.timestamp, e.keys) for e in changes.events]
                blocked = {k for e in changes.events for k in e.blocked}
                self._remember(summed_deferred(rows, blocked), before)

        def write(tx: Tx) -> int | None:
            before = write_changes(tx, changes, remembered)
            if changes.tags:
                self.tag_store.write_rows(tx, changes.tags, logged=False)
            self.audience_log.append(tx, touched_by(changes))
            return before

        self._in_write(write, done)

    def changed_since(self, position: int | None) -> tuple[int, list[str]] | None:
        return self.audience_log.since(position)

    def _write_tags(self, work: Callable[[Tx], None], done: Callable[[], None]) -> None:
        """A tag write in the exclusive batch, or in one of its own: every tag write is counted."""
        with self.exclusive():
            self._in_write(work, lambda _: done())

    def _in_write(
        self, work: Callable[[Tx], int | None], done: Callable[[int | None], None]
    ) -> None:
        """Run ``work`` in the exclusive batch, or in a write transaction of its own.

        ``done`` gets what ``work`` returned, once it is committed.
        """
        self._ensure_schema()
        tx: neo4j.Transaction | None = getattr(self._local, "tx", None)
        if tx is not None:  # committed with the batch that holds the lock
            self._held.wrote()
            before = self._guard(lambda: work(tx))
            self._local.committed.append(lambda: done(before))
            return

        def write() -> int | None:
            with self._driver.session(database=self._database) as session:
                return session.execute_write(work)

        self._held.let_go()  # a write outside a batch: no later batch can tell it happened
        done(self._guard(write))

    def _remember(self, written: Deferred, pending_before: int | None) -> None:
        """Keep the deferred events this process wrote, once committed, to spare reading them."""
        if pending_before is None:
            self._deferred = written
        elif self._deferred is not None and self._deferred.first == pending_before:
            self._deferred.extend(written)
        else:
            self._deferred = None  # events deferred by someone else: read them when needed


_EVENTS_OF: LiteralString = (
    "UNWIND $keys AS k MATCH (i:Identifier {type: k[0], value: k[1]})"
    " UNWIND i.events AS seq WITH DISTINCT seq MATCH (e:Event {seq: seq})"
)
_EVENT_FIELDS: LiteralString = (
    f" RETURN e {{.*, timestamp: {cypher_when('e.timestamp')},"
    f" receivedAt: {cypher_when('e.receivedAt')}}} AS e ORDER BY e.seq"
)
_EVENTS_OF_KEYS: LiteralString = _EVENTS_OF + _EVENT_FIELDS
# Events are written with their traits as JSON text; none is "{}".
_TRAIT_EVENTS_OF_KEYS: LiteralString = _EVENTS_OF + " WHERE e.traits <> '{}'" + _EVENT_FIELDS


def _refused(exc: Exception) -> None:
    """Wrong credentials or a missing database: say which setting to fix."""
    code = getattr(exc, "code", None) or ""
    if ".ClientError.Security." in code:
        raise StoreUnavailable(
            f"Neo4j refused the credentials (check --neo4j-user/--neo4j-password): {exc}"
        ) from exc
    if code.endswith("Database.DatabaseNotFound"):
        raise StoreUnavailable(
            f"Neo4j has no such database (check --neo4j-database): {exc}"
        ) from exc
