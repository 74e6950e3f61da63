"""An account page (50 contacts, decision unit, org chart, every profile) in three store reads.

A read here is a call into the store protocol (``GraphReads`` in a view,
or the ``AccountStore``): the store answers each in one round trip. The
embedded store's ``version`` is its in-memory generation, not a read, so it
is not counted. On Neo4j the Cypher statements the driver sends are counted
too, from its own log, as the round trips over the wire.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.config import load_config
from graph.identity_graph import IdentityGraph
from graph.store.embedded import EmbeddedStore
from graph.store.protocol import GraphStore
from service.app import create_app
from service.tag_jobs import TAG_THREAD
from tests.conftest import Api, event, make_settings

CONTACTS = 50
PAGE = """
query($id: ID!) {
  account(id: $id) {
    id name domains
    contacts(first: 50) { totalCount edges { node {
      oneId title seniority roles source since reportsTo { oneId }
      profile { oneId traitValues identifiers { type identifiers { value } } history { kind } }
    } } }
    decisionUnit { template completeness missingRoles
      roles { role required weight completeness
        members { confidence source contact { oneId profile { oneId } } } }
      suggestions { role confidence reason contact { oneId title } } }
    orgChart { level contact { oneId profile { oneId } } manager { oneId }
      directReports { oneId } }
  }
}
"""
TITLES = ["CEO", "采购总监", "VP Engineering", "IT经理", "Engineer", "工程师", "销售副总裁"]


class Counted:
    """Calls to one object's methods, each logged by name into ``calls``."""

    def __init__(self, inner: Any, calls: list[str], skip: frozenset[str]) -> None:
        self._inner, self._calls, self._skip = inner, calls, skip

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if not callable(found) or name in self._skip:
            return found

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            return found(*args, **kwargs)

        return counted


class CountingStore:
    """A store whose reads (in ``reading`` views, and of accounts) are listed as they are made."""

    def __init__(self, store: GraphStore) -> None:
        self.inner, self.calls = store, []
        free = frozenset({"version"}) if isinstance(store, EmbeddedStore) else frozenset()
        self._free = free
        self.account_store = Counted(store.account_store, self.calls, frozenset())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        with self.inner.reading() as view:
            yield Counted(view, self.calls, self._free)


