"""Which company an email belongs to: registrable domains, never substrings.

An email matches an account when the *registrable* domain of its host (the
public suffix plus one label, from the Public Suffix List) is one of the
account's domains. So ``li@sh.acme.com.cn`` matches ``acme.com.cn``, while
``bob@notacme.com``, ``bob@acme.com.ar`` and ``bob@acme.com.evil.io`` do not
match ``acme.com``: their registrable domains are ``notacme.com``,
``acme.com.ar`` and ``evil.io``. The list's private section counts too, so
``a.github.io`` and ``b.github.io`` are two sites, not one.

The list comes inside the ``publicsuffixlist`` package and is never fetched
at run time: idgraph runs in closed networks. Domains are kept in their
ASCII form (IDNA 2008 with UTS 46 mapping, via ``idna``), so ``例子.中国``,
``例子.中國`` typed full-width and ``xn--fsqu00a.xn--fiqs8s`` are one domain.

Free-mail domains (qq.com, 163.com, gmail.com, ...) never match anything:
a thousand unrelated people share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import idna
from publicsuffixlist import PublicSuffixList

from graph.errors import BadUserInput


class Strength(StrEnum):
    STRONG = "STRONG"  # the email was seen from a source that verifies it (a CRM)
    WEAK = "WEAK"  # seen only from sources that take what people type (a web form)


@cache
def _suffixes() -> PublicSuffixList:
    """The list, parsed once (tens of milliseconds) when a domain is first looked at."""
    return PublicSuffixList()


def _ascii_host(text: str) -> str | None:
    host = text.strip().rstrip(".")
    if not host or any(c.isspace() for c in host):
        return None
    try:
        encoded = idna.encode(host, uts46=True, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    labels = encoded.split(".")
    if len(labels) < 2 or labels[-1].isdigit():  # one label, or an IP address
        return None
    return encoded


def registrable(host: str) -> str | None:
    """The registrable domain of a host, ASCII and lower case; None if it has none."""
    ascii_host = _ascii_host(host)
    if ascii_host is None:
        return None
    found = _suffixes().privatesuffix(ascii_host)
    return found if isinstance(found, str) else None


def account_domain(text: str) -> str:
    """An account's domain as stored: the registrable domain of what was given.

    ``www.acme.com`` is kept as ``acme.com``: emails are matched on their
    registrable domain, so a subdomain would never match. A public suffix on
    its own (``com.cn``, ``github.io``), a URL, an address or a word is not a
    company's domain and is refused.
    """
    if "@" in text or "/" in text or ":" in text:
        raise BadUserInput(f"{text!r} is not a domain: give it bare, like acme.com", domain=text)
    found = registrable(text)
    if found is None:
        raise BadUserInput(
            f"{text!r} is not a domain a company can own (e.g. acme.com, acme.com.cn)", domain=text
        )
    return found


def email_host(email: str) -> str | None:
    local, at, host = email.rpartition("@")
    if not at or not local:
        return None
    return _ascii_host(host)


@dataclass(frozen=True)
class DomainMatch:
    account_id: str
    domain: str
    email: str
    strength: Strength
    reason: str


class DomainMatcher:
    """Matches emails to accounts by registrable domain, with the config's free mail and sources."""

    def __init__(self, free_mail: Iterable[str], verified_sources: Iterable[str]) -> None:
        self.free_mail = frozenset(h for h in map(_ascii_host, free_mail) if h is not None)
        self.verified_sources = frozenset(verified_sources)

    def is_free_mail(self, host: str) -> bool:
        domain = registrable(host)
        return host in self.free_mail or (domain is not None and domain in self.free_mail)

    def matches(
        self, email: str, sources: Sequence[str], accounts_by_domain: Mapping[str, Sequence[str]]
    ) -> list[DomainMatch]:
        """The accounts whose domain is the email's registrable domain, strongest evidence first.

        ``sources`` are the sources the email was seen from; ``accounts_by_domain``
        maps a stored (registrable, ASCII) domain to the accounts that own it.
        """
        host = email_host(email)
        if host is None or self.is_free_mail(host):
            return []
        domain = registrable(host)
        if domain is None:
            return []
        owners = accounts_by_domain.get(domain, ())
        verified = sorted(set(sources) & self.verified_sources)
        strength = Strength.STRONG if verified else Strength.WEAK
        seen = (
            f"verified by {', '.join(verified)}"
            if verified
            else f"seen only from {', '.join(sorted(set(sources))) or 'no source'}"
        )
        return [
            DomainMatch(
                account_id,
                domain,
                email,
                strength,
                f"{email}: registrable domain {domain} is a domain of account {account_id}; {seen}",
            )
            for account_id in sorted(owners)
        ]
