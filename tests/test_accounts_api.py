"""Accounts over GraphQL on both stores: the contract frontend apps read, and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, event

ACCOUNT = """
query($id: ID!) {
  account(id: $id) {
    id name domains industry parent { id } subsidiaries { id }
    contacts(first: 10) { totalCount edges { node { oneId title seniority roles source
      reportsTo { oneId } profile { oneId traitValues } } } }
    decisionUnit { template completeness missingRoles
      roles { role required weight completeness members { contact { oneId } source } }
      suggestions { contact { oneId title } role confidence reason } }
    orgChart { level contact { oneId } manager { oneId } directReports { oneId } }
    history { change via oneId }
  }
}
"""

UPSERT = "mutation($i: AccountInput!) { upsertAccount(input: $i) { id domains parent { id } } }"
LINK = """mutation($a: ID!, $o: ID!, $t: String, $d: String, $r: [String!]) {
  linkContact(accountId: $a, oneId: $o, title: $t, department: $d, roles: $r) {
    oneId seniority roles account { id } } }"""
REPORTS = """mutation($a: ID!, $o: ID!, $m: ID) {
  setReportsTo(accountId: $a, oneId: $o, managerOneId: $m) { oneId reportsTo { oneId } } }"""


def customer(api: Api, event_id: str, email: str, name: str, source: str = "crm") -> str:
    result = api.ingest(event(event_id, source, ("email", email), name=name))["results"][0]
    assert result["status"] == "ACCEPTED"
    one_id: str = result["oneId"]
    return one_id


def codes(api: Api, query: str, variables: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in api.errors(query, variables)]


def test_an_account_its_decision_unit_and_org_chart(api: Api) -> None:
    api(UPSERT, {"i": {"id": "crm-group", "name": "Acme Group"}})
    made = api(
        UPSERT,
        {
            "i": {
                "id": "crm-1",
                "name": "Acme China",
                "domains": ["www.acme.com.cn"],
                "industry": "Manufacturing",
                "parentId": "crm-group",
            }
        },
    )["upsertAccount"]
    assert made == {"id": "crm-1", "domains": ["acme.com.cn"], "parent": {"id": "crm-group"}}
    ceo = customer(api, "e1", "zhang@acme.com.cn", "张伟")
    cfo = customer(api, "e2", "li@acme.com.cn", "李娜")
    eng = customer(api, "e3", "wang@sh.acme.com.cn", "王强")
    linked = api(LINK, {"a": "crm-1", "o": ceo, "t": "总经理", "r": ["DECISION_MAKER"]})
    assert linked["linkContact"]["seniority"] == "CXO"
    api(LINK, {"a": "crm-1", "o": cfo, "t": "财务总监", "d": "财务部"})
    api(LINK, {"a": "crm-1", "o": eng, "t": "高级工程师", "d": "研发", "r": ["USER"]})
    api(REPORTS, {"a": "crm-1", "o": cfo, "m": ceo})
    api(REPORTS, {"a": "crm-1", "o": eng, "m": cfo})

    account = api(ACCOUNT, {"id": "crm-1"})["account"]
    assert account["parent"] == {"id": "crm-group"}
    contacts = {e["node"]["oneId"]: e["node"] for e in account["contacts"]["edges"]}
    assert account["contacts"]["totalCount"] == 3
    assert contacts[cfo]["seniority"] == "DIRECTOR"
    assert contacts[cfo]["reportsTo"] == {"oneId": ceo}
    assert contacts[ceo]["profile"]["traitValues"] == {"name": "张伟"}
    unit = account["decisionUnit"]
    assert unit["template"] == "default"
    roles = {r["role"]: r for r in unit["roles"]}
    assert roles["DECISION_MAKER"]["members"] == [{"contact": {"oneId": ceo}, "source": "MANUAL"}]
    assert "ECONOMIC_BUYER" in unit["missingRoles"]
    assert unit["suggestions"][0]["contact"]["oneId"] == cfo
    assert unit["suggestions"][0]["role"] == "ECONOMIC_BUYER"
    chart = [(o["level"], o["contact"]["oneId"]) for o in account["orgChart"]]
    assert chart == [(0, ceo), (1, cfo), (2, eng)]
    assert [h["change"] for h in account["history"]][:2] == ["ACCOUNT_CREATED", "CONTACT_LINKED"]
    group = api(ACCOUNT, {"id": "crm-group"})["account"]
    assert group["subsidiaries"] == [{"id": "crm-1"}]


def test_profile_accounts_and_domain_suggestions(api: Api) -> None:
    api(UPSERT, {"i": {"id": "crm-1", "name": "Acme", "domains": ["acme.com"]}})
    api(UPSERT, {"i": {"id": "crm-2", "name": "Not Acme", "domains": ["notacme.com"]}})
    li = customer(api, "e1", "li@acme.com", "Li", source="web_form")
    web = customer(api, "e2", "wu@mail.acme.com", "Wu", source="web_form")
    free = customer(api, "e3", "li@qq.com", "Li")
    api(LINK, {"a": "crm-2", "o": li, "t": "Consultant"})
    query = """query($o: ID!) { profile(oneId: $o) { accounts { account { id } title }
      accountSuggestions { account { id } strength reason } } }"""
    mine = api(query, {"o": li})["profile"]
    assert mine["accounts"] == [{"account": {"id": "crm-2"}, "title": "Consultant"}]
    (match,) = mine["accountSuggestions"]
    assert match["account"] == {"id": "crm-1"} and match["strength"] == "WEAK"
    assert "acme.com" in match["reason"]
    (weak,) = api(query, {"o": web})["profile"]["accountSuggestions"]
    assert weak["strength"] == "WEAK"
    assert api(query, {"o": free})["profile"]["accountSuggestions"] == []


def test_accounts_page_with_a_filter(api: Api) -> None:
    for i in range(5):
        api(UPSERT, {"i": {"id": f"a{i}", "name": f"Acme {i}", "region": "CN" if i % 2 else "EU"}})
    query = """query($f: AccountFilter, $after: String) {
      accounts(filter: $f, first: 2, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }"""
    page = api(query, {"f": {"namePrefix": "acme", "region": "EU"}})["accounts"]
    assert page["totalCount"] == 3
    assert [e["node"]["id"] for e in page["edges"]] == ["a0", "a2"]
    assert page["pageInfo"]["hasNextPage"]
    rest = api(query, {"f": {"region": "EU"}, "after": page["pageInfo"]["endCursor"]})["accounts"]
    assert [e["node"]["id"] for e in rest["edges"]] == ["a4"]
    assert not rest["pageInfo"]["hasNextPage"]
    assert codes(api, query, {"after": "%%%"}) == ["BAD_USER_INPUT"]


def test_refused_mutations_have_their_code_and_write_nothing(api: Api) -> None:
    api(UPSERT, {"i": {"id": "p", "name": "Parent"}})
    api(UPSERT, {"i": {"id": "c", "name": "Child", "parentId": "p"}})
    boss = customer(api, "e1", "boss@acme.com", "Boss")
    mate = customer(api, "e2", "mate@acme.com", "Mate")
    api(LINK, {"a": "c", "o": boss})
    api(LINK, {"a": "c", "o": mate})
    api(REPORTS, {"a": "c", "o": mate, "m": boss})
    before = api(ACCOUNT, {"id": "c"})["account"]
    assert codes(api, UPSERT, {"i": {"id": "p", "parentId": "c"}}) == ["ACCOUNT_CYCLE"]
    assert codes(api, UPSERT, {"i": {"id": " "}}) == ["BAD_USER_INPUT"]
    assert codes(api, UPSERT, {"i": {"id": "x", "domains": ["not a domain"]}}) == ["BAD_USER_INPUT"]
    assert codes(api, UPSERT, {"i": {"id": "x", "parentId": "nowhere"}}) == ["NOT_FOUND"]
    assert codes(api, LINK, {"a": "c", "o": boss, "r": ["DECIDER"]}) == ["UNKNOWN_ROLE"]
    assert codes(api, LINK, {"a": "c", "o": "no-such-oneid"}) == ["NOT_FOUND"]
    assert codes(api, LINK, {"a": "nowhere", "o": boss}) == ["NOT_FOUND"]
    assert codes(api, REPORTS, {"a": "c", "o": boss, "m": mate}) == ["REPORTING_CYCLE"]
    template = """mutation($i: BuyingGroupTemplateInput!) {
      upsertBuyingGroupTemplate(input: $i) { id roles { role required weight } } }"""
    bad = {"id": "t", "roles": [{"role": "buyer", "required": 1, "weight": 1}]}
    assert codes(api, template, {"i": bad}) == ["BAD_USER_INPUT"]
    assert api(ACCOUNT, {"id": "c"})["account"] == before
    assert api('{ account(id: "x") { id } }')["account"] is None


def test_custom_templates_confirm_and_dismiss(api: Api) -> None:
    template = """mutation($i: BuyingGroupTemplateInput!) {
      upsertBuyingGroupTemplate(input: $i) { id roles { role required weight } } }"""
    saved = api(
        template,
        {
            "i": {
                "id": "security",
                "name": "Security deal",
                "roles": [
                    {
                        "role": "CISO",
                        "required": 1,
                        "weight": 2,
                        "rules": [{"titleKeywords": ["ciso", "信息安全"], "confidence": 0.9}],
                    },
                    {
                        "role": "DECISION_MAKER",
                        "required": 1,
                        "weight": 3,
                        "rules": [{"seniority": ["CXO"], "confidence": 0.7}],
                    },
                ],
            }
        },
    )["upsertBuyingGroupTemplate"]
    assert saved["id"] == "security"
    api(UPSERT, {"i": {"id": "crm-1", "name": "Acme"}})
    ciso = customer(api, "e1", "sec@acme.com", "Sec")
    api(LINK, {"a": "crm-1", "o": ciso, "t": "CISO"})
    unit_query = """query { account(id: "crm-1") { decisionUnit(template: "security") {
      completeness missingRoles suggestions { contact { oneId } role confidence } } } }"""
    unit = api(unit_query)["account"]["decisionUnit"]
    assert {(s["role"], s["confidence"]) for s in unit["suggestions"]} == {
        ("CISO", 0.9),
        ("DECISION_MAKER", 0.7),
    }
    confirm = """mutation($a: ID!, $o: ID!, $r: String!) {
      confirmSuggestion(accountId: $a, oneId: $o, role: $r) { roles source } }"""
    dismiss = """mutation($a: ID!, $o: ID!, $r: String!) {
      dismissSuggestion(accountId: $a, oneId: $o, role: $r) { oneId roles } }"""
    assert api(confirm, {"a": "crm-1", "o": ciso, "r": "CISO"})["confirmSuggestion"]["roles"] == [
        "CISO"
    ]
    api(dismiss, {"a": "crm-1", "o": ciso, "r": "DECISION_MAKER"})
    unit = api(unit_query)["account"]["decisionUnit"]
    assert unit["suggestions"] == []
    assert unit["missingRoles"] == ["DECISION_MAKER"]
    assert unit["completeness"] == pytest.approx(2 / 5)
    assert codes(api, confirm, {"a": "crm-1", "o": ciso, "r": "NOPE"}) == ["UNKNOWN_ROLE"]
    missing = '{ account(id: "crm-1") { decisionUnit(template: "nope") { completeness } } }'
    assert [e["extensions"]["code"] for e in api.errors(missing)] == ["NOT_FOUND"]


def account_event(event_id: str, email: str, source: str = "crm", **account: str) -> dict[str, Any]:
    body = event(event_id, source, ("email", email))
    body["account"] = account
    return body


def test_events_link_their_customers_to_accounts_once(api: Api) -> None:
    first = api.ingest(
        account_event(
            "e1",
            "li@acme.com",
            id="crm-1",
            name="Acme",
            domain="acme.com",
            title="采购总监",
            department="采购部",
        ),
        account_event("e2", "wu@globex.cn", domain="www.globex.cn", title="工程师"),
        account_event("e3", "bad@x.com", id="crm-3", domain="not a domain"),
        account_event("e4", "no@x.com"),
    )
    statuses = [(r["status"], r["errorCode"]) for r in first["results"]]
    assert statuses == [
        ("ACCEPTED", None),
        ("ACCEPTED", None),
        ("REJECTED", "INVALID_EVENT"),
        ("REJECTED", "INVALID_EVENT"),
    ]
    li = first["results"][0]["oneId"]
    account = api(ACCOUNT, {"id": "crm-1"})["account"]
    assert account["domains"] == ["acme.com"]
    (contact,) = [e["node"] for e in account["contacts"]["edges"]]
    assert (contact["oneId"], contact["title"], contact["seniority"], contact["source"]) == (
        li,
        "采购总监",
        "DIRECTOR",
        "EVENT",
    )
    globex = api(ACCOUNT, {"id": "domain:globex.cn"})["account"]
    assert globex["domains"] == ["globex.cn"]
    assert api(ACCOUNT, {"id": "crm-3"})["account"] is None  # the rejected event wrote nothing
    history = [(h["change"], h["via"]) for h in account["history"]]
    assert history == [("ACCOUNT_CREATED", "event e1"), ("CONTACT_LINKED", "event e1")]

    again = api.ingest(
        account_event(
            "e1",
            "li@acme.com",
            id="crm-1",
            name="Acme",
            domain="acme.com",
            title="采购总监",
            department="采购部",
        )
    )
    assert again["results"][0]["status"] == "DUPLICATE"
    assert api(ACCOUNT, {"id": "crm-1"})["account"] == account


def test_a_verified_email_links_by_domain_and_a_web_form_only_suggests(api: Api) -> None:
    api(UPSERT, {"i": {"id": "crm-1", "name": "Acme", "domains": ["acme.com.cn"]}})
    crm = customer(api, "e1", "zhao@sh.acme.com.cn", "Zhao", source="crm")
    web = customer(api, "e2", "qian@acme.com.cn", "Qian", source="web_form")
    free = customer(api, "e3", "sun@qq.com", "Sun", source="crm")
    account = api(ACCOUNT, {"id": "crm-1"})["account"]
    contacts = {e["node"]["oneId"]: e["node"] for e in account["contacts"]["edges"]}
    assert set(contacts) == {crm}
    assert contacts[crm]["source"] == "DOMAIN"
    query = """query($o: ID!) { profile(oneId: $o) { accounts { account { id } }
      accountSuggestions { account { id } strength } } }"""
    assert api(query, {"o": crm})["profile"]["accountSuggestions"] == []
    assert api(query, {"o": web})["profile"]["accountSuggestions"] == [
        {"account": {"id": "crm-1"}, "strength": "WEAK"}
    ]
    assert api(query, {"o": free})["profile"]["accounts"] == []


def test_domain_links_can_be_turned_off(make_api: Any) -> None:
    api = make_api("[accounts]\nlink_strong_matches = false\n")
    api(UPSERT, {"i": {"id": "crm-1", "name": "Acme", "domains": ["acme.com"]}})
    one_id = customer(api, "e1", "zhao@acme.com", "Zhao", source="crm")
    account = api(ACCOUNT, {"id": "crm-1"})["account"]
    assert account["contacts"]["totalCount"] == 0
    query = "query($o: ID!) { profile(oneId: $o) { accountSuggestions { strength } } }"
    assert api(query, {"o": one_id})["profile"]["accountSuggestions"] == [{"strength": "STRONG"}]


HISTORY = """query($o: ID!) { profile(oneId: $o) { oneId history { kind oneId others
  accountLinks { accountId account { id } change via oneId details } } } }"""


def test_merges_and_splits_show_the_account_links_they_moved(api: Api) -> None:
    api(UPSERT, {"i": {"id": "crm-1", "name": "Acme", "domains": ["acme.com"]}})
    x = customer(api, "e1", "x@acme.com", "X")  # crm is verified: linked by its domain
    y_ids = ("cookie_id", "ck-yyyyyy1"), ("phone", "13700137003")
    y = api.ingest(event("e2", "web", *y_ids))["results"][0]["oneId"]
    api(LINK, {"a": "crm-1", "o": y, "r": ["INFLUENCER"]})
    bridge = api.ingest(event("e3", "web", ("email", "x@acme.com"), ("phone", "13700137003")))
    merged = bridge["results"][0]["oneId"]
    absorbed = y if merged == x else x
    (merge,) = [h for h in api(HISTORY, {"o": merged})["profile"]["history"]]
    assert (merge["kind"], merge["oneId"], merge["others"]) == ("MERGE", merged, [absorbed])
    (moved,) = merge["accountLinks"]
    assert (moved["accountId"], moved["account"], moved["change"], moved["oneId"]) == (
        "crm-1",
        {"id": "crm-1"},
        "CONTACT_MERGED",
        merged,
    )
    assert moved["via"] == f"merge {merged}"
    assert (moved["details"]["from"], moved["details"]["to"]) == (absorbed, merged)
    history = api(ACCOUNT, {"id": "crm-1"})["account"]["history"]
    assert history[-1] == {"change": "CONTACT_MERGED", "via": f"merge {merged}", "oneId": merged}

    # Removing the phone splits them again: each link goes back where it came from.
    removed = api(
        'mutation { removeIdentifier(identifier: {type: "phone", value: "13700137003"}) {'
        " oneIds } }"
    )
    assert removed["removeIdentifier"]["oneIds"]
    contacts = api(ACCOUNT, {"id": "crm-1"})["account"]["contacts"]["edges"]
    by_source = {e["node"]["source"]: e["node"]["oneId"] for e in contacts}
    assert set(by_source) == {"DOMAIN", "MANUAL"} and by_source["DOMAIN"] != by_source["MANUAL"]
    assert by_source["MANUAL"] == y  # y's part got its OneID back, and its manual link
    history = api(HISTORY, {"o": y})["profile"]["history"]
    (split,) = [h for h in history if h["kind"] == "SPLIT"]
    assert [
        (m["change"], m["via"], m["details"]["from"], m["details"]["to"], m["details"]["roles"])
        for m in split["accountLinks"]
    ] == [("CONTACT_MOVED", f"split {merged}", merged, y, ["INFLUENCER"])]
    assert [h["accountLinks"] for h in history if h["kind"] == "MERGE"] == [[moved]]
