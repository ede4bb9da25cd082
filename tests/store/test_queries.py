"""Every named statement of postgresql.sql and sqlite.sql runs against a database
built by the migrations, and the store uses each one (and only those)."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extras import Json

from crontabber.db import connect as database
from crontabber.store import StateStore
from crontabber.store.queries import queries

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
STORE = Path(database.__file__).parent.parent / "store"

# One value for every parameter any statement takes.
VALUES = {
    "app_name": "job",
    "depends_on": ["dep"],
    "depends_on_json": '{"job": ["dep"]}',
    "app_names": ["job"],
    "seen_next_runs": [None],
    "dead_token": None,
    "max_age_seconds": 3600.0,
    "lease_seconds": 90.0,
    "host": "host",
    "pid": 1,
    "token": "token",
    "next_token": "next-token",
    "ahead_seconds": 1.0,
    "force": False,
    "seen_next_run": None,
    "error": {"type": "E", "value": "v", "traceback": ""},
    "retry_after_seconds": 300.0,
    "abandoned_since": NOW,
    "abandoned_token": "old",
    "exc_type": "E",
    "exc_value": "v",
    "exc_traceback": "",
    "log_token": "log-token",
    "next_run": NOW,
    "started": NOW,
    "failed": True,
    "last_success": NOW,
    "finished": NOW,
    "duration": dt.timedelta(seconds=2),
    "success": None,
    "date": NOW,
    "now": NOW,
    "log_time": NOW,
    "superseded": False,
    "before": NOW,
    "batch": 10,
    "page_size": 10,
    "page_offset": 0,
    "abandoned_host": "old-host",
    "abandoned_pid": 2,
    "trigger": "schedule",
    "output": "printed",
    "action": "reset",
    "reason": "why",
    "detail": "detail",
    "actor": "someone",
    "until": None,
    "until_seconds": 60.0,
    "db_now": NOW,
    "limit": 10,
    "kind": "failed",
    "about": NOW,
    "sinks": ["webhook"],
    "sink": "webhook",
    "text": "text",
    "quiet_seconds": 0.0,
    "id": 1,
    "status": "sent",
    "retry_seconds": 0.0,
    "lock_timeout_ms": 3000,
    "statement_timeout_ms": 9000,
    "window": 100,
    "after": 0,
    "ids": [3, 5],
}


def parameters(text: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, text))


def test_the_store_uses_every_statement_and_only_those() -> None:
    for dialect in ("postgresql", "sqlite"):
        code = "".join(
            (STORE / name).read_text()
            for name in (
                f"{dialect}.py",
                "abc.py",
                "fencing.py",
                "operators.py",
                "outbox.py",
                "views.py",
            )
        )
        used = set(re.findall(r'"(\w+)"', code)) & set(queries(dialect))
        defined = set(queries(dialect))
        assert used >= defined, (dialect, sorted(defined - used))


@pytest.mark.postgres
def test_every_postgresql_statement_runs_on_a_migrated_database(pg_store: StateStore) -> None:
    connection = database.connect(pg_store.url)
    connection.autocommit = False
    try:
        for name, text in queries("postgresql").items():
            needed = parameters(text, r"%\((\w+)\)s")
            values = {key: VALUES[key] for key in needed}
            if "error" in values:
                values["error"] = Json(values["error"])
            with connection.cursor() as cursor:
                try:
                    cursor.execute(text, values)
                except psycopg2.Error as exc:
                    pytest.fail(f"{name}: {exc}")
            connection.rollback()
    finally:
        connection.close()


def test_every_sqlite_statement_runs_on_a_migrated_database(tmp_path: Path) -> None:
    from crontabber.store import open_store
    from crontabber.store.sqlite import encode

    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    store.ensure_schema()
    store.close()
    connection = sqlite3.connect(tmp_path / "state.sqlite", isolation_level=None)
    try:
        for name, text in queries("sqlite").items():
            needed = parameters(text, r":(\w+)")
            values = {key: encode(VALUES[key]) for key in needed}
            connection.execute("BEGIN")
            try:
                connection.execute(text, values).fetchall()
            except sqlite3.Error as exc:
                pytest.fail(f"{name}: {exc}")
            connection.execute("ROLLBACK")
    finally:
        connection.close()
