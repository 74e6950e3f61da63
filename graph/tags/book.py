"""Tags as callers use them: definitions changed and built, manual tags, time, a full retag.

Every write here runs as the graph's writer (``writing``), so it never
interleaves with an ingest deciding the same customers' tags.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

from graph.errors import InvalidRule, NotFound
from graph.pacing import holding
from graph.store.protocol import GraphStore
from graph.tags.conditions import AccountsAre, Condition, walk
from graph.tags.definitions import (
    TagDefinition,
    TagKind,
    TagOutcome,
    evaluation_order,
    is_segment,
)
from graph.tags.evaluation import Explanation
from graph.tags.models import ManualTag, StoredDefinition, TagChange, TagStatus, TagWrites
from graph.tags.tagger import Tagger

CHUNK = 500  # customers decided per transaction by a build, a retag or time


class TagBook:
    def __init__(
        self,
        store: GraphStore,
        tagger: Tagger,
        writing: Callable[[], AbstractContextManager[Any]],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.tagger = tagger
        self._writing = writing
        self.clock = clock
        # Told of every tag write once committed (the audience index follows them).
        self.on_written: Callable[[TagWrites], None] | None = None
        self._saved = 0  # definitions this process saved or deleted
        self._held: tuple[int, float, dict[str, StoredDefinition]] | None = None
        # One build at a time: a second would decide every customer again for nothing,
        # and finish later, at a later "now", than the caller that waited for the first.
        self._building = threading.Lock()

    # --- definitions -------------------------------------------------------------------
    def definitions(self, fresh_within: float = 0.0) -> list[StoredDefinition]:
        """Every definition; ``fresh_within`` seconds: one read that long ago will do."""
        found = self._read_definitions(fresh_within)
        return sorted(found.values(), key=lambda s: s.definition.id)

    def definition(self, tag_id: str, fresh_within: float = 0.0) -> StoredDefinition | None:
        return self._read_definitions(fresh_within).get(tag_id)

    def _read_definitions(self, fresh_within: float) -> dict[str, StoredDefinition]:
        """The definitions, read again unless a read ``fresh_within`` seconds old will do.

        Audiences ask several times a question, and on Neo4j every read is a
        round trip: they take another process's change a moment late. What
        this process saves is seen at once whatever the caller allows.
        """
        now = time.monotonic()
        held = self._held
        if held is not None and held[0] == self._saved and now - held[1] < fresh_within:
            return held[2]
        saved = self._saved
        found = self.tagger.definitions()
        self._held = (saved, now, found)
        return found

    def _changed(self) -> None:
        """A definition was saved or deleted here: no read before it will do."""
        self._saved += 1

    def define(self, definition: TagDefinition, managed: bool = False) -> StoredDefinition:
        """Save a new or changed definition; every customer is decided again in the background.

        Refused (nothing saved) when it would read an undefined tag or close a
        cycle, or change a tag the RFM model keeps (unless ``managed``: the
        model itself saves it). An unchanged definition is left as it is,
        version and all.
        """
        with self._writing():
            held = self.tagger.definitions()
            old = held.get(definition.id)
            if not managed and is_segment(definition.id):
                raise InvalidRule("a segment is defined with defineSegment", "$.id")
            if not managed and TagKind.RFM in (
                definition.kind,
                None if old is None else old.definition.kind,
            ):
                raise InvalidRule(
                    f"tag {definition.id!r} is kept by the RFM model: change [rfm] in the"
                    " config, or give this tag another id",
                    "$.id",
                )
            found = {k: s.definition for k, s in held.items()}
            found[definition.id] = definition
            evaluation_order(found)
            if old is not None and _same(old.definition, definition):
                return old
            if not held:  # with no definitions, writes kept no rollups: make them anew
                self.store.tag_store.forget_rollups()
            stored = StoredDefinition(
                definition,
                1 if old is None else old.version + 1,
                TagStatus.BUILDING,
                0.0,
                self.clock(),
            )
            self.store.tag_store.save_definition(stored)
            self._changed()
            return stored

    def sync(self, configured: Iterable[TagDefinition]) -> None:
        """Take the config file's definitions, when the file has something new.

        A definition the file gives that was never saved in that form is
        saved and built. One that was (now or in an earlier version) is left
        alone: a change or a delete made through the API since stands across
        restarts, until the file itself changes that definition.
        """
        for definition in configured:
            seen = self.store.tag_store.definition_versions(definition.id)
            if not any(_same(v.definition, definition) for v in seen):
                self.define(definition)

    def delete(self, tag_id: str) -> StoredDefinition:
        with self._writing():
            held = self.tagger.definitions()
            if tag_id not in held:
                raise NotFound(f"no tag {tag_id!r} is defined")
            readers = sorted(k for k, s in held.items() if tag_id in s.definition.reads())
            if readers:
                raise InvalidRule(
                    f"tag {tag_id!r} is read by {', '.join(readers)}: change or delete those first",
                    "$.id",
                )
            self.store.tag_store.delete_definition(tag_id)
            self._changed()
        tagged = self.store.tag_store.tagged(tag_id)
        cause = {"kind": "DEFINITION", "tagId": tag_id, "deleted": True}
        for part in _chunks(tagged):
            self._refresh(part, cause)
        return held[tag_id]

    # --- manual tags -------------------------------------------------------------------
    def set_manual(self, one_id: str, tag_id: str, present: bool, by: str | None) -> str:
        """Put a manual tag on a customer or take it off; the customer's OneID now."""
        stored = self.definition(tag_id)
        if stored is None:
            raise NotFound(f"no tag {tag_id!r} is defined")
        if stored.definition.kind is not TagKind.MANUAL:
            raise InvalidRule(
                f"tag {tag_id!r} is decided by its rule ({stored.definition.kind}); "
                "only a MANUAL tag is added or removed by hand",
                "$.tagId",
            )
        with self._writing():
            now = self.clock()
            canonical = self.store.canonical_one_id(one_id)
            if canonical is None or not self.store.members([canonical]).get(canonical):
                raise NotFound(f"no customer has OneID {one_id}")
            names = [canonical, *self.store.aliases(canonical)]
            cause = {"kind": "MANUAL", "by": by}
            if present:
                change = ManualTag(canonical, tag_id, by, now)
                writes = self.tagger.refresh([canonical], self.store, now, cause, added=[change])
                writes.manual_added.append(change)
            else:
                gone = [(name, tag_id) for name in names]
                writes = self.tagger.refresh([canonical], self.store, now, cause, removed=gone)
                writes.manual_removed.extend(gone)
            self._write(writes)
            return canonical

    def account_links_changed(self, one_ids: Iterable[str], cause: dict[str, Any]) -> None:
        """Decide again these customers' tags, when some tag reads account links."""
        order = self.tagger.order()
        if not any(
            isinstance(x, AccountsAre) for d in order for c in d.conditions() for x in walk(c)
        ):
            return
        canonical = sorted(set(self.store.canonical_one_ids(set(one_ids)).values()))
        for part in _chunks(canonical):
            self._refresh(part, cause)

    # --- time, builds, retag -----------------------------------------------------------
    def run_due(self, limit: int = 10_000) -> int:
        """Decide again every customer time may have changed by now; how many were."""
        done = 0
        while done < limit:
            due = self.store.tag_store.due(self.clock(), CHUNK)
            if not due:
                break
            self._refresh(due, {"kind": "TIME"})
            done += len(due)
        return done

    def build(
        self,
        progress: Callable[[StoredDefinition], None] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> int:
        """Apply every definition still building to every customer; how many were decided.

        Each part is its own transaction, so ingest goes on meanwhile (and
        decides the customers it touches itself); progress is saved per part.
        Between parts it asks ``stopping`` (a service shutting down): a build
        left off stays BUILDING and is made again at the next start.
        """
        with holding(self._building):
            return self._build(progress, stopping)

    def _build(
        self,
        progress: Callable[[StoredDefinition], None] | None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> int:
        building = [s for s in self.definitions() if s.status is TagStatus.BUILDING]
        if not building:
            return 0
        customers = self.customers()
        cause = {
            "kind": "DEFINITION",
            "versions": {s.definition.id: s.version for s in building},
        }
        done = 0
        for part in _chunks(customers):
            if stopping():
                return done
            self._refresh(part, cause)
            done += len(part)
            for s in building:
                self._save_progress(s, done / len(customers))
        for s in building:
            self._save_progress(s, 1.0)
        return done

    def _save_progress(self, stored: StoredDefinition, progress: float) -> None:
        with self._writing():
            now = self.tagger.definitions().get(stored.definition.id)
            if now is None or now.version != stored.version:
                return  # changed or deleted meanwhile: the next build takes it
            status = TagStatus.READY if progress >= 1.0 else TagStatus.BUILDING
            self.store.tag_store.save_definition(
                replace(now, status=status, progress=min(progress, 1.0)), keep_version=False
            )
            self._changed()

    def retag(self) -> int:
        """Every customer's rollup made again from its events, and every tag decided anew."""
        customers = self.customers()
        for part in _chunks(customers):
            self._refresh(part, {"kind": "RETAG"}, rebuild=True)
        for s in self.definitions():
            self._save_progress(s, 1.0)
        return len(customers)

    def stale_all(self) -> None:
        """Events arrived without tags being decided (an import): build everything again."""
        with self._writing():
            self.store.tag_store.forget_rollups()
            for s in self.tagger.definitions().values():
                self.store.tag_store.save_definition(
                    replace(s, status=TagStatus.BUILDING, progress=0.0), keep_version=False
                )
            self._changed()

    def customers(self) -> list[str]:
        return sorted({o for _, o in self.store.assignments() if o is not None})

    def _refresh(self, one_ids: list[str], cause: dict[str, Any], rebuild: bool = False) -> None:
        with self._writing():
            writes = self.tagger.refresh(one_ids, self.store, self.clock(), cause, rebuild)
            self._write(writes)

    def _write(self, writes: TagWrites) -> None:
        self.store.tag_store.write_tags(writes)
        if self.on_written is not None:
            self.on_written(writes)

    # --- reads -------------------------------------------------------------------------
    def explain(self, one_id: str) -> dict[str, TagOutcome]:
        return self.tagger.explain(one_id, self.store, self.clock())

    def explain_rule(self, one_id: str, condition: Condition) -> tuple[bool, Explanation] | None:
        """Whether ``condition`` holds for a customer now, and why (None: no such customer)."""
        return self.tagger.explain_rule(one_id, condition, self.store, self.clock())

    def history(self, one_ids: Iterable[str], tag_id: str | None) -> list[TagChange]:
        return self.store.tag_store.tag_changes(one_ids, tag_id)


def _same(a: TagDefinition, b: TagDefinition) -> bool:
    return (a.name, a.category, a.description, dict(a.given)) == (
        b.name,
        b.category,
        b.description,
        dict(b.given),
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


__all__ = ["CHUNK", "TagBook", "TagWrites"]
