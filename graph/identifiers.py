"""Identifier types and their normalisers: real-world mess in, one canonical node key out.

The registry is built from configuration, so users add types without code. A
value comes out VALID (with its canonical form), BLOCKED (a placeholder that
must never link anything) or INVALID (dropped, with the reason as a warning).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cache, lru_cache
from typing import NamedTuple

import phonenumbers

from graph.config import Config, IdentifierTypeConfig
from graph.errors import UnknownIdentifierType


class IdentifierStatus(Enum):
    VALID = "VALID"
    BLOCKED = "BLOCKED"
    INVALID = "INVALID"


_STATUSES: dict[str, IdentifierStatus] = {s.value: s for s in IdentifierStatus}


class Normalised(NamedTuple):
    """One raw value judged: its canonical value, status and why.

    A tuple, so that the registry can cache the plain tuple behind it: the
    garbage collector stops tracking a tuple of strings, and a cache of
    hundreds of thousands of them then costs a full collection nothing.
    """

    type: str
    raw: str
    value: str | None
    status: IdentifierStatus
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        assert self.value is not None
        return (self.type, self.value)


MAX_VALUE_LENGTH = 512
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SEPARATORS = re.compile(r"[\s\-().·/]")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds half a surrogate pair alone (JSON can escape one): not text."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean(raw: str) -> str:
    """NFKC folds full-width digits and letters (１３８, ＡＢＣ) into ASCII."""
    return unicodedata.normalize("NFKC", raw).strip()


def _email(raw: str, _region: str) -> str | None:
    value = _clean(raw).lower()
    if value.startswith("mailto:"):
        value = value[len("mailto:") :]
    return value if _EMAIL.match(value) else None


_PHONE_TEXT = re.compile(r"\+?\d{5,17}")


def _phone(raw: str, region: str) -> str | None:
    text = _SEPARATORS.sub("", _clean(raw))
    if text.startswith("00"):
        text = "+" + text[2:]
    if not _PHONE_TEXT.fullmatch(text):
        return None
    return _phone_digits(text, region)


# E.164 texts of numbers found valid: "+8613800138000" is then known without parsing,
# however the number was first written. Bounded; forgetting only costs a parse.
_valid_e164: set[str] = set()
_VALID_E164_KEPT = 262_144


def remember_valid_phones(e164_texts: Iterable[str]) -> None:
    """Numbers found valid by another process: any spelling of them then costs no parse here.

    Only for texts a phone normaliser returned: the E.164 text of a valid
    number, which is read the same in every region.
    """
    if len(_valid_e164) >= _VALID_E164_KEPT:
        _valid_e164.clear()
    _valid_e164.update(e164_texts)


@dataclass(frozen=True, slots=True)
class _Dialling:
    """What ``phonenumbers.parse`` consults before it takes digits for a national number."""

    country_code: str
    longest: int  # digits of the region's longest national number
    national_prefix: re.Pattern[str] | None  # a prefix (or carrier code) parsing strips
    international_prefix: re.Pattern[str] | None


@cache
def _dialling(region: str) -> _Dialling | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    lengths = metadata.general_desc.possible_length if metadata and metadata.general_desc else ()
    if metadata is None or not lengths:
        return None
    national = metadata.national_prefix_for_parsing or metadata.national_prefix
    return _Dialling(
        str(metadata.country_code),
        max(lengths),
        re.compile(national) if national else None,
        re.compile(metadata.international_prefix) if metadata.international_prefix else None,
    )


def _known_spelling(text: str, region: str) -> str | None:
    """The number ``text`` is, when parsing it could only find a number already found valid.

    ``phonenumbers`` reads digits written without "+" in ``region`` as the
    national number itself unless they start with an international or
    national prefix (or a carrier code), or with the country code (which it
    strips from a number too long to be national). When none of that applies
    (or only the country code does, on a number too long), the number is the
    country code and the rest of the digits, and it is one found valid before
    when its E.164 text is: so "13800138000" and "8613800138000" cost no parse
    once "+86 138 0013 8000" was read, whichever came first.
    """
    dialling = _dialling(region)
    if dialling is None or text.startswith("+"):
        return None
    if dialling.international_prefix is not None and dialling.international_prefix.match(text):
        return None
    national = text
    if text.startswith(dialling.country_code):
        if len(text) <= dialling.longest:
            return None  # it might be a national number: parse says which
        national = text[len(dialling.country_code) :]
    if dialling.national_prefix is not None and dialling.national_prefix.match(national):
        return None
    e164 = "+" + dialling.country_code + national
    return e164 if e164 in _valid_e164 else None


@lru_cache(maxsize=131_072)
def _phone_digits(text: str, region: str) -> str | None:
    """Parse once per number: the many ways of writing one number share the work."""
    if text in _valid_e164:  # a "+" number is read the same in every region
        return text
    known = _known_spelling(text, region)
    if known is not None:
        return known
    candidates = [text]
    if not text.startswith("+"):
        # "86-13800138000" and "8613800138000" carry the country code without a plus.
        candidates.append("+" + text)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if len(_valid_e164) >= _VALID_E164_KEPT:
                _valid_e164.clear()
            _valid_e164.add(e164)
            return e164
    return None


def _lower(raw: str, _region: str) -> str | None:
    return _clean(raw).lower() or None


def _upper(raw: str, _region: str) -> str | None:
    return _clean(raw).upper() or None


def _trim(raw: str, _region: str) -> str | None:
    return _clean(raw) or None


NORMALISERS: dict[str, Callable[[str, str], str | None]] = {
    "email": _email,
    "phone": _phone,
    "lower": _lower,
    "upper": _upper,
    "trim": _trim,
}


def _repeated_character(value: str) -> bool:
    """One letter or digit, three times or more, and nothing else but separators."""
    lowered = value.lower()
    first, last = lowered[:1], lowered[-1:]
    if first != last and first.isalnum() and last.isalnum():
        return False  # two letters or digits: most values show it at their two ends
    only: str | None = None
    for char in lowered:
        if char.isalnum():
            if only is None:
                only = char
            elif char != only:
                return False
    return only is not None and lowered.count(only) >= 3


class IdentifierType:
    """One configured type: how to normalise, validate and block its values."""

    def __init__(self, name: str, spec: IdentifierTypeConfig, config: Config) -> None:
        self.name = name
        self.spec = spec
        self._normalise = NORMALISERS[spec.normaliser]
        self._region = config.phone.default_region
        self._pattern = re.compile(spec.pattern) if spec.pattern else None
        self._repeated = config.blocking.repeated_character
        blocked: set[str] = set()
        for raw in (*spec.blocked, *config.blocking.placeholders):
            blocked.add(_clean(raw).lower())
            canonical = self._normalise(raw, self._region)
            if canonical is not None:
                blocked.add(canonical)
        self._blocked = frozenset(blocked)

    @property
    def priority(self) -> int:
        return self.spec.priority

    @property
    def strong(self) -> bool:
        return self.spec.strong

    @property
    def limit(self) -> int | None:
        return self.spec.limit

    @property
    def shared_threshold(self) -> int | None:
        return self.spec.shared_threshold

    @property
    def hub_threshold(self) -> int | None:
        return self.spec.hub_threshold

    @property
    def capacity(self) -> int | None:
        """How many of this type one person holds, when judging sharing: capacity, else limit."""
        return self.spec.capacity if self.spec.capacity is not None else self.spec.limit

    def valid_value(self, raw: str) -> str | None:
        """The canonical value of a valid ``raw``; None when it is blocked or invalid.

        What ``normalise`` finds, for the caller that only needs the value (a
        bulk import, where nearly every value is valid): no record to build.
        """
        status, value, _ = self._judge(raw)
        return value if status is IdentifierStatus.VALID else None

    def normalise(self, raw: str) -> Normalised:
        status, value, reason = self._judge(raw)
        shown = raw if len(raw) <= MAX_VALUE_LENGTH else raw[:64] + "…"
        return Normalised(self.name, shown, value, status, reason)

    def _judge(self, raw: str) -> tuple[IdentifierStatus, str | None, str | None]:
        """Status, value (canonical, or the cleaned placeholder) and reason: the rules, once."""
        if len(raw) > MAX_VALUE_LENGTH:
            return IdentifierStatus.INVALID, None, f"longer than {MAX_VALUE_LENGTH} characters"
        if has_lone_surrogate(raw):
            return (
                IdentifierStatus.INVALID,
                None,
                "not valid Unicode text: it holds a lone surrogate",
            )
        value = self._normalise(raw, self._region)
        if value is None:
            cleaned = _clean(raw).lower()
            if cleaned in self._blocked:
                return IdentifierStatus.BLOCKED, cleaned, "placeholder"
            return IdentifierStatus.INVALID, None, f"not a valid {self.name}"
        if value.lower() in self._blocked or (self._repeated and _repeated_character(value)):
            return IdentifierStatus.BLOCKED, value, "placeholder"
        if self._pattern is not None and not self._pattern.fullmatch(value):
            return (
                IdentifierStatus.INVALID,
                None,
                f"{self.name} does not match {self._pattern.pattern}",
            )
        return IdentifierStatus.VALID, value, None


class IdentifierRegistry:
    """All configured identifier types, with a cache for values seen again and again."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.types = {
            name: IdentifierType(name, spec, config) for name, spec in config.types.items()
        }
        self._cached = lru_cache(maxsize=262_144)(self._judged)

    def get(self, name: str) -> IdentifierType:
        try:
            return self.types[name]
        except KeyError:
            known = ", ".join(sorted(self.types))
            raise UnknownIdentifierType(
                f"unknown identifier type {name!r}; configured types: {known}", type=name
            ) from None

    def _judged(self, type_name: str, raw: str) -> tuple[str, str, str | None, str, str | None]:
        found = self.get(type_name).normalise(raw)
        return (found.type, found.raw, found.value, found.status.value, found.reason)

    def normalise(self, type_name: str, raw: str) -> Normalised:
        if type_name not in self.types:
            self.get(type_name)
        type_, raw, value, status, reason = self._cached(type_name, raw)
        return Normalised(type_, raw, value, _STATUSES[status], reason)

    def is_strong(self, key: tuple[str, str]) -> bool:
        kind = self.types.get(key[0])
        return kind is not None and kind.strong

    def is_blocked(self, key: tuple[str, str]) -> bool:
        """Blocking is re-derived from config, so a config change reaches stored nodes too."""
        kind = self.types.get(key[0])
        if kind is None:
            return True
        return kind.normalise(key[1]).status is not IdentifierStatus.VALID
