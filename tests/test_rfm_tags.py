"""RFM scores as tags on both stores: bins as pandas cuts them, orders scored at once, time.

The bins are checked against ``pandas.qcut`` over the measures worked out
here from the events sent; each customer's scores against the labels pandas
gives it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from graph.config import load_config
from graph.errors import ConfigError
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.segments.rfm import segment_of
from graph.segments.rfm_book import RfmBook
from graph.tags.definitions import parse_definition
from graph.tags.models import TagStatus
from tests.conftest import NOW, Api, Clock, make_settings
from tests.test_cli import idgraph
from tests.test_tags_api import graph_of, order, tags_of, values

MODEL = """{ rfmModel { computedAt customers warnings orderEvent amountProperty windowDays
  tagIds segments edges { recency frequency monetary } } }"""
RECOMPUTE = """mutation { recomputeRfm { computedAt customers
  edges { recency frequency monetary } } }"""
HISTORY = """query($id: ID!) { profile(oneId: $id) {
  tagHistory(tagId: "rfm_r") { before after cause } } }"""
RFM_TAGS = ("rfm_r", "rfm_f", "rfm_m", "rfm_segment")


def phone(n: int) -> str:
    return f"1390013{n:04d}"


def shop(n: int) -> list[tuple[float, float]]:
    """Customer ``n``'s orders as (days ago, amount): many order once, some often, one long ago."""
    if n == 0:
        return [(400.0, 99.0)]  # before the 365-day window: recency only
    count = [1, 1, 1, 1, 2, 2, 3, 5, 8][n % 9]
    return [
        ((n * 7 + k * 11) % 300 + 0.5, float(20 + (n * 37 + k * 53) % 480)) for k in range(count)
    ]


CUSTOMERS = 40


def populate(api: Api) -> None:
    events = [
        order(f"o{n}-{k}", phone(n), days, amount)
        for n in range(CUSTOMERS)
        for k, (days, amount) in enumerate(shop(n))
    ]
    browsing = [
        {
            "eventId": f"v{n}",
            "source": "web",
            "timestamp": (NOW - timedelta(days=2)).isoformat(),
            "identifiers": [{"type": "phone", "value": phone(100 + n)}],
            "name": "page_view",
        }
        for n in range(5)
    ]
    for start in range(0, len(events), 100):
        api.ingest(*events[start : start + 100])
    api.ingest(*browsing)


def measures(n: int) -> tuple[int, int, float]:
    orders = shop(n)
    recency = int(min(days for days, _ in orders))  # whole days since the last order
    inside = [amount for days, amount in orders if days <= 365]
    return recency, len(inside), sum(inside)


def spread(label: int, bins: int) -> int:
    return 3 if bins == 1 else 1 + round(label * 4 / (bins - 1))


def expected_scores() -> dict[int, tuple[int, int, int]]:
    """Each customer's R, F and M from the bins and labels pandas gives."""
    table = pd.DataFrame([measures(n) for n in range(CUSTOMERS)], columns=["r", "f", "m"])
    found: dict[str, list[int]] = {}
    for column in ("r", "f", "m"):
        labels, edges = pd.qcut(table[column], 5, labels=False, retbins=True, duplicates="drop")
        scores = [spread(int(x), len(edges) - 1) for x in labels]
        found[column] = [6 - s for s in scores] if column == "r" else scores
    return {n: (found["r"][n], found["f"][n], found["m"][n]) for n in range(CUSTOMERS)}


def pandas_edges(column: int) -> list[float]:
    values = [measures(n)[column] for n in range(CUSTOMERS)]
    _, edges = pd.qcut(values, 5, retbins=True, duplicates="drop")
    return [float(e) for e in edges]


def test_rfm_tags_follow_the_bins_pandas_cuts(tagged: Api) -> None:
    populate(tagged)
    assert tagged(MODEL)["rfmModel"] is None
    cut = tagged(RECOMPUTE)["recomputeRfm"]
    assert cut["customers"] == CUSTOMERS
    assert cut["edges"] == {
        "recency": pandas_edges(0),
        "frequency": pandas_edges(1),
        "monetary": pandas_edges(2),
    }
    graph_of(tagged).tags.build()
    model = tagged(MODEL)["rfmModel"]
    assert model["edges"] == cut["edges"]
    assert model["tagIds"] == list(RFM_TAGS)
    assert "frequency: values tie" in " ".join(model["warnings"])
    rules = load_config().rfm.segment_rules()
    for n, (r, f, m) in expected_scores().items():
        one_id = tagged.one_id("phone", phone(n))
        assert one_id is not None
        found = values(tagged, one_id)
        assert (found["rfm_r"], found["rfm_f"], found["rfm_m"]) == (r, f, m), n
        assert found["rfm_segment"] == segment_of(rules, r, f, m)
    browser = tagged.one_id("phone", phone(100))
    assert browser is not None
    assert not set(values(tagged, browser)) & set(RFM_TAGS)


