"""Accounts on both stores, through the core's account book: records, links, rules, merges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.accounts.book import AccountInput
from graph.accounts.models import AccountFilter
from graph.config import load_config
from graph.errors import AccountCycle, BadUserInput, NotFound, ReportingCycle, UnknownRole
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from graph.store.protocol import GraphStore
from tests.conftest import STORES, empty_neo4j


@pytest.fixture(params=STORES)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | Path]]:
    """Where a store lives, so a test can close it and open it again."""
    if request.param == "embedded":
        yield "embedded", tmp_path / "store"
    else:
        uri = request.getfixturevalue("neo4j_uri")
        empty_neo4j(uri)
        yield "neo4j", uri


def open_graph(where: tuple[str, str | Path]) -> IdentityGraph:
    kind, place = where
    store: GraphStore = EmbeddedStore(place) if kind == "embedded" else Neo4jStore(str(place))
    return IdentityGraph(load_config(), store)


@pytest.fixture
def graph(opened: tuple[str, str | Path]) -> Iterator[IdentityGraph]:
    g = open_graph(opened)
    yield g
    g.close()


def person(graph: IdentityGraph, event_id: str, *ids: tuple[str, str]) -> str:
    (result,) = graph.ingest(
        [EventInput("crm", [IdentifierInput(t, v) for t, v in ids], event_id=event_id)]
    )
    assert result.one_id is not None
    return result.one_id


def acme(graph: IdentityGraph, **fields: object) -> None:
    graph.accounts.upsert_account(
        AccountInput("crm-1", name="Acme", domains=["www.ACME.com", "acme.com.cn"], **fields),  # type: ignore[arg-type]
        "upsertAccount",
    )


def test_an_account_is_created_updated_and_recorded(graph: IdentityGraph) -> None:
    acme(graph, industry="Manufacturing")
    book = graph.accounts
    found = book.account("crm-1")
    assert found is not None
    assert found.domains == ("acme.com", "acme.com.cn")
    created = found.created_at
    book.upsert_account(AccountInput("crm-1", region="CN-East"), "upsertAccount")
    again = book.account("crm-1")
    assert again is not None
    assert (again.name, again.industry, again.region) == ("Acme", "Manufacturing", "CN-East")
    assert again.created_at == created and again.updated_at >= created
    changes = [(h.change, h.via) for h in book.history("crm-1")]
    assert changes == [("ACCOUNT_CREATED", "upsertAccount"), ("ACCOUNT_UPDATED", "upsertAccount")]
    assert book.history("crm-1")[1].details == {"region": {"from": None, "to": "CN-East"}}
    assert book.store.account_ids_by_domain(["acme.com.cn"]) == {"acme.com.cn": ["crm-1"]}


@pytest.mark.parametrize(
    "given",
    [
        AccountInput(" "),
        AccountInput("crm-2", domains=["acme"]),
        AccountInput("crm-2", domains=["https://acme.com"]),
        AccountInput("crm-2", domains=["com.cn"]),
    ],
)
def test_bad_account_input_writes_nothing(graph: IdentityGraph, given: AccountInput) -> None:
    with pytest.raises(BadUserInput):
        graph.accounts.upsert_account(given, "upsertAccount")
    assert graph.accounts.page(AccountFilter(), None, 10) == ([], 0)


def test_subsidiaries_to_any_depth_and_cycles_refused(graph: IdentityGraph) -> None:
    book = graph.accounts
    book.upsert_account(AccountInput("group", name="Group"), "m")
    book.upsert_account(AccountInput("east", name="East", parent_id="group"), "m")
    book.upsert_account(AccountInput("sh", name="Shanghai", parent_id="east"), "m")
    assert book.subsidiaries(["group", "east"]) == {"group": ["east"], "east": ["sh"]}
    for parent in ("sh", "east"):
        with pytest.raises(AccountCycle) as caught:
            book.upsert_account(AccountInput("group", parent_id=parent), "m")
        assert caught.value.code == "ACCOUNT_CYCLE"
    with pytest.raises(AccountCycle):
        book.upsert_account(AccountInput("group", parent_id="group"), "m")
    with pytest.raises(NotFound):
        book.upsert_account(AccountInput("new", parent_id="nowhere"), "m")
    group = book.account("group")
    assert group is not None and group.parent_id is None
    assert book.account("new") is None
    book.upsert_account(AccountInput("sh", parent_id=None, parent_given=True), "m")
    assert book.subsidiaries(["east"]) == {}


def test_one_person_in_two_accounts_with_different_roles(graph: IdentityGraph) -> None:
    book = graph.accounts
    li = person(graph, "e1", ("email", "li@acme.com"), ("phone", "13800138001"))
    acme(graph)
    book.upsert_account(AccountInput("crm-9", name="Globex"), "m")
    book.link_contact("crm-1", li, "CTO", "IT", ["DECISION_MAKER"], "linkContact")
    book.link_contact("crm-9", li, "顾问", None, ["INFLUENCER"], "linkContact")
    mine = {c.account_id: c for c in book.accounts_of(li, [], [])}
    assert mine["crm-1"].roles[0].role == "DECISION_MAKER"
    assert mine["crm-1"].seniority.value == "CXO"
    assert mine["crm-9"].roles[0].role == "INFLUENCER"
    assert mine["crm-9"].seniority.value == "STAFF"
    with pytest.raises(UnknownRole):
        book.set_roles("crm-1", li, ["DECISION_MAKER", "DECIDER"], "setContactRoles")
    with pytest.raises(NotFound):
        book.link_contact("crm-1", "no-such-one-id", None, None, None, "linkContact")
    with pytest.raises(NotFound):
        book.link_contact("crm-404", li, None, None, None, "linkContact")
    contact = book.contacts([book.account("crm-1")])["crm-1"]  # type: ignore[list-item]
    assert [r.role for r in contact[0].roles] == ["DECISION_MAKER"]


def test_decision_unit_confirm_and_dismiss_survive_a_restart(
    opened: tuple[str, str | Path],
) -> None:
    graph = open_graph(opened)
    book = graph.accounts
    acme(graph)
    ceo = person(graph, "e1", ("email", "ceo@acme.com"))
    cfo = person(graph, "e2", ("email", "cfo@acme.com"))
    eng = person(graph, "e3", ("email", "eng@acme.com"))
    book.link_contact("crm-1", ceo, "首席执行官", None, None, "linkContact")
    book.link_contact("crm-1", cfo, "CFO", "Finance", None, "linkContact")
    book.link_contact("crm-1", eng, "Software Engineer", "R&D", ["USER"], "linkContact")
    account = book.account("crm-1")
    assert account is not None
    unit = book.decision_unit(account)
    assert unit.template == "default"
    assert {r.role: r.completeness for r in unit.roles}["USER"] == 1.0
    assert set(unit.missing_roles) == {"DECISION_MAKER", "ECONOMIC_BUYER", "CHAMPION", "INFLUENCER"}
    suggested = {(s.one_id, s.role) for s in unit.suggestions}
    assert (ceo, "DECISION_MAKER") in suggested and (cfo, "ECONOMIC_BUYER") in suggested
    book.confirm_suggestion("crm-1", ceo, "DECISION_MAKER", "confirmSuggestion")
    book.dismiss_suggestion("crm-1", cfo, "DECISION_MAKER", "dismissSuggestion")
    graph.close()

    graph = open_graph(opened)
    book = graph.accounts
    account = book.account("crm-1")
    assert account is not None
    unit = book.decision_unit(account)
    members = {r.role: [m.one_id for m in r.members] for r in unit.roles}
    assert members["DECISION_MAKER"] == [ceo]
    suggested = {(s.one_id, s.role) for s in unit.suggestions}
    assert (cfo, "DECISION_MAKER") not in suggested
    assert (cfo, "ECONOMIC_BUYER") in suggested
    # weights: DECISION_MAKER 3 and USER 1 complete, GATEKEEPER 0.5 needs nobody
    assert unit.completeness == pytest.approx((3 + 1 + 0.5) / 10.5)
    graph.close()


def test_links_roles_and_dismissals_follow_a_merge(graph: IdentityGraph) -> None:
    book = graph.accounts
    acme(graph)
    a = person(graph, "e1", ("email", "wang@acme.com"))
    b = person(graph, "e2", ("phone", "13900139002"))
    book.link_contact("crm-1", a, "采购经理", "采购部", ["INFLUENCER"], "linkContact")
    book.link_contact("crm-1", b, None, None, ["CHAMPION"], "linkContact")
    book.dismiss_suggestion("crm-1", b, "GATEKEEPER", "dismissSuggestion")
    merged = person(graph, "e3", ("email", "wang@acme.com"), ("phone", "13900139002"))
    account = book.account("crm-1")
    assert account is not None
    (contact,) = book.contacts([account])["crm-1"]
    assert contact.one_id == merged
    assert sorted(r.role for r in contact.roles) == ["CHAMPION", "INFLUENCER"]
    assert contact.title == "采购经理"
    unit = book.decision_unit(account)
    assert (merged, "GATEKEEPER") not in {(s.one_id, s.role) for s in unit.suggestions}
    # an alias OneID is accepted where a OneID is
    alias = b if merged == a else a
    book.set_roles("crm-1", alias, ["CHAMPION"], "setContactRoles")
    (contact,) = book.contacts([book.account("crm-1")])["crm-1"]  # type: ignore[list-item]
    assert [r.role for r in contact.roles] == ["CHAMPION"]


def test_a_manual_link_stays_with_the_one_id_on_a_split(graph: IdentityGraph) -> None:
    book = graph.accounts
    acme(graph)
    x = person(graph, "e1", ("cookie_id", "ck-zzzzzz1"), ("email", "x@acme.com"))
    y = person(graph, "e2", ("phone", "13700137003"))
    book.link_contact("crm-1", y, "Director", None, ["INFLUENCER"], "linkContact")
    bridge = person(graph, "e3", ("cookie_id", "ck-zzzzzz1"), ("phone", "13700137003"))
    assert bridge in (x, y)
    merged = book.contacts([book.account("crm-1")])["crm-1"]  # type: ignore[list-item]
    assert [(c.one_id, sorted(r.role for r in c.roles)) for c in merged] == [
        (bridge, ["INFLUENCER"])  # x's email linked x by domain (crm is verified): one contact
    ]
    graph.remove_identifier(IdentifierInput("cookie_id", "ck-zzzzzz1"))
    after = book.contacts([book.account("crm-1")])["crm-1"]  # type: ignore[list-item]
    by_one_id = {c.one_id: c for c in after}
    assert set(by_one_id) == {x, y}
    # Y's OneID came back to Y's part with its manual link; x's link followed its email.
    assert by_one_id[y].source == "MANUAL" and [r.role for r in by_one_id[y].roles] == [
        "INFLUENCER"
    ]
    assert by_one_id[x].source == "DOMAIN" and by_one_id[x].roles == ()
    x_keys = [("email", "x@acme.com")]
    assert [(c.account_id, c.source) for c in book.accounts_of(x, [], x_keys)] == [
        ("crm-1", "DOMAIN")
    ]


def test_changing_other_contacts_between_a_merge_and_a_split_keeps_links_apart(
    graph: IdentityGraph,
) -> None:
    """A write to one contact unites that contact's links only; a later split still parts them."""
    book = graph.accounts
    acme(graph)
    x = person(graph, "e1", ("cookie_id", "ck-zzzzzz1"), ("email", "x@acme.com"))
    y = person(graph, "e2", ("phone", "13700137003"))
    z = person(graph, "e4", ("phone", "13700137004"))
    book.link_contact("crm-1", y, "Director", None, ["INFLUENCER"], "linkContact")
    book.link_contact("crm-1", z, "CTO", None, None, "linkContact")
    person(graph, "e3", ("cookie_id", "ck-zzzzzz1"), ("phone", "13700137003"))
    book.set_roles("crm-1", z, ["DECISION_MAKER"], "setContactRoles")
    book.set_reports_to("crm-1", z, None, "setReportsTo")
    book.unlink_contact("crm-1", z, "unlinkContact")
    graph.remove_identifier(IdentifierInput("cookie_id", "ck-zzzzzz1"))
    after = {c.one_id: c for c in book.contacts([book.account("crm-1")])["crm-1"]}  # type: ignore[list-item]
    assert set(after) == {x, y}
    assert (after[y].source, [r.role for r in after[y].roles]) == ("MANUAL", ["INFLUENCER"])
    assert (after[x].source, after[x].roles) == ("DOMAIN", ())


