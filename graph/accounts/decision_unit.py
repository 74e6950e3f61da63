"""An account's decision unit, computed on read from its contacts, so it is never stale.

Per role of the template: who holds it, how many it needs and its weight.
A role's completeness is ``min(held / required, 1)``, and a role nobody is
required for is complete; the unit's completeness is the weighted average
over the roles with a weight. Roles below their required count are
missing. Suggestions are the contacts whose title, seniority or department
make a rule of a role hold that they do not hold yet, best first, leaving
out what someone dismissed for that contact, role and account.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from graph.accounts.buying_groups import Template
from graph.accounts.seniority import Seniority


@dataclass(frozen=True)
class HeldRole:
    role: str
    source: str  # MANUAL, EVENT, DOMAIN
    since: datetime
    confidence: float = 1.0


@dataclass(frozen=True)
class Contact:
    """What the decision unit needs of one account link."""

    one_id: str
    title: str | None
    department: str | None
    seniority: Seniority
    roles: tuple[HeldRole, ...] = ()


class ContactLike(Protocol):
    """What a decision unit reads of a contact: a ``Contact``, or a store's view of a link."""

    @property
    def one_id(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def seniority(self) -> Seniority: ...
    @property
    def roles(self) -> tuple[HeldRole, ...]: ...


@dataclass(frozen=True)
class Member:
    one_id: str
    confidence: float
    source: str
    since: datetime


@dataclass(frozen=True)
class RoleStatus:
    role: str
    required: int
    weight: float
    completeness: float
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Suggestion:
    one_id: str
    role: str
    confidence: float
    reason: str


@dataclass(frozen=True)
class DecisionUnit:
    template: str
    completeness: float
    roles: tuple[RoleStatus, ...]
    missing_roles: tuple[str, ...]
    suggestions: tuple[Suggestion, ...]


def decision_unit(
    template: Template, contacts: Iterable[ContactLike], dismissed: Collection[tuple[str, str]]
) -> DecisionUnit:
    """``dismissed`` holds (OneID, role) pairs someone said no to for this account."""
    contacts = sorted(contacts, key=lambda c: c.one_id)
    statuses = []
    suggestions = []
    for spec in template.roles:
        members = sorted(
            (
                Member(c.one_id, held.confidence, held.source, held.since)
                for c in contacts
                for held in c.roles
                if held.role == spec.role
            ),
            key=lambda m: (m.since, m.one_id),
        )
        complete = 1.0 if spec.required == 0 else min(len(members) / spec.required, 1.0)
        statuses.append(RoleStatus(spec.role, spec.required, spec.weight, complete, tuple(members)))
        holders = {m.one_id for m in members}
        for c in contacts:
            if c.one_id in holders or (c.one_id, spec.role) in dismissed:
                continue
            found = spec.suggestion(c.seniority, c.title, c.department)
            if found is not None and found[0] > 0:
                suggestions.append(Suggestion(c.one_id, spec.role, found[0], found[1]))
    weighted = [s for s in statuses if s.weight > 0]
    total = sum(s.weight for s in weighted)
    completeness = sum(s.weight * s.completeness for s in weighted) / total if total else 1.0
    weights = {s.role: s.weight for s in statuses}
    suggestions.sort(key=lambda s: (-s.confidence, -weights[s.role], s.role, s.one_id))
    return DecisionUnit(
        template.id,
        completeness,
        tuple(statuses),
        tuple(s.role for s in statuses if len(s.members) < s.required),
        tuple(suggestions),
    )
