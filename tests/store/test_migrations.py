"""Schema migrations: what they build, what they adopt, and many hosts upgrading at once.

- Running every revision builds the schema crontabber/sql.py defines (Alembic's
  autogenerate comparison finds no difference), on PostgreSQL and SQLite.
- An original crontabber database (and a store created before migrations
  existed) is adopted in place: every row stays and reads back, and schedules
  are honoured.
- Eight processes upgrading one old database together: one migrates, all succeed.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.dialects import postgresql

from crontabber import App
from crontabber.errors import StateStoreError
from crontabber.run.runner import Result, Runner
from crontabber.store import JobState, StateStore, migrate, open_store
from crontabber.store import tables as sql
from crontabber.store.lease import LeasePolicy

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module
from ..helpers.specs import at, make_spec

NOW = at("2026-03-01 12:00")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
PROCESSES = 8


def schema_differences(engine: sa.Engine, metadata: sa.MetaData = sql.metadata) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": migrate.VERSION_TABLE,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return compare_metadata(context, metadata)


@pytest.fixture
def db(db_url: str) -> Iterator[StateStore]:
    """A store over an empty database, with no schema: the migrations build it."""
    store = open_store(db_url)
    yield store
    store.close()


@pytest.fixture
def other_db_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.sqlite'}"
        return
    admin = request.getfixturevalue("pg_admin_engine")
    name = f"crontabber_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- built by the migrations == built from sql.py -------------------------------------


def test_migrations_build_the_schema_sql_py_defines(db: StateStore, other_db_url: str) -> None:
    result = migrate.upgrade(db.engine)

    assert result == migrate.Upgrade(before=None, after=migrate.head_revision())
    assert schema_differences(db.engine) == []
    # and compared with a database built by create_all, as the database reflects it
    from_tables = sa.create_engine(other_db_url, poolclass=sa.NullPool)
    try:
        sql.metadata.create_all(from_tables)
        reflected = sa.MetaData()
        reflected.reflect(from_tables)
    finally:
        from_tables.dispose()
    assert schema_differences(db.engine, reflected) == []


def test_the_comparison_sees_a_missing_column(db: StateStore) -> None:
    migrate.upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX crontabber_log_log_time_idx")
        conn.exec_driver_sql("ALTER TABLE crontabber DROP COLUMN heartbeat")

    differences = schema_differences(db.engine)

    assert ("add_column", None, "crontabber", sql.crontabber.c.heartbeat) in differences
    assert sorted(diff[0] for diff in differences) == ["add_column", "add_index"]


# -- adopting an existing database ----------------------------------------------------


@dataclass(frozen=True)
class Original:
    """The shape of a database crontabber finds already there."""

    ongoing: bool  # the newer original has it
    claim_columns: bool = False  # ongoing_host, _pid, _token: a store from before migrations
    unique_index: bool = True
    log_primary_key: bool = False


POSTGRES_ORIGINALS = {
    "older": Original(ongoing=False, unique_index=False),
    "older-indexed": Original(ongoing=False),
    "newer": Original(ongoing=True),
    "newer-unindexed": Original(ongoing=True, unique_index=False),
    "newer-log-key": Original(ongoing=True, log_primary_key=True),
}
SQLITE_ORIGINALS = {
    "original-columns": Original(ongoing=False, unique_index=False),
    "before-heartbeat": Original(ongoing=True, claim_columns=True, log_primary_key=True),
}
POSTGRES_TYPES = {"time": "timestamptz", "array": "text[]", "json": "json", "interval": "interval"}
SQLITE_TYPES = {"time": "DATETIME", "array": "JSON", "json": "JSON", "interval": "DATETIME"}


def original_ddl(dialect: str, original: Original) -> list[str]:
    """The original crontabber's CREATE statements (translated for SQLite)."""
    t = POSTGRES_TYPES if dialect == "postgresql" else SQLITE_TYPES
    extra = f", ongoing {t['time']}" if original.ongoing else ""
    if original.claim_columns:
        extra += ", ongoing_host text, ongoing_pid integer, ongoing_token text"
    log_id = "id SERIAL NOT NULL" if dialect == "postgresql" else "id INTEGER NOT NULL"
    log_key = ", PRIMARY KEY (id)" if original.log_primary_key else ""
    now = "now()" if dialect == "postgresql" else "CURRENT_TIMESTAMP"
    statements = [
        f"CREATE TABLE crontabber (app_name text NOT NULL, next_run {t['time']}, "
        f"first_run {t['time']}, last_run {t['time']}, last_success {t['time']}, "
        f"error_count integer DEFAULT 0, depends_on {t['array']}, last_error {t['json']}{extra})",
        f"CREATE TABLE crontabber_log ({log_id}, app_name text NOT NULL, "
        f"log_time {t['time']} DEFAULT {now} NOT NULL, duration {t['interval']}, "
        f"success {t['time']}, exc_type text, exc_value text, exc_traceback text{log_key})",
        "CREATE INDEX crontabber_log_app_name_idx ON crontabber_log (app_name)",
        "CREATE INDEX crontabber_log_log_time_idx ON crontabber_log (log_time)",
    ]
    if original.unique_index:
        statements.append(
            "CREATE UNIQUE INDEX crontabber_unique_app_name_idx ON crontabber (app_name)"
        )
    return statements


