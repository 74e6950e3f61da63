"""Which customer each account link belongs to now, through merges and splits.

A link is stored under the OneID it was made with, and the identity graph
moves on: customers merge (the OneID becomes an alias) and split. Rather
than rewrite every account at every merge, links are placed when read:

- a link brought by identifiers (an event's, or the email whose domain
  matched) belongs to the customer that holds most of them now, so on a
  split it follows the part with its evidence;
- a manual link belongs to whoever holds its OneID now: the survivor of a
  merge, or on a split the part that kept the OneID.

Links that land on one customer are one contact: roles united (each role's
earliest holding kept), the earliest ``since``, the title and department
last written (of those that have one). Reporting lines and dismissals
follow OneIDs the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from graph.accounts.decision_unit import HeldRole
from graph.accounts.models import Account, AccountHistoryEntry, Link
from graph.accounts.seniority import Seniority, SeniorityRules
from graph.models import Key


class Customers(Protocol):
    """What accounts need of the identity graph, each in one read."""

    def current(
        self, one_ids: Iterable[str], keys: Iterable[Key]
    ) -> tuple[dict[str, str | None], dict[Key, str | None]]:
        """Each OneID's surviving OneID, and each identifier's customer (None: none now)."""
        ...


class CustomerChange(Protocol):
    """A merge or split in the identity graph, as its history records it."""

    kind: str
    one_id: str
    others: list[str]
    at: datetime
    reason: str


MOVE_CHANGES = {"merge": "CONTACT_MERGED", "split": "CONTACT_MOVED"}


@dataclass(frozen=True)
class ContactView:
    account_id: str
    one_id: str
    title: str | None
    department: str | None
    seniority: Seniority
    roles: tuple[HeldRole, ...]
    source: str
    since: datetime
    updated_at: datetime
    reports_to: str | None


def view_of(account_id: str, link: Link, levels: SeniorityRules) -> ContactView:
    return ContactView(
        account_id,
        link.one_id,
        link.title,
        link.department,
        levels.level(link.title),
        link.roles,
        link.source,
        link.since,
        link.updated_at,
        link.reports_to,
    )


@dataclass(frozen=True)
class Placed:
    """Accounts' links united under current OneIDs, and their dismissals likewise."""

    links: dict[str, list[Link]]
    dismissed: dict[str, frozenset[tuple[str, str]]]
    # Account id -> the customer each stored link (in order) is placed on now, None
    # when no customer holds it any more (its identifiers all removed or shared).
    owners: dict[str, list[str | None]]
    canonical: dict[str, str | None]  # each OneID the accounts name -> its survivor now

    def settled(self, account: Account) -> Account:
        """The account as it stands now: what a write starts from and stores."""
        return replace(
            account, links=tuple(self.links[account.id]), dismissed=self.dismissed[account.id]
        )

    def replacing(self, account: Account, customer: str, link: Link | None) -> Account:
        """The stored ``account`` with ``customer``'s links replaced by ``link`` (None: unlinked).

        A change to one contact unites that contact's links; every other
        link stays as stored, so a later split still parts them by their own
        evidence and OneIDs. Unlinking also ends reporting lines to them.
        """
        owners = self.owners[account.id]
        kept = [x for x, owner in zip(account.links, owners, strict=True) if owner != customer]
        if link is None:
            kept = [
                replace(x, reports_to=None)
                if x.reports_to and self._holder(account, x.reports_to) == customer
                else x
                for x in kept
            ]
        return replace(account, links=(*kept, *([link] if link else [])))

    def _holder(self, account: Account, one_id: str) -> str | None:
        """Who a OneID named by a link (a manager) is now, as ``place`` unites them."""
        for x, owner in zip(account.links, self.owners[account.id], strict=True):
            if x.one_id == one_id:
                return owner
        return self.canonical.get(one_id) or one_id

    def filed(self, account: Account) -> Account:
        """The account with each link noted as on the customer it is placed on now.

        Only ``placed_on`` changes: the OneID a link was made with and its
        evidence still decide where a later split sends it, and links stay
        apart; a link nobody holds keeps its last place, for a restore.
        """
        return replace(
            account,
            links=tuple(
                replace(x, placed_on=owner or x.placed_on)
                for x, owner in zip(account.links, self.owners[account.id], strict=True)
            ),
        )

    def contacts(self, account_id: str, levels: SeniorityRules) -> list[ContactView]:
        return [view_of(account_id, x, levels) for x in self.links[account_id]]


