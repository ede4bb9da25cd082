"""Another session holds ``LOCK TABLE crontabber`` (a job's own connection, say, for
the length of its run): crontabber's statements (a heartbeat, an outcome, a read) end
at the server's ``lock_timeout`` with one line that says so, never hang on the lock,
never report the claim taken over, and work again once the lock is released (issue 26).

The timeouts are the connection's own settings (asked for at connect), or sent with a
statement as ``SET LOCAL`` in the same query string (see ``timeouts`` in
``sql/postgresql.sql``): the tests also check that they hold and that nothing outlives
the statement on the connection.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest
import sqlalchemy as sa

from crontabber.errors import MigrationError, StateStoreError
from crontabber.store import (
    Claim,
    ClaimStatus,
    Holder,
    JobState,
    Outcome,
    StateStore,
    migrate,
    open_store,
)
from crontabber.store.lease import Heartbeat, LeasePolicy
from crontabber.store.trace import trace

from ..helpers.store import table_locked
from ..helpers.waiting import wait_until

pytestmark = pytest.mark.postgres

TIMEOUT = dt.timedelta(seconds=2)  # state_timeout: lock_timeout 0.6 s, statement_timeout 1.5 s
RETRY_FOR = dt.timedelta(seconds=3)  # state_retry
LOCKED = re.compile(r"the state tables are locked by another session \(lock_timeout [\d.]+s\)")
WINDOW = dt.timedelta(minutes=5)
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(pg_url: str) -> Iterator[StateStore]:
    store = open_store(pg_url, retry_for=RETRY_FOR, timeout=TIMEOUT)
    store.ensure_schema()
    yield store
    store.close()


def claim(store: StateStore, name: str, seen: JobState | None) -> Claim:
    return store.claim(
        name,
        depends_on=(),
        seen=seen,
        force=True,
        lease=LeasePolicy(host="here", heartbeat_interval=WINDOW, stale_intervals=1),
        holder=Holder("here", 4321),
        retry_after=dt.timedelta(minutes=5),
    )


def claimed(store: StateStore, name: str = "job") -> Holder:
    made = claim(store, name, store.load_states().get(name))
    assert made.status is ClaimStatus.CLAIMED and made.holder is not None, made
    return made.holder


def outcome() -> Outcome:
    return Outcome(NOW, NOW, dt.timedelta(seconds=1), NOW + dt.timedelta(hours=1))


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


def test_a_heartbeat_behind_a_table_lock_fails_in_one_line_and_renews_after(
    store: StateStore, pg_url: str
) -> None:
    holder = claimed(store)
    with table_locked(pg_url):
        started = time.monotonic()
        with pytest.raises(StateStoreError) as failed:
            store.heartbeat("job", holder, WINDOW)
        took = time.monotonic() - started
    assert LOCKED.fullmatch(one_line(failed.value)), failed.value
    assert "taken over" not in str(failed.value)
    assert took < TIMEOUT.total_seconds(), took  # the server ended it, not the client's deadline
    assert store.heartbeat("job", holder, WINDOW) is True


def test_the_connection_survives_a_lock_timeout(store: StateStore, pg_url: str) -> None:
    """The server cancels the statement before the client's deadline: no reconnect."""
    connections: list[int] = []

    def hook(event: str, _name: str, connection: object) -> None:
        if event == "before":
            connections.append(id(connection))

    trace(store, hook)
    holder = claimed(store)
    with table_locked(pg_url), pytest.raises(StateStoreError):
        store.heartbeat("job", holder, WINDOW)
    assert store.heartbeat("job", holder, WINDOW) is True
    assert len(set(connections)) == 1


def test_recording_an_outcome_behind_a_table_lock_is_retried_then_said_in_one_line(
    store: StateStore, pg_url: str
) -> None:
    holder = claimed(store)
    with table_locked(pg_url):
        started = time.monotonic()
        with pytest.raises(StateStoreError) as failed:
            store.finish("job", holder, outcome())
        took = time.monotonic() - started
    line = one_line(failed.value)
    assert line.startswith("recording the outcome of job failed: "), line
    assert LOCKED.search(line), line
    assert line.endswith("; its claim will expire and a later run recovers"), line
    assert RETRY_FOR.total_seconds() - 1 < took < RETRY_FOR.total_seconds() + 2, took
    state = store.finish("job", holder, outcome())  # the lock is gone: it is recorded
    assert state is not None and state.ongoing is None


