"""Accounts and their contacts: every change checked whole, then written whole.

The one place account rules are enforced, for the API, events and the CLI
alike: ids are not blank, domains are domains, a parent line never loops,
roles are known, reporting lines stay within one account and never loop.
A change is checked under the store's account lock against the accounts as
they stand (links placed on the customers of now, see ``placement``) and
written in one transaction with its history, so a refused change writes
nothing and two writers cannot build a cycle between them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from graph.accounts.buying_groups import Template, Templates, template_from
from graph.accounts.changes import described, differences, link_differences
from graph.accounts.decision_unit import DecisionUnit, HeldRole, decision_unit
from graph.accounts.domains import (
    DomainMatch,
    DomainMatcher,
    Strength,
    account_domain,
    email_host,
    registrable,
)
from graph.accounts.event_links import EventAccounts, EventLinks, domain_of
from graph.accounts.models import (
    MANUAL,
    Account,
    AccountFilter,
    AccountHistoryEntry,
    AccountWrite,
    Link,
    key_ref,
)
from graph.accounts.placement import (
    ContactView,
    CustomerChange,
    Customers,
    Placed,
    moved_links,
    place,
    view_of,
)
from graph.accounts.seniority import SeniorityRules
from graph.errors import AccountCycle, BadUserInput, NotFound, ReportingCycle
from graph.models import Key
from graph.store.protocol import AccountStore

MAX_TEXT = 500
MAX_DOMAINS = 100


@dataclass(frozen=True)
class AccountInput:
    id: str
    name: str | None = None
    domains: Sequence[str] | None = None
    industry: str | None = None
    size_band: str | None = None
    region: str | None = None
    parent_id: str | None = None
    parent_given: bool = False  # parent_id None with this set clears the parent


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise BadUserInput(f"{what} is longer than {MAX_TEXT} characters")
    return value or None


def _id(value: str, what: str = "account id") -> str:
    found = _text(value, what)
    if found is None:
        raise BadUserInput(f"{what} must not be blank")
    return found


@dataclass(frozen=True)
class Standing:
    """An account as it stands: its contacts placed, and the suggestions dismissed."""

    account: Account
    contacts: list[ContactView]
    dismissed: frozenset[tuple[str, str]]

    def decision_unit(self, template: Template) -> DecisionUnit:
        return decision_unit(template, self.contacts, self.dismissed)


class AccountBook:
    def __init__(
        self,
        store: AccountStore,
        customers: Customers,
        levels: SeniorityRules,
        templates: Templates,
        matcher: DomainMatcher,
        link_strong: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.matcher = matcher
        self.link_strong = link_strong
        self.customers = customers
        self.levels = levels
        self._configured = templates
        self._clock = clock
        # Told of every account write once it is committed (tags on account links
        # are decided again for the contacts it names; see IdentityGraph).
        self.on_written: Callable[[AccountWrite], None] | None = None
        self._local = threading.local()

    # --- reads ----------------------------------------------------------------------
    def templates(self) -> Templates:
        """Config's templates with those saved by mutation over them (same id: the saved one)."""
        return self._with_saved(self.store.saved_templates())

    def _with_saved(self, saved: dict[str, str]) -> Templates:
        found = self._configured
        for text in saved.values():
            found = found.with_template(template_from(json.loads(text)))
        return found

    def accounts_and_templates(self, ids: Iterable[str]) -> tuple[dict[str, Account], Templates]:
        """Accounts and the templates in force, in one read: what an account page needs first."""
        accounts, saved = self.store.accounts_and_templates(ids)
        return accounts, self._with_saved(saved)

    def account(self, account_id: str) -> Account | None:
        return self.store.accounts([account_id]).get(account_id)

    def accounts(self, ids: Iterable[str]) -> dict[str, Account]:
        return self.store.accounts(ids)

    def page(
        self, where: AccountFilter, after: str | None, first: int
    ) -> tuple[list[Account], int]:
        return self.store.account_page(where, after, first)

    def in_order(self, where: AccountFilter, after: str | None, first: int) -> list[Account]:
        """``page`` without the count: for going through all the accounts a filter passes."""
        return self.store.accounts_in_order(where, after, first)

    def subsidiaries(self, ids: Iterable[str]) -> dict[str, list[str]]:
        return self.store.subsidiary_ids(ids)

    def history(self, account_id: str) -> list[AccountHistoryEntry]:
        return self.store.account_history(account_id)

    def contacts(self, accounts: Iterable[Account]) -> dict[str, list[ContactView]]:
        """Each account's contacts on the customers of now, in one read of the graph."""
        accounts = list(accounts)
        placed = place(accounts, self.customers)
        return {a.id: placed.contacts(a.id, self.levels) for a in accounts}

    def standing(self, accounts: Iterable[Account]) -> dict[str, Standing]:
        """Accounts' contacts and dismissals on the customers of now, in one read of the graph."""
        accounts = list(accounts)
        placed = place(accounts, self.customers)
        return {
            a.id: Standing(a, placed.contacts(a.id, self.levels), placed.dismissed[a.id])
            for a in accounts
        }

    def decision_unit(self, account: Account, template_id: str | None = None) -> DecisionUnit:
        return self.standing([account])[account.id].decision_unit(self.templates().get(template_id))

    def moved_by(
        self, kind: str, one_id: str, others: Iterable[str], at: datetime
    ) -> list[AccountHistoryEntry]:
        """The account links one merge or split moved (``follow_customers`` wrote them)."""
        via = f"{kind} {one_id}"
        found = self.store.account_ids_by_contact([one_id, *others]).values()
        return [
            h
            for account_id in sorted({a for ids in found for a in ids})
            for h in self.store.account_history(account_id)
            if h.via == via and h.at == at
        ]

    def account_ids_of(self, one_id: str, aliases: Iterable[str], keys: Iterable[Key]) -> list[str]:
        """Accounts a customer may be a contact of: by its OneIDs or its identifiers.

        Placement decides whether it is (a split may have taken the link elsewhere).
        """
        refs = [one_id, *aliases, *map(key_ref, keys)]
        found = self.store.account_ids_by_contact(refs).values()
        return sorted({a for ids in found for a in ids})

    def accounts_of(
        self, one_id: str, aliases: Iterable[str], keys: Iterable[Key]
    ) -> list[ContactView]:
        """A customer's links to accounts, placed."""
        ids = self.account_ids_of(one_id, aliases, keys)
        contacts = self.contacts(self.store.accounts(ids).values())
        return [c for views in contacts.values() for c in views if c.one_id == one_id]

    def suggested_accounts(
        self, emails: Iterable[tuple[str, Sequence[str]]], linked: Iterable[str]
    ) -> list[DomainMatch]:
        """Accounts a customer's emails match by domain, other than those it is linked to.

        ``emails`` are (email, the sources that saw it); strongest first.
        """
        emails = list(emails)
        hosts = {h: e for e, _ in emails if (h := email_host(e)) is not None}
        domains = {d for h in hosts if (d := registrable(h)) is not None}
        owners = self.store.account_ids_by_domain(domains)
        skip = set(linked)
        found: dict[str, DomainMatch] = {}
        for email, sources in emails:
            for match in self.matcher.matches(email, sources, owners):
                best = found.get(match.account_id)
                if match.account_id not in skip and (best is None or _stronger(match, best)):
                    found[match.account_id] = match
        return sorted(found.values(), key=lambda m: (m.strength != Strength.STRONG, m.account_id))

    # --- writes ---------------------------------------------------------------------
    def _write(self, write: AccountWrite) -> None:
        if write:
            self.store.write_accounts(write)
            self._local.written.append(write)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The store's account lock; ``on_written`` hears of the writes once they are committed."""
        if getattr(self._local, "inside", False):  # the outer one commits, and tells
            yield
            return
        self._local.written, self._local.inside = [], True
        try:
            with self.store.accounts_exclusive():
                yield
        finally:
            self._local.inside = False
        written, self._local.written = self._local.written, []
        if self.on_written is not None:
            for write in written:
                self.on_written(write)

    def _standing(self, account_id: str) -> tuple[Account, Account, Placed]:
        """An account as stored, as it stands now (links placed and united), and the placing."""
        found = self.store.accounts([account_id]).get(account_id)
        if found is None:
            raise NotFound(f"no account {account_id!r}", account=account_id)
        placed = place([found], self.customers)
        return found, placed.settled(found), placed

    def _customer(self, one_id: str) -> str:
        canonical, _ = self.customers.current([one_id], [])
        found = canonical.get(one_id)
        if found is None:
            raise NotFound(f"no customer with OneID {one_id!r}", oneId=one_id)
        return found

    def _contact(self, account_id: str, one_id: str) -> tuple[Account, Account, Placed, str, Link]:
        """``_standing``, the customer ``one_id`` is now, and its link: or NOT_FOUND."""
        stored, account, placed = self._standing(_id(account_id))
        customer = self._customer(one_id)
        return stored, account, placed, customer, _linked(account, customer, one_id)

    def upsert_account(self, given: AccountInput, via: str) -> Account:
        account_id = _id(given.id)
        domains = None
        if given.domains is not None:
            if len(given.domains) > MAX_DOMAINS:
                raise BadUserInput(f"an account has at most {MAX_DOMAINS} domains")
            domains = tuple(dict.fromkeys(account_domain(d) for d in given.domains))
        now = self._clock()
        with self._exclusive():
            before = self.store.accounts([account_id]).get(account_id)
            parent = before.parent_id if before is not None else None
            if given.parent_given or given.parent_id is not None:
                parent = None if given.parent_id is None else _id(given.parent_id, "parent id")
                if parent is not None:
                    self._check_parent(account_id, parent)
            fields = {
                "name": _text(given.name, "name"),
                "industry": _text(given.industry, "industry"),
                "size_band": _text(given.size_band, "sizeBand"),
                "region": _text(given.region, "region"),
            }
            if before is None:
                account = Account(
                    account_id,
                    fields["name"],
                    domains or (),
                    fields["industry"],
                    fields["size_band"],
                    fields["region"],
                    parent,
                    now,
                    now,
                )
                change, details = "ACCOUNT_CREATED", described(account)
            else:
                changed = {k: v for k, v in fields.items() if v is not None}
                account = replace(before, **changed, parent_id=parent)  # type: ignore[arg-type]
                if domains is not None:
                    account = replace(account, domains=domains)
                details = differences(before, account)
                if not details:
                    return before
                account = replace(account, updated_at=now)
                change = "ACCOUNT_UPDATED"
            self._write(
                AccountWrite(
                    put=[account],
                    history=[AccountHistoryEntry(account_id, now, change, via, None, details)],
                )
            )
        return account

    def _check_parent(self, account_id: str, parent: str) -> None:
        if parent == account_id:
            raise AccountCycle(f"account {account_id!r} cannot be its own parent")
        seen = {account_id}
        current: str | None = parent
        first = True
        while current is not None:
            found = self.store.accounts([current]).get(current)
            if found is None:
                if first:
                    raise NotFound(f"no parent account {parent!r}", account=parent)
                return
            if found.id in seen:
                raise AccountCycle(
                    f"making {parent!r} the parent of {account_id!r} would make a cycle",
                    account=account_id,
                    parent=parent,
                )
            seen.add(found.id)
            current = found.parent_id
            first = False

    def delete_account(self, account_id: str, via: str) -> Account:
        account_id = _id(account_id)
        now = self._clock()
        with self._exclusive():
            found = self.store.accounts([account_id]).get(account_id)
            if found is None:
                raise NotFound(f"no account {account_id!r}", account=account_id)
            children = self.store.subsidiary_ids([account_id]).get(account_id, [])
            orphaned = [
                replace(c, parent_id=None, updated_at=now)
                for c in self.store.accounts(children).values()
            ]
            history = [AccountHistoryEntry(account_id, now, "ACCOUNT_DELETED", via)] + [
                AccountHistoryEntry(c.id, now, "PARENT_DELETED", via, None, {"parent": account_id})
                for c in orphaned
            ]
            self._write(AccountWrite(put=orphaned, deleted=[account_id], history=history))
        return found

    def link_contact(
        self,
        account_id: str,
        one_id: str,
        title: str | None,
        department: str | None,
        roles: Sequence[str] | None,
        via: str,
    ) -> ContactView:
        wanted = self.templates().check_roles(roles) if roles is not None else None
        title, department = _text(title, "title"), _text(department, "department")
        now = self._clock()
        with self._exclusive():
            stored, account, placed = self._standing(_id(account_id))
            customer = self._customer(one_id)
            before = account.link(customer)
            if before is None:
                link = Link(customer, title, department, MANUAL, now, now)
            else:
                link = replace(
                    before,
                    title=title if title is not None else before.title,
                    department=department if department is not None else before.department,
                )
            if wanted is not None:
                link = replace(link, roles=_roles(link.roles, wanted, now))
            details = link_differences(before, link)
            if before is not None and not details:
                return _view(self, account.id, before)
            link = replace(link, updated_at=now)
            change = "CONTACT_LINKED" if before is None else "CONTACT_UPDATED"
            self._write(
                AccountWrite(
                    put=[replace(placed.replacing(stored, customer, link), updated_at=now)],
                    history=[AccountHistoryEntry(account.id, now, change, via, customer, details)],
                )
            )
        return _view(self, account.id, link)

    def unlink_contact(self, account_id: str, one_id: str, via: str) -> Account:
        now = self._clock()
        with self._exclusive():
            stored, account, placed, customer, _ = self._contact(account_id, one_id)
            after = replace(placed.replacing(stored, customer, None), updated_at=now)
            self._write(
                AccountWrite(
                    put=[after],
                    history=[
                        AccountHistoryEntry(account.id, now, "CONTACT_UNLINKED", via, customer)
                    ],
                )
            )
        return after

    def set_roles(
        self, account_id: str, one_id: str, roles: Sequence[str], via: str
    ) -> ContactView:
        wanted = self.templates().check_roles(roles)
        return self._change_link(
            account_id,
            one_id,
            via,
            "ROLES_SET",
            lambda link, now: replace(link, roles=_roles(link.roles, wanted, now)),
        )

    def confirm_suggestion(self, account_id: str, one_id: str, role: str, via: str) -> ContactView:
        (wanted,) = self.templates().check_roles([role])

        def confirmed(link: Link, now: datetime) -> Link:
            held = [r.role for r in link.roles]
            return replace(link, roles=_roles(link.roles, [*held, wanted], now))

        return self._change_link(account_id, one_id, via, "SUGGESTION_CONFIRMED", confirmed)

    def dismiss_suggestion(self, account_id: str, one_id: str, role: str, via: str) -> Account:
        (wanted,) = self.templates().check_roles([role])
        now = self._clock()
        with self._exclusive():
            stored, account, _, customer, _ = self._contact(account_id, one_id)
            if (customer, wanted) in account.dismissed:
                return account
            after = replace(stored, dismissed=stored.dismissed | {(customer, wanted)})
            self._write(
                AccountWrite(
                    put=[after],
                    history=[
                        AccountHistoryEntry(
                            account.id, now, "SUGGESTION_DISMISSED", via, customer, {"role": wanted}
                        )
                    ],
                )
            )
        return after

    def set_reports_to(
        self, account_id: str, one_id: str, manager_one_id: str | None, via: str
    ) -> ContactView:
        now = self._clock()
        with self._exclusive():
            stored, account, placed, customer, link = self._contact(account_id, one_id)
            manager = None
            if manager_one_id is not None:
                manager = self._customer(manager_one_id)
                _linked(account, manager, manager_one_id)
                lines = {x.one_id: x.reports_to for x in account.links}
                lines[customer] = manager
                walked: set[str] = {customer}
                at: str | None = manager
                while at is not None:
                    if at in walked:
                        raise ReportingCycle(
                            f"{customer} reporting to {manager} would make a cycle",
                            oneId=customer,
                            manager=manager,
                        )
                    walked.add(at)
                    at = lines.get(at)
            if link.reports_to == manager:
                return _view(self, account.id, link)
            changed = replace(link, reports_to=manager, updated_at=now)
            self._write(
                AccountWrite(
                    put=[replace(placed.replacing(stored, customer, changed), updated_at=now)],
                    history=[
                        AccountHistoryEntry(
                            account.id, now, "REPORTS_TO_SET", via, customer, {"manager": manager}
                        )
                    ],
                )
            )
        return _view(self, account.id, changed)

    def _change_link(
        self,
        account_id: str,
        one_id: str,
        via: str,
        change: str,
        make: Callable[[Link, datetime], Link],
    ) -> ContactView:
        now = self._clock()
        with self._exclusive():
            stored, account, placed, customer, link = self._contact(account_id, one_id)
            changed = make(link, now)
            details = link_differences(link, changed)
            if not details:
                return _view(self, account.id, link)
            changed = replace(changed, updated_at=now)
            self._write(
                AccountWrite(
                    put=[replace(placed.replacing(stored, customer, changed), updated_at=now)],
                    history=[AccountHistoryEntry(account.id, now, change, via, customer, details)],
                )
            )
        return _view(self, account.id, changed)

    def record_events(self, items: Sequence[EventAccounts]) -> None:
        """Link events' customers to the accounts they name, and to those their email matches.

        An event's account is found by id, else by domain, else by exact name,
        and created when none is (a new id or domain). A verified source's
        email whose registrable domain is an account's links its customer too
        (``source: DOMAIN``) when config says so. An event sent again only
        makes a link that is missing (its first sending may have been cut off
        after its identities were written), never changes one.
        """
        auto = self.link_strong
        wanted = [
            i
            for i in items
            if i.account is not None or (auto and i.source in self.matcher.verified_sources)
        ]
        if not wanted:
            return
        if not any(i.account for i in wanted):
            # Most batches name no account: one read, no lock, tells whether any email matches.
            domains = {d for i in wanted for k in i.emails if (d := domain_of(k))}
            if not domains or not self.store.account_ids_by_domain(domains):
                return
        now = self._clock()
        with self._exclusive():
            EventLinks(self.store, self.matcher, self.link_strong, now).apply(wanted)

    def follow_customers(self, changes: Sequence[CustomerChange]) -> None:
        """File account links under the customers merges and splits made, and say so.

        Reads place links on the customers of now whether or not this runs;
        it files each moved link under its customer (kept apart, see
        ``Placed.filed``), with a history row per link that moved
        (``CONTACT_MERGED``, ``CONTACT_MOVED``, ``CONTACT_DROPPED``) naming the
        identity change, which the profile's history shows beside it.
        """
        one_ids = {o for c in changes for o in (c.one_id, *c.others)}
        if not one_ids:
            return
        ids = {a for found in self.store.account_ids_by_contact(one_ids).values() for a in found}
        if not ids:
            return
        with self._exclusive():
            accounts = self.store.accounts(ids)
            placed = place(accounts.values(), self.customers)
            put, history = [], []
            for account in accounts.values():
                rows = moved_links(account, placed, changes)
                if rows:
                    put.append(placed.filed(account))
                    history += rows
            self._write(AccountWrite(put=put, history=history))

    def saved_segments(self) -> dict[str, str]:
        """Saved account segments: id -> the segment as JSON (``graph.segments`` reads them)."""
        return self.store.account_segments()

    def save_segment(self, segment_id: str, text: str | None) -> None:
        """Save an account segment as JSON, or delete it (None)."""
        with self._exclusive():
            self._write(AccountWrite(segments={segment_id: text}))

    def upsert_template(self, template: Template) -> Template:
        text = json.dumps(_template_data(template), ensure_ascii=False)
        with self._exclusive():
            self._write(AccountWrite(templates={template.id: text}))
        return template


