"""B2B account types over GraphQL: accounts, contacts, decision units, org charts.

Names here are a contract for frontend apps. Everything an account shows
of its contacts comes from one placement per request (``Loaders.standing``),
so ``contacts``, ``decisionUnit`` and ``orgChart`` agree with one another
and cost one read of the graph between them.
"""

from __future__ import annotations

import base64
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from graph.accounts.book import Standing
from graph.accounts.decision_unit import DecisionUnit as CoreDecisionUnit
from graph.accounts.models import Account as CoreAccount
from graph.accounts.models import AccountHistoryEntry as CoreHistoryEntry
from graph.accounts.placement import ContactView
from graph.errors import BadUserInput
from graph.identity_graph import IdentityGraph as Core
from service.reads import read
from service.schema.types import Profile

MAX_PAGE = 500


@strawberry.enum
class Seniority(Enum):
    CXO = "CXO"
    VP = "VP"
    DIRECTOR = "DIRECTOR"
    MANAGER = "MANAGER"
    STAFF = "STAFF"
    UNKNOWN = "UNKNOWN"


@strawberry.enum
class ContactSource(Enum):
    MANUAL = "MANUAL"
    EVENT = "EVENT"
    DOMAIN = "DOMAIN"


def core_graph(info: strawberry.Info) -> Core:
    graph: Core = info.context["graph"]
    return graph


