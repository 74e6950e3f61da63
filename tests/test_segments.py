"""Saved segments on both stores: live membership, explanations, breakdowns and history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.conftest import NOW, Api, Clock
from tests.test_audiences import COUNT, phone, populate
from tests.test_tags_api import graph_of

DEFINE = """mutation($input: SegmentInput!) {
  defineSegment(input: $input) { id name version status where } }"""
SEGMENT = """query($id: ID!, $by: String!) { segment(id: $id) {
  id count began
  members(first: 500) { totalCount edges { node { oneId } } }
  breakdown(by: $by) { value count } } }"""
AS_OF = """query($id: ID!, $t: DateTime!) { segment(id: $id) {
  countAsOf(time: $t) membersAsOf(time: $t, first: 500) { totalCount edges { node { oneId } } }
} }"""
DIFF = """query($id: ID!, $a: DateTime!, $b: DateTime!) { segment(id: $id) {
  diff(from: $a, to: $b) { entered left } } }"""
EXPLAIN = """query($id: ID!, $one: ID!) { segment(id: $id) {
  explain(oneId: $one) { member explanation } } }"""
CHANGES = """query($id: ID!) { segment(id: $id) {
  changes(first: 500) { oneId entered at cause } } }"""
SHANGHAI_BUYERS = {
    "all": [
        {"trait": "city", "op": "in", "value": ["上海", "北京"]},
        {"tag": "spent", "op": "gt", "value": 100},
        {"not": {"tag": "frequent", "op": "has"}},
    ]
}


def define(api: Api, segment_id: str, where: Any) -> dict[str, Any]:
    given = {"id": segment_id, "name": segment_id.title(), "where": where}
    found: dict[str, Any] = api(DEFINE, {"input": given})["defineSegment"]
    return found


def phone_of(api: Api, one_id: str) -> str:
    """A customer's phone number, as the profile shows it."""
    groups = api(
        "query($id: ID!) { profile(oneId: $id) { identifiers { type identifiers { value } } } }",
        {"id": one_id},
    )["profile"]["identifiers"]
    found: str = next(g["identifiers"][0]["value"] for g in groups if g["type"] == "phone")
    return found


def members(found: dict[str, Any]) -> set[str]:
    return {e["node"]["oneId"] for e in found["edges"]}


def test_a_segment_is_its_condition_kept_live(tagged: Api, clock: Clock) -> None:
    populate(tagged)
    saved = define(tagged, "sh-buyers", SHANGHAI_BUYERS)
    assert saved["status"] == "BUILDING" and saved["version"] == 1
    graph_of(tagged).tags.build()
    expected = tagged(COUNT, {"w": SHANGHAI_BUYERS})["profileCount"]
    found = tagged(SEGMENT, {"id": "sh-buyers", "by": "city"})["segment"]
    assert found["count"] == expected == found["members"]["totalCount"] > 0
    mix = {e["value"]: e["count"] for e in found["breakdown"]}
    assert set(mix) <= {"上海", "北京"} and sum(mix.values()) == expected
    by_tier = tagged(SEGMENT, {"id": "sh-buyers", "by": "tier"})["segment"]["breakdown"]
    assert by_tier == [{"value": "T1", "count": expected}]
    # Not a tag of the profile, not among the tag definitions: a segment of the profile.
    one = next(iter(members(found["members"])))
    shown = tagged("query($id: ID!) { profile(oneId: $id) { segments { id } } }", {"id": one})
    assert shown["profile"]["segments"] == [{"id": "sh-buyers"}]
    outside = tagged.one_id("phone", phone(0))
    shown = tagged("query($id: ID!) { profile(oneId: $id) { segments { id } } }", {"id": outside})
    assert shown["profile"]["segments"] == []
    shown = tagged("query($id: ID!) { profile(oneId: $id) { tags { tag { id } } } }", {"id": one})
    assert all(not t["tag"]["id"].startswith("segment/") for t in shown["profile"]["tags"])
    ids = [d["id"] for d in tagged("{ tagDefinitions { id } }")["tagDefinitions"]]
    assert not any(i.startswith("segment/") for i in ids)
    # Explained for a member, and for someone who is not.
    why = tagged(EXPLAIN, {"id": "sh-buyers", "one": one})["segment"]["explain"]
    assert why["member"] is True
    assert why["explanation"]["all"][0]["seen"] in ("上海", "北京")
    outsider = tagged.one_id("phone", phone(0))  # no city
    why = tagged(EXPLAIN, {"id": "sh-buyers", "one": outsider})["segment"]["explain"]
    assert why == {
        "member": False,
        "explanation": {**why["explanation"], "held": False},
    }
    assert why["explanation"]["all"][0]["held"] is False


