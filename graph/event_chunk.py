"""A bulk chunk of clean events in columns, encoded as the event log keeps them.

A bulk import moves hundreds of thousands of events from the processes that
parse them to the one that writes them. As objects, each event costs more to
send, receive and encode again than the store takes to write it; as columns
of text a chunk crosses as a few long lists, and the store writes the text as
it is. The graph the chunk draws (its distinct identifiers, their first and
last sightings, its edges) is summed up where the events are parsed, so the
importing process follows the whole graph per distinct identifier, not per
event.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

from graph import jsontext
from graph.hashing import key_hash, text_hash
from graph.models import Key
from graph.sqlite_rows import insert_rows


def moment_text(value: datetime) -> str:
    """ISO 8601 in UTC at a fixed width, so that comparing two texts compares the moments."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def micros(value: datetime) -> int:
    """Microseconds since 1970 in UTC: a moment as a number, to compare and keep in arrays."""
    return (value.astimezone(UTC) - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# A spilled chunk's columns, as the embedded store's event log names them.
SPILLED_COLUMNS = (
    "event_id",
    "source",
    "timestamp",
    "keys",
    "traits",
    "blocked",
    "name",
    "properties",
)


@dataclass(slots=True)
class EventChunk:
    """Events ``0..len-1`` of a chunk, and the graph they draw in the chunk's own node numbers."""

    event_ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    timestamps: list[str] = field(default_factory=list)  # moment_text
    keys: list[str] = field(default_factory=list)  # JSON [[type, value], ...]
    traits: list[str] = field(default_factory=list)  # JSON object
    blocked: list[str] = field(default_factory=list)  # JSON [[type, value], ...]
    names: list[str | None] = field(default_factory=list)  # what happened, if anything
    properties: list[str | None] = field(default_factory=list)  # JSON object, with a name
    nodes: list[Key] = field(default_factory=list)  # distinct keys, in order of first sighting
    # Per node, in ``micros``: numbers cross between processes and compare cheaper than text.
    first_seen: array[int] = field(default_factory=lambda: array("q"))
    last_seen: array[int] = field(default_factory=lambda: array("q"))
    node_blocked: list[bool] = field(default_factory=list)
    edges: array[int] = field(default_factory=lambda: array("i"))  # node numbers two by two
    # Each event's node numbers, one run per event of the length in event_sizes: the
    # importing process keeps each identifier's events from them without a parse.
    event_sizes: array[int] = field(default_factory=lambda: array("i"))
    event_nodes: array[int] = field(default_factory=lambda: array("i"))
    # Stable hashes (graph.hashing) of each node's key and each event's id, made by
    # the worker that parsed them rather than by the one process that takes them all.
    node_hashes: array[int] = field(default_factory=lambda: array("Q"))
    event_hashes: array[int] = field(default_factory=lambda: array("Q"))
    # A SQLite file holding the events' text (table ``events``, rowid = position + 1)
    # in place of the text columns above, which are then empty; see ``spill``.
    spilled: str | None = None

    def __len__(self) -> int:
        return len(self.event_ids)

    def spill(self, path: str) -> None:
        """Move the events' text to a new SQLite file at ``path``.

        The embedded store copies a spilled chunk into its event log inside
        SQLite (``INSERT ... SELECT``), without a Python object per value: for
        a bulk import, the worker that parsed the chunk pays for the rows and
        the importing process, which every chunk passes through, does not.
        The file is scratch: no journal, no sync; the event log is what lasts.
        """
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE events (event_id TEXT, source TEXT, timestamp TEXT,"
                " keys TEXT, traits TEXT, blocked TEXT, name TEXT, properties TEXT)"
            )
            db.execute("BEGIN")
            insert_rows(
                db,
                "events",
                SPILLED_COLUMNS,
                zip(
                    self.event_ids,
                    self.sources,
                    self.timestamps,
                    self.keys,
                    self.traits,
                    self.blocked,
                    self.names,
                    self.properties,
                    strict=True,
                ),
            )
            db.execute("COMMIT")
        finally:
            db.close()
        self.sources, self.timestamps, self.keys, self.traits, self.blocked = [], [], [], [], []
        self.names, self.properties = [], []
        self.spilled = path

    def loaded(self) -> EventChunk:
        """The chunk with its text in memory (itself when it was not spilled)."""
        if self.spilled is None:
            return self
        db = sqlite3.connect(self.spilled)
        try:
            rows = db.execute(
                "SELECT source, timestamp, keys, traits, blocked, name, properties"
                " FROM events ORDER BY rowid"
            ).fetchall()
        finally:
            db.close()
        columns = list(zip(*rows, strict=True)) or [()] * 7
        sources, timestamps, keys, traits, blocked, names, properties = (list(c) for c in columns)
        return replace(
            self,
            sources=sources,
            timestamps=timestamps,
            keys=keys,
            traits=traits,
            blocked=blocked,
            names=names,
            properties=properties,
            spilled=None,
        )

    def only(self, positions: Iterable[int]) -> EventChunk:
        """The chunk with just these events, its graph drawn again from their text."""
        if self.spilled is not None:
            return self.loaded().only(positions)
        builder = ChunkBuilder()
        for p in positions:
            builder.add_encoded(
                self.event_ids[p],
                self.sources[p],
                self.timestamps[p],
                micros(datetime.fromisoformat(self.timestamps[p])),
                _keys(self.keys[p]),
                set(_keys(self.blocked[p])),
                self.traits[p],
                self.keys[p],
                self.blocked[p],
                self.names[p],
                self.properties[p],
            )
        return builder.chunk


class ChunkBuilder:
    """Collects events into an ``EventChunk``, summing up their graph as they come."""

    def __init__(self) -> None:
        self.chunk = EventChunk()
        self._number: dict[Key, int] = {}
        self._pairs: set[tuple[int, int]] = set()

    def add(
        self,
        event_id: str,
        source: str,
        timestamp: datetime,
        keys: list[Key],
        blocked: Collection[Key],
        traits: dict[str, Any],
        name: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> None:
        """One clean event: distinct keys, the blocked ones among them."""
        self.add_encoded(
            event_id,
            source,
            moment_text(timestamp),
            micros(timestamp),
            keys,
            blocked,
            jsontext.dumps(traits),
            jsontext.dumps(keys),
            jsontext.dumps([k for k in keys if k in blocked]) if blocked else "[]",
            name,
            None if properties is None else jsontext.dumps(properties),
        )

    def add_encoded(
        self,
        event_id: str,
        source: str,
        seen: str,
        at: int,
        keys: list[Key],
        blocked: Collection[Key],
        traits_text: str,
        keys_text: str,
        blocked_text: str,
        name: str | None = None,
        properties_text: str | None = None,
    ) -> None:
        """An encoded event: ``seen`` is its moment's ``moment_text``, ``at`` its ``micros``."""
        chunk, number = self.chunk, self._number
        chunk.event_ids.append(event_id)
        chunk.event_hashes.append(text_hash(event_id))
        chunk.sources.append(source)
        chunk.timestamps.append(seen)
        chunk.keys.append(keys_text)
        chunk.traits.append(traits_text)
        chunk.blocked.append(blocked_text)
        chunk.names.append(name)
        chunk.properties.append(properties_text)
        positions = []
        for key in keys:
            n = number.get(key)
            if n is None:
                n = number[key] = len(chunk.nodes)
                chunk.nodes.append(key)
                chunk.first_seen.append(at)
                chunk.last_seen.append(at)
                chunk.node_blocked.append(key in blocked)
                chunk.node_hashes.append(key_hash(*key))
            elif at < chunk.first_seen[n]:
                chunk.first_seen[n] = at
            elif at > chunk.last_seen[n]:
                chunk.last_seen[n] = at
            positions.append(n)
        chunk.event_sizes.append(len(positions))
        chunk.event_nodes.extend(positions)
        pairs = self._pairs
        if len(positions) == 2:  # most events: one edge
            a, b = positions
            pair = (a, b) if a < b else (b, a)
            if pair not in pairs:
                pairs.add(pair)
                chunk.edges.extend(pair)
        else:
            for a, b in combinations(sorted(positions), 2):
                if (a, b) not in pairs:
                    pairs.add((a, b))
                    chunk.edges.extend((a, b))


def _keys(text: str) -> list[Key]:
    return [(k[0], k[1]) for k in jsontext.loads(text)]