# Written with the column types crontabber reads them with, so that values are
# stored as the original crontabber stored them (naive UTC text on SQLite).
_state_writer = sa.table(
    "crontabber",
    sa.column("app_name", sa.Text),
    sa.column("next_run", sql.UTCDateTime),
    sa.column("first_run", sql.UTCDateTime),
    sa.column("last_run", sql.UTCDateTime),
    sa.column("last_success", sql.UTCDateTime),
    sa.column("error_count", sa.Integer),
    sa.column("depends_on", postgresql.ARRAY(sa.Text).with_variant(sa.JSON(), "sqlite")),
    sa.column("last_error", sa.JSON),
    sa.column("ongoing", sql.UTCDateTime),
)
_log_writer = sa.table(
    "crontabber_log",
    *(sa.column(column.name, column.type) for column in sql.crontabber_log.columns),
)

ERROR = {"type": "ValueError", "value": "boom", "traceback": "Traceback...\nValueError: boom"}


def original_states(original: Original) -> list[dict]:
    states = [
        {  # ran 22 hours ago, daily: due in 2 hours
            "app_name": "not-due",
            "next_run": NOW + 2 * HOUR,
            "first_run": NOW - 30 * DAY,
            "last_run": NOW - 22 * HOUR,
            "last_success": NOW - 22 * HOUR,
            "error_count": 0,
            "depends_on": [],
            "last_error": {},
        },
        {  # was due an hour ago
            "app_name": "due",
            "next_run": NOW - HOUR,
            "first_run": NOW - 30 * DAY,
            "last_run": NOW - 25 * HOUR,
            "last_success": NOW - 25 * HOUR,
            "error_count": 0,
            "depends_on": [],
            "last_error": {},
        },
        {  # failing, and no longer configured
            "app_name": "failing",
            "next_run": NOW + 5 * dt.timedelta(minutes=1),
            "first_run": NOW - 2 * DAY,
            "last_run": NOW - 5 * dt.timedelta(minutes=1),
            "last_success": NOW - 2 * DAY,
            "error_count": 3,
            "depends_on": ["not-due", "due"],
            "last_error": ERROR,
        },
    ]
    if original.ongoing:
        states.append(
            {  # due, but running on another host since five minutes ago
                "app_name": "running",
                "next_run": NOW - HOUR,
                "first_run": NOW - 30 * DAY,
                "last_run": NOW - 25 * HOUR,
                "last_success": NOW - 25 * HOUR,
                "error_count": 0,
                "depends_on": [],
                "last_error": {},
                "ongoing": NOW - 5 * dt.timedelta(minutes=1),
            }
        )
    return states


def original_logs(dialect: str) -> list[dict]:
    logs = [
        {
            "app_name": "due",
            "log_time": NOW - 25 * HOUR + dt.timedelta(seconds=3),
            "duration": dt.timedelta(seconds=2, microseconds=500000),
            "success": NOW - 25 * HOUR,
        },
        {
            "app_name": "not-due",
            "log_time": NOW - 22 * HOUR,
            "duration": dt.timedelta(days=1, seconds=7),  # days are kept, not dropped
            "success": NOW - 22 * HOUR - dt.timedelta(days=1, seconds=7),
        },
        {
            "app_name": "failing",
            "log_time": NOW - 5 * dt.timedelta(minutes=1),
            "duration": dt.timedelta(seconds=1),
            "exc_type": ERROR["type"],
            "exc_value": ERROR["value"],
            "exc_traceback": ERROR["traceback"],
        },
    ]
    if dialect == "sqlite":  # the SQLite variant has no sequence for ids
        for number, log in enumerate(logs, start=1):
            log["id"] = number
    return logs


