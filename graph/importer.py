"""Bulk import: NDJSON lines to clean events, in worker processes, in file order.

Parsing and normalising an event depends on the line and the config alone, and
it is most of the per-event work of an import, so worker processes do it while
the importing process writes the previous chunk. Chunks come back in file
order, so the result is the same as reading the file in one process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import TextIO

from graph import jsontext
from graph.config import Config
from graph.errors import IdgraphError
from graph.events import CleanEvent, clean_event, event_from_json
from graph.identifiers import IdentifierRegistry

NumberedLine = tuple[int, str]


@dataclass
class PreparedChunk:
    """One chunk of lines: its clean events (``index`` is the position) and its rejects."""

    events: list[CleanEvent] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line number of events[i]
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, code, message


def prepare(
    lines: Iterable[NumberedLine], registry: IdentifierRegistry, now: datetime
) -> PreparedChunk:
    """Parse and clean numbered NDJSON lines; blank lines are skipped."""
    chunk = PreparedChunk()
    for number, line in lines:
        if not line.strip():
            continue
        try:
            event = event_from_json(jsontext.loads(line))
            clean = clean_event(len(chunk.events), event, registry, now)
        except json.JSONDecodeError as exc:
            chunk.rejected.append((number, "BAD_JSON", str(exc)))
            continue
        except IdgraphError as exc:
            chunk.rejected.append((number, exc.code, exc.message))
            continue
        chunk.events.append(clean)
        chunk.lines.append(number)
    return chunk


_worker: tuple[IdentifierRegistry, datetime] | None = None


def _start_worker(config: Config, now: datetime) -> None:
    global _worker
    _worker = (IdentifierRegistry(config), now)


def _prepare_in_worker(lines: list[NumberedLine]) -> PreparedChunk:
    assert _worker is not None, "worker process was not initialised"
    return prepare(lines, *_worker)


def default_workers() -> int:
    """One core stays with the importing process, which writes while workers parse."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class PreparedChunks:
    """Chunks of a file's lines, prepared by worker processes, in file order.

    Workers start on the first chunks as soon as this is made, so parsing
    overlaps whatever the importer does before it asks for them (opening a
    store, setting up its schema). The first chunk is an eighth of the size,
    so writing starts soon instead of waiting for a whole chunk to be parsed.
    At most two chunks per worker are in
    flight, so a file of any size is read as fast as it is written, never
    loaded whole. Use it as a context manager: leaving stops the workers.
    """

    def __init__(
        self, handle: TextIO, config: Config, now: datetime, chunk_size: int, workers: int
    ) -> None:
        self._numbered = enumerate(handle, start=1)
        self._chunk_size = chunk_size
        self._next_size = max(1, chunk_size // 8)
        self._in_flight = 2 * workers
        context = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
        self._pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(config, now)
        )
        self._pending: deque[Future[PreparedChunk]] = deque()
        self._fill()

    def _fill(self) -> None:
        while len(self._pending) < self._in_flight:
            lines = list(islice(self._numbered, self._next_size))
            if not lines:
                return
            self._next_size = self._chunk_size
            self._pending.append(self._pool.submit(_prepare_in_worker, lines))

    def __iter__(self) -> Iterator[PreparedChunk]:
        while self._pending:
            chunk = self._pending.popleft().result()
            self._fill()
            yield chunk

    def __enter__(self) -> PreparedChunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(cancel_futures=True)