def test_an_outcome_is_recorded_once_a_lock_held_for_a_while_is_released(
    store: StateStore, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    holder = claimed(store)
    released = threading.Event()
    with table_locked(pg_url) as locking:

        def release_later() -> None:
            time.sleep(1.0)  # longer than lock_timeout, shorter than state_retry
            locking.rollback()
            released.set()

        thread = threading.Thread(target=release_later)
        thread.start()
        with caplog.at_level(logging.WARNING, logger="crontabber"):
            state = store.finish("job", holder, outcome())
        thread.join()
    assert released.is_set()
    assert state is not None and state.ongoing is None and state.ongoing_token is None
    retried = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert retried and all(LOCKED.search(message) for message in retried), retried


def test_a_read_behind_a_table_lock_fails_in_one_line_and_works_after(
    store: StateStore, pg_url: str
) -> None:
    claimed(store)
    with table_locked(pg_url), pytest.raises(StateStoreError) as failed:
        store.load_states()
    line = one_line(failed.value)
    assert line.startswith("reading the jobs' state failed: "), line
    assert LOCKED.search(line), line
    assert "job" in store.load_states()


def test_a_claim_behind_a_table_lock_is_not_taken_for_another_process_claiming(
    store: StateStore, pg_url: str
) -> None:
    """A lock_timeout and a NOWAIT lock that was not available share SQLSTATE 55P03: the
    first is trouble (retried, then one line), the second another process's claim."""
    store.finish("job", claimed(store), outcome())  # its row, no claim held
    seen = store.load_states()["job"]
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as locking, locking.begin():
            locking.exec_driver_sql("SELECT * FROM crontabber WHERE app_name = 'job' FOR UPDATE")
            started = time.monotonic()
            assert claim(store, "job", seen).status is ClaimStatus.LOCKED
            assert time.monotonic() - started < 0.5  # NOWAIT: at once
    finally:
        engine.dispose()
    with table_locked(pg_url), pytest.raises(StateStoreError) as failed:
        claim(store, "job", seen)
    line = one_line(failed.value)
    assert line.startswith("claiming job failed: "), line
    assert LOCKED.search(line), line
    assert claim(store, "job", seen).status is ClaimStatus.CLAIMED


def test_a_heartbeat_kept_from_renewing_loses_the_lease_as_not_renewed_never_as_taken_over(
    store: StateStore, pg_url: str
) -> None:
    holder = claimed(store)
    lost: list[str] = []
    window = dt.timedelta(seconds=3)  # renew deadline: 2 s
    with (
        Heartbeat(
            lambda name, holding: store.heartbeat(name, holding, window),
            dt.timedelta(milliseconds=200),
            window=window,
            on_lost=lambda _name, _holder, reason: lost.append(reason),
            server_down=store.server_is_down,
        ) as heartbeat,
        heartbeat.holding("job", holder),
        table_locked(pg_url),
    ):
        wait_until(lambda: lost, "the lease is lost", 15)
    assert len(lost) == 1
    assert lost[0].startswith("it could not be renewed for "), lost
    assert LOCKED.search(lost[0]), lost
    assert "taken over" not in lost[0]


def test_a_lock_released_within_the_renew_deadline_costs_the_lease_nothing(
    store: StateStore, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    holder = claimed(store)
    lost: list[str] = []
    window = dt.timedelta(seconds=9)  # renew deadline: 6 s
    with (
        caplog.at_level(logging.WARNING, logger="crontabber"),
        Heartbeat(
            lambda name, holding: store.heartbeat(name, holding, window),
            dt.timedelta(milliseconds=200),
            window=window,
            on_lost=lambda _name, _holder, reason: lost.append(reason),
            server_down=store.server_is_down,
        ) as heartbeat,
        heartbeat.holding("job", holder),
    ):
        with table_locked(pg_url):
            wait_until(
                lambda: any("heartbeat of job failed" in r.getMessage() for r in caplog.records),
                "a beat fails",
                10,
            )
        wait_until(
            lambda: any("renews the lease again" in r.getMessage() for r in caplog.records),
            "a beat renews the lease again",
            10,
        )
    assert lost == []
    failed = [r.getMessage() for r in caplog.records if "heartbeat of job failed" in r.getMessage()]
    assert LOCKED.search(failed[0]), failed


def test_give_up_ends_the_retries_behind_a_lock_at_once(store: StateStore, pg_url: str) -> None:
    holder = claimed(store)
    asked: list[float] = []

    def give_up() -> bool:
        asked.append(time.monotonic())
        return True  # as when a SIGTERM has come

    store.give_up = give_up
    with table_locked(pg_url):
        started = time.monotonic()
        with pytest.raises(StateStoreError) as failed:
            store.finish("job", holder, outcome())
        took = time.monotonic() - started
    assert LOCKED.search(one_line(failed.value)), failed.value
    assert len(asked) == 1  # asked before the first pause, and the pause was not taken
    assert took < 1.5, took  # one lock_timeout, not state_retry


def test_the_timeouts_hold_for_each_statement_and_leave_nothing_on_the_connection(
    store: StateStore,
) -> None:
    """The connection is opened with the usual timeouts as its own settings; a statement
    with others (a heartbeat under a short lease) is sent after SET LOCAL
    lock_timeout and statement_timeout in the same query string: one implicit
    transaction, so that after it (and behind a transaction-pooling PgBouncer) the
    connection is as it was."""
    after: list[tuple[str, str, str]] = []

    def hook(event: str, name: str, connection: psycopg2.extensions.connection) -> None:
        if event == "after" and name != "session_timeouts":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
                )
                after.append((name, *cursor.fetchone()))

    trace(store, hook)
    holder = claimed(store)
    store.heartbeat("job", holder, WINDOW)
    store.heartbeat("job", holder, dt.timedelta(seconds=3))  # 1 s: lock and statement 500 ms
    store.finish("job", holder, outcome())
    assert [name for name, _, _ in after] == [
        "read_states",
        "insert_state",
        "claim",
        "beat",
        "beat",
        "finish",
    ]
    assert {(lock, statement) for _, lock, statement in after} == {("600ms", "1500ms")}
    seconds = store.server_timeouts(TIMEOUT.total_seconds())
    assert seconds == {"lock_timeout_ms": 600, "statement_timeout_ms": 1500}


def test_a_statement_past_its_statement_timeout_is_said_in_one_line(store: StateStore) -> None:
    """The server ends a statement that runs too long a little before the client's
    deadline would shut the connection down."""

    def sleeping(connection: psycopg2.extensions.connection) -> None:
        with connection.cursor() as cursor:
            # As the store sends its own statements (PostgresStore._bounded)
            cursor.execute(store.sql["timeouts"] + ";\nSELECT pg_sleep(5)", store._timeouts)

    started = time.monotonic()
    with pytest.raises(StateStoreError) as failed:
        store._retrying("sleeping", sleeping, claimed=False)
    took = time.monotonic() - started
    line = one_line(failed.value)
    ran_past = r"sleeping failed: the statement ran past its statement_timeout \([\d.]+s\)"
    assert re.fullmatch(ran_past, line), line
    assert took < RETRY_FOR.total_seconds() + TIMEOUT.total_seconds(), took


def test_a_migration_behind_a_table_lock_fails_in_one_line_instead_of_queueing_all(
    store: StateStore, pg_url: str
) -> None:
    """An ALTER TABLE waiting for a lock would queue every other statement on the table
    behind it: once it holds the schema lock, a migration waits lock_timeout at most."""
    from alembic import command

    config = migrate._config()
    with store.engine.begin() as connection:  # back to before 0006 altered crontabber
        config.attributes["connection"] = connection
        command.downgrade(config, "0005_next_run_index")
    with table_locked(pg_url):
        started = time.monotonic()
        with pytest.raises(MigrationError) as failed:
            store.migrate()
        took = time.monotonic() - started
    line = one_line(failed.value)
    assert line.startswith("migrating the state database "), line
    assert "lock timeout" in line, line
    assert took < TIMEOUT.total_seconds(), took
    assert store.migrate() == ("0005_next_run_index", migrate.HEAD_REVISION)
