"""Seniority from a job title, by ordered rules from configuration.

Titles are normalised (see ``graph.accounts.titles``), then the rules are
tried in order and the first that matches gives the level; no match is
``STAFF`` and no title is ``UNKNOWN``. Order carries the meaning:
assistants come before the bosses whose titles they contain (``总经理助理``
is not a general manager), deputies before the offices they deputise
(``副总经理`` is a VP). A rule's *terms* are words (whole words in Latin
letters); its *patterns* are regular expressions searched in the normalised
title, for what words cannot say (``助理$``: a title that ends in
"assistant").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from graph.accounts.titles import normalise_title, terms_pattern


class Seniority(StrEnum):
    CXO = "CXO"
    VP = "VP"
    DIRECTOR = "DIRECTOR"
    MANAGER = "MANAGER"
    STAFF = "STAFF"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class SeniorityRule:
    level: Seniority
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    def compiled(self) -> re.Pattern[str]:
        found = terms_pattern(self.terms, self.patterns)
        if found is None:
            raise ValueError(f"a {self.level.value} rule needs at least one term or pattern")
        return found


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
