"""Accounts in Neo4j, beside the identity graph.

An account is an ``:Account`` node holding its record as JSON text (see
``graph.accounts.models``) and the properties it is found by; its domains
and its contacts' OneIDs are ``:AccountDomain`` and ``:AccountContact``
nodes, indexed, since Neo4j cannot index list members. A change is checked
and written holding the write lock of one ``:IdgraphAccountsLock`` node, in
one transaction, so two processes cannot make a cycle between them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, LiteralString, TypeVar

import neo4j
from neo4j import Driver, RoutingControl
from neo4j.exceptions import DriverError, Neo4jError

from graph.accounts.models import (
    Account,
    AccountFilter,
    AccountHistoryEntry,
    AccountWrite,
    account_from_json,
    account_json,
    contact_refs,
    history_from_json,
    history_json,
    name_key,
)

T = TypeVar("T")

ACCOUNT_SCHEMA: list[LiteralString] = [
    "CREATE CONSTRAINT account_id IF NOT EXISTS FOR (a:Account) REQUIRE a.id IS UNIQUE",
    "CREATE INDEX account_name IF NOT EXISTS FOR (a:Account) ON (a.nameKey)",
    "CREATE INDEX account_parent IF NOT EXISTS FOR (a:Account) ON (a.parentId)",
    "CREATE INDEX account_industry IF NOT EXISTS FOR (a:Account) ON (a.industry)",
    "CREATE INDEX account_region IF NOT EXISTS FOR (a:Account) ON (a.region)",
    "CREATE INDEX account_industry_region IF NOT EXISTS FOR (a:Account) ON (a.industry, a.region)",
    "CREATE INDEX account_domain IF NOT EXISTS FOR (d:AccountDomain) ON (d.domain)",
    "CREATE INDEX account_domain_owner IF NOT EXISTS FOR (d:AccountDomain) ON (d.accountId)",
    "CREATE INDEX account_contact IF NOT EXISTS FOR (c:AccountContact) ON (c.oneId)",
    "CREATE INDEX account_contact_owner IF NOT EXISTS FOR (c:AccountContact) ON (c.accountId)",
    "CREATE INDEX account_history IF NOT EXISTS FOR (h:AccountHistory) ON (h.accountId)",
    "CREATE CONSTRAINT buying_template IF NOT EXISTS FOR (t:BuyingTemplate) REQUIRE t.id IS UNIQUE",
    "CREATE CONSTRAINT account_segment IF NOT EXISTS FOR (s:AccountSegment) REQUIRE s.id IS UNIQUE",
]


def _grouped(records: Iterable[Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for r in records:
        found.setdefault(r["k"], []).append(r["v"])
    return found


class Neo4jAccounts:
    """The account store protocol on a Neo4j database; ``guard`` types the driver's errors."""

    def __init__(
        self,
        driver: Driver,
        database: str,
        guard: Callable[[Callable[[], Any]], Any],
        ready: Callable[[], None],
    ) -> None:
        self._driver = driver
        self._database = database
        self._guard = guard
        self._ready = ready
        self._local = threading.local()

    def _run(self, query: LiteralString, **params: Any) -> list[neo4j.Record]:
        self._ready()
        tx: neo4j.Transaction | None = getattr(self._local, "tx", None)
        if tx is not None:  # a change being checked reads under its lock
            records: list[neo4j.Record] = self._guard(lambda: list(tx.run(query, params)))
            return records
        found: list[neo4j.Record] = self._guard(
            lambda: (
                self._driver.execute_query(
                    query, params, database_=self._database, routing_=RoutingControl.READ
                ).records
            )
        )
        return found

    def accounts(self, ids: Iterable[str]) -> dict[str, Account]:
        rows = self._run(
            "UNWIND $ids AS id MATCH (a:Account {id: id}) RETURN a.record AS record",
            ids=sorted(set(ids)),
        )
        found = [account_from_json(r["record"]) for r in rows]
        return {a.id: a for a in found}

    def accounts_and_templates(
        self, ids: Iterable[str]
    ) -> tuple[dict[str, Account], dict[str, str]]:
        (row,) = self._run(
            "CALL () { UNWIND $ids AS id MATCH (a:Account {id: id})"
            " RETURN collect(a.record) AS records }"
            " CALL () { MATCH (t:BuyingTemplate)"
            " RETURN collect([t.id, t.template]) AS templates }"
            " RETURN records, templates",
            ids=sorted(set(ids)),
        )
        found = [account_from_json(r) for r in row["records"]]
        return {a.id: a for a in found}, {i: text for i, text in row["templates"]}

    def account_ids_by_domain(self, domains: Iterable[str]) -> dict[str, list[str]]:
        return _grouped(
            self._run(
                "UNWIND $domains AS domain MATCH (d:AccountDomain {domain: domain})"
                " RETURN d.domain AS k, d.accountId AS v",
                domains=sorted(set(domains)),
            )
        )

    def account_ids_by_contact(self, one_ids: Iterable[str]) -> dict[str, list[str]]:
        return _grouped(
            self._run(
                "UNWIND $ids AS id MATCH (c:AccountContact {oneId: id})"
                " RETURN c.oneId AS k, c.accountId AS v",
                ids=sorted(set(one_ids)),
            )
        )

    def subsidiary_ids(self, ids: Iterable[str]) -> dict[str, list[str]]:
        return _grouped(
            self._run(
                "UNWIND $ids AS id MATCH (a:Account {parentId: id}) RETURN id AS k, a.id AS v",
                ids=sorted(set(ids)),
            )
        )

    def account_page(
        self, where: AccountFilter, after: str | None, first: int
    ) -> tuple[list[Account], int]:
        clause, params = _account_clause(where)
        rows = self._run(
            "MATCH (a:Account) WHERE" + clause + " WITH count(a) AS total"
            " RETURN total, COLLECT { MATCH (a:Account) WHERE" + clause + " AND a.id > $after"
            " RETURN a.record ORDER BY a.id LIMIT $first } AS page",
            **params,
            after=after or "",
            first=first,
        )
        row = rows[0]
        return [account_from_json(text) for text in row["page"]], int(row["total"])

    def accounts_in_order(
        self, where: AccountFilter, after: str | None, first: int
    ) -> list[Account]:
        clause, params = _account_clause(where)
        rows = self._run(
            "MATCH (a:Account) WHERE" + clause + " AND a.id > $after"
            " RETURN a.record AS record ORDER BY a.id LIMIT $first",
            **params,
            after=after or "",
            first=first,
        )
        return [account_from_json(row["record"]) for row in rows]

    def account_history(self, account_id: str) -> list[AccountHistoryEntry]:
        rows = self._run(
            "MATCH (h:AccountHistory {accountId: $id}) RETURN h.entry AS entry ORDER BY h.seq",
            id=account_id,
        )
        return [history_from_json(account_id, r["entry"]) for r in rows]

    def saved_templates(self) -> dict[str, str]:
        rows = self._run("MATCH (t:BuyingTemplate) RETURN t.id AS id, t.template AS template")
        return {r["id"]: r["template"] for r in rows}

    def account_segments(self) -> dict[str, str]:
        rows = self._run("MATCH (s:AccountSegment) RETURN s.id AS id, s.segment AS segment")
        return {r["id"]: r["segment"] for r in rows}

    @contextlib.contextmanager
    def accounts_exclusive(self) -> Iterator[None]:
        """One write transaction holding the accounts lock: its reads, checks and write."""
        if getattr(self._local, "tx", None) is not None:
            yield
            return
        self._ready()
        session = self._guard(lambda: self._driver.session(database=self._database))
        try:
            tx = self._guard(session.begin_transaction)
            self._guard(
                lambda: tx.run(
                    "MERGE (l:IdgraphAccountsLock {id: 1}) SET l.writes = coalesce(l.writes, 0) + 1"
                ).consume()
            )
            self._local.tx = tx
            try:
                yield
            except BaseException:
                with contextlib.suppress(DriverError, Neo4jError):
                    tx.rollback()
                raise
            finally:
                self._local.tx = None
            self._guard(tx.commit)
        finally:
            with contextlib.suppress(DriverError, Neo4jError):
                session.close()

    def write_accounts(self, write: AccountWrite) -> None:
        with self.accounts_exclusive():
            tx: neo4j.Transaction = self._local.tx
            rows = [
                {
                    "id": a.id,
                    "nameKey": name_key(a.name),
                    "industry": a.industry,
                    "region": a.region,
                    "parentId": a.parent_id,
                    "record": account_json(a),
                    "domains": list(a.domains),
                    "contacts": contact_refs(a),
                }
                for a in write.put
            ]
            history = [{"accountId": e.account_id, "entry": history_json(e)} for e in write.history]
            templates = [{"id": i, "template": t} for i, t in write.templates.items()]

            def run() -> None:
                gone = [*write.deleted, *(r["id"] for r in rows)]
                tx.run(
                    "UNWIND $ids AS id"
                    " OPTIONAL MATCH (d:AccountDomain {accountId: id}) DETACH DELETE d",
                    ids=gone,
                ).consume()
                tx.run(
                    "UNWIND $ids AS id"
                    " OPTIONAL MATCH (c:AccountContact {accountId: id}) DETACH DELETE c",
                    ids=gone,
                ).consume()
                tx.run(
                    "UNWIND $ids AS id OPTIONAL MATCH (a:Account {id: id}) DETACH DELETE a",
                    ids=list(write.deleted),
                ).consume()
                tx.run(
                    "UNWIND $rows AS row MERGE (a:Account {id: row.id})"
                    " SET a.nameKey = row.nameKey, a.industry = row.industry,"
                    " a.region = row.region, a.parentId = row.parentId, a.record = row.record"
                    " WITH a, row"
                    " CALL (a, row) {"
                    "   UNWIND row.domains AS domain"
                    "   CREATE (:AccountDomain {domain: domain, accountId: row.id}) }"
                    " CALL (a, row) {"
                    "   UNWIND row.contacts AS oneId"
                    "   CREATE (:AccountContact {oneId: oneId, accountId: row.id}) }",
                    rows=rows,
                ).consume()
                tx.run(
                    "MERGE (l:IdgraphAccountsLock {id: 1})"
                    " WITH l, coalesce(l.historySeq, 0) AS seq"
                    " SET l.historySeq = seq + size($history)"
                    " WITH seq UNWIND range(0, size($history) - 1) AS i"
                    " CREATE (:AccountHistory {accountId: $history[i].accountId,"
                    "  seq: seq + i + 1, entry: $history[i].entry})",
                    history=history,
                ).consume()
                tx.run(
                    "UNWIND $templates AS t MERGE (n:BuyingTemplate {id: t.id})"
                    " SET n.template = t.template",
                    templates=templates,
                ).consume()
                tx.run(
                    "UNWIND $saved AS s MERGE (n:AccountSegment {id: s.id})"
                    " SET n.segment = s.segment",
                    saved=[{"id": i, "segment": t} for i, t in write.segments.items() if t],
                ).consume()
                tx.run(
                    "UNWIND $gone AS id MATCH (n:AccountSegment {id: id}) DELETE n",
                    gone=[i for i, t in write.segments.items() if t is None],
                ).consume()

            self._guard(run)


def _account_clause(where: AccountFilter) -> tuple[LiteralString, dict[str, Any]]:
    """The Cypher condition on ``a`` of ``where``, and its parameters.

    Only the filters given: ``$x IS NULL OR ...`` would keep the planner from
    the property indexes, and every page and count would read every account.
    """
    conditions: list[LiteralString] = []
    params: dict[str, Any] = {}
    if where.name_prefix:
        conditions.append("a.nameKey STARTS WITH $prefix")
        params["prefix"] = name_key(where.name_prefix)
    if where.industry is not None:
        conditions.append("a.industry = $industry")
        params["industry"] = where.industry
    if where.region is not None:
        conditions.append("a.region = $region")
        params["region"] = where.region
    if where.parent_id is not None:
        conditions.append("a.parentId = $parent")
        params["parent"] = where.parent_id
    if where.domain:
        conditions.append(
            "EXISTS { MATCH (d:AccountDomain {domain: $domain}) WHERE d.accountId = a.id }"
        )
        params["domain"] = where.domain
    return " " + (" AND ".join(conditions) or "true"), params
