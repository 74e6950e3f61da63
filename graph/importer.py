"""Bulk import: NDJSON lines to clean events, in worker processes, in file order.

Parsing and normalising an event depends on the line and the config alone, and
it is most of the per-event work of an import, so worker processes do it while
the importing process writes the previous chunk. Chunks come back in file
order, so the result is the same as reading the file in one process.
"""

from __future__ import annotations

import gc
import io
import multiprocessing
import os
import pickle
import re
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, BinaryIO

import orjson

from graph import jsontext
from graph.accounts.domains import DomainMatcher, registrable
from graph.config import Config
from graph.errors import IdgraphError, InvalidEvent
from graph.event_chunk import ChunkBuilder, EventChunk, micros, moment_text
from graph.events import (
    EVENT_FIELDS,
    AccountEvidence,
    as_utc,
    behaviour,
    clean_event,
    event_from_json,
)
from graph.identifiers import IdentifierRegistry, remember_valid_phones
from graph.models import Key
from graph.phone_exchange import PhoneExchange


@dataclass
class PreparedChunk:
    """One chunk of lines: its clean events, how many warnings they had, and the rejected lines."""

    events: EventChunk = field(default_factory=EventChunk)
    warnings: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, code, message
    # Events naming an account, or from a verified source with a corporate email (a domain
    # link, if an account has its domain): (position in the chunk, event id, source,
    # linking keys, account or None).
    accounts: list[tuple[int, str, str, list[Key], AccountEvidence | None]] = field(
        default_factory=list
    )


