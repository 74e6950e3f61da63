"""Accounts in the embedded store's SQLite file, beside the identity graph.

Account records are small next to the graph and read by key, so they live
in tables only, not in the in-memory shape. They are written through a
connection of their own: an account write neither waits for the identity
writer's Python work nor counts as one of its generations (the shape and
its snapshot know nothing of accounts); SQLite's file lock serialises the
two commits. Reads use the same read-only connections as the graph's.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

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
from graph.pacing import blocking, holding, statement
from graph.store.embedded.pragmas import set_up_writer


def _grouped(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in rows:
        found.setdefault(key, []).append(value)
    return found


class SqliteAccounts:
    """The account store protocol on one SQLite file; ``read`` gives a read-only connection."""

    def __init__(self, path: Path, read: Callable[[], sqlite3.Connection]) -> None:
        self._read = read
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        set_up_writer(self._db)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _all(self, select: str, values: Iterable[str]) -> list[tuple[str, str]]:
        wanted = sorted(set(values))
        if not wanted:
            return []
        query = f"{select} IN (SELECT value FROM json_each(?))"
        rows: list[tuple[str, str]] = statement(self._fetch, query, json.dumps(wanted))
        return rows

    def _fetch(self, query: str, param: str) -> list[tuple[str, str]]:
        return self._read().execute(query, (param,)).fetchall()

    def accounts(self, ids: Iterable[str]) -> dict[str, Account]:
        rows = self._all("SELECT id, record FROM accounts WHERE id", ids)
        return {i: account_from_json(record) for i, record in rows}

    def accounts_and_templates(
        self, ids: Iterable[str]
    ) -> tuple[dict[str, Account], dict[str, str]]:
        rows = (
            self._read()
            .execute(
                "SELECT 1, id, record FROM accounts WHERE id IN (SELECT value FROM json_each(?))"
                " UNION ALL SELECT 0, id, template FROM buying_templates",
                (json.dumps(sorted(set(ids))),),
            )
            .fetchall()
        )
        accounts = {i: account_from_json(text) for is_account, i, text in rows if is_account}
        return accounts, {i: text for is_account, i, text in rows if not is_account}

    def account_ids_by_domain(self, domains: Iterable[str]) -> dict[str, list[str]]:
        return _grouped(
            self._all("SELECT domain, account_id FROM account_domains WHERE domain", domains)
        )

    def account_ids_by_contact(self, one_ids: Iterable[str]) -> dict[str, list[str]]:
        return _grouped(
            self._all("SELECT one_id, account_id FROM account_contacts WHERE one_id", one_ids)
        )

    def subsidiary_ids(self, ids: Iterable[str]) -> dict[str, list[str]]:
        return _grouped(self._all("SELECT parent_id, id FROM accounts WHERE parent_id", ids))

    def account_page(
        self, where: AccountFilter, after: str | None, first: int
    ) -> tuple[list[Account], int]:
        clause, params = _account_clause(where)
        db = self._read()
        db.execute("BEGIN")  # the page and its count from one snapshot of the file
        try:
            (total,) = db.execute(
                f"SELECT count(*) FROM accounts WHERE {clause}", params
            ).fetchone()
            rows = db.execute(_PAGE.format(clause), [*params, after or "", first]).fetchall()
        finally:
            db.execute("COMMIT")
        return [account_from_json(r[0]) for r in rows], int(total)

    def accounts_in_order(
        self, where: AccountFilter, after: str | None, first: int
    ) -> list[Account]:
        clause, params = _account_clause(where)
        rows = self._read().execute(_PAGE.format(clause), [*params, after or "", first])
        return [account_from_json(r[0]) for r in rows]

    def account_history(self, account_id: str) -> list[AccountHistoryEntry]:
        rows = self._read().execute(
            "SELECT entry FROM account_history WHERE account_id = ? ORDER BY id", (account_id,)
        )
        return [history_from_json(account_id, r[0]) for r in rows]

    def saved_templates(self) -> dict[str, str]:
        return dict(self._read().execute("SELECT id, template FROM buying_templates").fetchall())

    def account_segments(self) -> dict[str, str]:
        return dict(self._read().execute("SELECT id, segment FROM account_segments").fetchall())

    @contextlib.contextmanager
    def accounts_exclusive(self) -> Iterator[None]:
        with holding(self._lock):
            yield

    def write_accounts(self, write: AccountWrite) -> None:
        blocking(self._write_accounts, write)  # statements only: all of it off the loop

    def _write_accounts(self, write: AccountWrite) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for account_id in write.deleted:
                for table, column in (
                    ("accounts", "id"),
                    ("account_domains", "account_id"),
                    ("account_contacts", "account_id"),
                ):
                    db.execute(f"DELETE FROM {table} WHERE {column} = ?", (account_id,))
            for account in write.put:
                db.execute(
                    "INSERT INTO accounts (id, name_key, industry, region, parent_id, record)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                    " name_key = excluded.name_key, industry = excluded.industry,"
                    " region = excluded.region, parent_id = excluded.parent_id,"
                    " record = excluded.record",
                    (
                        account.id,
                        name_key(account.name),
                        account.industry,
                        account.region,
                        account.parent_id,
                        account_json(account),
                    ),
                )
                db.execute("DELETE FROM account_domains WHERE account_id = ?", (account.id,))
                db.executemany(
                    "INSERT INTO account_domains (domain, account_id) VALUES (?, ?)",
                    [(d, account.id) for d in account.domains],
                )
                db.execute("DELETE FROM account_contacts WHERE account_id = ?", (account.id,))
                db.executemany(
                    "INSERT OR IGNORE INTO account_contacts (one_id, account_id) VALUES (?, ?)",
                    [(ref, account.id) for ref in contact_refs(account)],
                )
            db.executemany(
                "INSERT INTO account_history (account_id, entry) VALUES (?, ?)",
                [(e.account_id, history_json(e)) for e in write.history],
            )
            db.executemany(
                "INSERT INTO buying_templates (id, template) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET template = excluded.template",
                list(write.templates.items()),
            )
            db.executemany(
                "INSERT INTO account_segments (id, segment) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET segment = excluded.segment",
                [(i, text) for i, text in write.segments.items() if text is not None],
            )
            db.executemany(
                "DELETE FROM account_segments WHERE id = ?",
                [(i,) for i, text in write.segments.items() if text is None],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


_PAGE = "SELECT record FROM accounts WHERE {} AND id > ? ORDER BY id LIMIT ?"


def _account_clause(where: AccountFilter) -> tuple[str, list[object]]:
    """The SQL condition of ``where`` and its parameters ("1" for no filter)."""
    conditions: list[str] = []
    params: list[object] = []
    if where.name_prefix:
        # A prefix as a range: the index on name_key serves it, and LIKE's wildcards
        # in a name mean nothing.
        conditions.append("name_key >= ? AND name_key < ?")
        prefix = name_key(where.name_prefix)
        params += [prefix, prefix + "\U0010ffff"]
    if where.domain:
        conditions.append("id IN (SELECT account_id FROM account_domains WHERE domain = ?)")
        params.append(where.domain)
    for column, value in (
        ("industry", where.industry),
        ("region", where.region),
        ("parent_id", where.parent_id),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(conditions) or "1", params
