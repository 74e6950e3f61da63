"""Job titles and departments as rules see them, and the words rules look for in them.

Both come typed by people in two scripts: ``总经理助理``, ``ＣＥＯ``,
``Sr. Manager``, ``VP, Sales``, ``销售VP``. Text is normalised (NFKC folds
full-width letters and digits, case is folded, runs of spaces and
punctuation become one space, and none is kept beside a Chinese character,
since Chinese is written without them: ``副 总经理`` is ``副总经理``).

A *term* in Latin letters matches as a whole word, where a word ends at
anything that is not a Latin letter or digit, so ``vp`` matches ``销售vp``
and ``vp, sales`` but not ``mvp``. Python's ``\\b`` would not do: it counts
CJK characters as word characters, so ``销售vp`` has no boundary before
``v``. Any other term (Chinese) matches anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\s,;:/|()\[\]{}<>\"'`~!?*+=_&.\-·•、，；：（）【】《》—–]+")
_LATIN = re.compile(r"[a-z0-9 ]+")
_CJK = "\u2e80-\u9fff\uf900-\ufaff"
_SPACE_BY_CJK = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")


def normalise_title(title: str) -> str:
    """The form rules are matched against."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    spaced = _SEPARATORS.sub(" ", folded).strip()
    return _SPACE_BY_CJK.sub("", spaced)


def term_pattern(term: str) -> str:
    """A regular expression for one term, to search a normalised title with."""
    words = normalise_title(term)
    if not words:
        raise ValueError(f"a term must have letters or characters: {term!r}")
    escaped = r"\s+".join(re.escape(w) for w in words.split(" "))
    if _LATIN.fullmatch(words):
        return rf"(?<![a-z0-9]){escaped}(?![a-z0-9])"
    return escaped


def terms_pattern(terms: Iterable[str], patterns: Iterable[str] = ()) -> re.Pattern[str] | None:
    """One expression for any of ``terms`` or ``patterns``; None when both are empty."""
    parts = [term_pattern(t) for t in terms] + [f"(?:{p})" for p in patterns]
    return re.compile("|".join(parts)) if parts else None
