"""Whether a SQLite state file is corrupt, as opposed to a schema that is merely old.

Random bytes in a page of the state file read as an odd schema revision (which
would advise ``--migrate``, or migrate a damaged file) or fail a statement with
"database disk image is malformed". So the SQLite store runs ``PRAGMA
quick_check`` (:func:`check`) when the schema looks wrong, when a statement
fails as SQLite fails on a damaged file (:func:`looks_corrupt`), and before a
migration; never on every tick, since it reads the whole file. A file that
fails it is a one-line :class:`~crontabber.errors.StateFileCorrupt`, and is
never migrated. PostgreSQL checks its own pages: nothing here is for it.
"""

from __future__ import annotations

import os

from crontabber.db.retry import describe_error, sqlite_error_is
from crontabber.errors import StateFileCorrupt

SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # SQLite's primary result codes


def looks_corrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database disk image is malformed" (SQLITE_CORRUPT) or
    "file is not a database" (SQLITE_NOTADB)."""
    return sqlite_error_is(
        exc, "DatabaseError", (SQLITE_CORRUPT, SQLITE_NOTADB), ("malformed", "not a database")
    )


def quick_check(path: str, busy_timeout: float) -> str | None:
    """The first problem ``PRAGMA quick_check`` finds in the file at ``path`` (on a
    connection of its own), or None: none found, no file, or the check could not run
    (a busy file: the error that led here stands)."""
    import sqlite3

    if not os.path.exists(path):
        return None
    try:
        connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        try:
            rows = connection.execute("PRAGMA quick_check").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:  # a file SQLite cannot read at all fails the check itself
        return describe_error(exc) if looks_corrupt(exc) else None
    if rows == [("ok",)]:
        return None
    # Each row is a problem; the first may begin with the line "*** in database main ***".
    lines = [line for row in rows for line in str(row[0]).splitlines()]
    return next((line for line in lines if not line.startswith("***")), "not ok")


def check(path: str, busy_timeout: float) -> None:
    """Raise :class:`StateFileCorrupt` when ``PRAGMA quick_check`` finds a problem in the
    SQLite state file at ``path``."""
    problem = quick_check(path, busy_timeout)
    if problem is not None:
        raise StateFileCorrupt(
            f"the SQLite state file {path} is corrupt (PRAGMA quick_check: {problem}); "
            "restore it from a backup or remove it to start afresh"
        )
