"""Accounts chosen by a condition over their fields, their contacts and their decision unit.

``where`` for accounts is the rule language's account form:

- ``{"field": F, "op": ..., "value": ...}`` with F one of ``industry``,
  ``region``, ``sizeBand``, ``id``: the account's own fields;
- ``{"contacts": C, "quantifier": "any" | "all" | "none"}``: C holds for
  any, all or none of the account's contacts (placed on the customers of
  now); C tests a contact's link (``field`` ``title``, ``department``,
  ``seniority``, ``roles``) and the contact's customer like any audience
  does (tags, traits, profile fields, aggregates), so "accounts in
  manufacturing where no contact is a DECISION_MAKER" and "accounts with an
  ACTIVE champion" are both one condition; ``all`` of no contacts is false;
- ``{"account": "completeness", "op": ..., "value": ..., "template": id}``:
  the decision unit's completeness (0 to 1) under a template (the default
  when left out);
- ``all``, ``any``, ``not`` of these.

A customer leaf is answered once for every customer by the audience index
(bitmaps), then looked up per contact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from pyroaring import BitMap

from graph.accounts.book import AccountBook, Standing
from graph.accounts.models import Account, AccountFilter
from graph.errors import InvalidRule
from graph.segments.audiences import Audiences
from graph.tags.conditions import QUANTIFIERS, Condition, LinkIs
from graph.tags.evaluation import holds, passes, quantified
from graph.tags.parsing import NUMBER, parse_condition, parse_test

ACCOUNT_FIELDS = ("industry", "region", "sizeBand", "id")
CONTACT_FIELDS = ("title", "department", "seniority", "roles")
PART = 1000  # accounts read at once
T = TypeVar("T")


@dataclass(frozen=True)
class _Contact:
    one_id: str
    seq: int  # the customer's number in the audience index (-1: unknown to it)
    link: Mapping[str, Any]  # the account's fields and this contact's, as rules name them


@dataclass
class _Account:
    account: Account
    fields: Mapping[str, Any]
    standing: Standing | None  # read only when a condition looks at contacts or the unit
    contacts: list[_Contact]


AccountTest = Callable[[_Account], bool]
ContactTest = Callable[[_Contact], bool]


class _Now:
    """The facts an account leaf is tested with: only the moment matters."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.tags: dict[str, Any] = {}


class AccountQuery:
    """One ``where`` compiled: which accounts meet it, in id order."""

    def __init__(
        self, where: Any, accounts: AccountBook, audiences: Audiences, now: datetime
    ) -> None:
        self._accounts = accounts
        self._audiences = audiences
        self._now = now
        self._facts = _Now(now)
        self._needs_contacts = False
        self._customer_leaves: list[tuple[Condition | None, list[BitMap]]] = []
        self._test = self._compile(where, "$.where")
        self._where = where

    def matching(self, first_filter: AccountFilter) -> list[Account]:
        """Every account that passes ``first_filter`` and meets the condition."""
        for condition, holder in self._customer_leaves:
            holder.append(self._audiences.select(condition)[0])
        found: list[Account] = []
        after: str | None = None
        narrowed = _narrowed(self._where, first_filter)
        while True:
            page = self._accounts.in_order(narrowed, after, PART)
            if not page:
                return found
            standing = self._accounts.standing(page) if self._needs_contacts else {}
            seqs: dict[str, int] = {}
            if self._customer_leaves:
                contacts = {c.one_id for placed in standing.values() for c in placed.contacts}
                seqs = self._audiences.seqs_of(contacts)
            for account in page:
                placed = standing.get(account.id)
                contacts_now = [] if placed is None else _contacts(account, placed, seqs)
                if self._test(_Account(account, _fields(account), placed, contacts_now)):
                    found.append(account)
            after = page[-1].id

    # --- compiling ---------------------------------------------------------------------
    def _compile(self, obj: Any, path: str) -> AccountTest:
        if not isinstance(obj, dict):
            raise InvalidRule("a condition must be a JSON object", path)
        combined = _combined(obj, path, self._compile)
        if combined is not None:
            return combined
        if "contacts" in obj:
            _only(obj, {"contacts", "quantifier"}, path)
            quantifier = obj.get("quantifier", "any")
            if quantifier not in QUANTIFIERS:
                raise InvalidRule(
                    f"quantifier is one of {', '.join(QUANTIFIERS)}", f"{path}.quantifier"
                )
            self._needs_contacts = True
            contact = self._contact(obj["contacts"], f"{path}.contacts")
            return lambda a: quantified(quantifier, [contact(c) for c in a.contacts])
        if obj.get("account") == "completeness":
            _only(obj, {"account", "op", "value", "template"}, path)
            test = parse_test(obj, path, NUMBER)
            template = obj.get("template")
            if template is not None and not isinstance(template, str):
                raise InvalidRule("template is a template's id", f"{path}.template")
            templates = self._accounts.templates()
            if template is not None and template not in {t.id for t in templates.all()}:
                raise InvalidRule(f"no buying-group template {template!r}", f"{path}.template")
            chosen = templates.get(template)
            self._needs_contacts = True
            now = self._now

            def complete(a: _Account) -> bool:
                unit = None if a.standing is None else a.standing.decision_unit(chosen)
                return passes(test, None if unit is None else unit.completeness, now)

            return complete
        if "account" in obj:
            raise InvalidRule('account is "completeness" here', f"{path}.account")
        leaf = parse_condition(obj, path, in_account=True)
        if not isinstance(leaf, LinkIs) or leaf.name not in ACCOUNT_FIELDS:
            raise InvalidRule(
                f"an account's own fields are {', '.join(ACCOUNT_FIELDS)}; test a contact's"
                " inside contacts",
                path,
            )
        facts = self._facts
        return lambda a: holds(leaf, facts, a.fields)  # type: ignore[arg-type]

    def _contact(self, obj: Any, path: str) -> ContactTest:
        if not isinstance(obj, dict):
            raise InvalidRule("a condition must be a JSON object", path)
        combined = _combined(obj, path, self._contact)
        if combined is not None:
            return combined
        if "field" in obj:
            leaf = parse_condition(obj, path, in_account=True)
            facts = self._facts
            return lambda c: holds(leaf, facts, c.link)  # type: ignore[arg-type]
        # Anything else is about the contact's customer: the audience index answers it.
        condition = self._audiences.parse(obj, path)
        holder: list[BitMap] = []  # filled once, when the accounts are read
        self._customer_leaves.append((condition, holder))
        return lambda c: bool(holder) and c.seq in holder[0]


