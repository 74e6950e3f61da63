"""Bad input gets a typed error and leaves stored data exactly as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.settings import Settings
from tests.conftest import INGEST, KEY, Api, event


def snapshot(api: Api) -> Any:
    """Everything a client can see about the stored graph."""
    return api("""{ resolveIdentifiers(identifiers: [
        {type: "phone", value: "13800138000"}, {type: "email", value: "a@example.com"},
        {type: "cookie_id", value: "ck-123456"}, {type: "email", value: "b@example.com"}])
        { status oneId } }""")


def seeded(api: Api) -> Any:
    api.ingest(event("seed", "crm", ("phone", "13800138000"), ("email", "a@example.com")))
    return snapshot(api)


def test_unknown_identifier_type_rejects_only_that_event(api: Api) -> None:
    before = seeded(api)
    result = api.ingest(
        event("bad", "web", ("cookie_id", "ck-123456"), ("fax", "123")),
        event("good", "web", ("email", "b@example.com")),
    )
    bad, good = result["results"]
    assert bad["status"] == "REJECTED" and bad["errorCode"] == "UNKNOWN_IDENTIFIER_TYPE"
    assert "fax" in bad["errorMessage"] and bad["oneId"] is None
    assert good["status"] == "ACCEPTED"
    after = snapshot(api)["resolveIdentifiers"]
    assert after[2]["status"] == "UNKNOWN"  # nothing of the rejected event was written
    assert after[:2] == before["resolveIdentifiers"][:2]


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("eventId", event("e\ud800", "web", ("cookie_id", "ck-123456"))),
        ("source", event("e1", "w\udfffeb", ("cookie_id", "ck-123456"))),
        (
            "identifiers[1].value",
            event("e1", "web", ("cookie_id", "ck-123456"), ("email", "c\ud800@x.com")),
        ),
        ("traits", event("e1", "web", ("cookie_id", "ck-123456"), name=["ok", {"x": "\udc00"}])),
    ],
)
def test_text_that_is_not_unicode_rejects_only_that_event(
    api: Api, field: str, bad: dict[str, Any]
) -> None:
    """JSON can escape half a surrogate pair alone; no store can keep such a string."""
    before = seeded(api)
    events = [bad, event("good", "web", ("email", "b@example.com"))]
    response = api.client.post(
        "/graphql",
        # Escaped, as a JSON encoder writes it: UTF-8 has no bytes for it.
        content=json.dumps({"query": INGEST, "variables": {"events": events}}).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    rejected, good = response.json()["data"]["ingestEvents"]["results"]
    assert rejected["status"] == "REJECTED" and rejected["errorCode"] == "INVALID_EVENT"
    assert rejected["errorMessage"].startswith(f"{field} is not valid Unicode")
    assert rejected["eventId"] == bad["eventId"]  # sent back escaped, as it came
    assert good["status"] == "ACCEPTED"
    after = snapshot(api)["resolveIdentifiers"]
    assert after[2]["status"] == "UNKNOWN"  # nothing of the rejected event was written
    assert after[:2] == before["resolveIdentifiers"][:2]


def test_queries_with_text_that_is_not_unicode_find_nothing(api: Api) -> None:
    seeded(api)
    bad = {"type": "cookie_id", "value": "ck-\ud800-123456"}
    good = {"type": "phone", "value": "13800138000"}
    query = """
    query($ids: [IdentifierInput!]!, $bad: IdentifierInput!, $good: IdentifierInput!,
          $oneId: ID!, $value: String!) {
      resolveIdentifiers(identifiers: $ids) { value normalized oneId status }
      profileByIdentifier(type: "cookie_id", value: $value) { oneId }
      explainLink(a: $bad, b: $good) { joined reason }
      profile(oneId: $oneId) { oneId }
      identityGraph(oneId: $oneId) { oneId }
    }"""
    variables = {"ids": [bad], "bad": bad, "good": good, "oneId": "x\ud800", "value": bad["value"]}
    response = api.client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    found = body["data"]
    assert found["resolveIdentifiers"] == [
        {"value": bad["value"], "normalized": None, "oneId": None, "status": "INVALID"}
    ]
    assert found["profileByIdentifier"] is None
    assert found["explainLink"] == {"joined": False, "reason": "INVALID"}
    assert found["profile"] is None and found["identityGraph"] is None


def test_bad_items_among_lookups_are_answered_alone(api: Api) -> None:
    """One unknown type or unusable value among many lookups spoils only itself."""
    seeded(api)
    good = {"type": "phone", "value": "13800138000"}
    bad_type = {"type": "fax", "value": "1"}
    bad_value = {"type": "email", "value": "not an email"}
    ids = [good, bad_type, *[good] * 996, bad_value, {"type": "cookie_id", "value": "ck-123456"}]
    found = api(
        "query($ids: [IdentifierInput!]!) {"
        " resolveIdentifiers(identifiers: $ids) { type value normalized oneId status reason } }",
        {"ids": ids},
    )["resolveIdentifiers"]
    assert len(found) == 1000
    one_id = found[0]["oneId"]
    assert one_id is not None and found[0]["status"] == "LINKED"
    assert found[1] == {
        "type": "fax",
        "value": "1",
        "normalized": None,
        "oneId": None,
        "status": "INVALID",
        "reason": found[1]["reason"],
    }
    assert "unknown identifier type 'fax'" in found[1]["reason"]
    assert all(r["oneId"] == one_id and r["status"] == "LINKED" for r in found[2:998])
    assert found[998]["status"] == "INVALID" and found[998]["reason"]
    assert found[999]["status"] == "UNKNOWN"


def test_explaining_an_unknown_type_answers_invalid(api: Api) -> None:
    seeded(api)
    found = api(
        """{ explainLink(a: {type: "fax", value: "1"}, b: {type: "phone", value: "13800138000"})
             { joined reason message } }"""
    )["explainLink"]
    assert found["joined"] is False and found["reason"] == "INVALID"
    assert "unknown identifier type 'fax'" in found["message"]


@pytest.mark.parametrize(
    "operation",
    [
        '{ profileByIdentifier(type: "fax", value: "1") { oneId } }',
        'mutation { removeIdentifier(identifier: {type: "fax", value: "1"}) { oneIds } }',
    ],
)
def test_unknown_type_in_a_single_item_operation_is_a_typed_error(api: Api, operation: str) -> None:
    errors = api.errors(operation)
    assert errors[0]["extensions"]["code"] == "UNKNOWN_IDENTIFIER_TYPE"


def test_event_without_valid_identifiers_is_rejected(api: Api) -> None:
    before = seeded(api)
    result = api.ingest(
        event("x", "web", ("phone", "12"), ("email", "nope")),
        event("y", "web"),
        event("z", " ", ("email", "b@example.com")),
    )
    assert [r["errorCode"] for r in result["results"]] == ["INVALID_EVENT"] * 3
    assert snapshot(api) == before


def test_timestamp_out_of_range_in_utc_rejects_only_that_event(api: Api) -> None:
    before = seeded(api)
    result = api.ingest(
        event("early", "web", ("email", "b@example.com"), timestamp="0001-01-01T00:00:00+01:00"),
        event("late", "web", ("email", "b@example.com"), timestamp="9999-12-31T23:59:59-01:00"),
        event("fine", "web", ("cookie_id", "ck-777777"), timestamp="0001-01-01T00:00:00Z"),
    )
    assert [r["errorCode"] for r in result["results"]] == ["INVALID_EVENT"] * 2 + [None]
    assert "out of range" in result["results"][0]["errorMessage"]
    assert snapshot(api) == before


def test_traits_must_be_an_object(api: Api) -> None:
    before = seeded(api)
    bad = event("t", "web", ("email", "b@example.com"))
    bad["traits"] = ["not", "an", "object"]
    result = api.ingest(bad)
    assert result["results"][0]["errorCode"] == "INVALID_EVENT"
    assert snapshot(api) == before


def test_oversize_batch_is_refused_whole(make_api: Any) -> None:
    api: Api = make_api("[ingest]\nmax_batch_size = 3\n")
    before = seeded(api)
    events = [event(f"e{i}", "web", ("cookie_id", f"ck-{i:06d}")) for i in range(4)]
    body = api.post(INGEST, {"events": events}).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
    assert body["errors"][0]["extensions"]["details"] == {"limit": 3, "size": 4}
    assert snapshot(api) == before


def test_default_batch_limit_is_1000(api: Api) -> None:
    events = [event(f"e{i}", "web", ("cookie_id", f"ck-{i:06d}")) for i in range(1001)]
    body = api.post(INGEST, {"events": events}).json()
    assert body["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "mutation {',
        b'{"query": "{ __typename }", "operationName": "\xff"}',  # not UTF-8
        # Nested deeper than any parser goes: an error, not a crash.
        b'{"query": "{ __typename }", "extensions": {"x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}",
    ],
    ids=["not JSON", "not UTF-8", "nested too deeply"],
)
def test_bad_json_body(api: Api, body: bytes) -> None:
    before = seeded(api)
    response = api.client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_JSON"
    assert snapshot(api) == before


def test_values_beyond_64_bits_are_kept_exactly(api: Api) -> None:
    """JSON has no limit on integers; a trait may be a 20-digit account number."""
    big = 2**70 + 1
    api.ingest(event("big", "crm", ("email", "big@example.com"), account_number=big))
    query = (
        """query($v: String!) { profileByIdentifier(type: "email", value: $v) { traitValues } }"""
    )
    response = api.post(query, {"v": "big@example.com"})
    assert str(big) in response.text  # written as the integer it is, not a float
    assert response.json()["data"]["profileByIdentifier"]["traitValues"] == {"account_number": big}


def test_bad_graphql_and_bad_variables(api: Api) -> None:
    before = seeded(api)
    parse = api.post("mutation { ingestEvents(", None).json()
    assert parse["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    wrong = api.post(INGEST, {"events": [{"source": "web"}]}).json()
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad_time = event("t", "web", ("email", "b@example.com"), timestamp="yesterday")
    assert (
        api.post(INGEST, {"events": [bad_time]}).json()["errors"][0]["extensions"]["code"]
        == "BAD_USER_INPUT"
    )
    assert snapshot(api) == before


def test_missing_or_wrong_key_is_401(api: Api) -> None:
    before = seeded(api)
    e = [event("k", "web", ("email", "b@example.com"))]
    for key in (None, "wrong-key"):
        response = api.post(INGEST, {"events": e}, key=key)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    basic = api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Basic {KEY}"}
    )
    assert basic.status_code == 401
    assert snapshot(api) == before


def test_healthz_needs_no_key(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_mutation_over_get_is_refused(api: Api) -> None:
    response = api.client.get(
        "/graphql",
        params={"query": "mutation { ingestEvents(events: []) { accepted } }"},
        headers={"Authorization": f"Bearer {KEY}", "Accept": "application/json"},
    )
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_graphql_response_media_type(api: Api) -> None:
    ok = api.post("{ __typename }", None, Accept="application/graphql-response+json")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/graphql-response+json; charset=utf-8"
    bad = api.post("{ nope }", None, Accept="application/graphql-response+json")
    assert bad.status_code == 400 and "data" not in bad.json()
    legacy = api.post("{ nope }", None, Accept="application/json")
    assert legacy.status_code == 200 and legacy.headers["content-type"].startswith(
        "application/json"
    )
    assert api.post("{ __typename }", None, Accept="text/csv").status_code == 406


def test_admin_key_is_made_once_and_kept(tmp_path: Any) -> None:
    from service.settings import ensure_admin_key

    settings = Settings(data_dir=tmp_path / "d", config_path=None, admin_key=None)
    key, created = ensure_admin_key(settings)
    again, created_again = ensure_admin_key(settings)
    assert created and not created_again and key == again and len(key) >= 32
    assert oct((tmp_path / "d" / "admin.key").stat().st_mode & 0o777) == "0o600"
    assert json.dumps(key)


def test_overlong_values_are_dropped_and_huge_bodies_refused(api: Api) -> None:
    before = seeded(api)
    result = api.ingest(event("long", "web", ("email", "x" * 5000 + "@example.com")))
    assert result["results"][0]["errorCode"] == "INVALID_EVENT"
    assert "longer than 512" in result["results"][0]["errorMessage"]
    huge = b'{"query": "' + b" " * (33 * 1024 * 1024) + b'{ __typename }"}'
    response = api.client.post(
        "/graphql",
        content=huge,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert snapshot(api) == before


def test_cors_only_for_configured_origins(tmp_path: Any) -> None:
    from starlette.testclient import TestClient

    from service.app import create_app

    settings = Settings(
        data_dir=tmp_path / "d",
        config_path=None,
        admin_key=KEY,
        cors_origins=["https://crm.example.com"],
    )
    with TestClient(create_app(settings)) as client:
        preflight = client.options(
            "/graphql",
            headers={
                "Origin": "https://crm.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://crm.example.com"
        other = client.options(
            "/graphql",
            headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
        response = client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": "https://crm.example.com", "Authorization": f"Bearer {KEY}"},
        )
        assert response.headers["access-control-allow-origin"] == "https://crm.example.com"


def test_resolving_too_many_identifiers_at_once_is_refused(make_api: Any) -> None:
    api: Api = make_api("[query]\nmax_identifiers = 2\n")
    ids = [{"type": "phone", "value": f"1380013800{i}"} for i in range(3)]
    errors = api.errors(
        "query R($ids: [IdentifierInput!]!) { resolveIdentifiers(identifiers: $ids) { status } }",
        {"ids": ids},
    )
    assert errors[0]["extensions"]["code"] == "BATCH_TOO_LARGE"
