"""The embedded store's shape: kept in a snapshot, folded as it grows, rebuilt when it must be.

Whatever way the shape came to be (written batch by batch, folded into a new
base, read from a snapshot, rebuilt from the file because the snapshot was
stale, missing or damaged), every read answers the same.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import graph.store.embedded.store as embedded_store
from graph.config import load_config
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.store.embedded import EmbeddedStore
from graph.store.embedded.store import SNAPSHOT
from tests.server import IDGRAPH

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def events(seed: int, count: int) -> list[EventInput]:
    """Random events over a small universe: merges, shared devices, limits, placeholders."""
    rng = random.Random(seed)
    universe = [
        *[("phone", f"1380013{n:04d}") for n in range(40)],
        *[("email", f"u{n}@example.com") for n in range(30)],
        *[("device_id", f"device-{n:04d}") for n in range(25)],
        *[("cookie_id", f"cookie-{n:04d}") for n in range(40)],
        *[("crm_id", f"CRM{n}") for n in range(10)],
        ("phone", "13800000000"),
    ]
    return [
        EventInput(
            rng.choice(["web", "app", "crm"]),
            [IdentifierInput(*rng.choice(universe)) for _ in range(rng.randint(1, 3))],
            event_id=f"e{n}",
            timestamp=T0 + timedelta(minutes=rng.randint(0, 10_000)),
            traits={"n": n},
        )
        for n in range(count)
    ]


def dump(graph: IdentityGraph) -> dict[str, Any]:
    """Everything the API can read, in a form that compares."""
    store = graph.store
    keys = list(store.all_keys())
    one_ids = sorted({o for _, o in store.assignments() if o is not None})
    nodes = store.nodes(keys)
    return {
        "assignments": list(store.assignments()),
        "nodes": {
            k: (n.seq, n.first_seen, n.last_seen, n.blocked, n.shared, n.strong_neighbours)
            for k, n in nodes.items()
        },
        "neighbours": {k: sorted(v) for k, v in store.neighbours(keys).items()},
        "events": [(e.seq, e.event_id, e.keys) for e in store.events_for(keys)],
        "members": {o: sorted(m) for o, m in store.members(one_ids).items()},
        "customers": store.customers(one_ids),
        "aliases": {o: store.aliases(o) for o in one_ids},
        "profiles": [graph.profile(o) for o in one_ids],
        "counters": store.counters(),
        "known": store.known_events([f"e{n}" for n in range(0, 400, 7)] + ["nope"]),
    }


def build(data: Path, batches: list[list[EventInput]]) -> dict[str, Any]:
    graph = IdentityGraph(load_config(), EmbeddedStore(data))
    try:
        for batch in batches:
            graph.ingest(batch)
        graph.remove_identifier(IdentifierInput("device_id", "device-0003"))
        return dump(graph)
    finally:
        graph.close()


def reopened(data: Path) -> dict[str, Any]:
    graph = IdentityGraph(load_config(), EmbeddedStore(data))
    try:
        return dump(graph)
    finally:
        graph.close()


def batches_of(seed: int) -> list[list[EventInput]]:
    found = events(seed, 300)
    return [found[n : n + 20] for n in range(0, len(found), 20)]


@pytest.mark.parametrize("compact_at", [1, 100, 10**9])
def test_folding_the_overlay_changes_no_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compact_at: int
) -> None:
    """Folded after every write, every few, or never: what a rebuild from the file reads."""
    monkeypatch.setattr(embedded_store, "COMPACT_AT", compact_at)
    data = tmp_path / "data"
    written = build(data, batches_of(1))
    (data / SNAPSHOT).unlink()
    assert reopened(data) == written


def damage(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    for at in range(100, len(raw), max(1, len(raw) // 50)):
        raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda data, old: (data / SNAPSHOT).unlink(), id="missing"),
        pytest.param(lambda data, old: damage(data / SNAPSHOT), id="corrupt"),
        pytest.param(lambda data, old: (data / SNAPSHOT).write_bytes(b"not a snapshot"), id="junk"),
        pytest.param(lambda data, old: shutil.copy(old, data / SNAPSHOT), id="stale"),
    ],
)
def test_a_snapshot_that_cannot_be_used_is_rebuilt(
    tmp_path: Path, spoil: Callable[[Path, Path], None]
) -> None:
    data = tmp_path / "data"
    first, second = batches_of(2)[:8], batches_of(2)[8:]
    build(data, first)
    old = tmp_path / "old.npz"
    shutil.copy(data / SNAPSHOT, old)
    graph = IdentityGraph(load_config(), EmbeddedStore(data))
    for batch in second:
        graph.ingest(batch)
    before = dump(graph)
    graph.close()
    assert reopened(data) == before  # from the snapshot written at close
    spoil(data, old)
    assert reopened(data) == before  # rebuilt from the file
    assert (data / SNAPSHOT).exists()
    assert reopened(data) == before  # and from the snapshot written after the rebuild


def test_a_first_import_leaves_the_snapshot_a_rebuild_would_make(tmp_path: Path) -> None:
    """The import builds the shape from its own arrays and keeps it; the file agrees."""
    lines = [
        json.dumps(
            {
                "eventId": e.event_id,
                "source": e.source,
                "timestamp": e.timestamp.isoformat() if e.timestamp else None,
                "identifiers": [{"type": i.type, "value": i.value} for i in e.identifiers],
                "traits": e.traits,
            }
        )
        for e in events(5, 400)
    ]
    source = tmp_path / "events.ndjson"
    source.write_text("\n".join(lines) + "\n", "utf-8")
    data = tmp_path / "data"
    done = subprocess.run(
        [IDGRAPH, "import", str(source), "--data-dir", str(data), "--quiet", "--batch-size", "50"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (data / SNAPSHOT).exists()
    imported = reopened(data)
    (data / SNAPSHOT).unlink()
    assert reopened(data) == imported