def _contacts(account: Account, placed: Standing, seqs: Mapping[str, int]) -> list[_Contact]:
    fields = _fields(account)
    return [
        _Contact(
            c.one_id,
            seqs.get(c.one_id, -1),
            {
                **fields,
                "title": c.title,
                "department": c.department,
                "seniority": c.seniority.value,
                "roles": [r.role for r in c.roles],
            },
        )
        for c in placed.contacts
    ]


def _fields(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "industry": account.industry,
        "region": account.region,
        "sizeBand": account.size_band,
    }


def _combined(
    obj: dict[str, Any], path: str, compile_part: Callable[[Any, str], Callable[[T], bool]]
) -> Callable[[T], bool] | None:
    """``all``, ``any`` or ``not`` of parts compiled by ``compile_part``; None: a leaf."""
    if "not" in obj:
        _only(obj, {"not"}, path)
        inner = compile_part(obj["not"], f"{path}.not")
        return lambda x: not inner(x)
    kind = "all" if "all" in obj else "any" if "any" in obj else None
    if kind is None:
        return None
    _only(obj, {kind}, path)
    items = obj[kind]
    if not isinstance(items, list) or not items:
        raise InvalidRule(f"{kind} needs a non-empty list of conditions", f"{path}.{kind}")
    parts = [compile_part(item, f"{path}.{kind}[{n}]") for n, item in enumerate(items)]
    if kind == "all":
        return lambda x: all(p(x) for p in parts)
    return lambda x: any(p(x) for p in parts)


def _narrowed(where: Any, given: AccountFilter) -> AccountFilter:
    """``given``, with the industry and region ``where`` requires of every account it meets.

    Those are a leaf at the top of ``where``, or directly in an ``all`` at its
    top, testing ``industry`` or ``region`` with ``eq`` and a string (equal
    strings, as the store compares them): an account without that value
    cannot meet ``where``, so the store may leave it out with its index.
    The condition is still tested whole; a field ``given`` names stays as is.
    """
    top = where.get("all") if isinstance(where, dict) and set(where) == {"all"} else [where]
    required: dict[str, str] = {}
    for leaf in top if isinstance(top, list) else []:
        if (
            isinstance(leaf, dict)
            and set(leaf) == {"field", "op", "value"}
            and leaf["field"] in ("industry", "region")
            and leaf["op"] == "eq"
            and isinstance(leaf["value"], str)
        ):
            required.setdefault(leaf["field"], leaf["value"])
    return replace(
        given,
        industry=given.industry if given.industry is not None else required.get("industry"),
        region=given.region if given.region is not None else required.get("region"),
    )


def _only(obj: dict[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise InvalidRule(f"unknown key {extra[0]!r}", f"{path}.{extra[0]}")
