"""A busy SQLite file is told apart from other SQLite errors on every supported Python
(3.10's sqlite3 gives no error code, and has no SQLITE_BUSY constant)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from crontabber.db.retry import is_transient, sqlite_busy


def test_a_locked_file_is_busy_and_transient(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN IMMEDIATE")
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            busy = exc
        else:  # pragma: no cover - SQLite always refuses a second writer
            raise AssertionError("the second writer was let in")
        holder.execute("ROLLBACK")
        try:
            other.execute("SELECT * FROM no_such_table")
        except sqlite3.OperationalError as exc:
            other_error = exc
    finally:
        holder.close()
        other.close()
    assert sqlite_busy(busy) and is_transient(busy)
    assert not sqlite_busy(other_error) and not is_transient(other_error)
    assert not sqlite_busy(ValueError("database is locked"))  # not SQLite's
