"""Saved account segments: a named condition over accounts, their contacts and decision unit.

The condition is the one ``accounts(where)`` takes (``graph.segments.accounts``),
checked whole when saved; members are the accounts that meet it when asked,
so they follow every account, contact and customer change at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graph.accounts.book import AccountBook
from graph.accounts.models import Account, AccountFilter
from graph.errors import InvalidRule, NotFound
from graph.segments.accounts import AccountQuery
from graph.segments.audiences import Audiences
from graph.tags.definitions import TAG_ID


@dataclass(frozen=True)
class AccountSegment:
    id: str
    name: str
    description: str
    where: Any
    changed_at: datetime

    def as_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "name": self.name,
                "description": self.description,
                "where": self.where,
                "changedAt": self.changed_at.isoformat(),
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> AccountSegment:
        data = json.loads(text)
        return cls(
            data["id"],
            data["name"],
            data["description"],
            data["where"],
            datetime.fromisoformat(data["changedAt"]),
        )


class AccountSegments:
    def __init__(
        self, accounts: AccountBook, audiences: Audiences, clock: Callable[[], datetime]
    ) -> None:
        self._accounts = accounts
        self._audiences = audiences
        self._clock = clock

    def define(self, id: str, name: str, description: str | None, where: Any) -> AccountSegment:
        """Save a new or changed account segment; refused whole with ``InvalidRule``."""
        if not isinstance(id, str) or not TAG_ID.fullmatch(id):
            raise InvalidRule(
                "id must be a slug: lower-case letters, digits, - and _, at most 64", "$.id"
            )
        if not isinstance(name, str) or not name.strip():
            raise InvalidRule("name must not be blank", "$.name")
        if not where:
            raise InvalidRule("an account segment needs a condition", "$.where")
        self._query(where)  # checked whole before anything is saved
        segment = AccountSegment(
            id, name.strip(), (description or "").strip(), where, self._clock()
        )
        self._accounts.save_segment(id, segment.as_json())
        return segment

    def delete(self, id: str) -> AccountSegment:
        found = self.segment(id)
        if found is None:
            raise NotFound(f"no account segment {id!r} is defined")
        self._accounts.save_segment(id, None)
        return found

    def segments(self) -> list[AccountSegment]:
        saved = self._accounts.saved_segments()
        return [AccountSegment.from_json(saved[i]) for i in sorted(saved)]

    def segment(self, id: str) -> AccountSegment | None:
        text = self._accounts.saved_segments().get(id)
        return None if text is None else AccountSegment.from_json(text)

    def members(self, segment: AccountSegment) -> list[Account]:
        """The accounts meeting the segment now, in id order."""
        return self._query(segment.where).matching(AccountFilter())

    def _query(self, where: Any) -> AccountQuery:
        return AccountQuery(where, self._accounts, self._audiences, self._clock())