def create_original(engine: sa.Engine, original: Original) -> None:
    with engine.begin() as conn:
        for statement in original_ddl(engine.dialect.name, original):
            conn.exec_driver_sql(statement)
        for state in original_states(original):
            conn.execute(sa.insert(_state_writer).values(**state))
        for log in original_logs(engine.dialect.name):
            conn.execute(sa.insert(_log_writer).values(**log))


def expected_states(original: Original) -> dict[str, JobState]:
    states = {}
    for row in original_states(original):
        states[row["app_name"]] = JobState(**{**row, "depends_on": tuple(row["depends_on"])})
    return states


def read_logs(store: StateStore) -> list[dict]:
    columns = [c for c in sql.crontabber_log.c if c.name != "id"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(sql.crontabber_log.c.id)).all()
    return [
        {key: value for key, value in row._mapping.items() if value is not None} for row in rows
    ]


ran: list[str] = []


class NotDue(App):
    app_name = "not-due"

    def run(self) -> None:
        ran.append(self.app_name)


class Due(App):
    app_name = "due"

    def run(self) -> None:
        ran.append(self.app_name)


class Running(App):
    app_name = "running"

    def run(self) -> None:
        ran.append(self.app_name)


@pytest.fixture(
    params=[
        *(pytest.param(("postgres", name), id=f"postgres-{name}") for name in POSTGRES_ORIGINALS),
        *(pytest.param(("sqlite", name), id=f"sqlite-{name}") for name in SQLITE_ORIGINALS),
    ]
)
def original_db(request: pytest.FixtureRequest) -> Iterator[tuple[StateStore, Original]]:
    """A database holding an existing crontabber's tables and rows."""
    backend, name = request.param
    if backend == "postgres":
        url, original = request.getfixturevalue("pg_url"), POSTGRES_ORIGINALS[name]
    else:
        url, original = request.getfixturevalue("sqlite_url"), SQLITE_ORIGINALS[name]
    store = open_store(url)
    create_original(store.engine, original)
    ran.clear()
    yield store, original
    store.close()


def test_adoption_keeps_every_row_and_reads_it_back(
    original_db: tuple[StateStore, Original],
) -> None:
    store, original = original_db
    assert schema_differences(store.engine) != []

    result = migrate.upgrade(store.engine)

    assert result == migrate.Upgrade(before=None, after=migrate.head_revision())
    assert schema_differences(store.engine) == []
    assert store.load_states() == expected_states(original)
    assert read_logs(store) == [
        {**{key: value for key, value in log.items() if key != "id"}, "superseded": False}
        for log in original_logs(store.dialect_name)
    ]
    assert migrate.upgrade(store.engine).changed is False


def test_after_adoption_schedules_are_honoured(original_db: tuple[StateStore, Original]) -> None:
    store, original = original_db
    migrate.upgrade(store.engine)
    specs = [make_spec(NotDue, frequency=DAY), make_spec(Due, frequency=DAY)]
    if original.ongoing:
        specs.append(make_spec(Running, frequency=DAY))

    # The original's claim has no lease: only its age can end it. NOW is long past
    # in the database's clock, so a max age that large keeps it live.
    lease = LeasePolicy(host="here", max_age=dt.timedelta(days=36500))
    report = Runner(specs, store, lease=lease).run(now=NOW)

    assert ran == ["due"]
    assert report.with_result(Result.SUCCEEDED) == ["due"]
    assert report.with_result(Result.ONGOING) == (["running"] if original.ongoing else [])
    states = store.load_states()
    assert states["due"].last_run == NOW
    assert states["due"].next_run == NOW + DAY
    assert states["due"].ongoing is None
    assert states["not-due"] == expected_states(original)["not-due"]
    logs = read_logs(store)
    assert len(logs) == len(original_logs(store.dialect_name)) + 1
    assert logs[-1]["app_name"] == "due"  # the log's ids carry on after the adopted rows


