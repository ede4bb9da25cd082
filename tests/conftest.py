"""Shared fixtures: a fresh PostgreSQL database per test, SQLite files, job specs.

PostgreSQL is found through CRONTABBER_TEST_DATABASE_URL (default: the local
server). When none answers the PostgreSQL tests skip with the reason, except
under CI=true, where they fail: CI never skips them silently.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from crontabber.jobs.app import as_app_names
from crontabber.jobs.schedule import FrequencySchedule
from crontabber.jobs.spec import JobSpec
from crontabber.store import ClaimStatus, Holder, StateStore, open_store
from crontabber.store import tables as sql
from crontabber.store.lease import LeasePolicy

from .pgcluster import private_cluster  # noqa: F401 (a fixture for every test module)

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

# Off a terminal a run logs only warnings and errors (so cron mails nothing when all
# is well); the tests read its INFO lines, so every crontabber they start, in a
# subprocess or not, logs at INFO unless a test says otherwise (configman reads
# options from the environment too). tests/test_quiet.py checks the default.
os.environ.setdefault("logging.level", "INFO")
UTC = dt.UTC


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
        message = f"no PostgreSQL at {_admin_url().render_as_string()}: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
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


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    store = open_store(db_url)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[StateStore]:
    store = open_store(pg_url)
    store.ensure_schema()
    yield store
    store.close()


def make_spec(
    app_class: type,
    frequency: dt.timedelta = dt.timedelta(minutes=5),
    time: dt.time | None = None,
    config: object = None,
) -> JobSpec:
    return JobSpec(
        app_name=app_class.app_name,
        app_class=app_class,
        class_path=f"{app_class.__module__}.{app_class.__qualname__}",
        schedule=FrequencySchedule(frequency, time),
        depends_on=as_app_names(app_class.depends_on),
        config=config,
    )


def hold_claim(
    store: StateStore,
    name: str,
    since: dt.datetime | None = None,
    host: str = "worker-7",
    pid: int = 4321,
    *,
    age: dt.timedelta | None = None,
    lapsed: bool = False,
) -> Holder:
    """Make ``name`` claimed by another process (``host``, ``pid``), through a real claim.

    Its lease is live (an hour, in the database's clock) unless ``lapsed``, which
    makes the last heartbeat an hour old and the lease lapsed since. ``since``
    rewrites when the claim was made (and its heartbeat) to a fixed time, for
    tests that pass their own ``now``; ``age`` makes it that much older than the
    database's now instead.
    """
    holder = Holder(host, pid)
    claim = store.claim(
        name,
        depends_on=(),
        seen=store.load_states().get(name),
        force=True,
        lease=LeasePolicy(
            host="the-claimer",
            heartbeat_interval=dt.timedelta(hours=1),
            stale_intervals=1,
            max_age=dt.timedelta(days=36500),
        ),
        holder=holder,
        retry_after=dt.timedelta(minutes=5),
    )
    assert claim.status is ClaimStatus.CLAIMED, claim
    state = store.load_states()[name]
    values: dict[str, dt.datetime] = {}
    if since is not None:
        values.update(ongoing=since, heartbeat=since)
    if age is not None:
        values.update(ongoing=state.ongoing - age)
    if lapsed:
        beat = state.heartbeat - dt.timedelta(hours=1)
        values.update(heartbeat=beat, lease_expires=beat + dt.timedelta(seconds=1))
    if values:
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(sql.crontabber).where(sql.crontabber.c.app_name == name).values(values)
            )
    return holder


def at(text: str) -> dt.datetime:
    """An aware UTC datetime from ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
