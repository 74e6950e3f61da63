"""Identity events as integrations send them, and their validation into clean evidence.

Validation is all-or-nothing per event: an event that cannot be applied whole
is rejected whole with a typed error, and its neighbours in the batch go on.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from graph.accounts.domains import account_domain
from graph.errors import BadUserInput, InvalidEvent
from graph.identifiers import (
    IdentifierRegistry,
    IdentifierStatus,
    Normalised,
    has_lone_surrogate,
)
from graph.models import Key


@dataclass(frozen=True, slots=True)
class IdentifierInput:
    type: str
    value: str


@dataclass(frozen=True, slots=True)
class AccountLinkInput:
    """The company an event says its person works for (a CRM contact's account, say)."""

    id: str | None = None
    name: str | None = None
    domain: str | None = None
    title: str | None = None
    department: str | None = None


@dataclass(slots=True)
class EventInput:
    source: str
    identifiers: list[IdentifierInput]
    event_id: str | None = None
    timestamp: datetime | None = None
    traits: dict[str, Any] | None = None
    account: AccountLinkInput | None = None
    name: str | None = None  # what happened (order_paid); None: an identity event alone
    properties: dict[str, Any] | None = None  # facts of what happened, not of the person


class AccountEvidence(NamedTuple):
    """An event's account, checked: trimmed, the domain registrable, at least one way to find it."""

    id: str | None
    name: str | None
    domain: str | None
    title: str | None
    department: str | None


class ImportedAccount(NamedTuple):
    """An imported event that names an account or may link by domain, kept until resolved."""

    event_id: str
    source: str
    keys: tuple[Key, ...]  # its identifiers that link (not blocked)
    account: AccountEvidence | None  # None: a verified source's corporate email alone
    fresh: bool  # False: the store had the event already


class CleanEvent(NamedTuple):
    """An event that passed validation: canonical keys, blocked keys marked, warnings kept.

    A tuple, because the import command's workers send millions of them to the
    importing process, and tuples cross a process boundary several times faster.
    """

    position: int  # in its batch
    event_id: str
    source: str
    timestamp: datetime
    keys: list[Key]
    blocked: set[Key]
    traits: dict[str, Any]
    warnings: list[str]
    account: AccountEvidence | None = None
    name: str | None = None
    properties: dict[str, Any] | None = None


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def clean_event(
    index: int, event: EventInput, registry: IdentifierRegistry, now: datetime
) -> CleanEvent:
    """Normalise one event or raise the ``IdgraphError`` that rejects it."""
    limits = registry.config.ingest
    if not event.source or not event.source.strip():
        raise InvalidEvent("source must be a non-empty string", field="source")
    if not event.identifiers:
        raise InvalidEvent("an event needs at least one identifier", field="identifiers")
    if len(event.identifiers) > limits.max_identifiers_per_event:
        raise InvalidEvent(
            f"an event may carry at most {limits.max_identifiers_per_event} identifiers",
            field="identifiers",
        )
    if event.traits is not None and not isinstance(event.traits, dict):
        raise InvalidEvent("traits must be a JSON object", field="traits")
    if event.event_id is not None and not event.event_id.strip():
        raise InvalidEvent("eventId must not be blank", field="eventId")
    _check_unicode(event)
    warnings: list[str] = []
    keys: list[Key] = []
    blocked: set[Key] = set()
    for position, ident in enumerate(event.identifiers):
        normalised: Normalised = registry.normalise(ident.type, ident.value)
        if normalised.status is IdentifierStatus.INVALID:
            warnings.append(
                f"identifiers[{position}] {ident.type}={ident.value!r} dropped: {normalised.reason}"
            )
            continue
        if normalised.status is IdentifierStatus.BLOCKED:
            warnings.append(
                f"identifiers[{position}] {ident.type}={ident.value!r} is a blocked placeholder"
                " and links nothing"
            )
            blocked.add(normalised.key)
        key = normalised.key
        if key not in keys:
            keys.append(key)
    if not keys:
        raise InvalidEvent("no valid identifier in the event: " + "; ".join(warnings))
    timestamp = now
    if event.timestamp is not None:
        try:
            timestamp = as_utc(event.timestamp)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first moment in UTC
            raise InvalidEvent("timestamp is out of range once in UTC", field="timestamp") from None
    account = None if event.account is None else account_evidence(event.account)
    name, properties = behaviour(event.name, event.properties)
    return CleanEvent(
        position=index,
        event_id=event.event_id.strip() if event.event_id else f"auto-{uuid.uuid4().hex}",
        source=event.source.strip(),
        timestamp=timestamp,
        keys=keys,
        blocked=blocked,
        traits=dict(event.traits or {}),
        warnings=warnings,
        account=account,
        name=name,
        properties=properties,
    )


MAX_EVENT_NAME = 200


def behaviour(name: Any, properties: Any) -> tuple[str | None, dict[str, Any] | None]:
    """An event's name and properties checked, or the ``InvalidEvent`` that rejects the event.

    Properties describe what happened, so they need a name saying what that
    was; an event with neither is an identity event as before.
    """
    if name is not None:
        if not isinstance(name, str):
            raise InvalidEvent("name must be a string", field="name")
        name = name.strip()
        if not name:
            raise InvalidEvent("name must not be blank", field="name")
        if len(name) > MAX_EVENT_NAME:
            raise InvalidEvent(f"name is longer than {MAX_EVENT_NAME} characters", field="name")
    if properties is not None:
        if not isinstance(properties, dict):
            raise InvalidEvent("properties must be a JSON object", field="properties")
        if name is None:
            raise InvalidEvent(
                "properties describe what happened: the event needs a name", field="properties"
            )
        if not _finite(properties):
            raise InvalidEvent(
                "properties must be JSON: NaN and Infinity are not numbers there",
                field="properties",
            )
    return name, dict(properties) if properties else None  # {} is no properties


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


MAX_ACCOUNT_TEXT = 500


def account_evidence(given: AccountLinkInput) -> AccountEvidence:
    """An event's account checked, or the ``InvalidEvent`` that rejects the event."""

    def text(value: str | None, field: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidEvent(f"account.{field} must be a string", field=f"account.{field}")
        value = value.strip()
        if len(value) > MAX_ACCOUNT_TEXT:
            raise InvalidEvent(
                f"account.{field} is longer than {MAX_ACCOUNT_TEXT} characters",
                field=f"account.{field}",
            )
        return value or None

    found = AccountEvidence(
        text(given.id, "id"),
        text(given.name, "name"),
        text(given.domain, "domain"),
        text(given.title, "title"),
        text(given.department, "department"),
    )
    if found.id is None and found.name is None and found.domain is None:
        raise InvalidEvent("account needs an id, a name or a domain", field="account")
    if found.domain is not None:
        try:
            found = found._replace(domain=account_domain(found.domain))
        except BadUserInput as exc:
            raise InvalidEvent(exc.message, field="account.domain") from None
    return found


def _check_unicode(event: EventInput) -> None:
    """Reject text that is not Unicode: a lone surrogate (JSON "\\ud800") has no UTF-8 form.

    JSON escapes can spell half of a surrogate pair alone; such a string can be
    neither stored nor sent back, so the event is refused with its field named.
    """
    fields: list[tuple[str, Any]] = [("eventId", event.event_id), ("source", event.source)]
    for position, ident in enumerate(event.identifiers):
        fields.append((f"identifiers[{position}].type", ident.type))
        fields.append((f"identifiers[{position}].value", ident.value))
    fields.append(("traits", event.traits))
    fields.append(("name", event.name))
    fields.append(("properties", event.properties))
    if event.account is not None:
        for name in ("id", "name", "domain", "title", "department"):
            fields.append((f"account.{name}", getattr(event.account, name)))
    for name, value in fields:
        if _holds_lone_surrogate(value):
            raise InvalidEvent(
                f"{name} is not valid Unicode text: it holds a lone surrogate", field=name
            )


def _holds_lone_surrogate(value: Any) -> bool:
    """Any string in ``value``, JSON nested as deep as it may be (walked without recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


EVENT_FIELDS = frozenset(
    {"eventId", "source", "timestamp", "identifiers", "traits", "account", "name", "properties"}
)


def event_from_json(obj: Any) -> EventInput:
    """Read one event in the API's field names (as in an NDJSON import line)."""
    if not isinstance(obj, dict):
        raise InvalidEvent("an event must be a JSON object")
    unknown = set(obj) - EVENT_FIELDS
    if unknown:
        raise InvalidEvent(f"unknown field(s): {', '.join(sorted(unknown))}")
    source = obj.get("source")
    if not isinstance(source, str):
        raise InvalidEvent("source must be a string", field="source")
    raw_ids = obj.get("identifiers")
    if not isinstance(raw_ids, list):
        raise InvalidEvent("identifiers must be a list", field="identifiers")
    identifiers = []
    for position, item in enumerate(raw_ids):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("type"), str)
            and isinstance(item.get("value"), str)
        ):
            raise InvalidEvent(
                f"identifiers[{position}] must be an object with string type and value"
            )
        identifiers.append(IdentifierInput(item["type"], item["value"]))
    event_id = obj.get("eventId")
    if event_id is not None and not isinstance(event_id, str):
        raise InvalidEvent("eventId must be a string", field="eventId")
    timestamp = obj.get("timestamp")
    parsed: datetime | None = None
    if timestamp is not None:
        if not isinstance(timestamp, str):
            raise InvalidEvent("timestamp must be an ISO 8601 string", field="timestamp")
        try:
            parsed = datetime.fromisoformat(timestamp)
        except ValueError as exc:
            raise InvalidEvent(f"timestamp is not ISO 8601: {timestamp!r}") from exc
    traits = obj.get("traits")
    if traits is not None and not isinstance(traits, dict):
        raise InvalidEvent("traits must be a JSON object", field="traits")
    account = obj.get("account")
    if account is not None:
        if not isinstance(account, dict):
            raise InvalidEvent("account must be a JSON object", field="account")
        extra = set(account) - {"id", "name", "domain", "title", "department"}
        if extra:
            raise InvalidEvent(f"unknown account field(s): {', '.join(sorted(extra))}")
        for name, value in account.items():
            if value is not None and not isinstance(value, str):
                raise InvalidEvent(f"account.{name} must be a string", field=f"account.{name}")
        account = AccountLinkInput(**account)
    name, properties = behaviour(obj.get("name"), obj.get("properties"))
    return EventInput(source, identifiers, event_id, parsed, traits, account, name, properties)
