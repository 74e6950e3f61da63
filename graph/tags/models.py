"""What the tag store keeps: definitions by version, each customer's tags, and every change.

A customer's tags are kept as found, not computed on read, so a segment or a
360 page reads them as cheaply as a trait. Every change is logged with its
cause, so "who had this tag on that date" is answered from the log.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from graph.tags.definitions import TagDefinition, parse_definition
from graph.tags.rollups import Rollup


class TagStatus(StrEnum):
    BUILDING = "BUILDING"  # being applied to every existing customer
    READY = "READY"


class TagSource(StrEnum):
    MANUAL = "MANUAL"
    RULE = "RULE"


@dataclass(frozen=True)
class StoredDefinition:
    definition: TagDefinition
    version: int
    status: TagStatus
    progress: float  # 0..1 of existing customers done, while building
    changed_at: datetime

    def as_json(self) -> str:
        d = self.definition
        return json.dumps(
            {
                "id": d.id,
                "name": d.name,
                "category": d.category,
                "description": d.description,
                **d.given,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def parse(text: str) -> TagDefinition:
        """The definition saved as ``text``: one object per text, so what it compiled is kept.

        Every write reads the definitions in force; a definition is immutable,
        so writes share it and its compiled conditions instead of parsing again.
        """
        return parse_definition(**json.loads(text))


@dataclass(frozen=True, slots=True)
class CustomerTag:
    value: Any
    since: datetime
    source: TagSource
    by: str | None = None  # who added a manual tag


@dataclass(frozen=True, slots=True)
class ManualTag:
    """A tag a person put on a OneID; it follows that OneID through merges and back."""

    one_id: str
    tag_id: str
    by: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class TagChange:
    one_id: str
    tag_id: str
    before: Any  # None: the customer did not have it
    after: Any
    at: datetime
    # What changed it: {"kind": "EVENT", "eventId": ...}, MERGE, SPLIT, TIME,
    # DEFINITION (with its version), MANUAL (with who), RETAG.
    cause: dict[str, Any]


@dataclass
class TagWrites:
    """Everything one change writes to the tag store, in the identity write's transaction."""

    rollups: dict[str, Rollup] = field(default_factory=dict)  # changed buckets written
    rebuilt: set[str] = field(default_factory=set)  # of those, the ones replaced whole
    dropped: set[str] = field(default_factory=set)  # no longer customers: rollup, tags, due
    tags: dict[str, dict[str, CustomerTag]] = field(default_factory=dict)  # all of theirs after
    # Of ``tags``, each customer's rows that differ from what is stored (None: gone):
    # what a store writes, as one changed tag of twenty must not rewrite the twenty.
    rows: dict[str, dict[str, CustomerTag | None]] = field(default_factory=dict)
    changes: list[TagChange] = field(default_factory=list)
    due: dict[str, datetime | None] = field(default_factory=dict)
    manual_added: list[ManualTag] = field(default_factory=list)
    manual_removed: list[tuple[str, str]] = field(default_factory=list)  # (OneID, tag)

    def __bool__(self) -> bool:
        return bool(
            self.rollups
            or self.dropped
            or self.tags
            or self.changes
            or self.due
            or self.manual_added
            or self.manual_removed
        )
