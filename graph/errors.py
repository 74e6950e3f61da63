"""The one exception hierarchy of idgraph.

Every error a user can cause or meet carries a stable ``code``; the API layer
maps it to ``extensions.code`` in one place, so codes never drift between
the GraphQL schema, the CLI and the core.
"""

from __future__ import annotations

from typing import Any


class IdgraphError(Exception):
    """Base class: a message for people and a stable code for programs."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(IdgraphError):
    code = "CONFIG_ERROR"


class UnknownIdentifierType(IdgraphError):
    code = "UNKNOWN_IDENTIFIER_TYPE"


class InvalidIdentifier(IdgraphError):
    code = "INVALID_IDENTIFIER"


class InvalidEvent(IdgraphError):
    code = "INVALID_EVENT"


class BatchTooLarge(IdgraphError):
    code = "BATCH_TOO_LARGE"


class NotFound(IdgraphError):
    code = "NOT_FOUND"


class StoreUnavailable(IdgraphError):
    code = "STORE_UNAVAILABLE"


class StoreConflict(StoreUnavailable):
    """Another writer got in the way (a deadlock, a lost leader); the whole write may be retried."""


class BadUserInput(IdgraphError):
    """A value the caller sent that cannot mean anything (a domain that is not a domain)."""

    code = "BAD_USER_INPUT"


class UnknownRole(IdgraphError):
    code = "UNKNOWN_ROLE"


class AccountCycle(IdgraphError):
    code = "ACCOUNT_CYCLE"


class ReportingCycle(IdgraphError):
    code = "REPORTING_CYCLE"


class InvalidRule(IdgraphError):
    """A tag definition that cannot be evaluated; ``path`` is the JSON path of the bad part."""

    code = "INVALID_RULE"

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}", path=path)
        self.path = path


class TagCycle(IdgraphError):
    code = "TAG_CYCLE"


class Disabled(IdgraphError):
    """Asked for something the config turns off; the message names the setting."""

    code = "DISABLED"


class InvalidCursor(BadUserInput):
    """A page cursor this query did not give (another query's, or not one at all)."""

    code = "INVALID_CURSOR"


class BeforeHistory(IdgraphError):
    """A moment before a segment's history began: nothing is known of it then."""

    code = "BEFORE_HISTORY"
