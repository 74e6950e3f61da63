"""Phone numbers found valid, told by each worker of a bulk import to the others as it reads.

Parsing a phone number is the dearest part of reading an identifier, and one
number turns up all through a file, in chunks that several workers read at
the same time. Passed on by the importing process with each next chunk, the
news would reach a worker some chunks after another had parsed the number
(on the benchmark file, a third of all parses would be of numbers already
found valid). So the workers share one scratch SQLite table: each adds the
numbers it found every few hundred lines and reads those the others added
since it last looked. SQLite does the locking between the processes; nothing
in the table needs to outlive the import.
"""

from __future__ import annotations

import sqlite3


class PhoneExchange:
    """One worker's end of the exchange: ``tell`` what it found, ``hear`` what others found."""

    def __init__(self, path: str) -> None:
        """Open the exchange at ``path``, which ``create`` made before any worker started."""
        self._db = sqlite3.connect(path, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA synchronous=OFF")  # scratch: nothing to keep after a crash
        self._heard_up_to = 0  # rowid: rows are numbered in commit order

    @staticmethod
    def create(path: str) -> None:
        """Make the exchange's file, once, so that workers opening it never race to set it up."""
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            db.execute("CREATE TABLE numbers (e164 TEXT NOT NULL)")
        finally:
            db.close()

    def tell(self, e164_texts: list[str]) -> None:
        if not e164_texts:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO numbers (e164) VALUES (?)", zip(e164_texts))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def hear(self) -> list[str]:
        """Numbers told since the last call (this worker's own among them)."""
        rows = self._db.execute(
            "SELECT rowid, e164 FROM numbers WHERE rowid > ? ORDER BY rowid",
            (self._heard_up_to,),
        ).fetchall()
        if rows:
            self._heard_up_to = rows[-1][0]
        return [e164 for _, e164 in rows]