def test_history_answers_who_was_in_at_any_moment(tagged: Api, clock: Clock) -> None:
    populate(tagged)
    define(tagged, "sh-buyers", SHANGHAI_BUYERS)
    graph = graph_of(tagged)
    graph.tags.build()
    start = tagged(AS_OF, {"id": "sh-buyers", "t": NOW.isoformat()})["segment"]
    first = members(start["membersAsOf"])
    assert start["countAsOf"] == len(first) > 0
    # A day later someone moves to Shanghai and buys: they enter.
    clock.now = NOW + timedelta(days=1)
    newcomer = phone(0)  # no city before
    tagged.ingest(
        {
            "eventId": "moved",
            "source": "crm",
            "timestamp": clock.now.isoformat(),
            "identifiers": [{"type": "phone", "value": newcomer}],
            "traits": {"city": "上海"},
        },
        {
            "eventId": "bought",
            "source": "tmall",
            "timestamp": clock.now.isoformat(),
            "identifiers": [{"type": "phone", "value": newcomer}],
            "name": "order_paid",
            "properties": {"amount": 900.0},
        },
    )
    entered = tagged.one_id("phone", newcomer)
    # Two days later a member leaves Shanghai.
    clock.now = NOW + timedelta(days=2)
    leaver = sorted(first)[0]
    leaver_phone = phone_of(tagged, leaver)
    tagged.ingest(
        {
            "eventId": "left",
            "source": "crm",
            "timestamp": clock.now.isoformat(),
            "identifiers": [{"type": "phone", "value": leaver_phone}],
            "traits": {"city": "成都"},
        }
    )
    day = timedelta(days=1)
    at = {n: (NOW + n * day + timedelta(hours=1)).isoformat() for n in range(3)}
    seen = {n: tagged(AS_OF, {"id": "sh-buyers", "t": at[n]})["segment"] for n in range(3)}
    assert members(seen[0]["membersAsOf"]) == first
    assert members(seen[1]["membersAsOf"]) == first | {entered}
    assert members(seen[2]["membersAsOf"]) == (first | {entered}) - {leaver}
    diff = tagged(DIFF, {"id": "sh-buyers", "a": at[0], "b": at[2]})["segment"]["diff"]
    assert diff == {"entered": [entered], "left": [leaver]}
    changes = tagged(CHANGES, {"id": "sh-buyers"})["segment"]["changes"]
    assert {c["cause"]["kind"] for c in changes} == {"DEFINITION", "EVENT"}
    assert changes[-1] == {
        "oneId": leaver,
        "entered": False,
        "at": (NOW + 2 * day).isoformat(),
        "cause": {"kind": "EVENT", "eventId": "left"},
    }
    # A browser buys (enters), is found to be a member already (merge: leaves), and the
    # link is taken back (split: enters again under the OneID it had).
    cookies = [  # the OneID is issued for the first; the link is made through the second
        {"type": "cookie_id", "value": "ck-browser-2"},
        {"type": "cookie_id", "value": "ck-browser-1"},
    ]
    # A member with one order at most, so one more keeps them short of "frequent" (3).
    counts = {
        one: tagged("query($id: ID!) { profile(oneId: $id) { eventCount } }", {"id": one})[
            "profile"
        ]["eventCount"]
        for one in sorted(first - {leaver})
    }
    stay = next(one for one, count in counts.items() if count <= 2)
    stay_phone = phone_of(tagged, stay)
    steps = [
        (timedelta(days=2, hours=6), {"eventId": "browser", "identifiers": cookies}),
        (timedelta(days=2, hours=12), {"eventId": "linked", "identifiers": [cookies[1]]}),
    ]
    for offset, body in steps:
        clock.now = NOW + offset
        extra = {"traits": {"city": "上海"}, "name": "order_paid", "properties": {"amount": 500}}
        if body["eventId"] == "linked":
            extra = {"identifiers": [cookies[1], {"type": "phone", "value": stay_phone}]}
        tagged.ingest({"source": "web", "timestamp": clock.now.isoformat(), **body, **extra})
        if body["eventId"] == "browser":
            browser = tagged.one_id("cookie_id", "ck-browser-2")
    assert tagged.one_id("cookie_id", "ck-browser-2") == stay  # merged into the member
    clock.now = NOW + timedelta(days=2, hours=18)
    tagged(
        "mutation($i: IdentifierInput!) { removeIdentifier(identifier: $i) { oneIds } }",
        {"i": cookies[1]},
    )
    back = tagged.one_id("cookie_id", "ck-browser-2")
    assert back == browser  # given back on the split
    base = (first | {entered}) - {leaver}

    def at_hour(hours: int) -> set[str]:
        moment = (NOW + timedelta(days=2, hours=hours)).isoformat()
        return members(tagged(AS_OF, {"id": "sh-buyers", "t": moment})["segment"]["membersAsOf"])

    assert at_hour(7) == base | {back}
    assert at_hour(13) == base
    assert at_hour(19) == base | {back}
    causes = [
        c["cause"]["kind"] for c in tagged(CHANGES, {"id": "sh-buyers"})["segment"]["changes"]
    ]
    assert causes[-3:] == ["EVENT", "MERGE", "SPLIT"]
    # Time moves a windowed rule: redefined on orders of the last 30 days, then 40 days pass.
    clock.now = NOW + timedelta(days=3)
    recent = {
        "aggregate": "count",
        "event": "order_paid",
        "within": {"days": 30},
        "op": "gt",
        "value": 0,
    }
    saved = define(tagged, "sh-buyers", {"all": [*SHANGHAI_BUYERS["all"], recent]})
    assert saved["version"] == 2
    versions = tagged(
        'query { segment(id: "sh-buyers") { versions { version where changedAt } } }'
    )["segment"]["versions"]
    assert [(v["version"], v["changedAt"]) for v in versions] == [
        (1, NOW.isoformat()),
        (2, clock.now.isoformat()),
    ]
    assert versions[0]["where"] == SHANGHAI_BUYERS
    graph.tags.build()
    after_change = tagged(SEGMENT, {"id": "sh-buyers", "by": "city"})["segment"]["count"]
    clock.now = NOW + timedelta(days=45)
    graph.tags.run_due()
    later = tagged(SEGMENT, {"id": "sh-buyers", "by": "city"})["segment"]["count"]
    assert later < after_change
    kinds = {c["cause"]["kind"] for c in tagged(CHANGES, {"id": "sh-buyers"})["segment"]["changes"]}
    assert "TIME" in kinds


