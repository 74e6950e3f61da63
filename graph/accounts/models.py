"""Accounts as stores keep them: one record per account, holding its contacts.

An account's contacts, their roles and reporting lines, and the
suggestions someone dismissed are read and changed together (a decision
unit, an org chart, a cycle check), so they live in the account's record
and a write replaces the record whole, in one transaction. Stores keep the
record as JSON text beside the columns they look accounts up by (domains,
parent, contacts' OneIDs, name), so this module is the one place that knows
its shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from graph import jsontext
from graph.accounts.decision_unit import HeldRole
from graph.models import Key

MANUAL, EVENT, DOMAIN = "MANUAL", "EVENT", "DOMAIN"


@dataclass(frozen=True)
class Link:
    """A customer's link to an account, under the OneID it was made with.

    ``evidence`` holds the identifiers that brought the link (an event's, or
    the email whose domain matched): after a split, the link belongs to the
    part that holds them. A manual link has none and stays with the OneID.
    ``placed_on`` is the customer it was last filed under after a merge or
    split (None: its own OneID); history reads it, placement never does.
    """

    one_id: str
    title: str | None
    department: str | None
    source: str
    since: datetime
    updated_at: datetime
    roles: tuple[HeldRole, ...] = ()
    reports_to: str | None = None
    evidence: tuple[Key, ...] = ()
    placed_on: str | None = None


@dataclass(frozen=True)
class Account:
    id: str
    name: str | None
    domains: tuple[str, ...]
    industry: str | None
    size_band: str | None
    region: str | None
    parent_id: str | None
    created_at: datetime
    updated_at: datetime
    links: tuple[Link, ...] = ()
    dismissed: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (OneID, role)

    def link(self, one_id: str) -> Link | None:
        return next((x for x in self.links if x.one_id == one_id), None)

    def with_link(self, link: Link) -> Account:
        others = tuple(x for x in self.links if x.one_id != link.one_id)
        return replace(self, links=(*others, link))


@dataclass(frozen=True)
class AccountHistoryEntry:
    account_id: str
    at: datetime
    change: str  # ACCOUNT_CREATED, ACCOUNT_UPDATED, CONTACT_LINKED, ROLES_SET, ...
    via: str  # the mutation, or "event <eventId>"
    one_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountFilter:
    name_prefix: str | None = None
    domain: str | None = None
    industry: str | None = None
    region: str | None = None
    parent_id: str | None = None


@dataclass
class AccountWrite:
    """What one account mutation or batch writes, whole or not at all."""

    put: list[Account] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    history: list[AccountHistoryEntry] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)  # id -> the template as JSON
    # Saved account segments: id -> the segment as JSON, None to delete it.
    segments: dict[str, str | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.put or self.deleted or self.history or self.templates or self.segments)


def key_ref(key: Key) -> str:
    """An identifier as an account's contacts are looked up by (no OneID holds a \x1f)."""
    return f"{key[0]}\x1f{key[1]}"


def contact_refs(account: Account) -> list[str]:
    """What finds this account from a customer: its links' OneIDs, places and evidence."""
    refs = {x.one_id for x in account.links}
    refs.update(x.placed_on for x in account.links if x.placed_on)
    refs.update(key_ref(k) for x in account.links for k in x.evidence)
    return sorted(refs)


def name_key(name: str | None) -> str:
    """How names are compared for a prefix filter: case-folded."""
    return (name or "").casefold()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def account_json(account: Account) -> str:
    return json.dumps(
        {
            "id": account.id,
            "name": account.name,
            "domains": list(account.domains),
            "industry": account.industry,
            "sizeBand": account.size_band,
            "region": account.region,
            "parent": account.parent_id,
            "createdAt": account.created_at.isoformat(),
            "updatedAt": account.updated_at.isoformat(),
            "links": [
                {
                    "oneId": x.one_id,
                    "title": x.title,
                    "department": x.department,
                    "source": x.source,
                    "since": x.since.isoformat(),
                    "updatedAt": x.updated_at.isoformat(),
                    "roles": [
                        [r.role, r.source, r.since.isoformat(), r.confidence] for r in x.roles
                    ],
                    "reportsTo": x.reports_to,
                    "evidence": [list(k) for k in x.evidence],
                    "placedOn": x.placed_on,
                }
                for x in account.links
            ],
            "dismissed": sorted(list(d) for d in account.dismissed),
        },
        ensure_ascii=False,
    )


def account_from_json(text: str) -> Account:
    raw = jsontext.loads(text)  # a where reads every account's record: orjson's speed counts
    return Account(
        id=raw["id"],
        name=raw["name"],
        domains=tuple(raw["domains"]),
        industry=raw["industry"],
        size_band=raw["sizeBand"],
        region=raw["region"],
        parent_id=raw["parent"],
        created_at=_time(raw["createdAt"]),
        updated_at=_time(raw["updatedAt"]),
        links=tuple(
            Link(
                one_id=x["oneId"],
                title=x["title"],
                department=x["department"],
                source=x["source"],
                since=_time(x["since"]),
                updated_at=_time(x["updatedAt"]),
                roles=tuple(HeldRole(r[0], r[1], _time(r[2]), r[3]) for r in x["roles"]),
                reports_to=x["reportsTo"],
                evidence=tuple((k[0], k[1]) for k in x["evidence"]),
                placed_on=x.get("placedOn"),
            )
            for x in raw["links"]
        ),
        dismissed=frozenset((d[0], d[1]) for d in raw["dismissed"]),
    )


def history_json(entry: AccountHistoryEntry) -> str:
    return json.dumps(
        {
            "at": entry.at.isoformat(),
            "change": entry.change,
            "via": entry.via,
            "oneId": entry.one_id,
            "details": entry.details,
        },
        ensure_ascii=False,
    )


def history_from_json(account_id: str, text: str) -> AccountHistoryEntry:
    raw = json.loads(text)
    return AccountHistoryEntry(
        account_id, _time(raw["at"]), raw["change"], raw["via"], raw["oneId"], raw["details"]
    )
