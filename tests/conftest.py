"""Fixtures: a fresh PostgreSQL database per test, SQLite files, stores on both, a
private PostgreSQL cluster, a wrong wall clock. What they build is in tests/helpers.

PostgreSQL is found through CRONTABBER_TEST_DATABASE_URL (default: the local
server). When none answers the PostgreSQL tests skip with the reason, except
under CI=true, where they fail: CI never skips them silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from crontabber.store import StateStore, open_store

from .helpers import pgcluster
from .helpers import wallclock as wallclock_shim
from .helpers.missing import skip_or_fail

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

# Off a terminal a run logs only warnings and errors (so cron mails nothing when all
# is well); the tests read its INFO lines, so every crontabber they start, in a
# subprocess or not, logs at INFO unless a test says otherwise (configman reads
# options from the environment too). tests/cli/test_log_output.py checks the default.
os.environ.setdefault("logging.level", "INFO")


def _admin_url() -> sa.URL:
    url = sa.make_url(os.environ.get("CRONTABBER_TEST_DATABASE_URL", DEFAULT_PG_URL))
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return url


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(_admin_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        skip_or_fail(f"no PostgreSQL at {_admin_url().render_as_string()}: {exc.orig}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine: sa.Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"crontabber_test_{uuid.uuid4().hex[:12]}"
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = pg_admin_engine.url.set(database=name)
    yield url.render_as_string(hide_password=False)
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'crontabber.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


def _schema_store(url: str) -> Iterator[StateStore]:
    store = open_store(url)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    """A store with its schema, on SQLite and on PostgreSQL (through ``db_url``)."""
    yield from _schema_store(db_url)


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[StateStore]:
    yield from _schema_store(pg_url)


@pytest.fixture
def private_cluster() -> Iterator[pgcluster.PgCluster]:
    """A started private PostgreSQL cluster (tests/helpers/pgcluster.py), stopped and
    removed after the test."""
    reason = pgcluster.missing_requirement()
    if reason is not None:
        skip_or_fail(reason)
    cluster = pgcluster.PgCluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
def wallclock(tmp_path_factory: pytest.TempPathFactory) -> wallclock_shim.Wallclock:
    """The wall clock shim (tests/helpers/wallclock.py), built once per session."""
    return wallclock_shim.Wallclock(wallclock_shim.build(tmp_path_factory.mktemp("wallclock")))