class BoltStatements(logging.Handler):
    """Cypher statements the Neo4j driver sends for requests, from its debug log.

    The service's background tag work (woken by every ingest) shares the
    driver; its statements are not a request's and are left out.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sent: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if re.search(r"\bC: RUN\b", text) and record.threadName != TAG_THREAD:
            self.sent.append(text)

    def fewest(self, request: Callable[[], object], tries: int = 3) -> list[str]:
        """The statements of the try of ``request`` that sent fewest.

        A batch the background work commits meanwhile makes a read look again
        (it saw the commit marks move): that only ever adds statements, so the
        fewest is what the request costs.
        """
        found: list[list[str]] = []
        for _ in range(tries):
            self.sent.clear()
            request()
            found.append(list(self.sent))
        return min(found, key=len)


@pytest.fixture
def bolt() -> Iterator[BoltStatements]:
    handler = BoltStatements()
    logger = logging.getLogger("neo4j")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def seed(api: Api) -> list[str]:
    """An account with 50 contacts from CRM events, some roles and a reporting tree."""
    api(
        'mutation { upsertAccount(input: {id: "crm-1", name: "Acme",'
        ' domains: ["acme.com"]}) { id } }'
    )
    events = []
    for n in range(CONTACTS):
        body = event(f"e{n}", "crm", ("email", f"p{n}@acme.com"), ("phone", f"1380013{n:04d}"))
        body["traits"] = {"name": f"Person {n}"}
        body["account"] = {"id": "crm-1", "title": TITLES[n % len(TITLES)]}
        events.append(body)
    results = api.ingest(*events)["results"]
    one_ids = [r["oneId"] for r in results]
    assert all(r["status"] == "ACCEPTED" for r in results) and len(set(one_ids)) == CONTACTS
    roles = 'mutation($o: ID!, $r: [String!]!) { setContactRoles(accountId: "crm-1",'
    roles += " oneId: $o, roles: $r) { oneId } }"
    api(roles, {"o": one_ids[0], "r": ["DECISION_MAKER"]})
    api(roles, {"o": one_ids[1], "r": ["CHAMPION", "INFLUENCER"]})
    line = 'mutation($o: ID!, $m: ID) { setReportsTo(accountId: "crm-1", oneId: $o,'
    line += " managerOneId: $m) { oneId } }"
    for n in range(1, CONTACTS):
        api(line, {"o": one_ids[n], "m": one_ids[(n - 1) // 7]})
    return one_ids


@pytest.fixture
def counted(store: GraphStore, tmp_path: Path) -> Iterator[tuple[Api, CountingStore]]:
    counting = CountingStore(store)
    settings = make_settings(tmp_path / "data")
    graph = IdentityGraph(load_config(None), counting)  # type: ignore[arg-type]
    with TestClient(create_app(settings, graph=graph)) as client:
        yield Api(client), counting


def test_an_account_page_takes_three_store_reads(
    counted: tuple[Api, CountingStore], bolt: BoltStatements
) -> None:
    api, store = counted
    one_ids = seed(api)
    store.calls.clear()
    page = api(PAGE, {"id": "crm-1"})["account"]
    reads = list(store.calls)

    contacts = [e["node"] for e in page["contacts"]["edges"]]
    assert page["contacts"]["totalCount"] == CONTACTS == len(contacts)
    assert {c["oneId"] for c in contacts} == set(one_ids)
    assert all(c["profile"]["oneId"] == c["oneId"] for c in contacts)
    names = {c["profile"]["traitValues"]["name"] for c in contacts}
    assert names == {f"Person {n}" for n in range(CONTACTS)}
    by_role = {r["role"]: r for r in page["decisionUnit"]["roles"]}
    assert [m["contact"]["oneId"] for m in by_role["DECISION_MAKER"]["members"]] == [one_ids[0]]
    assert by_role["DECISION_MAKER"]["members"][0]["contact"]["profile"]["oneId"] == one_ids[0]
    assert page["decisionUnit"]["suggestions"]
    chart = {e["contact"]["oneId"]: e for e in page["orgChart"]}
    assert chart[one_ids[0]]["level"] == 0 and chart[one_ids[0]]["manager"] is None
    assert len(chart[one_ids[0]]["directReports"]) == 7
    assert chart[one_ids[49]]["manager"] == {"oneId": one_ids[6]}

    assert reads == ["accounts_and_templates", "placements", "customer_sources"], reads
    if not isinstance(store.inner, EmbeddedStore):
        statements = bolt.fewest(lambda: api(PAGE, {"id": "crm-1"}))
        assert 0 < len(statements) <= 3, statements


def test_reads_do_not_grow_with_the_contacts(
    counted: tuple[Api, CountingStore], bolt: BoltStatements
) -> None:
    """The same page for one contact costs the same reads as for fifty."""
    api, store = counted
    api(UPSERT_ONE)
    one_id = api.ingest(event("e1", "crm", ("email", "a@acme.com")))["results"][0]["oneId"]
    assert one_id
    store.calls.clear()
    page = api(PAGE, {"id": "crm-1"})["account"]
    assert [e["node"]["oneId"] for e in page["contacts"]["edges"]] == [one_id]
    assert store.calls == ["accounts_and_templates", "placements", "customer_sources"]
    if not isinstance(store.inner, EmbeddedStore):
        statements = bolt.fewest(lambda: api(PAGE, {"id": "crm-1"}))
        assert 0 < len(statements) <= 3, statements


UPSERT_ONE = 'mutation { upsertAccount(input: {id: "crm-1", domains: ["acme.com"]}) { id } }'