def place(accounts: Iterable[Account], customers: Customers) -> Placed:
    accounts = list(accounts)
    one_ids = {x.one_id for a in accounts for x in a.links}
    one_ids |= {x.reports_to for a in accounts for x in a.links if x.reports_to}
    one_ids |= {one_id for a in accounts for one_id, _ in a.dismissed}
    keys = {k for a in accounts for x in a.links for k in x.evidence}
    canonical, holders = customers.current(one_ids, keys)
    united: dict[str, list[Link]] = {}
    dismissed: dict[str, frozenset[tuple[str, str]]] = {}
    owner: dict[tuple[str, str], str | None] = {}
    owners: dict[str, list[str | None]] = {}
    for account in accounts:
        groups: dict[str, list[Link]] = {}
        owners[account.id] = []
        for link in account.links:
            current = _owner(link, canonical, holders)
            owner[(account.id, link.one_id)] = current
            owners[account.id].append(current)
            if current is not None:
                groups.setdefault(current, []).append(link)
        united[account.id] = sorted(
            (
                _united(account.id, one_id, links, owner, canonical)
                for one_id, links in groups.items()
            ),
            key=lambda x: (x.since, x.one_id),
        )
        dismissed[account.id] = frozenset(
            (canonical.get(one_id) or one_id, role) for one_id, role in account.dismissed
        )
    return Placed(united, dismissed, owners, canonical)


def _owner(
    link: Link, canonical: dict[str, str | None], holders: dict[Key, str | None]
) -> str | None:
    found = Counter(h for k in link.evidence if (h := holders.get(k)) is not None)
    if found:
        # Most of its evidence; a tie goes to the OneID the link was made with, then by id.
        top = max(found.values())
        tied = sorted(o for o, n in found.items() if n == top)
        mine = canonical.get(link.one_id)
        return mine if mine in tied else tied[0]
    return canonical.get(link.one_id)


def _united(
    account_id: str,
    one_id: str,
    links: list[Link],
    owner: dict[tuple[str, str], str | None],
    canonical: dict[str, str | None],
) -> Link:
    links = sorted(links, key=lambda x: x.since)
    newest_first = sorted(links, key=lambda x: x.updated_at, reverse=True)
    latest = newest_first[0]
    title = next((x.title for x in newest_first if x.title is not None), None)
    department = next((x.department for x in newest_first if x.department is not None), None)
    roles: dict[str, HeldRole] = {}
    for held in sorted((r for x in links for r in x.roles), key=lambda r: r.since):
        roles.setdefault(held.role, held)
    manager = latest.reports_to
    if manager is not None:
        manager = owner.get((account_id, manager)) or canonical.get(manager)
        if manager == one_id:
            manager = None  # a merge made someone their own manager: no line left
    return Link(
        one_id,
        title,
        department,
        links[0].source,
        links[0].since,
        latest.updated_at,
        tuple(roles.values()),
        manager,
        tuple(dict.fromkeys(k for x in links for k in x.evidence)),
    )


def moved_links(
    account: Account, placed: Placed, changes: Sequence[CustomerChange]
) -> list[AccountHistoryEntry]:
    """A history row for each of the account's links that ``changes`` moved to another customer.

    Each row names the change that moved it (``via``: its kind and OneID, at its
    time), so a profile's merge or split can list the account links it carried.
    """
    rows = []
    for link, now in zip(account.links, placed.owners[account.id], strict=True):
        was = link.placed_on or link.one_id
        if now == was:
            continue
        cause = _cause(was, now, changes)
        if cause is None:
            continue
        change = "CONTACT_DROPPED" if now is None else MOVE_CHANGES.get(cause.kind, "CONTACT_MOVED")
        rows.append(
            AccountHistoryEntry(
                account.id,
                cause.at,
                change,
                f"{cause.kind} {cause.one_id}",
                now,
                {
                    "from": was,
                    "to": now,
                    "roles": [r.role for r in link.roles],
                    "reason": cause.reason,
                },
            )
        )
    return rows


def _cause(was: str, now: str | None, changes: Sequence[CustomerChange]) -> CustomerChange | None:
    """The change that took a link from ``was`` to ``now``.

    One naming both, a merge or split before the restore that may come with
    it; else one naming ``was`` (a retirement).
    """
    naming = [c for c in changes if was in (c.one_id, *c.others)]
    both = [c for c in naming if now in (c.one_id, *c.others)]
    found = sorted(both or naming, key=lambda c: c.kind not in MOVE_CHANGES)
    return found[0] if found else None