def test_adoption_refuses_duplicate_app_names_and_changes_nothing(db: StateStore) -> None:
    create_original(db.engine, Original(ongoing=False, unique_index=False))
    with db.engine.begin() as conn:
        conn.execute(sa.insert(_state_writer).values(app_name="due", error_count=0))

    with pytest.raises(StateStoreError, match="more than one row for due: delete"):
        migrate.upgrade(db.engine)

    assert migrate.current_revision(db.engine) is None
    inspector = sa.inspect(db.engine)
    assert "heartbeat" not in {c["name"] for c in inspector.get_columns("crontabber")}
    assert inspector.get_pk_constraint("crontabber_log")["constrained_columns"] == []


# -- many hosts at once ---------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import os, sys, time

    from crontabber.store import migrate
    from crontabber.store import open_store

    start, ready, url = sys.argv[1:]
    store = open_store(url)
    migrate.head_revision()  # read the revisions before the start, not after
    with store.engine.connect():
        pass  # and connect
    open(ready, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(start):
        if time.monotonic() > deadline:
            sys.exit("no start file")
        time.sleep(0.001)
    result = migrate.upgrade(store.engine)
    print(result.before, result.after)
    """
)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("name", ["older", "newer"])
def test_many_processes_upgrade_at_once(pg_url: str, tmp_path: Path, name: str) -> None:
    original = POSTGRES_ORIGINALS[name]
    store = open_store(pg_url)
    try:
        create_original(store.engine, original)
        start = tmp_path / "start"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(start), str(tmp_path / f"ready-{i}"), pg_url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(PROCESSES)
        ]
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < PROCESSES and time.monotonic() < deadline:
            time.sleep(0.01)
        start.touch()
        outputs = [process.communicate(timeout=120) for process in processes]

        assert [process.returncode for process in processes] == [0] * PROCESSES, outputs
        head = migrate.head_revision()
        results = sorted(stdout.strip() for stdout, _ in outputs)
        # exactly one process migrated; the others waited for it and found nothing to do
        assert results == sorted([f"None {head}"] + [f"{head} {head}"] * (PROCESSES - 1))
        with store.engine.connect() as conn:
            versions = conn.execute(sa.text(f"SELECT * FROM {migrate.VERSION_TABLE}")).all()
        assert versions == [(head,)]
        assert store.load_states() == expected_states(original)
        assert len(read_logs(store)) == len(original_logs("postgresql"))
    finally:
        store.close()


# -- is_current -----------------------------------------------------------------------


def test_an_empty_database_is_not_current(db: StateStore) -> None:
    assert migrate.is_current(db.engine) is False
    assert migrate.current_revision(db.engine) is None


@pytest.mark.parametrize("tables", ["original", "created before migrations"])
def test_a_database_without_a_revision_is_not_current(db: StateStore, tables: str) -> None:
    if tables == "original":
        create_original(db.engine, Original(ongoing=True))
    else:
        sql.metadata.create_all(db.engine)

    assert migrate.is_current(db.engine) is False
    assert migrate.current_revision(db.engine) is None


def test_a_migrated_database_is_current_in_one_statement(db: StateStore) -> None:
    migrate.upgrade(db.engine)
    statements: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _count(conn, cursor, statement: str, *args) -> None:
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    assert migrate.is_current(db.engine) is True
    assert len(statements) == 1, statements
    assert migrate.current_revision(db.engine) == migrate.head_revision()


def test_a_database_migrated_by_a_newer_crontabber(db: StateStore) -> None:
    migrate.upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0099_future'"))

    assert migrate.is_current(db.engine) is False
    with pytest.raises(migrate.MigrationError, match="'0099_future', which this crontabber"):
        migrate.upgrade(db.engine)


def test_an_unreachable_database_is_one_line() -> None:
    store = open_store("postgresql://nobody:secret@127.0.0.1:1/crontabber")
    try:
        with pytest.raises(migrate.MigrationError) as info:
            migrate.is_current(store.engine)
    finally:
        store.close()
    message = str(info.value)
    assert message.startswith("checking the schema of the state database postgresql+psycopg2://")
    assert "secret" not in message
    assert "\n" not in message


# -- the command line -----------------------------------------------------------------

CLI_JOBS = (
    Job("Due", "due"),
    Job("NotDue", "not-due", run='raise AssertionError("not due: must not run")'),
)


@pytest.mark.postgres
def test_the_command_adopts_an_original_database(pg_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    create_original(engine, POSTGRES_ORIGINALS["newer"])
    with engine.begin() as conn:  # the original's schedule, relative to the real clock
        conn.exec_driver_sql(
            "UPDATE crontabber SET next_run = now() + interval '2 hours' WHERE app_name = 'not-due'"
        )
        conn.exec_driver_sql(
            "UPDATE crontabber SET next_run = now() - interval '1 hour' WHERE app_name = 'due'"
        )
        logs_before = conn.exec_driver_sql("SELECT count(*) FROM crontabber_log").scalar()
    write_job_module(tmp_path, "adopted", *CLI_JOBS)
    config = write_config(
        tmp_path,
        "adopted.Due|1h\nadopted.NotDue|1d",
        database_url=pg_url,
        extra="    log_retention_days=0\n",  # the adopted log rows are older than 90 days
    )
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert "migrated the state database from schema revision none to" in result.stderr
    assert "ran due" in result.stderr and "not-due" not in result.stderr
    with engine.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM crontabber_log").scalar() == logs_before + 1
        )
        names = set(conn.exec_driver_sql("SELECT app_name FROM crontabber").scalars())
    engine.dispose()
    assert {"due", "not-due"} <= names


@pytest.mark.postgres
def test_auto_migrate_off_says_to_migrate_and_changes_nothing(pg_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    create_original(engine, POSTGRES_ORIGINALS["older"])
    write_job_module(tmp_path, "adopted", *CLI_JOBS)
    config = write_config(
        tmp_path, "adopted.Due|1h", database_url=pg_url, extra="    auto_migrate=False\n"
    )
    refused = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert refused.status == 1
    assert refused.stderr.startswith("crontabber: the schema of the state database postgresql")
    assert refused.stderr.endswith(
        "is out of date and crontabber.auto_migrate is off: run crontabber with --migrate\n"
    )
    assert refused.stderr.count("\n") == 1
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("crontabber")}
    assert "ongoing" not in columns
    migrated = run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path)
    assert migrated.status == 0, migrated.stderr
    assert migrated.stdout.startswith("migrated the state database from schema revision none to ")
    again = run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path)
    assert again.stdout.startswith("the state database is up to date")
    assert run_crontabber(f"--admin.conf={config}", cwd=tmp_path).status == 0
    engine.dispose()


def test_the_head_revision_constant_is_alembics_head() -> None:
    """is_current compares with a constant so that a run need not import Alembic."""
    assert migrate.head_revision() == migrate.HEAD_REVISION


def test_the_original_crontabbers_statements_work_on_the_newest_schema(store: StateStore) -> None:
    """The original crontabber reads and writes its own columns by name: the columns
    later revisions added are nullable or defaulted, so its statements work on a
    database crontabber has migrated, and crontabber reads what they wrote."""
    store.pause("other", actor="tester")  # the newest tables hold rows
    engine = store.engine
    state = sa.table(
        "crontabber",
        *(sa.column(column.name, column.type) for column in _state_writer.c),
    )
    with engine.begin() as conn:
        conn.execute(
            sa.insert(state).values(
                app_name="legacy",
                next_run=NOW + HOUR,
                first_run=NOW - DAY,
                last_run=NOW - HOUR,
                last_success=NOW - HOUR,
                error_count=0,
                depends_on=[],
                last_error={},
            )
        )
        conn.execute(
            sa.update(state).where(state.c.app_name == "legacy").values(next_run=NOW + 2 * HOUR)
        )
        conn.execute(
            sa.insert(_log_writer).values(
                app_name="legacy", log_time=NOW, duration=HOUR, success=NOW - HOUR
            )
        )
        [row] = conn.execute(
            sa.select(state.c.app_name, state.c.next_run, state.c.error_count).where(
                state.c.app_name == "legacy"
            )
        ).all()
    assert row.next_run == NOW + 2 * HOUR
    assert store.load_states()["legacy"].next_run == NOW + 2 * HOUR
    [entry] = store.read_log_page("legacy").entries
    assert entry.host is None and entry.output is None and entry.trigger is None