def test_segment_mistakes_have_their_codes(tagged: Api) -> None:
    populate(tagged)
    bad = {"all": [{"trait": "city", "op": "exists"}, {"tag": "nope", "op": "has"}]}
    error = tagged.errors(DEFINE, {"input": {"id": "x", "name": "X", "where": bad}})[0]
    assert error["extensions"]["code"] == "INVALID_RULE"
    assert error["message"].startswith("$.where.all[1]")
    error = tagged.errors(DEFINE, {"input": {"id": "Bad Id", "name": "X", "where": bad}})[0]
    assert error["extensions"]["code"] == "INVALID_RULE"
    assert tagged("{ segments { id } }")["segments"] == []  # nothing written
    define(tagged, "ok", {"trait": "city", "op": "exists"})
    error = tagged.errors(AS_OF, {"id": "ok", "t": (NOW - timedelta(days=1)).isoformat()})[0]
    assert error["extensions"]["code"] == "BEFORE_HISTORY"
    error = tagged.errors(
        'mutation { defineTag(input: {id: "segment/ok", name: "x", category: "X"}) { id } }'
    )[0]
    assert error["extensions"]["code"] == "INVALID_RULE"
    error = tagged.errors('mutation { deleteSegment(id: "missing") { id } }')[0]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert tagged('mutation { deleteSegment(id: "ok") { id } }')["deleteSegment"]["id"] == "ok"
    assert tagged('{ segment(id: "ok") { id } }')["segment"] is None


