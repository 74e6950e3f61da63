"""accounts(where) on both stores: account fields, contacts with any/all/none, completeness.

Each expected answer is worked out here from the accounts and contacts the
test made, independently of the service's evaluator.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.test_tags_api import define

UPSERT = "mutation($i: AccountInput!) { upsertAccount(input: $i) { id } }"
LINK = """mutation($a: ID!, $o: ID!, $t: String, $r: [String!]) {
  linkContact(accountId: $a, oneId: $o, title: $t, roles: $r) { oneId } }"""
FIND = """query($w: JSON, $first: Int, $after: String) {
  accounts(where: $w, first: $first, after: $after) {
    totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }"""

# id: (industry, [(title, roles, a VIP customer?)])
ACCOUNTS: dict[str, tuple[str, list[tuple[str, list[str], bool]]]] = {
    "a1": ("manufacturing", [("CEO", ["DECISION_MAKER"], True), ("Engineer", ["USER"], False)]),
    "a2": ("manufacturing", [("Engineer", ["USER"], False), ("Buyer", ["CHAMPION"], True)]),
    "a3": ("manufacturing", []),
    "a4": ("retail", [("CFO", ["ECONOMIC_BUYER", "DECISION_MAKER"], False)]),
    "a5": ("retail", [("Analyst", ["USER"], True), ("Analyst", ["USER"], True)]),
}


def build(api: Api) -> None:
    define(api, "vip", when={"trait": "level", "op": "eq", "value": "vip"})
    n = 0
    for account_id, (industry, contacts) in ACCOUNTS.items():
        api(UPSERT, {"i": {"id": account_id, "name": account_id.upper(), "industry": industry}})
        for title, roles, vip in contacts:
            n += 1
            api.ingest(
                {
                    "eventId": f"c{n}",
                    "source": "crm",
                    "identifiers": [{"type": "crm_id", "value": f"C{n}"}],
                    "traits": {"level": "vip" if vip else "normal"},
                }
            )
            one_id = api.one_id("crm_id", f"C{n}")
            api(LINK, {"a": account_id, "o": one_id, "t": title, "r": roles})


def found(api: Api, where: Any) -> list[str]:
    page = api(FIND, {"w": where, "first": 100})["accounts"]
    ids = [e["node"]["id"] for e in page["edges"]]
    assert page["totalCount"] == len(ids)
    return ids


def test_accounts_by_fields_contacts_and_completeness(tagged: Api) -> None:
    build(tagged)
    manufacturing = {"field": "industry", "op": "eq", "value": "manufacturing"}
    no_decision_maker = {
        "contacts": {"field": "roles", "op": "contains", "value": "DECISION_MAKER"},
        "quantifier": "none",
    }
    assert found(tagged, manufacturing) == ["a1", "a2", "a3"]
    assert found(tagged, {"all": [manufacturing, no_decision_maker]}) == ["a2", "a3"]
    vip = {"tag": "vip", "op": "has"}
    assert found(tagged, {"contacts": vip, "quantifier": "any"}) == ["a1", "a2", "a5"]
    assert found(tagged, {"contacts": vip, "quantifier": "all"}) == ["a5"]  # a3 has none
    assert found(tagged, {"contacts": vip, "quantifier": "none"}) == ["a3", "a4"]
    vip_champion = {
        "contacts": {"all": [vip, {"field": "roles", "op": "contains", "value": "CHAMPION"}]}
    }
    assert found(tagged, vip_champion) == ["a2"]
    # The default template weighs DECISION_MAKER 3, ECONOMIC_BUYER 3, CHAMPION 2,
    # INFLUENCER (2 wanted) 1 and USER 1, out of 10.
    expected = {"a1": 0.4, "a2": 0.3, "a3": 0.0, "a4": 0.6, "a5": 0.1}
    half = {"account": "completeness", "op": "lt", "value": 0.5}
    assert found(tagged, half) == sorted(a for a, c in expected.items() if c < 0.5)
    assert found(tagged, {"not": half}) == ["a4"]
    pages = tagged(FIND, {"w": manufacturing, "first": 2})["accounts"]
    assert [e["node"]["id"] for e in pages["edges"]] == ["a1", "a2"]
    after = pages["pageInfo"]["endCursor"]
    rest = tagged(FIND, {"w": manufacturing, "first": 2, "after": after})["accounts"]
    assert [e["node"]["id"] for e in rest["edges"]] == ["a3"]
    assert rest["totalCount"] == 3 and not rest["pageInfo"]["hasNextPage"]


def test_bad_account_conditions_name_their_part(tagged: Api) -> None:
    build(tagged)
    cases = [
        ({"field": "title", "op": "eq", "value": "CEO"}, "$.where"),
        ({"contacts": {"tag": "nope", "op": "has"}}, "$.where.contacts"),
        (
            {"contacts": {"field": "roles", "op": "contains", "value": "X"}, "quantifier": "most"},
            "$.where.quantifier",
        ),
        ({"account": "completeness", "op": "lt", "value": "half"}, "$.where.value"),
        (
            {"account": "completeness", "op": "lt", "value": 0.5, "template": "nope"},
            "$.where.template",
        ),
        ({"all": []}, "$.where.all"),
    ]
    for where, path in cases:
        error = tagged.errors(FIND, {"w": where})[0]
        assert error["extensions"]["code"] == "INVALID_RULE", where
        assert error["message"].startswith(path + ":"), (where, error["message"])


SEGMENT = """query($id: ID!) { accountSegment(id: $id) {
  id name where accounts(first: 100) { totalCount edges { node { id } } } } }"""
DEFINE = """mutation($i: AccountSegmentInput!) { defineAccountSegment(input: $i) { id } }"""


def test_a_saved_account_segment_follows_its_accounts_and_contacts(tagged: Api) -> None:
    build(tagged)
    where = {
        "all": [
            {"field": "industry", "op": "eq", "value": "manufacturing"},
            {
                "contacts": {"field": "roles", "op": "contains", "value": "DECISION_MAKER"},
                "quantifier": "none",
            },
        ]
    }
    given = {"id": "no-dm", "name": "Manufacturers without a decision maker", "where": where}
    assert tagged(DEFINE, {"i": given})["defineAccountSegment"]["id"] == "no-dm"

    def members() -> list[str]:
        found = tagged(SEGMENT, {"id": "no-dm"})["accountSegment"]["accounts"]
        ids = [e["node"]["id"] for e in found["edges"]]
        assert found["totalCount"] == len(ids)
        return ids

    assert members() == ["a2", "a3"]
    # a2's champion becomes its decision maker: a2 leaves at once.
    champion = tagged.one_id("crm_id", "C4")
    tagged(
        "mutation($a: ID!, $o: ID!, $r: [String!]!) {"
        " setContactRoles(accountId: $a, oneId: $o, roles: $r) { oneId } }",
        {"a": "a2", "o": champion, "r": ["CHAMPION", "DECISION_MAKER"]},
    )
    assert members() == ["a3"]
    listed = tagged("{ accountSegments { id name } }")["accountSegments"]
    assert listed == [{"id": "no-dm", "name": "Manufacturers without a decision maker"}]
    bad = {"id": "bad", "name": "Bad", "where": {"contacts": {"tag": "nope", "op": "has"}}}
    error = tagged.errors(DEFINE, {"i": bad})[0]
    assert error["extensions"]["code"] == "INVALID_RULE"
    assert tagged(SEGMENT, {"id": "bad"})["accountSegment"] is None  # nothing written
    deleted = tagged('mutation { deleteAccountSegment(id: "no-dm") { id } }')
    assert deleted["deleteAccountSegment"]["id"] == "no-dm"
    error = tagged.errors('mutation { deleteAccountSegment(id: "no-dm") { id } }')[0]
    assert error["extensions"]["code"] == "NOT_FOUND"


def test_a_where_on_industry_or_region_meets_the_same_accounts_with_a_filter_or_without(
    api: Api,
) -> None:
    places = {"b1": ("Retail", "CN-East"), "b2": ("Retail", "CN-West"), "b3": ("Energy", "CN-East")}
    for account_id, (industry, region) in places.items():
        api(
            UPSERT,
            {"i": {"id": account_id, "name": account_id, "industry": industry, "region": region}},
        )
    api(UPSERT, {"i": {"id": "b4", "name": "b4"}})
    filtered = """query($w: JSON, $f: AccountFilter) {
      accounts(where: $w, filter: $f, first: 100) { totalCount edges { node { id } } } }"""

    def met(where: Any, given: dict[str, str] | None = None) -> list[str]:
        page = api(filtered, {"w": where, "f": given})["accounts"]
        ids = [e["node"]["id"] for e in page["edges"]]
        assert page["totalCount"] == len(ids)
        return ids

    def each(industry: str | None = None, region: str | None = None) -> list[str]:
        """Worked out here: the accounts with that industry and region."""
        return [
            a
            for a, (i, r) in {**places, "b4": (None, None)}.items()
            if industry in (None, i) and region in (None, r)
        ]

    retail = {"field": "industry", "op": "eq", "value": "Retail"}
    east = {"field": "region", "op": "eq", "value": "CN-East"}
    assert met(retail) == each(industry="Retail")
    assert met({"all": [retail, east]}) == each("Retail", "CN-East")
    assert met(retail, {"region": "CN-East"}) == each("Retail", "CN-East")
    assert met(retail, {"industry": "Energy"}) == []  # the filter and the condition disagree
    assert met({"any": [retail, east]}) == ["b1", "b2", "b3"]
    assert met({"not": retail}) == ["b3", "b4"]
    assert met({"field": "industry", "op": "eq", "value": "retail"}) == []  # equal strings only
