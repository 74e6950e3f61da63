"""Resolution quality on generated multi-channel data, against naive connected components."""

from __future__ import annotations

from bench.quality import report


def test_rules_beat_naive_components_by_far(capsys: object) -> None:
    rows = report(persons=600, seed=3, config_path=None)
    naive, _ = rows["naive connected components"]
    ours, _ = rows["idgraph (default config)"]
    assert naive.f1 < 0.1, naive
    assert ours.precision > 0.97 and ours.recall > 0.97, ours
    assert ours.largest < 40, "a shared identifier glued customers together"