def test_reporting_lines_and_cycles(graph: IdentityGraph) -> None:
    book = graph.accounts
    acme(graph)
    boss = person(graph, "e1", ("email", "boss@acme.com"))
    mid = person(graph, "e2", ("email", "mid@acme.com"))
    low = person(graph, "e3", ("email", "low@acme.com"))
    outsider = person(graph, "e4", ("email", "out@globex.com"))
    for one_id in (boss, mid, low):
        book.link_contact("crm-1", one_id, None, None, None, "linkContact")
    book.set_reports_to("crm-1", mid, boss, "setReportsTo")
    book.set_reports_to("crm-1", low, mid, "setReportsTo")
    with pytest.raises(ReportingCycle) as caught:
        book.set_reports_to("crm-1", boss, low, "setReportsTo")
    assert caught.value.code == "REPORTING_CYCLE"
    with pytest.raises(ReportingCycle):
        book.set_reports_to("crm-1", boss, boss, "setReportsTo")
    with pytest.raises(NotFound):
        book.set_reports_to("crm-1", low, outsider, "setReportsTo")
    lines = {
        c.one_id: c.reports_to
        for c in book.contacts([book.account("crm-1")])["crm-1"]  # type: ignore[list-item]
    }
    assert lines == {boss: None, mid: boss, low: mid}
    book.unlink_contact("crm-1", mid, "unlinkContact")
    lines = {
        c.one_id: c.reports_to
        for c in book.contacts([book.account("crm-1")])["crm-1"]  # type: ignore[list-item]
    }
    assert lines == {boss: None, low: None}


