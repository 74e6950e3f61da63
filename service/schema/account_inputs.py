"""B2B account inputs and buying-group templates over GraphQL."""

from __future__ import annotations

from typing import Any

import strawberry

from graph.accounts.book import AccountInput as CoreAccountInput
from graph.accounts.buying_groups import Template, template_from
from service.schema.account_types import Seniority


@strawberry.input
class AccountFilter:
    name_prefix: str | None = None
    domain: str | None = None
    industry: str | None = None
    region: str | None = None
    parent: strawberry.ID | None = None


@strawberry.input
class AccountInput:
    id: strawberry.ID
    name: str | None = None
    domains: list[str] | None = None
    industry: str | None = None
    size_band: str | None = None
    region: str | None = None
    parent_id: strawberry.ID | None = strawberry.UNSET

    def to_core(self) -> CoreAccountInput:
        given = self.parent_id is not strawberry.UNSET
        return CoreAccountInput(
            str(self.id),
            self.name,
            self.domains,
            self.industry,
            self.size_band,
            self.region,
            str(self.parent_id) if given and self.parent_id is not None else None,
            parent_given=given,
        )


@strawberry.input
class RoleRuleInput:
    confidence: float
    seniority: list[Seniority] | None = None
    title_keywords: list[str] | None = None
    departments: list[str] | None = None


@strawberry.input
class BuyingRoleInput:
    role: str
    required: int
    weight: float
    rules: list[RoleRuleInput] | None = None


@strawberry.input
class BuyingGroupTemplateInput:
    id: strawberry.ID
    name: str | None = None
    roles: list[BuyingRoleInput]

    def to_core(self) -> Template:
        raw: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "roles": [
                {
                    "role": r.role,
                    "required": r.required,
                    "weight": r.weight,
                    "rules": [
                        {
                            "confidence": rule.confidence,
                            "seniority": [s.value for s in rule.seniority or []],
                            "title_keywords": rule.title_keywords or [],
                            "departments": rule.departments or [],
                        }
                        for rule in r.rules or []
                    ],
                }
                for r in self.roles
            ],
        }
        return template_from(raw)


@strawberry.type
class BuyingRoleRule:
    confidence: float
    seniority: list[Seniority]
    title_keywords: list[str]
    departments: list[str]


@strawberry.type
class BuyingRole:
    role: str
    required: int
    weight: float
    rules: list[BuyingRoleRule]


@strawberry.type
class BuyingGroupTemplate:
    id: strawberry.ID
    name: str
    roles: list[BuyingRole]

    @classmethod
    def of(cls, t: Template) -> BuyingGroupTemplate:
        return cls(
            id=strawberry.ID(t.id),
            name=t.name,
            roles=[
                BuyingRole(
                    role=r.role,
                    required=r.required,
                    weight=r.weight,
                    rules=[
                        BuyingRoleRule(
                            confidence=rule.confidence,
                            seniority=sorted(
                                (Seniority(s.value) for s in rule.seniority), key=lambda s: s.value
                            ),
                            title_keywords=list(rule.title_keywords),
                            departments=list(rule.departments),
                        )
                        for rule in r.rules
                    ],
                )
                for r in t.roles
            ],
        )