def cursor_of(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")


def from_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        found = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        if not found:
            raise ValueError("empty")
        return found.decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise BadUserInput(f"{cursor!r} is not a cursor this API gave") from exc


def page_size(first: int | None) -> int:
    if first is None:
        return 50
    if not 0 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 0 and {MAX_PAGE}")
    return first


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class AccountHistoryEntry:
    account_id: strawberry.ID
    at: datetime
    change: str
    via: str
    one_id: strawberry.ID | None
    details: JSON

    @strawberry.field(description="The account, unless it has been deleted since.")
    async def account(self, info: strawberry.Info) -> Account | None:
        found: CoreAccount | None = await info.context["loaders"].accounts.load(
            str(self.account_id)
        )
        return None if found is None else Account(core=found)

    @classmethod
    def of(cls, h: CoreHistoryEntry) -> AccountHistoryEntry:
        return cls(
            account_id=strawberry.ID(h.account_id),
            at=h.at,
            change=h.change,
            via=h.via,
            one_id=strawberry.ID(h.one_id) if h.one_id else None,
            details=h.details,
        )


@strawberry.type(description="A customer as a contact of one account.")
class AccountContact:
    view: strawberry.Private[ContactView]
    standing: strawberry.Private[Standing]

    @strawberry.field
    def one_id(self) -> strawberry.ID:
        return strawberry.ID(self.view.one_id)

    @strawberry.field
    def title(self) -> str | None:
        return self.view.title

    @strawberry.field
    def department(self) -> str | None:
        return self.view.department

    @strawberry.field
    def seniority(self) -> Seniority:
        return Seniority(self.view.seniority.value)

    @strawberry.field(description="The roles this contact holds in the account's buying group.")
    def roles(self) -> list[str]:
        return [r.role for r in self.view.roles]

    @strawberry.field
    def source(self) -> ContactSource:
        return ContactSource(self.view.source)

    @strawberry.field
    def since(self) -> datetime:
        return self.view.since

    @strawberry.field(description="The contact this one reports to in the same account.")
    def reports_to(self) -> AccountContact | None:
        return contact_in(self.standing, self.view.reports_to)

    @strawberry.field
    def account(self) -> Account:
        return Account(core=self.standing.account)

    @strawberry.field(description="The customer's profile, batched across the request.")
    async def profile(self, info: strawberry.Info) -> Profile | None:
        found: Profile | None = await info.context["loaders"].profiles.load(self.view.one_id)
        return found


def contact_in(standing: Standing, one_id: str | None) -> AccountContact | None:
    if one_id is None:
        return None
    view = next((c for c in standing.contacts if c.one_id == one_id), None)
    return None if view is None else AccountContact(view=view, standing=standing)


@strawberry.type
class AccountContactEdge:
    cursor: str
    node: AccountContact


@strawberry.type
class AccountContactConnection:
    edges: list[AccountContactEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class RoleMember:
    contact: AccountContact
    confidence: float
    source: ContactSource
    since: datetime


@strawberry.type
class DecisionRole:
    role: str
    required: int
    weight: float
    completeness: float
    members: list[RoleMember]


@strawberry.type
class RoleSuggestion:
    contact: AccountContact
    role: str
    confidence: float
    reason: str


@strawberry.type(description="Who decides: per role its members, what is missing, who might fit.")
class DecisionUnit:
    template: strawberry.ID
    completeness: float
    roles: list[DecisionRole]
    missing_roles: list[str]
    suggestions: list[RoleSuggestion]

    @classmethod
    def of(cls, unit: CoreDecisionUnit, standing: Standing) -> DecisionUnit:
        def contact(one_id: str) -> AccountContact:
            found = contact_in(standing, one_id)
            assert found is not None
            return found

        return cls(
            template=strawberry.ID(unit.template),
            completeness=unit.completeness,
            roles=[
                DecisionRole(
                    role=r.role,
                    required=r.required,
                    weight=r.weight,
                    completeness=r.completeness,
                    members=[
                        RoleMember(
                            contact=contact(m.one_id),
                            confidence=m.confidence,
                            source=ContactSource(m.source),
                            since=m.since,
                        )
                        for m in r.members
                    ],
                )
                for r in unit.roles
            ],
            missing_roles=list(unit.missing_roles),
            suggestions=[
                RoleSuggestion(
                    contact=contact(s.one_id), role=s.role, confidence=s.confidence, reason=s.reason
                )
                for s in unit.suggestions
            ],
        )


@strawberry.type(description="One contact in the org chart, with its manager and direct reports.")
class OrgChartEntry:
    contact: AccountContact
    manager: AccountContact | None
    direct_reports: list[AccountContact]
    level: int = strawberry.field(description="0 for those who report to nobody here.")


def _org_chart(standing: Standing) -> list[OrgChartEntry]:
    """Top-down: each level after the one above, reports in the order they were linked."""
    by_manager: dict[str | None, list[ContactView]] = {}
    for c in standing.contacts:
        by_manager.setdefault(c.reports_to, []).append(c)
    entries: list[OrgChartEntry] = []
    level, current = 0, by_manager.get(None, [])
    while current:
        for c in current:
            contact = contact_in(standing, c.one_id)
            assert contact is not None
            entries.append(
                OrgChartEntry(
                    contact=contact,
                    manager=contact_in(standing, c.reports_to),
                    direct_reports=[
                        AccountContact(view=r, standing=standing)
                        for r in by_manager.get(c.one_id, [])
                    ],
                    level=level,
                )
            )
        current = [r for c in current for r in by_manager.get(c.one_id, [])]
        level += 1
    return entries


@strawberry.type(description="A company: its domains, subsidiaries, contacts and who decides.")
class Account:
    core: strawberry.Private[CoreAccount]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.core.id)

    @strawberry.field
    def name(self) -> str | None:
        return self.core.name

    @strawberry.field
    def domains(self) -> list[str]:
        return list(self.core.domains)

    @strawberry.field
    def industry(self) -> str | None:
        return self.core.industry

    @strawberry.field
    def size_band(self) -> str | None:
        return self.core.size_band

    @strawberry.field
    def region(self) -> str | None:
        return self.core.region

    @strawberry.field
    def created_at(self) -> datetime:
        return self.core.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.core.updated_at

    @strawberry.field
    async def parent(self, info: strawberry.Info) -> Account | None:
        if self.core.parent_id is None:
            return None
        found: CoreAccount | None = await info.context["loaders"].accounts.load(self.core.parent_id)
        return None if found is None else Account(core=found)

    @strawberry.field
    async def subsidiaries(self, info: strawberry.Info) -> list[Account]:
        graph = core_graph(info)
        ids = (await read(graph, graph.accounts.subsidiaries, [self.core.id])).get(self.core.id, [])
        found = await info.context["loaders"].accounts.load_many(ids)
        return [Account(core=a) for a in found if a is not None]

    @strawberry.field
    async def contacts(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> AccountContactConnection:
        standing = await _standing(info, self.core)
        start, size = from_cursor(after), page_size(first)
        ordered = sorted(standing.contacts, key=lambda c: c.one_id)
        rest = [c for c in ordered if start is None or c.one_id > start]
        page = rest[:size]
        return AccountContactConnection(
            edges=[
                AccountContactEdge(
                    cursor=cursor_of(c.one_id), node=AccountContact(view=c, standing=standing)
                )
                for c in page
            ],
            page_info=PageInfo(
                has_next_page=len(rest) > size,
                end_cursor=cursor_of(page[-1].one_id) if page else None,
            ),
            total_count=len(ordered),
        )

    @strawberry.field(description="Computed now from the contacts; the default template if none.")
    async def decision_unit(
        self, info: strawberry.Info, template: strawberry.ID | None = None
    ) -> DecisionUnit:
        standing = await _standing(info, self.core)
        chosen = (await info.context["loaders"].buying_templates()).get(template)
        return DecisionUnit.of(standing.decision_unit(chosen), standing)

    @strawberry.field
    async def org_chart(self, info: strawberry.Info) -> list[OrgChartEntry]:
        return _org_chart(await _standing(info, self.core))

    @strawberry.field
    async def history(self, info: strawberry.Info) -> list[AccountHistoryEntry]:
        graph = core_graph(info)
        found = await read(graph, graph.accounts.history, self.core.id)
        return [AccountHistoryEntry.of(h) for h in found]


async def _standing(info: strawberry.Info, account: CoreAccount) -> Standing:
    found: Standing = await info.context["loaders"].standing.load(account)
    return found


@strawberry.type
class AccountEdge:
    cursor: str
    node: Account


@strawberry.type
class AccountConnection:
    edges: list[AccountEdge]
    page_info: PageInfo
    total_count: int


@strawberry.enum
class MatchStrength(Enum):
    STRONG = "STRONG"
    WEAK = "WEAK"


@strawberry.type(description="An account a customer's email domain matches, not linked yet.")
class AccountMatch:
    account: Account
    strength: MatchStrength
    reason: str
