"""Configuration: the shipped defaults merged with the user's file, validated at load.

A wrong key, normaliser or threshold fails here, at start-up, naming the key and
the fix, never at the first request.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graph.accounts.buying_groups import DEFAULT_TEMPLATE, Template, Templates, template_from
from graph.accounts.domains import DomainMatcher, registrable
from graph.accounts.seniority import Seniority, SeniorityRule, SeniorityRules
from graph.errors import BadUserInput, ConfigError, IdgraphError
from graph.segments.rfm import SCORED, RfmSettings, SegmentRule, parse_segments
from graph.tags.definitions import TagDefinition, evaluation_order, parse_definition

NormaliserName = Literal["email", "phone", "lower", "upper", "trim"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentifierTypeConfig(_Strict):
    normaliser: NormaliserName = "trim"
    pattern: str | None = None
    priority: int = Field(default=50, ge=0, le=1000)
    strong: bool = False
    limit: int | None = Field(default=None, ge=1)
    shared_threshold: int | None = Field(default=None, ge=1)
    hub_threshold: int | None = Field(default=None, ge=1)
    capacity: int | None = Field(default=None, ge=1)
    blocked: tuple[str, ...] = ()

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class PhoneConfig(_Strict):
    default_region: str = Field(default="CN", min_length=2, max_length=2)


class IngestConfig(_Strict):
    max_batch_size: int = Field(default=1000, ge=1)
    max_identifiers_per_event: int = Field(default=50, ge=1)


class QueryConfig(_Strict):
    max_identifiers: int = Field(default=1000, ge=1)


class BlockingConfig(_Strict):
    placeholders: tuple[str, ...] = ()
    repeated_character: bool = True


class SharingConfig(_Strict):
    corroboration: int = Field(default=2, ge=0)


class TraitsConfig(_Strict):
    source_priority: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class SeniorityRuleConfig(_Strict):
    level: Seniority
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
        return value

    def rule(self) -> SeniorityRule:
        return SeniorityRule(self.level, self.terms, self.patterns)


class RoleRuleConfig(_Strict):
    confidence: float = Field(ge=0, le=1)
    seniority: tuple[Seniority, ...] = ()
    title_keywords: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()


class RoleConfig(_Strict):
    role: str
    required: int = Field(ge=0)
    weight: float = Field(ge=0)
    rules: tuple[RoleRuleConfig, ...] = ()


class TemplateConfig(_Strict):
    id: str
    name: str | None = None
    roles: tuple[RoleConfig, ...]

    def template(self) -> Template:
        try:
            return template_from(self.model_dump())
        except BadUserInput as exc:
            raise ValueError(exc.message) from exc


class AccountsConfig(_Strict):
    seniority: tuple[SeniorityRuleConfig, ...] = ()
    templates: tuple[TemplateConfig, ...] = ()
    free_mail: tuple[str, ...] = ()
    verified_sources: tuple[str, ...] = ()
    link_strong_matches: bool = True

    @field_validator("free_mail")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if registrable(host) is None:
                raise ValueError(f"{host!r} is not a mail domain")
        return value

    @field_validator("seniority")
    @classmethod
    def _rules_compile(
        cls, value: tuple[SeniorityRuleConfig, ...]
    ) -> tuple[SeniorityRuleConfig, ...]:
        for rule in value:
            rule.rule().compiled()  # a rule with nothing to match fails here
        return value

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: tuple[TemplateConfig, ...]) -> tuple[TemplateConfig, ...]:
        for template in value:
            template.template()
        if DEFAULT_TEMPLATE not in {t.id for t in value}:
            raise ValueError(f"a template with id {DEFAULT_TEMPLATE!r} is needed")
        return value

    def buying_groups(self) -> Templates:
        return Templates(t.template() for t in self.templates)

    def seniority_rules(self) -> SeniorityRules:
        return SeniorityRules(r.rule() for r in self.seniority)

    def domain_matcher(self) -> DomainMatcher:
        return DomainMatcher(self.free_mail, self.verified_sources)


class TagDefinitionConfig(_Strict):
    """A tag shipped or configured; a rule is JSON (as the API takes it) or a TOML table."""

    name: str
    category: str
    description: str = ""
    when: Any = None
    cases: Any = None
    otherwise: Any = None
    compute: Any = None

    @field_validator("when", "cases", "compute", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc}") from exc
        return value

    def definition(self, tag_id: str) -> TagDefinition:
        return parse_definition(
            tag_id,
            self.name,
            self.category,
            self.description,
            self.when,
            self.cases,
            self.otherwise,
            self.compute,
        )


class TagsConfig(_Strict):
    # How late a tag that time changes (a window, daysAgo) may be re-evaluated.
    resolution_seconds: float = Field(default=60, gt=0)
    definitions: dict[str, TagDefinitionConfig] = {}

    @field_validator("definitions")
    @classmethod
    def _definitions(cls, value: dict[str, TagDefinitionConfig]) -> dict[str, TagDefinitionConfig]:
        parsed = {}
        for tag_id, given in value.items():
            try:
                parsed[tag_id] = given.definition(tag_id)
            except IdgraphError as exc:
                raise ValueError(f"tag {tag_id!r}: {exc.message}") from exc
        try:
            evaluation_order(parsed)
        except IdgraphError as exc:
            raise ValueError(exc.message) from exc
        return value

    def parsed(self) -> dict[str, TagDefinition]:
        return {tag_id: given.definition(tag_id) for tag_id, given in self.definitions.items()}


class RfmConfig(_Strict):
    """RFM scores as tags: which event is an order, its amount, the window, the segment map."""

    enabled: bool = True
    order_event: str = Field(default="order_paid", min_length=1)
    amount_property: str = Field(default="amount", min_length=1)
    window_days: int = Field(default=365, ge=1)
    # How often the bins are cut again over every customer who ordered.
    recompute_hours: float = Field(default=24, gt=0)
    # The tags are <prefix>_r, <prefix>_f, <prefix>_m (scores 1-5) and <prefix>_segment.
    tag_prefix: str = Field(default="rfm", pattern=r"^[a-z0-9][a-z0-9_\-]{0,55}$")
    segments: tuple[dict[str, Any], ...] = ()

    @field_validator("segments")
    @classmethod
    def _segments(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        if value:
            parse_segments(list(value), "segments")
        return value

    def settings(self) -> RfmSettings:
        return RfmSettings(self.order_event, self.amount_property, self.window_days)

    def segment_rules(self) -> tuple[SegmentRule, ...]:
        return tuple(parse_segments(list(self.segments))) if self.segments else ()

    def tag_ids(self) -> dict[str, str]:
        """The tag that holds each score (r, f, m) and the segment name."""
        return {score: f"{self.tag_prefix}_{score}" for score in SCORED}


class SegmentsConfig(_Strict):
    # Traits whose values are kept as bitmaps for conditions on them; unset: every
    # trait some tag's rule reads. A trait not indexed is still usable, decided per
    # candidate once the indexed parts have narrowed them.
    indexed_traits: tuple[str, ...] | None = None


class Config(_Strict):
    phone: PhoneConfig = PhoneConfig()
    ingest: IngestConfig = IngestConfig()
    query: QueryConfig = QueryConfig()
    blocking: BlockingConfig = BlockingConfig()
    sharing: SharingConfig = SharingConfig()
    traits: TraitsConfig = TraitsConfig()
    accounts: AccountsConfig = AccountsConfig()
    tags: TagsConfig = TagsConfig()
    rfm: RfmConfig = RfmConfig()
    segments: SegmentsConfig = SegmentsConfig()
    types: dict[str, IdentifierTypeConfig]

    @model_validator(mode="after")
    def _rfm_tags_free(self) -> Config:
        if self.rfm.enabled:
            taken = sorted(set(self.rfm.tag_ids().values()) & set(self.tags.definitions))
            if taken:
                raise ValueError(
                    f"tag {taken[0]!r} is one of the RFM tags: rename it or set rfm.tag_prefix"
                )
        return self

    @field_validator("types")
    @classmethod
    def _type_names(cls, value: dict[str, IdentifierTypeConfig]) -> dict[str, IdentifierTypeConfig]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError(
                    f"identifier type name {name!r} must be lower_snake_case "
                    "(letters, digits, underscores)"
                )
        return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge tables key by key; a type table in the override replaces the default whole."""
    merged = dict(base)
    for key, value in override.items():
        if key == "types" and isinstance(value, dict):
            merged["types"] = {**base.get("types", {}), **value}
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def _format(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None) -> Config:
    """Load the shipped defaults, then the user's TOML file over them."""
    raw = tomllib.loads(resources.files("graph").joinpath("defaults.toml").read_text("utf-8"))
    source = "the shipped defaults"
    if path is not None:
        path = Path(path)
        try:
            user = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        raw = _merge(raw, user)
        source = str(path)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format(exc, source)) from exc
