"""The shipped lifecycle tag, read from the shipped config, on hand-built customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graph.config import load_config
from graph.errors import ConfigError
from graph.tags.aggregates import EventFact
from graph.tags.definitions import evaluate_tags, evaluation_order
from graph.tags.facts import CustomerFacts

NOW = datetime(2026, 9, 1, tzinfo=UTC)


def stage(*days_ago: float) -> str | None:
    """The stage of a customer active on these days (each an event, any kind)."""
    events = [
        EventFact(NOW - timedelta(days=d), n, "page_view" if n % 2 else None, "web", {})
        for n, d in enumerate(days_ago)
    ]
    first = min(e.timestamp for e in events)
    last = max(e.timestamp for e in events)
    facts = CustomerFacts(NOW, {}, first, last, ["web"], events)
    tags = evaluate_tags(evaluation_order(load_config().tags.parsed()), facts)
    return None if "lifecycle" not in tags else tags["lifecycle"].value


@pytest.mark.parametrize(
    ("days_ago", "expected"),
    [
        ((3,), "NEW"),
        ((29, 2), "NEW"),
        ((45, 10), "ACTIVE"),
        ((400, 59, 31, 1), "ACTIVE"),
        ((200, 5), "RESURRECTED"),
        ((61, 5), "RESURRECTED"),
        ((45,), "DORMANT"),
        ((100, 40), "DORMANT"),
        ((75,), "DORMANT"),  # quiet for two intervals: not yet churned
        ((91,), "CHURNED"),
        ((365, 200, 120), "CHURNED"),
    ],
)
def test_the_five_stages(days_ago: tuple[float, ...], expected: str) -> None:
    assert stage(*days_ago) == expected


def test_a_stage_moves_with_time_alone() -> None:
    events = [EventFact(NOW - timedelta(days=10), 1, "order_paid", "web", {})]
    definitions = evaluation_order(load_config().tags.parsed())
    seen = []
    for later in (0, 25, 60, 85):
        now = NOW + timedelta(days=later)
        facts = CustomerFacts(now, {}, events[0].timestamp, events[0].timestamp, ["web"], events)
        seen.append(evaluate_tags(definitions, facts)["lifecycle"].value)
    assert seen == ["NEW", "DORMANT", "DORMANT", "CHURNED"]


def test_a_bad_tag_in_the_config_fails_at_load_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "idgraph.toml"
    config.write_text(
        "[tags.definitions.big]\nname = 'Big'\ncategory = 'VALUE'\n"
        """when = '{"aggregate": "sum", "event": "order_paid", "op": "gt", "value": 1}'\n""",
        "utf-8",
    )
    with pytest.raises(ConfigError, match=r"tags\.definitions.*'big'.*\$\.when\.property"):
        load_config(config)
    config.write_text(
        "[tags.definitions.a]\nname = 'A'\ncategory = 'BASIC'\n"
        """when = '{"tag": "lifecycle", "op": "eq", "value": "NEW"}'\n""",
        "utf-8",
    )
    assert set(load_config(config).tags.parsed()) == {"lifecycle", "a"}
