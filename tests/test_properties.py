"""Resolution is a function of the evidence: any order, any batching, or a rebuild agree."""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.config import Config, load_config
from graph.errors import IdgraphError
from graph.events import EventInput, IdentifierInput, clean_event
from graph.identity_graph import IdentityGraph
from graph.resolver import EventResult
from graph.store.embedded import EmbeddedStore

UNIVERSE = [
    *[("phone", f"1380013800{i}") for i in range(4)],
    ("phone", "13800000000"),
    *[("email", f"user{i}@example.com") for i in range(4)],
    *[("device_id", f"device-{i:04d}") for i in range(4)],
    *[("cookie_id", f"cookie-{i:04d}") for i in range(4)],
    *[("crm_id", f"CRM{i}") for i in range(3)],
    *[("member_id", f"M{i}") for i in range(2)],
    *[("wechat_unionid", f"oUnion{i:04d}") for i in range(2)],
]

identifier = st.sampled_from(UNIVERSE)
events_strategy = st.lists(
    st.tuples(st.sampled_from(["web", "app"]), st.lists(identifier, min_size=1, max_size=4)),
    min_size=1,
    max_size=25,
)

Partition = frozenset[frozenset[tuple[str, str]]]


def to_events(raw: list[tuple[str, list[tuple[str, str]]]]) -> list[EventInput]:
    return [
        EventInput(source, [IdentifierInput(t, v) for t, v in ids], event_id=f"e{n}")
        for n, (source, ids) in enumerate(raw)
    ]


def partition(graph: IdentityGraph) -> tuple[Partition, frozenset[tuple[str, str]]]:
    groups: dict[str, set[tuple[str, str]]] = defaultdict(set)
    loose: set[tuple[str, str]] = set()
    for key, one_id in graph.store.assignments():
        if one_id is None:
            loose.add(key)
        else:
            groups[one_id].add(key)
    return frozenset(frozenset(g) for g in groups.values()), frozenset(loose)


def tight_config() -> Config:
    """Small thresholds, so hubs, shared strong identifiers and limits all come into play."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(
            '[types.device_id]\nnormaliser = "lower"\nshared_threshold = 1\nhub_threshold = 2\n'
            "[types.cookie_id]\nshared_threshold = 1\nhub_threshold = 3\n"
            '[types.phone]\nnormaliser = "phone"\nstrong = true\ncapacity = 1\n'
            "shared_threshold = 1\nhub_threshold = 3\npriority = 80\n"
            '[types.email]\nnormaliser = "email"\nstrong = true\nlimit = 1\nhub_threshold = 4\n'
        )
    try:
        return load_config(handle.name)
    finally:
        os.unlink(handle.name)


CONFIGS = {"default": load_config(), "tight": tight_config()}


def resolve(
    config: Config,
    events: list[EventInput],
    batch_sizes: list[int],
    rebuild: bool = False,
    bulk: bool = False,
) -> tuple[Partition, frozenset[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as data_dir:
        graph = IdentityGraph(config, EmbeddedStore(data_dir))
        start, sizes = 0, iter(batch_sizes)
        while start < len(events):
            size = next(sizes, 1)
            graph.ingest(events[start : start + size], bulk=bulk)
            start += size
        graph.resolve_pending()
        if rebuild:
            graph.rebuild()
        result = partition(graph)
        graph.close()
        return result


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events_strategy, data=st.data())
def test_incremental_equals_rebuild_in_any_order(name: str, raw: list, data: st.DataObject) -> None:
    config = CONFIGS[name]
    events = to_events(raw)
    shuffled = data.draw(st.permutations(events))
    sizes = data.draw(st.lists(st.integers(1, 5), max_size=25))
    all_at_once = resolve(config, events, [len(events)])
    assert resolve(config, events, [1] * len(events)) == all_at_once
    assert resolve(config, shuffled, sizes) == all_at_once
    assert resolve(config, shuffled, [1] * len(events), rebuild=True) == all_at_once
    assert resolve(config, shuffled, sizes, bulk=True) == all_at_once


def test_a_device_turning_hub_stops_vouching_for_the_groups_it_joined() -> None:
    """A found case: incremental must re-judge what a new hub used to corroborate."""
    raw = [
        ("app", [("device_id", "device-0000"), ("phone", "13800138000")]),
        ("app", [("device_id", "device-0000"), ("phone", "13800138001")]),
        ("web", [("cookie_id", "cookie-0000"), ("phone", "13800138000")]),
        ("web", [("cookie_id", "cookie-0000"), ("phone", "13800138001")]),
        ("app", [("device_id", "device-0000"), ("phone", "13800138002")]),
    ]
    config = CONFIGS["tight"]
    events = to_events(raw)
    all_at_once = resolve(config, events, [len(events)])
    assert resolve(config, events, [1] * len(events)) == all_at_once
    _, loose = all_at_once
    assert ("cookie_id", "cookie-0000") in loose, "two phones, nothing vouching: shared"


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events_strategy, gone=identifier)
def test_removing_an_identifier_equals_never_having_seen_it(
    name: str, raw: list, gone: tuple[str, str]
) -> None:
    config = CONFIGS[name]
    kept = [(source, [i for i in ids if i != gone]) for source, ids in raw]
    never_seen = resolve(config, to_events([(s, ids) for s, ids in kept if ids]), [1] * len(raw))
    with tempfile.TemporaryDirectory() as data_dir:
        graph = IdentityGraph(config, EmbeddedStore(data_dir))
        for event in to_events(raw):
            graph.ingest([event])
        key = graph.normalise(IdentifierInput(*gone)).key
        if graph.store.nodes([key]):
            graph.remove_identifier(IdentifierInput(*gone))
        removed = partition(graph)
        graph.rebuild()
        rebuilt = partition(graph)
        graph.close()
    assert removed == never_seen
    assert rebuilt == never_seen


def test_a_phone_turning_hub_releases_the_device_it_made_shared() -> None:
    """A found case: identifiers next to a node that stops being an anchor are re-judged."""
    raw = [
        ("web", [("phone", "13800138000")]),
        ("web", [("phone", "13800138000"), ("phone", "13800138002"), ("phone", "13800138003")]),
        ("web", [("phone", "13800138000"), ("device_id", "device-0000")]),
        ("web", [("phone", "13800138001"), ("device_id", "device-0000")]),
        ("web", [("phone", "13800138000"), ("phone", "13800000000"), ("email", "a@example.com")]),
    ]
    config = CONFIGS["tight"]
    events = to_events(raw)
    all_at_once = resolve(config, events, [len(events)])
    assert resolve(config, events, [1] * len(events)) == all_at_once
    _, loose = all_at_once
    assert ("device_id", "device-0000") not in loose, "its other phone is now a hub"


def node_state(graph: IdentityGraph) -> list[tuple[object, ...]]:
    """Every identifier's stored record, OneID aside (OneIDs are minted at random)."""
    keys = list(graph.store.all_keys())
    nodes = graph.store.nodes(keys)
    return [
        (k, n.seq, n.first_seen, n.last_seen, n.blocked, n.shared, n.strong_neighbours)
        for k, n in ((k, nodes[k]) for k in keys)
    ]