class LineReader:
    """Reads NDJSON lines into a chunk, each line as ``clean_event`` would read it.

    Most lines of an import are well formed and every identifier in them is
    valid; for those the reader takes a direct way: the checks in one place,
    no intermediate objects, each distinct identifier looked up once per
    worker. Any line that is not plainly well formed, or that holds an
    identifier which is not valid, goes the general way of ``event_from_json``
    and ``clean_event``, which words its warnings and errors. Both ways give
    the same chunk (a test holds them to it).
    """

    def __init__(
        self, registry: IdentifierRegistry, now: datetime, exchange: PhoneExchange | None = None
    ) -> None:
        """``exchange``: where the reader tells the phone numbers it finds valid, hears others'."""
        self.registry = registry
        self.now = now
        self._now_text, self._now_micros = moment_text(now), micros(now)
        self._exchange = exchange
        self._max_identifiers = registry.config.ingest.max_identifiers_per_event
        # type -> raw value -> its valid key, or None when it is not valid.
        self._valid: dict[str, dict[str, Key | None]] = {}
        self._remembered = 0
        self._phone_types = frozenset(
            name for name, kind in registry.types.items() if kind.spec.normaliser == "phone"
        )
        self._phones_known: set[str] = set()  # found here or heard of: not to be told again
        self._phones_found: list[str] = []  # found here since the last trade
        accounts = registry.config.accounts
        matcher = accounts.domain_matcher()
        self._domain_sources = matcher.verified_sources if accounts.link_strong_matches else set()
        self._email_types = frozenset(
            name for name, kind in registry.types.items() if kind.spec.normaliser == "email"
        )
        self._corporate = _CorporateHosts(matcher)

    def trade_phones(self) -> None:
        """Tell the exchange the numbers found since last time; take in those others found."""
        if self._exchange is None:
            return
        self._exchange.tell(self._phones_found)
        self._phones_found = []
        heard = self._exchange.hear()
        if len(self._phones_known) + len(heard) > _REMEMBERED:
            self._phones_known.clear()
        self._phones_known.update(heard)
        remember_valid_phones(heard)

    def prepare(self, first_line: int, block: bytes) -> PreparedChunk:
        """Parse and clean a block of NDJSON lines, the first numbered ``first_line``.

        Lines are split on newlines alone and decoded one by one, so a line that
        is not UTF-8 is rejected like one that is not JSON; blank lines are skipped.
        """
        chunk = PreparedChunk()
        builder = ChunkBuilder()
        direct = self._direct
        # Most blocks have no number orjson would round (see jsontext): one look for all lines.
        suspect = jsontext.has_long_number(block)
        for number, line in enumerate(block.split(b"\n"), start=first_line):
            if not number % _TRADE_EVERY:
                self.trade_phones()
            if not line.strip():
                continue
            plain = not (suspect and jsontext.has_long_number(line))
            if plain:
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    plain = False
            if not plain:
                # What orjson refuses (NaN, a lone surrogate) or would round (an integer
                # beyond 64 bits) takes the general way, which words what is wrong with it.
                try:
                    obj = jsontext.loads(line)
                except ValueError as exc:  # not JSON, or not UTF-8
                    chunk.rejected.append((number, "BAD_JSON", str(exc)))
                    continue
            if plain and (added := direct(obj, builder)) is not None:
                position, event_id, source, keys = added
                if source in self._domain_sources and self._has_corporate_email(keys):
                    chunk.accounts.append((position, event_id, source, keys, None))
                continue
            try:
                clean = clean_event(
                    len(builder.chunk), event_from_json(obj), self.registry, self.now
                )
            except IdgraphError as exc:
                chunk.rejected.append((number, exc.code, exc.message))
                continue
            linking = [k for k in clean.keys if k not in clean.blocked]
            if clean.account is not None or (
                clean.source in self._domain_sources and self._has_corporate_email(linking)
            ):
                chunk.accounts.append(
                    (len(builder.chunk), clean.event_id, clean.source, linking, clean.account)
                )
            builder.add(
                clean.event_id,
                clean.source,
                clean.timestamp,
                clean.keys,
                clean.blocked,
                clean.traits,
                clean.name,
                clean.properties,
            )
            chunk.warnings += len(clean.warnings)
        chunk.events = builder.chunk
        self.trade_phones()
        return chunk

    def _has_corporate_email(self, keys: list[Key]) -> bool:
        emails = self._email_types
        return any(k[0] in emails and self._corporate.holds(k[1]) for k in keys)

    def _direct(self, obj: Any, builder: ChunkBuilder) -> tuple[int, str, str, list[Key]] | None:
        """Add a plainly well-formed event whose identifiers are all valid; None for any other.

        Returns the event's position in the chunk, its id, source and keys.
        """
        if type(obj) is not dict or not obj.keys() <= _FIELDS:
            return None
        source = obj.get("source")
        items = obj.get("identifiers")
        event_id = obj.get("eventId")
        timestamp = obj.get("timestamp")
        traits = obj.get("traits")
        try:
            name, properties = behaviour(obj.get("name"), obj.get("properties"))
        except InvalidEvent:
            return None  # the general way says what is wrong
        if (
            type(source) is not str
            or not (source := source.strip())
            or type(items) is not list
            or not 0 < len(items) <= self._max_identifiers
            or type(event_id) is not str
            or not (event_id := event_id.strip())
            or (traits is not None and type(traits) is not dict)
        ):
            return None
        if timestamp is None:
            seen, at = self._now_text, self._now_micros
        elif type(timestamp) is str:
            try:
                moment = datetime.fromisoformat(timestamp)  # also checks the date is real
                if _UTC_SECONDS.fullmatch(timestamp):  # the form most integrations send
                    seen = timestamp[:19] + ".000000+00:00"
                else:
                    moment = as_utc(moment)
                    seen = moment_text(moment)
                at = micros(moment)
            except (ValueError, OverflowError):  # the general way says which
                return None
        else:
            return None
        valid, types = self._valid, self.registry.types
        keys: list[Key] = []
        for item in items:
            if type(item) is not dict:
                return None
            kind = item.get("type")
            value = item.get("value")
            if type(kind) is not str or type(value) is not str:
                return None
            known = valid.get(kind)  # by type, then value: no tuple to build and hash
            key = _UNSEEN if known is None else known.get(value, _UNSEEN)
            if key is _UNSEEN:
                identifier_type = types.get(kind)
                if identifier_type is None:
                    return None
                canonical = identifier_type.valid_value(value)
                key = None if canonical is None else (kind, canonical)
                if (
                    kind in self._phone_types
                    and canonical is not None
                    and canonical not in self._phones_known
                    and self._exchange is not None
                ):
                    self._phones_known.add(canonical)
                    self._phones_found.append(canonical)
                if self._remembered >= _REMEMBERED:
                    valid.clear()
                    self._remembered, known = 0, None
                if known is None:
                    known = valid[kind] = {}
                known[value] = key
                self._remembered += 1
            if key is None:
                return None
            if key not in keys:
                keys.append(key)
        position = len(builder.chunk)
        builder.add_encoded(
            event_id,
            source,
            seen,
            at,
            keys,
            (),
            "{}" if not traits else jsontext.dumps(traits),
            jsontext.dumps(keys),
            "[]",
            name,
            None if properties is None else jsontext.dumps(properties),
        )
        return position, event_id, source, keys


class _CorporateHosts:
    """Whether an email's host could match an account: not free mail, a registrable domain.

    Remembered per host, as most of an import's emails share a few hosts.
    """

    def __init__(self, matcher: DomainMatcher) -> None:
        self._matcher = matcher
        self._known: dict[str, bool] = {}

    def holds(self, email: str) -> bool:
        host = email.rpartition("@")[2]
        found = self._known.get(host)
        if found is None:
            if len(self._known) >= _REMEMBERED:
                self._known.clear()
            domain = registrable(host)
            found = domain is not None and not self._matcher.is_free_mail(host)
            self._known[host] = found
        return found


