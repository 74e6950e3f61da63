"""Resolution rules through the GraphQL API: merges, splits, limits, aliases, explanations."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, event

PROFILE = """
query P($id: ID!) {
  profile(oneId: $id) {
    oneId aliases eventCount sources firstSeen lastSeen
    identifiers { type identifiers { value sources } }
    traits { name value source observedAt }
    history { kind oneId others reason eventIds evidence }
  }
}
"""

EXPLAIN = """
query E($a: IdentifierInput!, $b: IdentifierInput!) {
  explainLink(a: $a, b: $b) {
    joined reason message oneIdA oneIdB limitType
    path { a { type value } b { type value } evidence { source count } }
    via { type value }
  }
}
"""

REMOVE = """
mutation R($id: IdentifierInput!) {
  removeIdentifier(identifier: $id) { removed { type value } oneIds }
}
"""


def explain(api: Api, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = api(
        EXPLAIN,
        {
            "a": {"type": a[0], "value": a[1]},
            "b": {"type": b[0], "value": b[1]},
        },
    )["explainLink"]
    return found


def profile(api: Api, one_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api(PROFILE, {"id": one_id})["profile"]
    return found


def test_event_links_its_identifiers_and_builds_a_profile(api: Api) -> None:
    result = api.ingest(
        event(
            "e-1",
            "wechat_miniapp",
            ("wechat_openid", "oAbc1234567"),
            ("wechat_unionid", "oXyz1234567"),
            ("phone", "+86 138 0013 8000"),
            timestamp="2026-03-01T08:00:00Z",
            name="王芳",
            city="上海",
        )
    )
    assert result["accepted"] == 1
    one_id = result["results"][0]["oneId"]
    assert api.one_id("phone", "13800138000") == one_id
    assert api.one_id("wechat_openid", "oAbc1234567") == one_id
    p = profile(api, one_id)
    groups = {g["type"]: [i["value"] for i in g["identifiers"]] for g in p["identifiers"]}
    assert groups == {
        "wechat_openid": ["oAbc1234567"],
        "wechat_unionid": ["oXyz1234567"],
        "phone": ["+8613800138000"],
    }
    assert {t["name"]: t["value"] for t in p["traits"]} == {"name": "王芳", "city": "上海"}
    values = api(
        'query P($id: ID!) { profile(oneId: $id) { traitValues city: trait(name: "city") '
        'nope: trait(name: "nope") } }',
        {"id": one_id},
    )["profile"]
    assert values == {"traitValues": {"city": "上海", "name": "王芳"}, "city": "上海", "nope": None}
    assert p["eventCount"] == 1 and p["sources"] == ["wechat_miniapp"]
    assert p["firstSeen"].startswith("2026-03-01T08:00:00")


def test_trait_survivorship_latest_wins_and_source_priority(make_api: Any) -> None:
    api: Api = make_api('[traits.source_priority]\nname = ["crm"]\n')
    api.ingest(
        event(
            "a",
            "crm",
            ("phone", "13800138000"),
            timestamp="2026-01-01T00:00:00Z",
            name="王芳",
            city="北京",
        ),
        event(
            "b",
            "web",
            ("phone", "13800138000"),
            timestamp="2026-02-01T00:00:00Z",
            name="Fang",
            city="上海",
        ),
        event("c", "app", ("phone", "13800138000"), timestamp="2026-03-01T00:00:00Z", city=None),
    )
    p = profile(api, api.one_id("phone", "13800138000") or "")
    traits = {t["name"]: (t["value"], t["source"]) for t in p["traits"]}
    assert traits == {"name": ("王芳", "crm"), "city": ("上海", "web")}


def test_merge_keeps_the_older_one_id_and_the_other_becomes_an_alias(api: Api) -> None:
    first = api.ingest(event("e1", "web", ("cookie_id", "ck-aaaaaa"), ("email", "a@x.com")))
    second = api.ingest(event("e2", "app", ("device_id", "dev-aaaaaa"), ("phone", "13800138000")))
    old, young = first["results"][0]["oneId"], second["results"][0]["oneId"]
    assert old != young
    merged = api.ingest(
        event("e3", "crm", ("email", "A@x.com"), ("phone", "13800138000"), ("crm_id", "C1"))
    )
    assert merged["results"][0]["oneId"] == old
    assert api.one_id("device_id", "DEV-AAAAAA") == old
    alias_profile = profile(api, young)
    assert alias_profile["oneId"] == old
    assert young in alias_profile["aliases"]
    (entry,) = [h for h in alias_profile["history"] if h["kind"] == "MERGE"]
    assert entry["oneId"] == old and entry["others"] == [young]
    assert entry["eventIds"] == ["e3"] and entry["evidence"]


def test_limit_refuses_a_merge_and_explains_it(api: Api) -> None:
    api.ingest(
        event("c1", "crm", ("crm_id", "C1"), ("phone", "13800138000")),
        event("c2", "crm", ("crm_id", "C2"), ("phone", "13900139000")),
        event("w1", "web", ("cookie_id", "ck-shared-1"), ("phone", "13800138000")),
    )
    a, b = api.one_id("crm_id", "C1"), api.one_id("crm_id", "C2")
    assert a and b and a != b
    # An email joining both customers would give one customer two crm_ids: refused.
    api.ingest(
        event("x", "web", ("phone", "13800138000"), ("member_id", "M-77")),
        event("y", "web", ("member_id", "M-77"), ("phone", "13900139000")),
    )
    assert api.one_id("crm_id", "C1") != api.one_id("crm_id", "C2")
    why = explain(api, ("crm_id", "C1"), ("crm_id", "C2"))
    assert why["joined"] is False and why["reason"] == "LIMIT"
    assert why["limitType"] in {"crm_id", "member_id"}
    assert why["path"], why


def test_shared_device_splits_customers_back(api: Api) -> None:
    api.ingest(
        event("r1", "crm", ("member_id", "M1"), ("phone", "13800138001")),
        event("r2", "crm", ("member_id", "M2"), ("phone", "13800138002")),
        event("t1", "app", ("device_id", "tablet-0001"), ("phone", "13800138001")),
    )
    before = api.one_id("phone", "13800138001")
    assert api.one_id("device_id", "tablet-0001") == before
    # The tablet is now seen with a second person: it is shared and links nobody.
    api.ingest(event("t2", "app", ("device_id", "tablet-0001"), ("phone", "13800138002")))
    assert api.status("device_id", "tablet-0001") == "SHARED"
    assert api.one_id("device_id", "tablet-0001") is None
    assert api.one_id("phone", "13800138001") == before
    assert api.one_id("phone", "13800138002") not in {None, before}
    why = explain(api, ("phone", "13800138001"), ("phone", "13800138002"))
    assert why["reason"] == "SHARED"
    assert why["via"] == [{"type": "device_id", "value": "tablet-0001"}]


def test_identifier_becoming_shared_splits_a_merged_customer(api: Api) -> None:
    api.ingest(
        event("a", "app", ("device_id", "kiosk-0001"), ("phone", "13800138001")),
        event("b", "app", ("device_id", "kiosk-0001"), ("email", "b@example.org")),
    )
    one = api.one_id("phone", "13800138001")
    assert one == api.one_id("email", "b@example.org")
    api.ingest(event("c", "app", ("device_id", "kiosk-0001"), ("phone", "13800138003")))
    assert api.status("device_id", "kiosk-0001") == "SHARED"
    ids = {
        api.one_id("phone", "13800138001"),
        api.one_id("email", "b@example.org"),
        api.one_id("phone", "13800138003"),
    }
    assert len(ids) == 3 and None not in ids
    history = profile(api, one or "")["history"]
    split = [h for h in history if h["kind"] == "SPLIT"]
    assert split and split[0]["oneId"] == one
    assert {"identifier": "device_id:kiosk-0001", "change": "shared"} in split[0]["evidence"]


def test_blocked_placeholders_link_nothing(api: Api) -> None:
    result = api.ingest(
        event("a", "web", ("email", "test@test.com"), ("phone", "13800138001")),
        event("b", "web", ("email", "TEST@test.com"), ("phone", "13800138002")),
    )
    assert all("placeholder" in " ".join(r["warnings"]) for r in result["results"])
    assert api.one_id("phone", "13800138001") != api.one_id("phone", "13800138002")
    assert api.status("email", "test@test.com") == "BLOCKED"
    why = explain(api, ("phone", "13800138001"), ("email", "test@test.com"))
    assert why["reason"] == "BLOCKED"


def test_invalid_identifiers_are_dropped_with_a_warning(api: Api) -> None:
    result = api.ingest(event("a", "web", ("phone", "12345"), ("email", "a@example.com")))
    (r,) = result["results"]
    assert r["status"] == "ACCEPTED"
    assert any("phone" in w and "dropped" in w for w in r["warnings"])
    assert api.status("phone", "12345") == "INVALID"


def test_explain_gives_the_evidence_path(api: Api) -> None:
    api.ingest(
        event("a", "web", ("cookie_id", "ck-123456"), ("email", "a@example.com")),
        event("b", "crm", ("email", "a@example.com"), ("phone", "13800138000")),
        event("c", "crm", ("email", "a@example.com"), ("phone", "13800138000")),
    )
    why = explain(api, ("cookie_id", "ck-123456"), ("phone", "+86 138 0013 8000"))
    assert why["joined"] is True and why["reason"] == "SAME_CUSTOMER"
    hops = [(s["a"]["value"], s["b"]["value"]) for s in why["path"]]
    assert hops == [("ck-123456", "a@example.com"), ("a@example.com", "+8613800138000")]
    assert why["path"][1]["evidence"] == [{"source": "crm", "count": 2}]
    unrelated = explain(api, ("cookie_id", "ck-123456"), ("phone", "13900139000"))
    assert unrelated["reason"] == "UNKNOWN"
    api.ingest(event("d", "web", ("phone", "13900139000")))
    apart = explain(api, ("cookie_id", "ck-123456"), ("phone", "13900139000"))
    assert apart["reason"] == "DIFFERENT_CUSTOMERS" and apart["joined"] is False


def test_remove_identifier_splits_the_customer(api: Api) -> None:
    api.ingest(
        event("a", "web", ("cookie_id", "ck-111111"), ("email", "a@example.com")),
        event("b", "app", ("email", "a@example.com"), ("device_id", "dev-222222")),
    )
    one = api.one_id("cookie_id", "ck-111111")
    assert one == api.one_id("device_id", "dev-222222")
    removed = api(REMOVE, {"id": {"type": "email", "value": " A@example.com"}})
    assert removed["removeIdentifier"]["removed"] == {"type": "email", "value": "a@example.com"}
    assert api.status("email", "a@example.com") == "UNKNOWN"
    cookie, device = api.one_id("cookie_id", "ck-111111"), api.one_id("device_id", "dev-222222")
    assert cookie == one  # the cookie is the oldest identifier: its part keeps the OneID
    assert device not in {None, one}
    assert sorted(removed["removeIdentifier"]["oneIds"]) == sorted([cookie, device])
    graph = api(
        "query G($id: ID!) { identityGraph(oneId: $id) { nodes { id } edges { source } } }",
        {"id": one},
    )["identityGraph"]
    assert graph == {"nodes": [{"id": "cookie_id:ck-111111"}], "edges": []}


def test_remove_unknown_identifier_is_not_found(api: Api) -> None:
    errors = api.errors(REMOVE, {"id": {"type": "email", "value": "nobody@example.com"}})
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


def test_identity_graph_marks_shared_and_blocked_neighbours(api: Api) -> None:
    api.ingest(
        event("a", "app", ("device_id", "kiosk-0009"), ("phone", "13800138001")),
        event("b", "app", ("device_id", "kiosk-0009"), ("phone", "13800138002")),
        event(
            "c",
            "web",
            ("phone", "13800138001"),
            ("email", "test@test.com"),
            ("cookie_id", "ck-777777"),
        ),
    )
    one = api.one_id("phone", "13800138001")
    graph = api(
        """query G($id: ID!) { identityGraph(oneId: $id) {
        oneId nodes { id status oneId } edges { source target evidence { source count } } } }""",
        {"id": one},
    )["identityGraph"]
    status = {n["id"]: n["status"] for n in graph["nodes"]}
    assert status == {
        "phone:+8613800138001": "LINKED",
        "cookie_id:ck-777777": "LINKED",
        "device_id:kiosk-0009": "SHARED",
        "email:test@test.com": "BLOCKED",
    }
    assert len(graph["edges"]) == 4


def test_re_sending_an_event_id_is_idempotent(api: Api) -> None:
    e = event("same-id", "web", ("cookie_id", "ck-888888"), ("phone", "13800138000"))
    first = api.ingest(e)
    again = api.ingest(e, e)
    assert [r["status"] for r in again["results"]] == ["DUPLICATE", "DUPLICATE"]
    assert again["duplicates"] == 2 and again["accepted"] == 0
    one = first["results"][0]["oneId"]
    assert again["results"][0]["oneId"] == one
    assert profile(api, one)["eventCount"] == 1
    evidence = api(
        """query G($id: ID!) { identityGraph(oneId: $id) {
        edges { evidence { count } } } }""",
        {"id": one},
    )["identityGraph"]["edges"]
    assert evidence == [{"evidence": [{"count": 1}]}]


def test_profile_by_identifier_and_unknown_profile(api: Api) -> None:
    api.ingest(event("a", "web", ("email", "a@example.com"), ("phone", "13800138000")))
    found = api("""{ profileByIdentifier(type: "phone", value: "138-0013-8000") {
        identifiers { type } } }""")["profileByIdentifier"]
    assert {g["type"] for g in found["identifiers"]} == {"email", "phone"}
    assert api('{ profileByIdentifier(type: "phone", value: "13900139000") { oneId } }') == {
        "profileByIdentifier": None
    }
    assert api('{ profile(oneId: "nope") { oneId } }') == {"profile": None}


def test_resolve_statuses_in_input_order(api: Api) -> None:
    api.ingest(
        event("a", "app", ("device_id", "kiosk-0042"), ("phone", "13800138001")),
        event("b", "app", ("device_id", "kiosk-0042"), ("phone", "13800138002")),
    )
    found = api("""{ resolveIdentifiers(identifiers: [
        {type: "phone", value: "13800138001"}, {type: "phone", value: "13700137000"},
        {type: "email", value: "test@test.com"}, {type: "email", value: "nope"},
        {type: "device_id", value: "KIOSK-0042"}]) { status oneId } }""")["resolveIdentifiers"]
    assert [f["status"] for f in found] == ["LINKED", "UNKNOWN", "BLOCKED", "INVALID", "SHARED"]
    assert found[0]["oneId"] and all(f["oneId"] is None for f in found[1:])


def test_plain_fields_answer_with_aliases_typenames_and_directives(api: Api) -> None:
    """Plain leaf fields take a short path through execution; the answer is GraphQL's own."""
    api.ingest(event("a", "web", ("email", "a@example.com")))
    found = api(
        """query($skip: Boolean!) { resolveIdentifiers(identifiers: [
        {type: "email", value: "a@example.com"}, {type: "email", value: "b@example.com"}]) {
        __typename how: status status @skip(if: $skip) id: oneId again: oneId } }""",
        {"skip": True},
    )["resolveIdentifiers"]
    assert [sorted(f) for f in found] == [["__typename", "again", "how", "id"]] * 2
    assert [f["how"] for f in found] == ["LINKED", "UNKNOWN"]
    assert found[0]["id"] is not None and found[0]["id"] == found[0]["again"]
    assert found[1]["id"] is None and found[0]["__typename"] == "IdentifierResolution"
