"""crontabber_log is pruned to crontabber.log_retention_days, in small batches, about
once a day, at no cost to an idle tick but a look at the oldest row's time."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crontabber.run.runner import Runner
from crontabber.store import StateStore
from crontabber.store import tables as sql
from crontabber.store.trace import Recorder

DAY = dt.timedelta(days=1)
RETENTION = 90 * DAY


def seed_log(store: StateStore, ages: list[dt.timedelta]) -> None:
    now = store.read_snapshot().now
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(sql.crontabber_log),
            [{"app_name": "old-job", "log_time": now - age} for age in ages],
        )


def logged_ages(store: StateStore) -> list[int]:
    now = store.read_snapshot().now
    with store.engine.connect() as conn:
        times = conn.execute(sa.select(sql.crontabber_log.c.log_time)).scalars().all()
    return sorted(round((now - time) / DAY) for time in times)


def recording(store: StateStore) -> Recorder:
    recorder = Recorder()
    store.close()
    store.connection_factory = recorder.connect
    return recorder


def test_old_rows_are_pruned_in_batches_and_recent_ones_kept(store: StateStore) -> None:
    seed_log(store, [100 * DAY] * 2500 + [95 * DAY, 10 * DAY])
    recorder = recording(store)
    Runner([], store, log_retention=RETENTION).run()
    assert recorder.statements == ["read_states", "prune_log", "prune_log", "prune_log"]
    assert logged_ages(store) == [10]
    recorder.statements.clear()
    Runner([], store, log_retention=RETENTION).run()  # the next tick: nothing to prune
    assert recorder.statements == ["read_states"]


def test_rows_a_little_past_the_retention_wait_for_the_daily_prune(store: StateStore) -> None:
    seed_log(store, [RETENTION + dt.timedelta(hours=6), 10 * DAY])
    recorder = recording(store)
    Runner([], store, log_retention=RETENTION).run()
    assert recorder.statements == ["read_states"]
    assert logged_ages(store) == [10, 90]


def test_no_retention_keeps_every_row(store: StateStore) -> None:
    seed_log(store, [3650 * DAY])
    recorder = recording(store)
    Runner([], store, log_retention=None).run()
    assert recorder.statements == ["read_states"]
    assert logged_ages(store) == [3650]