def _stronger(a: DomainMatch, b: DomainMatch) -> bool:
    return a.strength == Strength.STRONG and b.strength != Strength.STRONG


def _linked(account: Account, customer: str, asked: str) -> Link:
    found = account.link(customer)
    if found is None:
        raise NotFound(
            f"{asked!r} is not a contact of account {account.id!r}", account=account.id, oneId=asked
        )
    return found


def _view(book: AccountBook, account_id: str, link: Link) -> ContactView:
    return view_of(account_id, link, book.levels)


def _roles(held: Sequence[HeldRole], wanted: Sequence[str], now: datetime) -> tuple[HeldRole, ...]:
    """``wanted`` as held roles: ones already held keep their since and source."""
    kept = {r.role: r for r in held}
    return tuple(kept.get(role) or HeldRole(role, MANUAL, now) for role in wanted)


def _template_data(template: Template) -> dict[str, object]:
    return {
        "id": template.id,
        "name": template.name,
        "roles": [
            {
                "role": r.role,
                "required": r.required,
                "weight": r.weight,
                "rules": [
                    {
                        "confidence": rule.confidence,
                        "seniority": sorted(s.value for s in rule.seniority),
                        "title_keywords": list(rule.title_keywords),
                        "departments": list(rule.departments),
                    }
                    for rule in r.rules
                ],
            }
            for r in template.roles
        ],
    }
