"""Tags over GraphQL on both stores: true when a write returns, through merges, splits, time."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import neo4j
from starlette.testclient import TestClient

from graph.identity_graph import IdentityGraph
from graph.store.neo4j import Neo4jStore
from service.app import create_app
from service.settings import Settings
from tests.conftest import KEY, NOW, Api, Clock, empty_neo4j
from tests.test_cli import idgraph, write_ndjson


def graph_of(api: Api) -> IdentityGraph:
    graph: IdentityGraph | None = api.client.app.state.startup.graph  # type: ignore[attr-defined]
    assert graph is not None
    return graph


DEFINE = """
mutation($input: TagDefinitionInput!) {
  defineTag(input: $input) { id kind version status }
}"""
TAGS = """
query($id: ID!) { profile(oneId: $id) {
  oneId
  tags { tag { id } value source since explanation addedBy }
  tagHistory { oneId tagId before after cause }
} }"""


def define(api: Api, tag_id: str, **rule: Any) -> dict[str, Any]:
    given = {"id": tag_id, "name": tag_id, "category": "BEHAVIOR", **rule}
    found: dict[str, Any] = api(DEFINE, {"input": given})["defineTag"]
    return found


def order(
    event_id: str, phone: str, days_ago: float, amount: float, **extra: Any
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "source": extra.pop("source", "tmall"),
        "timestamp": (NOW - timedelta(days=days_ago)).isoformat(),
        "identifiers": extra.pop("identifiers", [{"type": "phone", "value": phone}]),
        "name": "order_paid",
        "properties": {"amount": amount, "category": "护肤"},
        **extra,
    }


def tags_of(api: Api, one_id: str) -> dict[str, Any]:
    profile = api(TAGS, {"id": one_id})["profile"]
    return {t["tag"]["id"]: t for t in profile["tags"]}


def values(api: Api, one_id: str) -> dict[str, Any]:
    return {k: v["value"] for k, v in tags_of(api, one_id).items()}


def rules(api: Api) -> None:
    define(
        api,
        "big-spender",
        compute={"aggregate": "sum", "event": "order_paid", "property": "amount"},
    )
    define(
        api,
        "shanghai-buyer",
        when={
            "all": [
                {"trait": "city", "op": "eq", "value": "上海"},
                {
                    "aggregate": "count",
                    "event": "order_paid",
                    "within": {"days": 30},
                    "op": "gte",
                    "value": 2,
                },
                {"tag": "big-spender", "op": "gt", "value": 500},
            ]
        },
    )


def test_tags_are_true_when_the_ingest_returns(tagged: Api) -> None:
    rules(tagged)
    tagged.ingest(order("o1", "13800138000", 3, 300.0, traits={"city": "上海"}))
    one_id = tagged.one_id("phone", "+8613800138000")
    assert one_id is not None
    assert values(tagged, one_id) == {"big-spender": 300.0, "lifecycle": "NEW"}
    tagged.ingest(order("o2", "13800138000", 1, 250.5))
    found = tags_of(tagged, one_id)
    assert found["big-spender"]["value"] == 550.5
    assert found["shanghai-buyer"]["value"] is True
    assert found["shanghai-buyer"]["source"] == "RULE"
    leaves = found["shanghai-buyer"]["explanation"]["all"]
    assert [leaf["seen"] for leaf in leaves] == ["上海", 2, 550.5]
    assert all(leaf["held"] for leaf in leaves)
    history = tagged(TAGS, {"id": one_id})["profile"]["tagHistory"]
    spend = [h for h in history if h["tagId"] == "big-spender"]
    assert [(h["before"], h["after"]) for h in spend] == [(None, 300.0), (300.0, 550.5)]
    assert spend[1]["cause"] == {"kind": "EVENT", "eventId": "o2"}


MEMBER = {"type": "member_id", "value": "M0001"}


def test_tags_follow_merges_and_splits(tagged: Api) -> None:
    rules(tagged)
    tagged.ingest(
        order("a1", "13800138000", 2, 300.0, traits={"city": "上海"}),
        order(
            "b1", "", 1, 400.0, identifiers=[MEMBER, {"type": "cookie_id", "value": "ck-000009"}]
        ),
    )
    a = tagged.one_id("phone", "+8613800138000")
    b = tagged.one_id("member_id", "M0001")
    assert a and b and a != b
    assert "shanghai-buyer" not in values(tagged, a)
    # One identity event joins them: both orders are one customer's.
    tagged.ingest(
        {
            "eventId": "join",
            "source": "crm",
            "timestamp": NOW.isoformat(),
            "identifiers": [
                {"type": "phone", "value": "13800138000"},
                MEMBER,
            ],
        }
    )
    merged = tagged.one_id("phone", "+8613800138000")
    assert merged is not None
    assert values(tagged, merged)["big-spender"] == 700.0
    assert values(tagged, merged)["shanghai-buyer"] is True
    # Removing the bridge splits them again: each part has its own orders.
    removed = tagged(
        "mutation($i: IdentifierInput!) { removeIdentifier(identifier: $i) { oneIds } }",
        {"i": MEMBER},
    )
    assert removed["removeIdentifier"]["oneIds"]
    a_now = tagged.one_id("phone", "+8613800138000")
    b_now = tagged.one_id("cookie_id", "ck-000009")
    assert a_now and b_now and a_now != b_now
    assert values(tagged, a_now)["big-spender"] == 300.0
    assert values(tagged, b_now)["big-spender"] == 400.0
    assert "shanghai-buyer" not in values(tagged, a_now)
    causes = {h["cause"]["kind"] for h in tagged(TAGS, {"id": a_now})["profile"]["tagHistory"]}
    assert {"EVENT", "MERGE", "SPLIT"} <= causes


def test_time_alone_moves_a_tag(tagged: Api, clock: Clock) -> None:
    define(
        tagged,
        "recent-buyer",
        when={
            "aggregate": "count",
            "event": "order_paid",
            "within": {"days": 7},
            "op": "gt",
            "value": 0,
        },
    )
    tagged.ingest(order("o1", "13800138000", 5, 10.0))
    one_id = tagged.one_id("phone", "+8613800138000")
    assert one_id is not None
    assert values(tagged, one_id)["recent-buyer"] is True
    graph = graph_of(tagged)
    clock.now = NOW + timedelta(days=1)
    graph.tags.run_due()
    assert values(tagged, one_id)["recent-buyer"] is True  # not due yet: nothing changed
    clock.now = NOW + timedelta(days=2, seconds=1)
    assert graph.tags.run_due() == 1
    assert "recent-buyer" not in values(tagged, one_id)
    last = tagged(TAGS, {"id": one_id})["profile"]["tagHistory"][-1]
    assert (last["tagId"], last["after"], last["cause"]) == ("recent-buyer", None, {"kind": "TIME"})


ADD = """
mutation($o: ID!, $t: ID!, $by: String) { addTag(oneId: $o, tagId: $t, by: $by) { tag { id } } }"""
REMOVE = """
mutation($o: ID!, $t: ID!) { removeTag(oneId: $o, tagId: $t) { tag { id } } }"""


def test_manual_tags_record_who_and_follow_the_oneid(tagged: Api) -> None:
    define(tagged, "vip")
    define(tagged, "vip-buyer", when={"tag": "vip", "op": "has"})
    tagged.ingest(order("o1", "13800138000", 1, 10.0))
    one_id = tagged.one_id("phone", "+8613800138000")
    assert one_id is not None
    added = tagged(ADD, {"o": one_id, "t": "vip", "by": "王经理"})["addTag"]
    assert {t["tag"]["id"] for t in added} >= {"vip", "vip-buyer"}
    found = tags_of(tagged, one_id)["vip"]
    assert (found["source"], found["addedBy"], found["value"]) == ("MANUAL", "王经理", True)
    errors = tagged.errors(ADD, {"o": one_id, "t": "vip-buyer"})
    assert errors[0]["extensions"]["code"] == "INVALID_RULE"
    errors = tagged.errors(ADD, {"o": one_id, "t": "nope"})
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    tagged(REMOVE, {"o": one_id, "t": "vip"})
    assert not {"vip", "vip-buyer"} & set(values(tagged, one_id))
    history = tagged(TAGS, {"id": one_id})["profile"]["tagHistory"]
    assert {"kind": "MANUAL", "by": "王经理"} in [h["cause"] for h in history]


def spent_over(amount: float) -> dict[str, Any]:
    return {
        "aggregate": "sum",
        "event": "order_paid",
        "property": "amount",
        "op": "gt",
        "value": amount,
    }


def test_definitions_are_checked_built_and_deleted(tagged: Api) -> None:
    tagged.ingest(order("o1", "13800138000", 1, 900.0), order("o2", "13900139000", 1, 10.0))
    bad = tagged.errors(
        DEFINE,
        {
            "input": {
                "id": "x",
                "name": "x",
                "category": "VALUE",
                "when": {"any": [{"trait": "city", "op": "near", "value": 1}]},
            }
        },
    )
    assert bad[0]["extensions"]["code"] == "INVALID_RULE"
    assert bad[0]["extensions"]["details"]["path"] == "$.when.any[0].op"
    define(tagged, "a", when={"tag": "lifecycle", "op": "eq", "value": "NEW"})
    cycle = tagged.errors(
        DEFINE,
        {
            "input": {
                "id": "lifecycle",
                "name": "l",
                "category": "X",
                "when": {"tag": "a", "op": "has"},
            }
        },
    )
    assert cycle[0]["extensions"]["code"] == "TAG_CYCLE"
    made = define(
        tagged,
        "rich",
        when=spent_over(500),
    )
    assert (made["kind"], made["version"]) == ("RULE", 1)
    graph_of(tagged).tags.build()
    status = tagged('{ tagDefinition(id: "rich") { status progress version } }')
    assert status["tagDefinition"] == {"status": "READY", "progress": 1.0, "version": 1}
    rich = tagged.one_id("phone", "+8613800138000")
    poor = tagged.one_id("phone", "+8613900139000")
    assert rich and poor
    assert values(tagged, rich).get("rich") is True
    assert "rich" not in values(tagged, poor)
    changed = define(
        tagged,
        "rich",
        when=spent_over(5),
    )
    assert (changed["version"], changed["status"]) == (2, "BUILDING")
    graph_of(tagged).tags.build()
    assert values(tagged, poor).get("rich") is True
    tagged('mutation { deleteTag(id: "rich") { id } }')
    assert "rich" not in values(tagged, rich)
    assert "rich" not in values(tagged, poor)
    listed = tagged("{ tagDefinitions { id } }")["tagDefinitions"]
    assert [d["id"] for d in listed] == ["a", "lifecycle"]


def test_imported_events_are_tagged_by_retag(tmp_path: Path, store_uri: str | None) -> None:
    """``idgraph import`` decides no tags; ``idgraph retag`` decides them from the events."""
    lines = [
        json.dumps(order(f"o{n}", "13800138000", n, 100.0 * n), ensure_ascii=False)
        for n in (1, 2, 3)
    ]
    data = tmp_path / "data"
    store = ["--neo4j-uri", store_uri] if store_uri else []
    imported = idgraph(
        "import", str(write_ndjson(tmp_path / "e.ndjson", lines)), "--data-dir", str(data), *store
    )
    assert imported.returncode == 0, imported.stderr
    retagged = idgraph("retag", "--data-dir", str(data), *store)
    assert retagged.returncode == 0, retagged.stderr
    assert "retagged 1 customers" in retagged.stdout
    settings = Settings(data_dir=data, admin_key=KEY, neo4j_uri=store_uri, clock=Clock())
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        one_id = api.one_id("phone", "+8613800138000")
        assert one_id is not None
        # The command decided them at the time it ran, months after these orders.
        assert values(api, one_id) == {"lifecycle": "CHURNED"}
        define(
            api, "spend", compute={"aggregate": "sum", "event": "order_paid", "property": "amount"}
        )
        graph_of(api).tags.build()
        assert values(api, one_id) == {"lifecycle": "NEW", "spend": 600.0}  # the service's now
        status = api('{ tagDefinition(id: "lifecycle") { status } }')["tagDefinition"]
        assert status == {"status": "READY"}


def test_changes_through_the_api_stand_over_the_config_on_restart(
    tmp_path: Path, store_uri: str | None, clock: Clock
) -> None:
    def serve() -> TestClient:
        settings = Settings(
            data_dir=tmp_path / "data", admin_key=KEY, neo4j_uri=store_uri, clock=clock
        )
        return TestClient(create_app(settings))

    anyone = [{"value": "ANY", "when": {"profile": "eventCount", "op": "gt", "value": 0}}]
    with serve() as client:
        define(Api(client), "lifecycle", cases=anyone)  # the shipped one, changed
    with serve() as client:
        api = Api(client)
        found = api('{ tagDefinition(id: "lifecycle") { version cases } }')["tagDefinition"]
        assert (found["version"], found["cases"]) == (2, anyone)
        api('mutation { deleteTag(id: "lifecycle") { id } }')
    with serve() as client:
        assert Api(client)("{ tagDefinitions { id } }")["tagDefinitions"] == []


def test_with_no_definitions_nothing_is_kept_until_one_comes(tagged: Api) -> None:
    tagged('mutation { deleteTag(id: "lifecycle") { id } }')
    tagged.ingest(order("o1", "13800138000", 3, 120.0), order("o2", "13800138000", 2, 80.0))
    one_id = tagged.one_id("phone", "+8613800138000")
    assert one_id is not None
    assert values(tagged, one_id) == {}
    define(
        tagged, "spend", compute={"aggregate": "sum", "event": "order_paid", "property": "amount"}
    )
    graph_of(tagged).tags.build()
    assert values(tagged, one_id) == {"spend": 200.0}
    tagged.ingest(order("o3", "13800138000", 1, 1.5))
    assert values(tagged, one_id) == {"spend": 201.5}


LINK = """mutation($a: ID!, $o: ID!, $t: String) {
  linkContact(accountId: $a, oneId: $o, title: $t) { oneId } }"""
UPSERT = "mutation($i: AccountInput!) { upsertAccount(input: $i) { id } }"


def test_a_link_to_an_account_moves_a_tag_on_links(tagged: Api) -> None:
    define(
        tagged,
        "maker-director",
        when={
            "account": {
                "all": [
                    {"field": "industry", "op": "eq", "value": "Manufacturing"},
                    {"field": "seniority", "op": "gte", "value": "DIRECTOR"},
                ]
            },
            "quantifier": "any",
        },
    )
    tagged.ingest(order("o1", "13800138000", 1, 10.0))
    one_id = tagged.one_id("phone", "+8613800138000")
    assert one_id is not None
    assert "maker-director" not in values(tagged, one_id)
    tagged(UPSERT, {"i": {"id": "crm-1", "name": "Acme", "industry": "Manufacturing"}})
    tagged(LINK, {"a": "crm-1", "o": one_id, "t": "总经理"})
    found = tags_of(tagged, one_id)["maker-director"]
    assert found["value"] is True
    history = tagged(TAGS, {"id": one_id})["profile"]["tagHistory"]
    assert history[-1]["cause"] == {"kind": "ACCOUNT", "accountIds": ["crm-1"]}


def test_a_tag_log_of_the_first_format_is_kept(tmp_path: Path, clock: Clock) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=KEY, clock=clock)
    with TestClient(create_app(settings)) as client:
        Api(client).ingest(order("o1", "13800138000", 3, 300.0))
        one_id = Api(client).one_id("phone", "+8613800138000")
    db = sqlite3.connect(tmp_path / "data" / "idgraph.sqlite3")
    db.execute("DROP TABLE tag_history")
    db.execute(
        "CREATE TABLE tag_log (id INTEGER PRIMARY KEY, one_id TEXT NOT NULL, tag_id TEXT NOT"
        " NULL, before TEXT, after TEXT, at TEXT NOT NULL, cause TEXT NOT NULL)"
    )
    cause = '{"kind": "EVENT", "eventId": "o1"}'
    at = NOW.isoformat()
    db.executemany(
        "INSERT INTO tag_log (one_id, tag_id, before, after, at, cause) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (one_id, "lifecycle", None, '"NEW"', at, cause),
            (one_id, "x", '{"a": [1]}', None, at, cause),
        ],
    )
    db.commit()
    db.close()
    with TestClient(create_app(settings)) as client:
        history = Api(client)(TAGS, {"id": one_id})["profile"]["tagHistory"]
    assert [(h["tagId"], h["before"], h["after"], h["cause"]) for h in history] == [
        ("lifecycle", None, "NEW", {"kind": "EVENT", "eventId": "o1"}),
        ("x", {"a": [1]}, None, {"kind": "EVENT", "eventId": "o1"}),
    ]


def test_two_services_on_one_neo4j_see_each_others_events(
    tmp_path: Path, neo4j_uri: str, clock: Clock
) -> None:
    """Each process holds the rollups it wrote; a batch of another makes it let go of them."""
    empty_neo4j(neo4j_uri)

    def serve(name: str) -> TestClient:
        settings = Settings(
            data_dir=tmp_path / name, admin_key=KEY, neo4j_uri=neo4j_uri, clock=clock
        )
        return TestClient(create_app(settings))

    with serve("a") as first, serve("b") as second:
        a, b = Api(first), Api(second)
        define(
            a, "spend", compute={"aggregate": "sum", "event": "order_paid", "property": "amount"}
        )
        a.ingest(order("o1", "13800138000", 3, 100.0))
        one_id = a.one_id("phone", "+8613800138000")
        assert one_id is not None
        b.ingest(order("o2", "13800138000", 2, 50.0))
        a.ingest(order("o3", "13800138000", 1, 1.0))
        assert values(a, one_id)["spend"] == 151.0
        b.ingest(order("o4", "13800138000", 1, 9.0))
        assert values(b, one_id)["spend"] == 160.0
        # A tag write alone (a manual tag) counts too.
        define(b, "vip", description="by hand")
        b('mutation($o: ID!) { addTag(oneId: $o, tagId: "vip") { value } }', {"o": one_id})
        a.ingest(order("o5", "13800138000", 0, 40.0))
        assert values(a, one_id) == {"lifecycle": "NEW", "spend": 200.0, "vip": True}


def test_rollups_stored_by_an_earlier_version_are_let_go(neo4j_uri: str) -> None:
    empty_neo4j(neo4j_uri)
    with neo4j.GraphDatabase.driver(neo4j_uri, auth=None) as driver:
        driver.execute_query("CREATE INDEX tag_rollup IF NOT EXISTS FOR (r:TagRollup) ON (r.oneId)")
        driver.execute_query("UNWIND range(1, 3) AS n CREATE (:TagRollup {oneId: 'c' + n})")
        driver.execute_query("CREATE (:TagTraits {oneId: 'c1'})")
        Neo4jStore(neo4j_uri).close()
        found = driver.execute_query(
            "MATCH (n) WHERE n:TagRollup OR n:TagTraits RETURN count(n) AS n"
        ).records[0]["n"]
        indexes = driver.execute_query("SHOW INDEXES YIELD name RETURN collect(name) AS names")
    assert found == 0
    assert "tag_rollup" not in indexes.records[0]["names"]
