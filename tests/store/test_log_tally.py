"""The page's count of crontabber_log (crontabber/store/tally.py), on SQLite and
PostgreSQL: the whole log once, then only the rows added, by the primary key; a row
that commits after a higher one is still counted; pruning does not lower a count; a
log made anew is counted again."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from crontabber.store import StateStore
from crontabber.store.records import LogCounts
from crontabber.store.tally import LogTally
from crontabber.store.trace import Recorder

T0 = dt.datetime(2026, 1, 5, 3, 0, tzinfo=dt.timezone.utc)
SECOND = dt.timedelta(seconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def log(connection: sa.Connection, app_name: str, minute: int, *, failed: bool = False) -> int:
    """A log row at T0 + ``minute`` minutes that took ``minute`` seconds; its id."""
    at = T0 + dt.timedelta(minutes=minute)
    took = dt.timedelta(seconds=minute)
    if connection.dialect.name == "sqlite":  # crontabber's text encoding (see store/sqlite.py)
        at_value: object = at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        took_value: object = (dt.datetime(1970, 1, 1) + took).strftime("%Y-%m-%d %H:%M:%S.%f")
    else:
        at_value, took_value = at, took
    return connection.execute(
        sa.text(
            "INSERT INTO crontabber_log (app_name, log_time, duration, exc_type, superseded) "
            "VALUES (:app_name, :at, :took, :exc_type, false) RETURNING id"
        ),
        {
            "app_name": app_name,
            "at": at_value,
            "took": took_value,
            "exc_type": "E" if failed else None,
        },
    ).scalar_one()


def test_the_whole_log_once_then_only_the_rows_added(store: StateStore, engine: sa.Engine) -> None:
    with engine.begin() as connection:
        log(connection, "a", 1)
        log(connection, "a", 2, failed=True)
        log(connection, "b", 3)
    tally = LogTally()
    assert tally.read(store) == {
        "a": LogCounts(2, 1, dt.timedelta(seconds=2)),
        "b": LogCounts(1, 0, dt.timedelta(seconds=3)),
    }
    with engine.begin() as connection:
        log(connection, "a", 0, failed=True)  # an older run logged late: not the newest
        log(connection, "c", 4)
    recorder = Recorder()
    store.close()
    store.connection_factory = recorder.connect  # type: ignore[method-assign]
    assert tally.read(store) == {
        "a": LogCounts(3, 2, dt.timedelta(seconds=2)),
        "b": LogCounts(1, 0, dt.timedelta(seconds=3)),
        "c": LogCounts(1, 0, dt.timedelta(seconds=4)),
    }
    assert recorder.statements == ["log_added"]  # no count of the whole log
    with engine.begin() as connection:  # pruned: a counter does not go down
        connection.execute(sa.text("DELETE FROM crontabber_log WHERE app_name = 'a'"))
    assert tally.read(store)["a"] == LogCounts(3, 2, dt.timedelta(seconds=2))
    assert tally.holes == {}


def test_a_log_made_anew_is_counted_again(store: StateStore, engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for minute in range(5):
            log(connection, "a", minute)
    tally = LogTally()
    assert tally.read(store)["a"].runs == 5
    with engine.begin() as connection:  # as a restore of an older dump, say
        connection.execute(sa.text("DELETE FROM crontabber_log"))
        if connection.dialect.name == "postgresql":  # SQLite's next id is the highest + 1
            connection.execute(sa.text("ALTER SEQUENCE crontabber_log_id_seq RESTART"))
        log(connection, "b", 1)
    assert tally.read(store) == {"b": LogCounts(1, 0, dt.timedelta(seconds=1))}


@pytest.mark.postgres
@pytest.mark.parametrize("first_read", [True, False], ids=["at-the-first-read", "later"])
def test_a_row_that_commits_after_a_higher_one_is_counted(
    pg_store: StateStore, pg_url: str, first_read: bool
) -> None:
    """An id is taken at the insert: a slow transaction's row shows after later ones."""
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    tally = LogTally()
    if not first_read:
        assert tally.read(pg_store) == {}
    slow = engine.connect()
    try:
        slow_transaction = slow.begin()
        slow_id = log(slow, "slow", 1)
        with engine.begin() as connection:
            quick_id = log(connection, "quick", 2)
        assert quick_id > slow_id
        assert tally.read(pg_store) == {"quick": LogCounts(1, 0, dt.timedelta(seconds=2))}
        assert set(tally.holes) == {slow_id}
        slow_transaction.commit()
    finally:
        slow.close()
        engine.dispose()
    assert tally.read(pg_store) == {
        "quick": LogCounts(1, 0, dt.timedelta(seconds=2)),
        "slow": LogCounts(1, 0, dt.timedelta(seconds=1)),
    }
    assert tally.holes == {}


@pytest.mark.postgres
def test_a_missing_id_is_waited_for_hole_seconds(pg_store: StateStore, pg_url: str) -> None:
    """A rolled-back insert leaves its id unused for good (a sequence is not rolled
    back; SQLite takes the highest id + 1 again): asked for, then given up."""
    store, engine = pg_store, sa.create_engine(pg_url, poolclass=sa.NullPool)
    clock = Clock()
    tally = LogTally(clock=clock, hole_seconds=600)
    tally.read(store)
    with engine.connect() as connection:
        with connection.begin() as transaction:
            lost = log(connection, "a", 1)
            transaction.rollback()
        with connection.begin():
            log(connection, "a", 2)
    assert tally.read(store)["a"].runs == 1
    assert set(tally.holes) == {lost}
    clock.now += 599
    tally.read(store)
    assert set(tally.holes) == {lost}
    clock.now += 1
    tally.read(store)
    assert tally.holes == {}
    engine.dispose()


@pytest.mark.postgres
def test_the_tally_matches_a_count_of_the_log_while_hosts_write_to_it(
    pg_store: StateStore, pg_url: str
) -> None:
    """Writers whose transactions commit out of id order, read throughout: at the end
    the tally has every row once."""
    errors: list[Exception] = []

    def writer(name: str) -> None:
        engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                for minute in range(150):
                    with connection.begin():
                        log(connection, name, minute, failed=minute % 7 == 0)
                        time.sleep(random.random() / 500)  # commits out of id order
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    tally = LogTally()
    writers = [threading.Thread(target=writer, args=(f"host-{i}",)) for i in range(4)]
    for thread in writers:
        thread.start()
    reads = 0
    while any(thread.is_alive() for thread in writers):
        tally.read(pg_store)
        reads += 1
    for thread in writers:
        thread.join()
    assert errors == []
    counted = tally.read(pg_store)
    fresh = LogTally().read(pg_store)
    assert counted == fresh
    assert {name: c.runs for name, c in counted.items()} == {f"host-{i}": 150 for i in range(4)}
    assert {c.failures for c in counted.values()} == {22}  # minutes 0, 7, ... 147
    assert tally.holes == {} and reads > 1