_FIELDS = EVENT_FIELDS - {"account"}  # an account takes the general way
# A whole second in UTC: its moment_text is the same digits, with no formatting to do.
_UTC_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_UNSEEN: Any = object()
_REMEMBERED = 262_144  # distinct raw identifiers a worker keeps normalised
_TRADE_EVERY = 512  # lines between two trades of phone numbers with the other workers


_worker: LineReader | None = None


def _start_worker(config: Config, now: datetime, phone_exchange: str) -> None:
    global _worker
    _worker = LineReader(IdentifierRegistry(config), now, PhoneExchange(phone_exchange))
    gc.disable()  # see without_cycle_collection


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector for a bulk import.

    An import builds millions of objects that live until it ends (the graph,
    the normalisation cache) and makes almost no reference cycles. The
    collector would walk all of them again and again as they pile up: about a
    fifth of the import's time, for nothing. Nothing is collected on the way
    out either: the few cycles left wait for the next automatic collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _prepare_in_worker(first_line: int, block: bytes, spill_dir: str | None) -> bytes:
    """The prepared chunk, pickled without a memo.

    With ``spill_dir``, the chunk's text goes to a file there (``EventChunk.spill``).

    A chunk is hundreds of thousands of small strings, none of them shared:
    the pickle memo, which would find the repeats, cost three quarters of the
    pickling and found nothing.
    """
    assert _worker is not None, "worker process was not initialised"
    chunk = _worker.prepare(first_line, block)
    if spill_dir is not None and chunk.events:
        chunk.events.spill(os.path.join(spill_dir, f"lines-{first_line}.sqlite3"))
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(chunk)
    return buffer.getvalue()


def default_workers() -> int:
    """One per core: the importing process mostly waits for them until the final resolution."""
    return max(1, min(4, os.cpu_count() or 1))


class PreparedChunks:
    """Chunks of a file's lines, prepared by worker processes, in file order.

    Workers start on the first chunks as soon as this is made, so parsing
    overlaps whatever the importer does before it asks for them (opening a
    store, setting up its schema). The first chunk is an eighth of the size
    and each next one twice the last up to ``chunk_size``, so writing starts
    soon and the workers share the first chunks instead of one of them parsing
    a whole chunk while the importer waits. At most two chunks per worker are
    in flight, so a file of any size is read as fast as it is written, never
    loaded whole. Use it as a context manager: leaving stops the workers.
    """

    def __init__(
        self,
        handle: BinaryIO,
        config: Config,
        now: datetime,
        chunk_size: int,
        workers: int,
        spill: bool = False,
    ) -> None:
        """``spill``: workers write each chunk's text to a scratch file (``EventChunk.spill``).

        A spilled chunk's file is removed when the next chunk is asked for. The
        scratch directory (spilled chunks, the workers' ``PhoneExchange``) is
        removed when this is left.
        """
        self._handle = handle
        self._line = 1
        self._chunk_size = chunk_size
        self._next_size = max(1, chunk_size // 8)
        self._in_flight = 2 * workers
        self._scratch = tempfile.TemporaryDirectory(prefix="idgraph-import-")
        self._spill_dir = self._scratch.name if spill else None
        phones = os.path.join(self._scratch.name, "phones.sqlite3")
        PhoneExchange.create(phones)
        context = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(config, now, phones),
        )
        self._pending: deque[Future[bytes]] = deque()
        self._handed_out: str | None = None  # the spilled file of the chunk last handed out
        self._fill()

    def _fill(self) -> None:
        while len(self._pending) < self._in_flight:
            lines = list(islice(self._handle, self._next_size))
            if not lines:
                return
            self._next_size = min(self._chunk_size, 2 * self._next_size)
            block = b"".join(lines)
            future = self._pool.submit(_prepare_in_worker, self._line, block, self._spill_dir)
            self._pending.append(future)
            self._line += len(lines)

    def __iter__(self) -> Iterator[PreparedChunk]:
        while self._pending:
            chunk: PreparedChunk = pickle.loads(self._pending.popleft().result())
            self._fill()
            self._remove_handed_out()  # asking for this one means the last one is written
            self._handed_out = chunk.events.spilled
            yield chunk
        self._remove_handed_out()
        # Nothing left to parse: the workers wind down while the importer resolves.
        self._pool.shutdown(wait=False)

    def _remove_handed_out(self) -> None:
        if self._handed_out is not None:
            os.unlink(self._handed_out)
            self._handed_out = None

    def __enter__(self) -> PreparedChunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(cancel_futures=True)
        self._scratch.cleanup()
