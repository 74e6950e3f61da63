"""Resolution quality on generated multi-channel data, against naive connected components."""

from __future__ import annotations

from bench.quality import report
from tests.conftest import empty_neo4j


def test_rules_beat_naive_components_by_far(capsys: object) -> None:
    rows = report(persons=600, seed=3, config_path=None)
    naive, _ = rows["naive connected components"]
    ours, _ = rows["idgraph (default config, embedded store)"]
    assert naive.f1 < 0.1, naive
    assert ours.precision > 0.97 and ours.recall > 0.97, ours
    assert ours.largest < 40, "a shared identifier glued customers together"


def test_the_neo4j_store_scores_the_same(capsys: object, neo4j_uri: str) -> None:
    empty_neo4j(neo4j_uri)
    embedded = report(persons=300, seed=4, config_path=None)
    empty_neo4j(neo4j_uri)
    on_neo4j = report(persons=300, seed=4, config_path=None, neo4j_uri=neo4j_uri)
    assert (
        on_neo4j["idgraph (default config, Neo4j store)"]
        == embedded["idgraph (default config, embedded store)"]
    )
