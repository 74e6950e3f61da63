"""What applied events say about accounts, written as one account change per batch.

An event's account is found by id, else by domain, else by exact name, and
created when none is (a new id or domain). A verified source's email whose
registrable domain is an account's links its customer too (``source:
DOMAIN``) when config says so. An event sent again only makes a link that is
missing (its first sending may have been cut off after its identities were
written), never changes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from graph.accounts.changes import described, differences, link_differences
from graph.accounts.domains import DomainMatcher, email_host, registrable
from graph.accounts.models import (
    DOMAIN,
    EVENT,
    Account,
    AccountFilter,
    AccountHistoryEntry,
    AccountWrite,
    Link,
    name_key,
)
from graph.events import AccountEvidence
from graph.models import Key
from graph.store.protocol import AccountStore


@dataclass(frozen=True)
class EventAccounts:
    """What one applied event says about accounts."""

    event_id: str
    one_id: str
    source: str
    keys: tuple[Key, ...]  # its identifiers that link (not blocked)
    emails: tuple[Key, ...]  # those of them that are emails (of any type normalised as one)
    account: AccountEvidence | None
    fresh: bool  # accepted now; False: sent again, so it only fills in what is missing


class EventLinks:
    """One batch of events' account links, gathered and written in one account write."""

    def __init__(
        self, store: AccountStore, matcher: DomainMatcher, link_strong: bool, now: datetime
    ) -> None:
        self.store = store
        self.matcher = matcher
        self.link_strong = link_strong
        self.now = now
        self.changed: dict[str, Account] = {}
        self.history: list[AccountHistoryEntry] = []

    def apply(self, items: Sequence[EventAccounts]) -> None:
        emails = {
            i.event_id: list(i.emails)
            for i in items
            if self.link_strong and i.source in self.matcher.verified_sources
        }
        domains = {i.account.domain for i in items if i.account and i.account.domain}
        domains |= {d for keys in emails.values() for k in keys if (d := domain_of(k))}
        owners = self.store.account_ids_by_domain(domains)
        ids = {i.account.id for i in items if i.account and i.account.id}
        ids |= {a for found in owners.values() for a in found}
        known = self.store.accounts(ids)
        for item in items:
            via = f"event {item.event_id}"
            if item.account is not None:
                account = self._account(item.account, known, owners, via)
                self._link(account.id, item, EVENT, item.keys, via, item.account)
            for key in emails.get(item.event_id, []):
                domain = domain_of(key)
                for account_id in owners.get(domain or "", []):
                    self._link(account_id, item, DOMAIN, (key,), via, None)
        if self.changed or self.history:
            self.store.write_accounts(
                AccountWrite(put=list(self.changed.values()), history=self.history)
            )

    def _get(self, account_id: str, known: dict[str, Account]) -> Account | None:
        return self.changed.get(account_id) or known.get(account_id)

    def _account(
        self,
        evidence: AccountEvidence,
        known: dict[str, Account],
        owners: dict[str, list[str]],
        via: str,
    ) -> Account:
        found: Account | None = None
        if evidence.id is not None:
            found = self._get(evidence.id, known)
            new_id = evidence.id
        elif evidence.domain is not None:
            owned = sorted(owners.get(evidence.domain, []))
            found = self._get(owned[0], known) if owned else None
            new_id = f"domain:{evidence.domain}"
        else:
            assert evidence.name is not None
            found = self._named(evidence.name)
            new_id = f"name:{name_key(evidence.name)}"
        if found is None:
            found = self._get(new_id, known) or self.store.accounts([new_id]).get(new_id)
        if found is None:
            domains = (evidence.domain,) if evidence.domain else ()
            found = Account(
                new_id, evidence.name, domains, None, None, None, None, self.now, self.now
            )
            self.history.append(
                AccountHistoryEntry(
                    new_id, self.now, "ACCOUNT_CREATED", via, None, described(found)
                )
            )
        elif (evidence.domain and evidence.domain not in found.domains) or (
            evidence.name and found.name is None
        ):
            before = found
            found = replace(
                found,
                name=found.name or evidence.name,
                domains=tuple(dict.fromkeys([*found.domains, *filter(None, [evidence.domain])])),
                updated_at=self.now,
            )
            self.history.append(
                AccountHistoryEntry(
                    found.id, self.now, "ACCOUNT_UPDATED", via, None, differences(before, found)
                )
            )
        self.changed[found.id] = found
        if evidence.domain:
            owners.setdefault(evidence.domain, [])
            if found.id not in owners[evidence.domain]:
                owners[evidence.domain].append(found.id)
        return found

    def _named(self, name: str) -> Account | None:
        for account in self.changed.values():
            if name_key(account.name) == name_key(name):
                return account
        page = self.store.accounts_in_order(AccountFilter(name_prefix=name), None, 50)
        exact = [a for a in page if name_key(a.name) == name_key(name)]
        return exact[0] if exact else None

    def _link(
        self,
        account_id: str,
        item: EventAccounts,
        source: str,
        evidence: tuple[Key, ...],
        via: str,
        given: AccountEvidence | None,
    ) -> None:
        account = self.changed.get(account_id) or self.store.accounts([account_id]).get(account_id)
        if account is None:
            return
        before = account.link(item.one_id)
        title = given.title if given else None
        department = given.department if given else None
        if before is None:
            link = Link(
                item.one_id, title, department, source, self.now, self.now, (), None, evidence
            )
            change = "CONTACT_LINKED"
        elif not item.fresh:
            return
        else:
            link = replace(
                before,
                title=title if title is not None else before.title,
                department=department if department is not None else before.department,
                evidence=tuple(dict.fromkeys([*before.evidence, *evidence])),
            )
            if link == before:
                return
            link = replace(link, updated_at=self.now)
            change = "CONTACT_UPDATED"
        details = link_differences(before, link)
        details["source"] = source
        self.changed[account_id] = replace(account.with_link(link), updated_at=self.now)
        self.history.append(
            AccountHistoryEntry(account_id, self.now, change, via, item.one_id, details)
        )


def domain_of(key: Key) -> str | None:
    """The registrable domain of an email identifier."""
    host = email_host(key[1])
    return None if host is None else registrable(host)