def test_an_order_scores_its_customer_at_once_and_time_moves_recency(
    tagged: Api, clock: Clock
) -> None:
    populate(tagged)
    tagged(RECOMPUTE)
    graph = graph_of(tagged)
    graph.tags.build()
    lapsed = tagged.one_id("phone", phone(0))
    assert lapsed is not None
    before = tags_of(tagged, lapsed)
    assert (before["rfm_r"]["value"], before["rfm_f"]["value"]) == (1, 1)
    assert before["rfm_r"]["explanation"] == {
        "rfm": "r",
        "recencyDays": 400,
        "frequency": 0,
        "monetary": 0,
        "scores": {"r": 1, "f": 1, "m": 1},
        "modelComputedAt": NOW.isoformat(),
    }
    assert before["rfm_segment"]["explanation"]["segment"] == "Lost"
    # A big order today: scored against the bins in force as the ingest returns.
    tagged.ingest(order("late", phone(0), 0, 5000.0))
    after = values(tagged, lapsed)
    assert (after["rfm_r"], after["rfm_m"]) == (5, 5)
    assert tagged(MODEL)["rfmModel"]["computedAt"] == NOW.isoformat()
    history = tagged(HISTORY, {"id": lapsed})["profile"]["tagHistory"]
    assert history[0]["cause"]["kind"] == "DEFINITION"
    assert history[-1]["before"] == 1 and history[-1]["after"] == 5
    assert history[-1]["cause"]["kind"] == "EVENT"
    # Days pass with no order: recency falls as it crosses the bins' edges.
    clock.now = NOW + timedelta(days=400)
    graph.tags.run_due()
    aged = tags_of(tagged, lapsed)["rfm_r"]
    assert aged["value"] == 1
    assert aged["explanation"]["recencyDays"] == 400


def test_rfm_tags_are_kept_by_the_model(tagged: Api) -> None:
    populate(tagged)
    tagged(RECOMPUTE)
    errors = tagged.errors(
        'mutation { defineTag(input: {id: "rfm_r", name: "mine", category: "VALUE"}) { id } }'
    )
    assert errors[0]["extensions"]["code"] == "INVALID_RULE"
    assert "RFM model" in errors[0]["message"]
    found = tagged('{ tagDefinition(id: "rfm_segment") { kind rfm } }')["tagDefinition"]
    assert found["kind"] == "RFM"
    assert found["rfm"]["score"] == "segment"
    assert found["rfm"]["model"]["customers"] == CUSTOMERS


def test_the_schedule_cuts_again_after_its_period_or_a_config_change(
    tagged: Api, clock: Clock
) -> None:
    graph = graph_of(tagged)
    assert not graph.rfm.due()  # nothing cut yet, and no period passed since start
    clock.now = NOW + timedelta(hours=24)
    assert graph.rfm.due()
    assert graph.rfm.run_due() is None  # nobody ordered: nothing to cut, wait a period
    assert not graph.rfm.due()
    populate(tagged)
    clock.now = NOW + timedelta(hours=48)
    model = graph.rfm.run_due()
    assert model is not None and model.computed_at == clock.now
    assert not graph.rfm.due()
    # Another process starting with another window cuts at once.
    other = load_config().rfm.model_copy(update={"window_days": 30})
    assert RfmBook(other, graph.tags, clock).due()
    assert not RfmBook(graph.rfm.config, graph.tags, clock).due()


def test_rfm_turned_off_says_so(make_api: Any) -> None:
    api = make_api("[rfm]\nenabled = false\n")
    errors = api.errors(RECOMPUTE)
    assert errors[0]["extensions"]["code"] == "DISABLED"
    assert api(MODEL)["rfmModel"] is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[[rfm.segments]]\nname = "All"\nr = [4, 2]\n', r"rfm\.segments: .*segments\[0\]\.r"),
        ("[rfm]\nwindow_days = 0\n", r"rfm\.window_days"),
        ('[tags.definitions.rfm_r]\nname = "x"\ncategory = "VALUE"\n', "'rfm_r' is one of"),
    ],
)
def test_a_bad_rfm_config_is_refused_at_load(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "idgraph.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=names):
        load_config(path)


def test_the_rfm_command_cuts_and_tags(tmp_path: Path) -> None:
    lines = [
        json.dumps(order(f"o{n}-{k}", phone(n), days, amount))
        for n in range(CUSTOMERS)
        for k, (days, amount) in enumerate(shop(n))
    ]
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(lines) + "\n", "utf-8")
    data = str(tmp_path / "data")
    assert idgraph("import", str(events), "--data-dir", data).returncode == 0
    done = idgraph("rfm", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    assert f"cut over {CUSTOMERS} customers" in done.stdout
    assert "frequency edges " in done.stdout


def test_a_build_asked_to_stop_leaves_its_definitions_building(
    tmp_path: Path, store_uri: str | None
) -> None:
    """A service shutting down stops a build (after an import: the RFM tags) between parts;
    the next start makes it again."""
    graph = IdentityGraph(load_config(), make_settings(tmp_path, neo4j_uri=store_uri).open_store())
    try:
        graph.ingest([EventInput("crm", [IdentifierInput("phone", phone(n))]) for n in range(3)])
        graph.tags.build()
        rule = {"aggregate": "count", "event": "visit", "op": "gte", "value": 1}
        visitor = parse_definition(id="visitor", name="Visitor", category="VALUE", when=rule)
        graph.tags.define(visitor)

        def status() -> TagStatus:
            stored = graph.tags.definition("visitor")
            assert stored is not None
            return stored.status

        assert graph.tags.build(stopping=lambda: True) == 0
        assert status() is TagStatus.BUILDING
        assert graph.tags.build() == 3
        assert status() is TagStatus.READY
    finally:
        graph.close()
