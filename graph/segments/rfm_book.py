"""The RFM model in force: cut over every customer who ordered, kept as the rule of four tags.

A cut reads each customer's rollup (what its tags are decided from, so a
score read later agrees with the bins), cuts the bins and saves them into
the definitions of the score and segment tags. Saving is a change of rule
like any other: the tag book builds it over every customer in the
background, logging each customer whose score or segment moved with the
definition's version. Between cuts an order scores its customer at once
against the bins in force, since the bins are part of the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from graph.config import RfmConfig
from graph.segments.rfm import Measures, RfmModel, RfmRule
from graph.tags.book import CHUNK, TagBook
from graph.tags.definitions import parse_definition

_NAMES = {
    "r": ("RFM recency score", "1-5: 5 ordered most recently"),
    "f": ("RFM frequency score", "1-5: 5 ordered most often within the window"),
    "m": ("RFM monetary score", "1-5: 5 spent most within the window"),
    "segment": ("RFM segment", "the first configured segment the three scores meet"),
}


class RfmBook:
    def __init__(self, config: RfmConfig, tags: TagBook, clock: Callable[[], datetime]) -> None:
        self.config = config
        self._tags = tags
        self._clock = clock
        self._tried = clock()  # a cut is due one period after start when none was ever made
        self._cut_since_start = False

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def current(self) -> RfmRule | None:
        """The rule of the segment tag (or of any RFM tag left), with the bins in force."""
        for tag_id in reversed(self.config.tag_ids().values()):
            stored = self._tags.definition(tag_id)
            if stored is not None and stored.definition.rfm is not None:
                return stored.definition.rfm
        return None

    def recompute(self) -> RfmModel | None:
        """Cut the bins over every customer who ordered and save them; None: nobody has.

        With nobody ordered, the tags in force are left as they are.
        """
        now = self._clock()
        self._tried, self._cut_since_start = now, True
        settings = self.config.settings()
        measures: list[Measures] = []
        customers = self._tags.customers()
        for start in range(0, len(customers), CHUNK):
            part = customers[start : start + CHUNK]
            for rollup in self._tags.tagger.rollups(part, self._tags.store).values():
                found = Measures.of_rollup(rollup, now, settings)
                if found is not None:
                    measures.append(found)
        model = RfmModel.cut(measures, now)
        if model is None:
            return None
        rules = self.config.segment_rules()
        for score, tag_id in self.config.tag_ids().items():
            rule = RfmRule(score, settings, model, rules if score == "segment" else ())
            name, description = _NAMES[score]
            self._tags.define(
                parse_definition(tag_id, name, "VALUE", description, rfm=rule.as_json()),
                managed=True,
            )
        return model

    def due(self) -> bool:
        """Whether the schedule calls for a cut now: a period has passed, or the config moved."""
        if not self.enabled:
            return False
        now = self._clock()
        rule = self.current()
        if rule is not None and not self._cut_since_start and not self._as_config(rule):
            return True  # the config changed since the bins in force were cut
        last = self._tried if rule is None else max(rule.model.computed_at, self._tried)
        return now - last >= timedelta(hours=self.config.recompute_hours)

    def run_due(self) -> RfmModel | None:
        return self.recompute() if self.due() else None

    def _as_config(self, rule: RfmRule) -> bool:
        return rule.settings == self.config.settings() and (
            rule.score != "segment" or rule.segments == self.config.segment_rules()
        )
