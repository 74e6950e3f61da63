"""B2B account queries and mutations, and the accounts a profile shows.

A mutation runs whole in a worker thread (``service.http``), so its
resolvers call the account book directly; reads go through ``read``.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.scalars import JSON

from graph.accounts.models import Account as CoreAccount
from graph.accounts.models import AccountFilter as CoreAccountFilter
from graph.identity_graph import IdentityGraph as Core
from graph.segments.accounts import AccountQuery
from service.reads import read
from service.schema.account_inputs import (
    AccountFilter,
    AccountInput,
    BuyingGroupTemplate,
    BuyingGroupTemplateInput,
)
from service.schema.account_types import (
    Account,
    AccountConnection,
    AccountContact,
    AccountEdge,
    AccountHistoryEntry,
    AccountMatch,
    MatchStrength,
    PageInfo,
    contact_in,
    core_graph,
    cursor_of,
    from_cursor,
    page_size,
)
from service.schema.types import Profile


@strawberry.type
class AccountQueries:
    @strawberry.field(description="One account by its id (the caller's, e.g. a CRM id).")
    async def account(self, info: strawberry.Info, id: strawberry.ID) -> Account | None:
        found: CoreAccount | None = await info.context["loaders"].accounts.load(str(id))
        return None if found is None else Account(core=found)

    @strawberry.field(
        description="Accounts in id order, filtered, and meeting `where` (fields, contacts with"
        " a quantifier, decision-unit completeness; INVALID_RULE names a bad part)."
    )
    async def accounts(
        self,
        info: strawberry.Info,
        filter: AccountFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        where: JSON | None = None,
    ) -> AccountConnection:
        graph = core_graph(info)
        f = filter or AccountFilter()
        chosen = CoreAccountFilter(
            f.name_prefix, f.domain, f.industry, f.region, str(f.parent) if f.parent else None
        )
        size = page_size(first)
        start = from_cursor(after)
        if where is not None:
            query = await run_in_threadpool(
                AccountQuery, where, graph.accounts, graph.audiences, graph.clock()
            )
            return accounts_page(await run_in_threadpool(query.matching, chosen), first, after)
        found, total = await read(graph, graph.accounts.page, chosen, start, size + 1)
        return _connection(found, total, size)

    @strawberry.field(description="The buying-group templates in force, by id.")
    async def buying_group_templates(self, info: strawberry.Info) -> list[BuyingGroupTemplate]:
        graph = core_graph(info)
        templates = await read(graph, graph.accounts.templates)
        return [BuyingGroupTemplate.of(t) for t in templates.all()]


def accounts_page(
    meeting: list[CoreAccount], first: int | None, after: str | None
) -> AccountConnection:
    """A page of accounts already chosen (in id order), as ``accounts`` pages them."""
    size, start = page_size(first), from_cursor(after)
    found = [a for a in meeting if start is None or a.id > start][: size + 1]
    return _connection(found, len(meeting), size)


def _connection(found: list[CoreAccount], total: int, size: int) -> AccountConnection:
    page = found[:size]
    return AccountConnection(
        edges=[AccountEdge(cursor=cursor_of(a.id), node=Account(core=a)) for a in page],
        page_info=PageInfo(
            has_next_page=len(found) > size,
            end_cursor=cursor_of(page[-1].id) if page else None,
        ),
        total_count=total,
    )


async def history_account_links(
    info: strawberry.Info, kind: str, one_id: str, others: list[str], at: datetime
) -> list[AccountHistoryEntry]:
    graph = core_graph(info)
    found = await read(graph, graph.accounts.moved_by, kind, one_id, others, at)
    return [AccountHistoryEntry.of(h) for h in found]


def _after_write(graph: Core, account_id: str, one_id: str | None) -> AccountContact:
    """The contact as it stands after a write, placed like any read of it."""
    account = graph.accounts.account(account_id)
    assert account is not None
    standing = graph.accounts.standing([account])[account_id]
    canonical = graph.accounts.customers.current([one_id], [])[0].get(one_id) if one_id else None
    found = contact_in(standing, canonical)
    assert found is not None
    return found


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Create an account or change the fields given.")
    def upsert_account(self, info: strawberry.Info, input: AccountInput) -> Account:
        return Account(
            core=core_graph(info).accounts.upsert_account(input.to_core(), "upsertAccount")
        )

    @strawberry.mutation(description="Delete an account; its subsidiaries lose their parent.")
    def delete_account(self, info: strawberry.Info, id: strawberry.ID) -> strawberry.ID:
        core_graph(info).accounts.delete_account(str(id), "deleteAccount")
        return id

    @strawberry.mutation(description="Link a customer to an account, or update the link.")
    def link_contact(
        self,
        info: strawberry.Info,
        account_id: strawberry.ID,
        one_id: strawberry.ID,
        title: str | None = None,
        department: str | None = None,
        roles: list[str] | None = None,
    ) -> AccountContact:
        graph = core_graph(info)
        view = graph.accounts.link_contact(
            str(account_id), str(one_id), title, department, roles, "linkContact"
        )
        return _after_write(graph, view.account_id, view.one_id)

    @strawberry.mutation(description="Remove a customer from an account.")
    def unlink_contact(
        self, info: strawberry.Info, account_id: strawberry.ID, one_id: strawberry.ID
    ) -> Account:
        graph = core_graph(info)
        return Account(
            core=graph.accounts.unlink_contact(str(account_id), str(one_id), "unlinkContact")
        )

    @strawberry.mutation(description="Set a contact's roles: exactly these, any others dropped.")
    def set_contact_roles(
        self,
        info: strawberry.Info,
        account_id: strawberry.ID,
        one_id: strawberry.ID,
        roles: list[str],
    ) -> AccountContact:
        graph = core_graph(info)
        view = graph.accounts.set_roles(str(account_id), str(one_id), roles, "setContactRoles")
        return _after_write(graph, view.account_id, view.one_id)

    @strawberry.mutation(description="Set whom a contact reports to; null clears it.")
    def set_reports_to(
        self,
        info: strawberry.Info,
        account_id: strawberry.ID,
        one_id: strawberry.ID,
        manager_one_id: strawberry.ID | None = None,
    ) -> AccountContact:
        graph = core_graph(info)
        view = graph.accounts.set_reports_to(
            str(account_id),
            str(one_id),
            str(manager_one_id) if manager_one_id is not None else None,
            "setReportsTo",
        )
        return _after_write(graph, view.account_id, view.one_id)

    @strawberry.mutation(description="Save a buying-group template (same id: replaced).")
    def upsert_buying_group_template(
        self, info: strawberry.Info, input: BuyingGroupTemplateInput
    ) -> BuyingGroupTemplate:
        return BuyingGroupTemplate.of(core_graph(info).accounts.upsert_template(input.to_core()))

    @strawberry.mutation(description="Give a contact a suggested role (source MANUAL).")
    def confirm_suggestion(
        self,
        info: strawberry.Info,
        account_id: strawberry.ID,
        one_id: strawberry.ID,
        role: str,
    ) -> AccountContact:
        graph = core_graph(info)
        view = graph.accounts.confirm_suggestion(
            str(account_id), str(one_id), role, "confirmSuggestion"
        )
        return _after_write(graph, view.account_id, view.one_id)

    @strawberry.mutation(description="Never suggest this role for this contact in this account.")
    def dismiss_suggestion(
        self,
        info: strawberry.Info,
        account_id: strawberry.ID,
        one_id: strawberry.ID,
        role: str,
    ) -> AccountContact:
        graph = core_graph(info)
        graph.accounts.dismiss_suggestion(str(account_id), str(one_id), role, "dismissSuggestion")
        return _after_write(graph, str(account_id), str(one_id))


async def profile_accounts(info: strawberry.Info, profile: Profile) -> list[AccountContact]:
    graph = core_graph(info)
    one_id = str(profile.one_id)
    keys = [(g.type, i.value) for g in profile.identifiers for i in g.identifiers]
    ids = await read(
        graph, graph.accounts.account_ids_of, one_id, [str(a) for a in profile.aliases], keys
    )
    loaders = info.context["loaders"]
    accounts = [a for a in await loaders.accounts.load_many(ids) if a is not None]
    found = []
    for standing in await loaders.standing.load_many(accounts):
        contact = contact_in(standing, one_id)
        if contact is not None:
            found.append(contact)
    return found


async def profile_account_suggestions(
    info: strawberry.Info, profile: Profile
) -> list[AccountMatch]:
    graph = core_graph(info)
    linked = [c.standing.account.id for c in await profile_accounts(info, profile)]
    emails = [
        (i.value, list(i.sources))
        for g in profile.identifiers
        if g.type in graph.email_types
        for i in g.identifiers
    ]
    matches = await read(graph, graph.accounts.suggested_accounts, emails, linked)
    found = await info.context["loaders"].accounts.load_many([m.account_id for m in matches])
    return [
        AccountMatch(
            account=Account(core=a), strength=MatchStrength(m.strength.value), reason=m.reason
        )
        for m, a in zip(matches, found, strict=True)
        if a is not None
    ]
