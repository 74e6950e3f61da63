"""The embedded store: SQLite in WAL mode for durability, a published ``Shape`` for speed.

Why SQLite: it ships with Python, a committed WAL transaction survives ``kill -9``
(and, with ``synchronous=FULL``, power loss), and one file is easy to back up.
Why the shape: resolution walks components on every ingest, and the API
looks identifiers up on every read; answering those from arrays in memory
instead of SQL keeps both fast. The shape holds only the graph's structure
(keys, flags, edges, OneIDs, each identifier's events); evidence details,
events and history are read from SQLite on demand.

One writer (the resolver holds a lock around each batch) makes a new shape
for each transaction and publishes it right after the commit. Readers take
no lock: ``reading()`` gives the published shape, and what a read needs from
the file it reads through a read-only WAL connection, each statement checked
against the shape's generation (``reads.FileAt``), so a read sees one
commit's state whole and never waits for a writer. A snapshot of the shape is written at close
and every so many writes, and read back at open when it matches the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.errors import StoreUnavailable
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
)
from graph.pacing import blocking, step_aside
from graph.sqlite_rows import insert_rows
from graph.store.embedded import snapshot
from graph.store.embedded.accounts import SqliteAccounts
from graph.store.embedded.build import first_shape
from graph.store.embedded.changes import applied
from graph.store.embedded.compaction import compact
from graph.store.embedded.pragmas import set_up_writer
from graph.store.embedded.reads import FileAt, ShapeReads
from graph.store.embedded.rebuild import rebuild
from graph.store.embedded.schema import (
    EVENT_COLUMNS,
    GENERATION,
    IDENTIFIER_COLUMNS,
    UNRESOLVED,
    generation,
    meta_int,
    prepare,
    set_meta,
)
from graph.store.embedded.shape import Shape
from graph.store.embedded.tags import SqliteTags, write_tag_rows
from graph.store.embedded.writes import insert_customers, write_changes

SNAPSHOT = "shape.npz"
# Fold the overlay into the base past this many entries (or a twentieth of the
# identifiers): the overlay is copied on every write, the base's arrays on a fold.
COMPACT_AT = 20_000
CHECKPOINT_WRITES = 2_000  # write a snapshot after this many writes ...
CHECKPOINT_SECONDS = 600.0  # ... or this long after the last one, whichever comes first


class EmbeddedStore:
    """A ``GraphStore`` in one SQLite file under ``data_dir``."""

    resolve_every = None  # SQLite keeps a transaction of any size on disk
    reads_block = False  # reads are memory and a local file: no thread pool needed
    writes_block = False  # its statements and commits go through graph.pacing

    def __init__(self, data_dir: str | Path, load: bool = True) -> None:
        self.path = Path(data_dir) / "idgraph.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._snapshot_path = Path(data_dir) / SNAPSHOT
        self._owner = _claim(Path(data_dir))
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            set_up_writer(self._db)
            self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk writes touch many pages
            self._db.execute("PRAGMA foreign_keys=OFF")
            prepare(self._db, self.path)
        except BaseException:
            self._owner.close()
            raise
        self._readers = threading.local()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # only to list new connections, never per read
        self.account_store = SqliteAccounts(self.path, self._reader)
        self.tag_store = SqliteTags(self.path, self._reader)
        self._generation = generation(self._db)
        self._unresolved_from = meta_int(self._db, UNRESOLVED)
        self._stale = False  # deferred writes left the shape behind the file
        self._committing: Shape | None = None  # the shape of the transaction being committed
        self._file_ahead = -1  # the newest generation a reader found the file at
        self._deferred_ids: set[str] = set()  # event ids written while stale
        self._max_event = 0
        self._saved = (-1, time.monotonic())  # the generation last written to the snapshot
        if load:
            self.load()

    def load(self) -> None:
        """Read the shape: from the snapshot if it is the file's, else rebuilt from the file."""
        if hasattr(self, "_shape"):
            return
        found = snapshot.load(self._snapshot_path, self._generation)
        rebuilt = found is None or self._unresolved_from is not None
        if rebuilt:
            found = rebuild(self._db)
        assert found is not None
        self._shape = found
        self._max_event = found.counters.event
        if rebuilt:  # keep it, so the next start need not rebuild it again
            self.checkpoint()
        else:
            self._saved = (found.generation, time.monotonic())

    # --- the shape ------------------------------------------------------------------
    def _current(self) -> Shape:
        """The published shape, rebuilt from the file first if deferred writes left it behind."""
        if self._stale:
            self._shape = rebuild(self._db)
            self._stale = False
            self._deferred_ids = set()
        return self._shape

    def _writer_reads(self) -> ShapeReads:
        return ShapeReads(self._current(), FileAt(self._db))

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._readers, "db", None)
        if db is None:
            db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            self._readers.db = db
            with self._readers_lock:
                self._all_readers.append(db)
        return db

    @contextlib.contextmanager
    def reading(self) -> Iterator[ShapeReads]:
        """A view of the published shape; the file is read at its generation when needed.

        A reader that found the file ahead of the published shape (a commit
        landed, its shape not yet published) leaves word of it: the next
        views take that commit's shape, staged before it began, instead of
        waiting for the writer to publish it. A shape is only taken once the
        file shows its commit, so no read sees a write that could still fail.
        """
        shape = self._shape
        staged = self._committing
        if staged is not None and staged.generation == self._file_ahead:
            shape = staged
        yield ShapeReads(
            shape, FileAt(self._reader(), shape.generation, self._stale, self._saw_ahead)
        )

    def _saw_ahead(self, generation: int) -> None:
        self._file_ahead = generation

    def checkpoint(self) -> None:
        """Fold the overlay into the base and write the snapshot, if anything changed."""
        shape = self._shape
        if self._stale or shape.dirty or shape.unwritten or self._saved[0] == shape.generation:
            return
        if shape.overlay.size:
            shape = self._shape = blocking(compact, shape)
        blocking(snapshot.save, shape, self._snapshot_path)
        self._saved = (shape.generation, time.monotonic())

    def _publish(self, shape: Shape) -> None:
        self._shape = shape
        limit = max(COMPACT_AT, shape.node_count // 20)
        saved_generation, saved_at = self._saved
        if (
            shape.generation - saved_generation >= CHECKPOINT_WRITES
            or time.monotonic() - saved_at >= CHECKPOINT_SECONDS
        ):
            self.checkpoint()
        elif shape.overlay.size > limit:
            self._shape = blocking(compact, shape)  # large numpy copies, tens of ms

    # --- plumbing -------------------------------------------------------------------
    def close(self) -> None:
        if hasattr(self, "_shape"):
            with contextlib.suppress(OSError, sqlite3.Error):
                self.checkpoint()
        with self._readers_lock:
            for reader in self._all_readers:
                reader.close()
        self.account_store.close()
        self.tag_store.close()
        self._db.close()
        self._owner.close()

    def exclusive(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # one process holds the data dir: it is the only writer

    def changed_since(self, position: int | None) -> tuple[int, list[str]] | None:
        # A data dir is served by one process (it holds the dir's lock): nobody else writes.
        return 0, []

    def healthy(self) -> bool:
        try:
            self._reader().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    # --- resolver reads -------------------------------------------------------------
    def version(self) -> int:
        return self._shape.generation

    def nodes(self, keys: Iterable[Key]) -> dict[Key, NodeRecord]:
        return self._writer_reads().nodes(keys)

    def existing_pairs(self, pairs: Iterable[Pair]) -> set[Pair]:
        return self._writer_reads().existing_pairs(pairs)

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        return self._writer_reads().neighbours(keys)

    def neighbourhood(self, keys: Iterable[Key]) -> Neighbourhood:
        return self._writer_reads().neighbourhood(keys)

    def component(
        self, seeds: Iterable[Key], linkable: Mapping[Key, bool]
    ) -> tuple[set[Key], set[Pair]]:
        return self._writer_reads().component(seeds, linkable)

    def customers(self, one_ids: Iterable[str]) -> dict[str, CustomerRecord]:
        return self._writer_reads().customers(one_ids)

    def anchored(self, seqs: Iterable[int]) -> list[CustomerRecord]:
        return self._writer_reads().anchored(seqs)

    def members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]:
        return self._writer_reads().members(one_ids)

    def known_events(
        self, event_ids: Iterable[str], hashes: npt.NDArray[np.uint64] | None = None
    ) -> set[str]:
        # While deferred writes leave the shape behind, the events it knows are
        # still stored (events are never deleted); the ones written since are listed.
        wanted = list(event_ids)
        found = ShapeReads(self._shape, FileAt(self._db)).known_events(wanted, hashes)
        return found | self._deferred_ids.intersection(wanted)

    def dirty_keys(self) -> list[Key]:
        return self._writer_reads().dirty_keys()

    def last_event_seq(self) -> int:
        return self._max_event

    def node_count(self) -> int:
        return self._writer_reads().node_count()

    def counters(self) -> tuple[int, int, int]:
        return self._writer_reads().counters()

    # --- API reads ------------------------------------------------------------------
    def canonical_one_id(self, one_id: str) -> str | None:
        return self._writer_reads().canonical_one_id(one_id)

    def canonical_one_ids(self, one_ids: Iterable[str]) -> dict[str, str]:
        return self._writer_reads().canonical_one_ids(one_ids)

    def placements(
        self, one_ids: Iterable[str], keys: Iterable[Key]
    ) -> tuple[dict[str, str], dict[Key, str | None]]:
        return self._writer_reads().placements(one_ids, keys)

    def customer_sources(self, one_ids: Iterable[str]) -> dict[str, CustomerSource]:
        return self._writer_reads().customer_sources(one_ids)

    def aliases(self, one_id: str) -> list[str]:
        return self._writer_reads().aliases(one_id)

    def events_for(self, keys: Iterable[Key], traits_only: bool = False) -> list[StoredEvent]:
        return self._writer_reads().events_for(keys, traits_only)

    def observations(self, pairs: Iterable[Pair]) -> list[EdgeObservation]:
        return self._writer_reads().observations(pairs)

    def history(self, one_ids: Iterable[str]) -> list[HistoryEntry]:
        return self._writer_reads().history(one_ids)

    def all_keys(self) -> Iterator[Key]:
        return self._writer_reads().all_keys()

    def assignments(self) -> Iterator[tuple[Key, str | None]]:
        return self._writer_reads().assignments()

    # --- writes ---------------------------------------------------------------------
    def apply(self, changes: ChangeSet) -> None:
        known = self.known_events([e.event_id for e in changes.events])
        if known:
            raise sqlite3.IntegrityError(f"event {sorted(known)[0]!r} is already stored")
        if changes.deferred:
            # Deferred evidence is for a bulk load, which reads nothing until it
            # resolves; the shape is rebuilt from the file when it is next read.
            before = self._shape
            self._transaction(lambda db: write_changes(db, changes, before, self._unresolved_from))
            seqs = [e.seq for e in changes.events]
            if seqs and self._unresolved_from is None:
                self._unresolved_from = min(seqs)
            self._max_event = max([self._max_event, *seqs])
            self._went_stale(e.event_id for e in changes.events)
            return
        shape = self._current()
        published: list[Shape] = []

        def write(db: sqlite3.Connection) -> None:
            write_changes(db, changes, shape, self._unresolved_from)
            if changes.tags:
                write_tag_rows(db, changes.tags)
            step_aside()
            published.append(applied(shape, changes, self._generation + 1))
            self._committing = published[0]

        try:
            self._transaction(write)
        except BaseException:
            self._committing = None
            raise
        if changes.tags:
            self.tag_store.committed(changes.tags)
        step_aside()
        self._max_event = max(self._max_event, published[0].counters.event)
        if changes.settles_deferred:
            self._unresolved_from = None
        self._publish(published[0])
        self._committing = None  # after publishing: a reader looks at it first, then the shape

    def _went_stale(self, event_ids: Iterable[str]) -> None:
        self._stale = True
        self._deferred_ids.update(event_ids)

    def apply_first_load(self, load: FirstLoad) -> None:
        def write(db: sqlite3.Connection) -> None:
            keys = load.keys
            insert_rows(
                db,
                "identifiers",
                IDENTIFIER_COLUMNS,
                zip(
                    range(1, len(keys) + 1),
                    map(operator.itemgetter(0), keys),
                    map(operator.itemgetter(1), keys),
                    load.first_seen,
                    load.last_seen,
                    # sqlite3 binds an int at once, a bool (a subclass) by adapting it
                    map(int, load.blocked),
                    map(int, load.shared),
                    load.strong_neighbours,
                    load.one_ids,
                    strict=True,
                ),
            )
            insert_customers(db, load.customers)
            db.execute("DELETE FROM meta WHERE name = ?", (UNRESOLVED,))

        self._transaction(write)
        self._unresolved_from = None
        if load.graph is None:
            self._went_stale(())  # read back from the file when next read
            return
        self._stale = False
        self._deferred_ids = set()
        self._publish(first_shape(load, load.graph, self._generation, self._max_event))

    def append_deferred(self, events: EventChunk, first_seq: int, received_at: datetime) -> None:
        hashes = np.frombuffer(events.event_hashes, dtype=np.uint64)
        known = self.known_events(
            events.event_ids, hashes if len(hashes) == len(events.event_ids) else None
        )
        if known:
            raise sqlite3.IntegrityError(f"event {sorted(known)[0]!r} is already stored")
        received = received_at.isoformat()

        def write(db: sqlite3.Connection) -> None:
            if events.spilled is not None:  # attached as "chunk": copied inside SQLite
                db.execute(
                    "INSERT INTO events (seq, event_id, source, timestamp, received_at, keys,"
                    " traits, blocked, name, properties) SELECT ? + rowid - 1, event_id,"
                    " source, timestamp, ?, keys, traits, blocked, name, properties"
                    " FROM chunk.events ORDER BY rowid",
                    (first_seq, received),
                )
            else:
                insert_rows(
                    db,
                    "events",
                    EVENT_COLUMNS,
                    zip(
                        itertools.count(first_seq),
                        events.event_ids,
                        events.sources,
                        events.timestamps,
                        itertools.repeat(received),
                        events.keys,
                        events.traits,
                        events.blocked,
                        events.names,
                        events.properties,
                    ),
                )
            if self._unresolved_from is None:
                set_meta(db, UNRESOLVED, first_seq)

        if events.spilled is None:
            self._transaction(write)
        else:
            self._db.execute("ATTACH DATABASE ? AS chunk", (events.spilled,))
            try:
                self._transaction(write)
            finally:
                self._db.execute("DETACH DATABASE chunk")
        self._max_event = max(self._max_event, first_seq + len(events) - 1)
        if self._unresolved_from is None:
            self._unresolved_from = first_seq
        self._went_stale(events.event_ids)

    def _transaction(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``write`` in one immediate transaction: all of it is kept, or none.

        Every transaction counts one more generation: a snapshot or a reader
        knows by it which writes it has seen.
        """
        db = self._db
        try:
            blocking(db.execute, "BEGIN IMMEDIATE")
            try:
                write(db)
                set_meta(db, GENERATION, self._generation + 1)
                blocking(db.execute, "COMMIT")  # with its fsync: seconds on a slow disk
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            # Disk full, I/O error, file gone: nothing was kept, and the caller
            # should hear that the store, not its request, is the problem.
            raise StoreUnavailable(f"the embedded store could not write: {exc}") from exc
        self._generation += 1


def _claim(data_dir: Path) -> Any:
    """Hold the data dir for this process: two processes would each trust a stale shape.

    The lock is released by the OS when the process dies, so ``kill -9`` never
    leaves a stale lock behind.
    """
    handle = open(data_dir / "idgraph.lock", "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StoreUnavailable(
            f"data dir {data_dir} is in use by idgraph process {holder}; stop it first "
            "(the embedded store has one process at a time)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
