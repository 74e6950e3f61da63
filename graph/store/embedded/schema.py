"""The embedded store's SQLite file: its tables, its format version, and upgrades.

The events are the evidence: the graph's edges, and each edge's sources,
first and last sighting and count, are derived from them rather than stored
twice. Identifiers are written once resolved; an identifier that only
deferred (bulk) events mention is derived from them when the store opens.
So a bulk import writes one row per event, then one per identifier. Event
ids are unique by the store's in-memory index, checked before every write
(one process holds the data dir), not by an index every bulk row would have
to update.
"""

from __future__ import annotations

import sqlite3

from graph.errors import StoreUnavailable
from graph.store.embedded.tags import TAG_SCHEMA

SCHEMA_VERSION = 6

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS identifiers (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    blocked INTEGER NOT NULL,
    shared INTEGER NOT NULL,
    strong_neighbours INTEGER NOT NULL,
    one_id TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    source TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL,
    keys TEXT NOT NULL,
    traits TEXT NOT NULL,
    blocked TEXT NOT NULL,
    name TEXT,
    properties TEXT
);
CREATE TABLE IF NOT EXISTS customers (
    one_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    merged_into TEXT,
    retired INTEGER NOT NULL DEFAULT 0,
    anchor INTEGER
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    one_id TEXT NOT NULL,
    others TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history_index (
    one_id TEXT NOT NULL,
    history INTEGER NOT NULL,
    PRIMARY KEY (one_id, history)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    name_key TEXT NOT NULL,
    industry TEXT,
    region TEXT,
    parent_id TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_parent ON accounts (parent_id);
CREATE INDEX IF NOT EXISTS accounts_by_name ON accounts (name_key);
CREATE INDEX IF NOT EXISTS accounts_by_industry ON accounts (industry, id);
CREATE INDEX IF NOT EXISTS accounts_by_region ON accounts (region, id);
CREATE INDEX IF NOT EXISTS accounts_by_industry_region ON accounts (industry, region, id);
CREATE TABLE IF NOT EXISTS account_domains (
    domain TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (domain, account_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_contacts (
    one_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (one_id, account_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_history (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS account_history_by_account ON account_history (account_id, id);
CREATE TABLE IF NOT EXISTS buying_templates (
    id TEXT PRIMARY KEY,
    template TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS account_segments (
    id TEXT PRIMARY KEY,
    segment TEXT NOT NULL
);
"""
    + TAG_SCHEMA
)

IDENTIFIER_COLUMNS = (
    "seq",
    "type",
    "value",
    "first_seen",
    "last_seen",
    "blocked",
    "shared",
    "strong_neighbours",
    "one_id",
)
EVENT_COLUMNS = (
    "seq",
    "event_id",
    "source",
    "timestamp",
    "received_at",
    "keys",
    "traits",
    "blocked",
    "name",
    "properties",
)
CUSTOMER_COLUMNS = ("one_id", "seq", "created_at", "merged_into", "retired", "anchor")

# meta rows
UNRESOLVED = "unresolved_from"  # the first event seq whose resolution was deferred
GENERATION = "generation"  # how many writes the file has taken: what a snapshot is checked by
NODE_SEQ = "node_seq"  # the highest identifier seq handed out, kept once one is removed


def prepare(db: sqlite3.Connection, path: object) -> None:
    """Create the tables of a new file, upgrade an older one, refuse one of another version."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    (tables,) = db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if tables == 0:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    elif version in (4, 5):
        _upgrade(db, version)
    elif version != SCHEMA_VERSION:
        raise StoreUnavailable(
            f"{path} was written by another idgraph version (store format "
            f"{version}, this one reads {SCHEMA_VERSION}); export it with that version "
            "and import it into a new data dir"
        )
    db.executescript(SCHEMA)


def _upgrade(db: sqlite3.Connection, version: int) -> None:
    """Bring a file of an older format to this one, in one transaction.

    Format 4 did not keep what a OneID was issued for: each living one takes
    its oldest identifier, the one a split has always left it with (an alias
    gets none, so it is never given back, as before). Format 5 events had no
    name or properties: they stay identity events.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if version == 4:
            db.execute("ALTER TABLE customers ADD COLUMN anchor INTEGER")
            db.execute(
                "UPDATE customers SET anchor = oldest.seq FROM (SELECT one_id, min(seq) AS seq"
                " FROM identifiers WHERE one_id IS NOT NULL GROUP BY one_id) AS oldest"
                " WHERE customers.one_id = oldest.one_id"
            )
        db.execute("ALTER TABLE events ADD COLUMN name TEXT")
        db.execute("ALTER TABLE events ADD COLUMN properties TEXT")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def meta_int(db: sqlite3.Connection, name: str) -> int | None:
    found = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if found is None else int(found[0])


def generation(db: sqlite3.Connection) -> int:
    return meta_int(db, GENERATION) or 0


def set_meta(db: sqlite3.Connection, name: str, value: int) -> None:
    db.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, str(value)),
    )