@pytest.mark.parametrize("in_parts", [False, True])
@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events_strategy, data=st.data())
def test_a_first_bulk_load_writes_what_deferred_ingest_writes(
    name: str, in_parts: bool, raw: list, data: st.DataObject
) -> None:
    """The import command's fast path for an empty store against the resolver's general one.

    In parts, as for a store that caps a transaction's size: the loader
    resolves every few events and judges the whole graph again each time.
    """
    config = CONFIGS[name]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        EventInput(e.source, e.identifiers, e.event_id, start + timedelta(minutes=m))
        for e, m in zip(
            to_events(raw),
            data.draw(st.lists(st.integers(0, 30), min_size=len(raw), max_size=len(raw))),
            strict=True,
        )
    ]
    events += data.draw(st.lists(st.sampled_from(events), max_size=3))  # re-sent events
    now = start + timedelta(days=1)
    size = data.draw(st.integers(1, 6))
    chunks = [events[i : i + size] for i in range(0, len(events), size)]
    every = data.draw(st.integers(1, 8)) if in_parts else None
    with tempfile.TemporaryDirectory() as loaded_dir, tempfile.TemporaryDirectory() as other_dir:
        loaded = IdentityGraph(config, EmbeddedStore(loaded_dir))
        loaded.store.resolve_every = every
        deferred = IdentityGraph(config, EmbeddedStore(other_dir))
        try:
            load = loaded.bulk_load(now)
            statuses = []
            for chunk in chunks:
                clean = []
                for event in chunk:
                    try:
                        clean.append(clean_event(len(clean), event, loaded.registry, now))
                    except IdgraphError:
                        continue
                results = [EventResult(c.position, c.event_id, "ACCEPTED") for c in clean]
                load.add(clean, results)
                statuses += [r.status for r in results]
            load.finish()
            expected = []
            for chunk in chunks:
                expected += [
                    r.status
                    for r in deferred.resolver.ingest(chunk, now=now, bulk=True)
                    if r.status != "REJECTED"
                ]
            deferred.resolver.resolve_pending(now)
            assert statuses == expected
            assert node_state(loaded) == node_state(deferred)
            assert partition(loaded) == partition(deferred)
            nodes, customers, events_seen = loaded.store.counters()
            expected_counters = deferred.store.counters()
            assert (nodes, events_seen) == (expected_counters[0], expected_counters[2])
            if not in_parts:  # parts mint customers for what later parts may merge
                assert customers == expected_counters[1]
        finally:
            loaded.close()
            deferred.close()