def test_pages_and_filters(graph: IdentityGraph) -> None:
    book = graph.accounts
    for i, (name, industry, region) in enumerate(
        [
            ("Acme East", "Retail", "CN-East"),
            ("acme West", "Retail", "CN-West"),
            ("Globex", "Energy", "CN-East"),
            ("Acmé", None, None),
        ]
    ):
        book.upsert_account(
            AccountInput(
                f"a{i}", name=name, industry=industry, region=region, domains=[f"d{i}.com"]
            ),
            "m",
        )
    book.upsert_account(AccountInput("a9", name="Acme Sub", parent_id="a0"), "m")
    page, total = book.page(AccountFilter(name_prefix="ACME"), None, 2)
    assert total == 3 and [a.id for a in page] == ["a0", "a1"]
    page, total = book.page(AccountFilter(name_prefix="acme"), "a1", 2)
    assert [a.id for a in page] == ["a9"]
    assert [a.id for a in book.page(AccountFilter(industry="Retail"), None, 10)[0]] == ["a0", "a1"]
    assert [a.id for a in book.page(AccountFilter(domain="d2.com"), None, 10)[0]] == ["a2"]
    assert [a.id for a in book.page(AccountFilter(parent_id="a0"), None, 10)[0]] == ["a9"]
    assert [a.id for a in book.page(AccountFilter(region="CN-East"), None, 10)[0]] == ["a0", "a2"]
    both = AccountFilter(industry="Retail", region="CN-East", name_prefix="acme")
    assert book.page(both, None, 10)[1] == 1
    page, total = book.page(AccountFilter(industry="Retail"), "a0", 10)
    assert total == 2 and [a.id for a in page] == ["a1"]  # the filter's count
    # The same pages without their counts, as a reader going through all of them takes them.
    assert [a.id for a in book.in_order(AccountFilter(industry="Retail"), "a0", 10)] == ["a1"]
    assert [a.id for a in book.in_order(AccountFilter(), "a1", 2)] == ["a2", "a3"]
    assert [a.id for a in book.in_order(both, None, 10)] == ["a0"]
    book.delete_account("a0", "deleteAccount")
    assert book.account("a0") is None
    sub = book.account("a9")
    assert sub is not None and sub.parent_id is None
    with pytest.raises(NotFound):
        book.delete_account("a0", "deleteAccount")
