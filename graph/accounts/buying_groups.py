"""Buying-group templates: the roles a deal needs, how many of each, and who looks like one.

A template lists roles, each with the number of people it needs
(``required``; 0 for roles that are only worth knowing, like a gatekeeper),
a ``weight`` in the overall completeness, and rules that suggest the role
for a contact from what is known of them: seniority, title words and
department words. A rule holds when every condition it gives holds (any of
its seniorities, any of its title words, any of its department words) and
suggests the role with its ``confidence``; the best rule that holds wins.
Rules only suggest: a role is held when a person assigns it.

Roles are names (``DECISION_MAKER``, or any a user defines); a role is known
when some template has it, so a typo in a mutation is an ``UNKNOWN_ROLE``,
not a new role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from graph.accounts.seniority import Seniority
from graph.accounts.titles import normalise_title, terms_pattern
from graph.errors import BadUserInput, NotFound, UnknownRole

ROLE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
TEMPLATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_TEMPLATE = "default"


@dataclass(frozen=True)
class RoleRule:
    confidence: float
    seniority: frozenset[Seniority] = frozenset()
    title_keywords: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    _title: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _department: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.confidence <= 1:
            raise BadUserInput(f"a rule's confidence is in [0, 1], not {self.confidence}")
        if not (self.seniority or self.title_keywords or self.departments):
            raise BadUserInput("a role rule needs a seniority, a title keyword or a department")
        try:
            object.__setattr__(self, "_title", terms_pattern(self.title_keywords))
            object.__setattr__(self, "_department", terms_pattern(self.departments))
        except ValueError as exc:
            raise BadUserInput(str(exc)) from exc

    def reason(self, seniority: Seniority, title: str, department: str) -> str | None:
        """Why this rule holds for a contact (normalised title and department), or None."""
        said = []
        if self.seniority:
            if seniority not in self.seniority:
                return None
            said.append(f"seniority {seniority.value}")
        if self._title is not None:
            found = self._title.search(title)
            if found is None:
                return None
            said.append(f"title has {found.group(0)!r}")
        if self._department is not None:
            found = self._department.search(department)
            if found is None:
                return None
            said.append(f"department has {found.group(0)!r}")
        return ", ".join(said)


@dataclass(frozen=True)
class RoleSpec:
    role: str
    required: int
    weight: float
    rules: tuple[RoleRule, ...] = ()

    def __post_init__(self) -> None:
        if not ROLE_NAME.fullmatch(self.role):
            raise BadUserInput(
                f"role {self.role!r} must be UPPER_SNAKE_CASE (letters, digits, underscores)"
            )
        if self.required < 0 or self.weight < 0:
            raise BadUserInput(f"role {self.role}: required and weight cannot be negative")

    def suggestion(
        self, seniority: Seniority, title: str | None, department: str | None
    ) -> tuple[float, str] | None:
        """The best rule's confidence and its reason, if any rule holds."""
        title_text = normalise_title(title or "")
        department_text = normalise_title(department or "")
        best: tuple[float, str] | None = None
        for rule in self.rules:
            why = rule.reason(seniority, title_text, department_text)
            if why is not None and (best is None or rule.confidence > best[0]):
                best = (rule.confidence, why)
        return best


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    roles: tuple[RoleSpec, ...]

    def __post_init__(self) -> None:
        if not TEMPLATE_ID.fullmatch(self.id):
            raise BadUserInput(f"template id {self.id!r}: letters, digits, '_', '.', '-'")
        names = [r.role for r in self.roles]
        if not names:
            raise BadUserInput(f"template {self.id} has no roles")
        if len(set(names)) != len(names):
            raise BadUserInput(f"template {self.id} lists a role twice")


class Templates:
    """The templates in force: config's, with those saved by mutation over them."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self._by_id: dict[str, Template] = {t.id: t for t in templates}

    def get(self, template_id: str | None) -> Template:
        found = self._by_id.get(template_id or DEFAULT_TEMPLATE)
        if found is None:
            raise NotFound(f"no buying-group template {template_id!r}", template=template_id)
        return found

    def with_template(self, template: Template) -> Templates:
        return Templates({**self._by_id, template.id: template}.values())

    def all(self) -> list[Template]:
        return sorted(self._by_id.values(), key=lambda t: t.id)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r.role for t in self._by_id.values() for r in t.roles)

    def check_roles(self, roles: Iterable[str]) -> list[str]:
        """``roles`` without repeats, in order; any role no template has is an error."""
        wanted = list(dict.fromkeys(roles))
        unknown = [r for r in wanted if r not in self.roles]
        if unknown:
            raise UnknownRole(
                f"no template has the role {unknown[0]!r}; known: {', '.join(sorted(self.roles))}",
                role=unknown[0],
            )
        return wanted


def template_from(raw: Mapping[str, object]) -> Template:
    """A template from config or a mutation's input (plain data, already typed)."""
    roles = []
    for spec in raw["roles"]:  # type: ignore[attr-defined]
        rules = tuple(
            RoleRule(
                confidence=float(rule["confidence"]),
                seniority=frozenset(Seniority(s) for s in rule.get("seniority", ())),
                title_keywords=tuple(rule.get("title_keywords", ())),
                departments=tuple(rule.get("departments", ())),
            )
            for rule in spec.get("rules", ())
        )
        roles.append(RoleSpec(spec["role"], int(spec["required"]), float(spec["weight"]), rules))
    return Template(str(raw["id"]), str(raw.get("name") or raw["id"]), tuple(roles))
