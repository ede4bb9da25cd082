"""The state database from the side: claims held by someone else, a job's row and log
as the tests read them, and connections terminated under a run."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

import sqlalchemy as sa

from crontabber.store import ClaimStatus, Holder, StateStore
from crontabber.store import tables as sql
from crontabber.store.lease import LeasePolicy


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
    makes the last heartbeat an hour old and the lease lapsed since (and the
    server's timeline, which the lease rule counts from, older still). ``since``
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
            if lapsed and store.dialect_name == "postgresql":
                # the server "came up" (its timeline was first seen) before that, too
                conn.exec_driver_sql(
                    "UPDATE crontabber_timeline SET since = since - interval '2 hours'"
                )
    return holder


def state_of(url: str, name: str) -> dict:
    """The job's row, as a dict, with ``logs``: the exc_type of each of its log rows."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        row = conn.execute(sa.select(sql.crontabber).where(sql.crontabber.c.app_name == name)).one()
        logs = (
            conn.execute(
                sa.select(sql.crontabber_log.c.exc_type).where(
                    sql.crontabber_log.c.app_name == name
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return {**row._mapping, "logs": logs}


def terminate(connection, admin_engine: sa.Engine) -> int:
    """Terminate the server process of a psycopg2 connection and wait until it is gone."""
    pid = connection.get_backend_pid()
    with admin_engine.connect() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        deadline = time.monotonic() + 10
        while admin.exec_driver_sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
        ).scalar():
            assert time.monotonic() < deadline, "the backend did not go"
            time.sleep(0.01)
    return pid


def waiting_on_a_lock(admin: sa.Connection, database: str, statement: str) -> bool:
    """Whether a backend of ``database`` runs ``statement...`` and waits for a lock."""
    return bool(
        admin.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s "
            "AND wait_event_type = 'Lock' AND query LIKE %(query)s",
            {"db": database, "query": "%" + statement + "%"},
        ).scalar()
    )


@contextlib.contextmanager
def table_locked(url: str, table: str = "crontabber") -> Iterator[sa.Connection]:
    """``LOCK TABLE`` held in a transaction of another connection until the block ends."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection, connection.begin():
            connection.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield connection
    finally:
        engine.dispose()
