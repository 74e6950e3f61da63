"""Seniority from a job title, by ordered rules from configuration.

Titles come typed by people in two scripts: ``总经理助理``, ``ＣＥＯ``,
``Sr. Manager``, ``VP, Sales``, ``销售VP``. A title is normalised first
(NFKC folds full-width letters and digits, case is folded, runs of spaces
and punctuation become one space, and none is kept beside a Chinese
character), then the rules are tried in order and the first that matches
gives the level; no match is ``STAFF`` and no title is ``UNKNOWN``.
Order carries the meaning: assistants come before the bosses whose titles
they contain (``总经理助理`` is not a general manager), deputies
before the offices they deputise (``副总经理`` is a VP).

A rule's *terms* are plain words. A term in Latin letters matches as a whole
word, where a word ends at anything that is not a Latin letter or digit, so
``vp`` matches ``销售vp`` and ``vp, sales`` but not ``mvp``. Python's ``\\b``
would not do: it counts CJK characters as word characters, so ``销售vp`` has
no boundary before ``v``. Any other term (Chinese) matches anywhere. A rule's
*patterns* are regular expressions searched in the normalised title, for
what words cannot say (``助理$``: a title that ends in "assistant").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Seniority(StrEnum):
    CXO = "CXO"
    VP = "VP"
    DIRECTOR = "DIRECTOR"
    MANAGER = "MANAGER"
    STAFF = "STAFF"
    UNKNOWN = "UNKNOWN"


_SEPARATORS = re.compile(r"[\s,;:/|()\[\]{}<>\"'`~!?*+=_&.\-·•、，；：（）【】《》—–]+")
_LATIN = re.compile(r"[a-z0-9 ]+")
_CJK = "\u2e80-\u9fff\uf900-\ufaff"
_SPACE_BY_CJK = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")


def normalise_title(title: str) -> str:
    """The form rules are matched against: NFKC, case-folded, separators as single spaces."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    spaced = _SEPARATORS.sub(" ", folded).strip()
    return _SPACE_BY_CJK.sub("", spaced)  # Chinese is written without spaces: 副 总经理 is 副总经理


def _term_pattern(term: str) -> str:
    words = normalise_title(term)
    if not words:
        raise ValueError(f"a seniority term must have letters: {term!r}")
    escaped = r"\s+".join(re.escape(w) for w in words.split(" "))
    if _LATIN.fullmatch(words):
        return rf"(?<![a-z0-9]){escaped}(?![a-z0-9])"
    return escaped


@dataclass(frozen=True)
class SeniorityRule:
    level: Seniority
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    def compiled(self) -> re.Pattern[str]:
        parts = [_term_pattern(t) for t in self.terms] + [f"(?:{p})" for p in self.patterns]
        if not parts:
            raise ValueError(f"a {self.level.value} rule needs at least one term or pattern")
        return re.compile("|".join(parts))


class SeniorityRules:
    """Ordered rules, compiled once; ``level`` is called for every linked contact."""

    def __init__(self, rules: Iterable[SeniorityRule]) -> None:
        self._rules: Sequence[tuple[Seniority, re.Pattern[str]]] = [
            (rule.level, rule.compiled()) for rule in rules
        ]

    def level(self, title: str | None) -> Seniority:
        if title is None:
            return Seniority.UNKNOWN
        text = normalise_title(title)
        if not text:
            return Seniority.UNKNOWN
        for level, pattern in self._rules:
            if pattern.search(text):
                return level
        return Seniority.STAFF