EXPORTED = """query($id: ID!) { segment(id: $id) {
  members(first: 500) { edges { oneId node { identifiers { type identifiers { value } } } } }
} }"""


def test_export_equals_the_query(tagged: Api, clock: Clock) -> None:
    populate(tagged)
    define(tagged, "sh-buyers", SHANGHAI_BUYERS)
    graph = graph_of(tagged)
    graph.tags.build()
    edges = tagged(EXPORTED, {"id": "sh-buyers"})["segment"]["members"]["edges"]
    expected = [
        (
            e["oneId"],
            {
                g["type"]: sorted(i["value"] for i in g["identifiers"])
                for g in e["node"]["identifiers"]
                if g["type"] == "phone"
            },
        )
        for e in edges
    ]
    segment = graph.segments.segment("sh-buyers")
    assert segment is not None
    assert list(graph.segments.export(segment, ["phone"])) == expected
    # As of the definition, before anyone moved: the members then, by the log.
    clock.now = NOW + timedelta(days=1)
    tagged.ingest(
        {
            "eventId": "moved",
            "source": "crm",
            "identifiers": [{"type": "phone", "value": phone(0)}],
            "traits": {"city": "上海"},
        },
        {
            "eventId": "bought",
            "source": "tmall",
            "identifiers": [{"type": "phone", "value": phone(0)}],
            "name": "order_paid",
            "properties": {"amount": 900.0},
        },
    )
    then = [o for o, _ in graph.segments.export(segment, ["phone"], NOW)]
    assert then == [o for o, _ in expected]
    now = [o for o, _ in graph.segments.export(segment, ["phone"])]
    assert set(now) - set(then) == {tagged.one_id("phone", phone(0))}


def test_the_export_segment_command_writes_csv_and_ndjson(tmp_path: Path) -> None:
    import csv
    import json as jsonlib

    from graph.config import load_config
    from graph.identity_graph import IdentityGraph
    from graph.store.embedded import EmbeddedStore
    from tests.test_cli import idgraph

    data = tmp_path / "data"
    graph = IdentityGraph(load_config(), EmbeddedStore(data))
    try:
        from graph.events import EventInput, IdentifierInput

        graph.ingest(
            [
                EventInput(
                    source="crm",
                    identifiers=[
                        IdentifierInput("phone", f"1390000{n:04d}"),
                        IdentifierInput("email", f"p{n}@example.cn"),
                    ],
                    traits={"city": "上海" if n % 2 else "北京"},
                    event_id=f"e{n}",
                )
                for n in range(6)
            ]
        )
        graph.segments.define(
            "sh", "Shanghai", None, {"trait": "city", "op": "eq", "value": "上海"}
        )
        graph.tags.build()
        segment = graph.segments.segment("sh")
        assert segment is not None
        expected = list(graph.segments.export(segment, ["phone", "email"]))
    finally:
        graph.close()
    assert len(expected) == 3
    out = tmp_path / "sh.csv"
    at = ["--data-dir", str(data)]
    done = idgraph("export-segment", "sh", str(out), "--types", "phone,email", *at)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.read_text("utf-8").splitlines()))
    assert [(r["one_id"], r["phone"], r["email"]) for r in rows] == [
        (o, "|".join(found["phone"]), "|".join(found["email"])) for o, found in expected
    ]
    out = tmp_path / "sh.ndjson"
    done = idgraph("export-segment", "sh", str(out), "--types", "phone", *at)
    assert done.returncode == 0, done.stderr
    lines = [jsonlib.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert lines == [{"oneId": o, "identifiers": {"phone": f["phone"]}} for o, f in expected]
    missing = idgraph("export-segment", "nope", str(out), *at)
    assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr
    early = idgraph(
        "export-segment", "sh", str(out), "--as-of", "2000-01-01", "--data-dir", str(data)
    )
    assert early.returncode == 2 and "BEFORE_HISTORY" in early.stderr
