"""Backfill jobs: one call per missed date, each date recorded as it succeeds."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crontabber import App
from crontabber.mixins import as_backfill_cron_app
from crontabber.run.runner import Result, Runner
from crontabber.store import StateStore
from crontabber.store import tables as sql

from ..helpers.specs import at, make_spec

DAY = dt.timedelta(days=1)
calls: list[dt.datetime] = []
fail_on: set[dt.datetime] = set()


@as_backfill_cron_app
class Daily(App):
    app_name = "daily-backfill"

    def run(self, date: dt.datetime) -> None:
        if date in fail_on:
            raise RuntimeError(f"cannot do {date:%Y-%m-%d}")
        calls.append(date)


@pytest.fixture(autouse=True)
def _clear() -> None:
    calls.clear()
    fail_on.clear()


def daily(time: dt.time | None = dt.time(3, 0)):
    return make_spec(Daily, frequency=DAY, time=time)


def set_state(store: StateStore, **values: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(sql.crontabber).values(**values))


def test_never_run_backfill_runs_once_for_now(store: StateStore) -> None:
    now = at("2026-03-01 03:10")
    Runner([daily()], store).run(now=now)
    assert calls == [now]
    assert calls[0].tzinfo is not None and calls[0].utcoffset() == dt.timedelta(0)
    state = store.load_states()["daily-backfill"]
    assert state.last_success == now
    assert state.next_run == at("2026-03-02 03:00")


def test_three_missed_days_run_three_dates_in_order(store: StateStore) -> None:
    Runner([daily()], store).run(now=at("2026-03-01 03:00"))
    calls.clear()
    report = Runner([daily()], store).run(now=at("2026-03-04 03:30"))
    assert calls == [at("2026-03-02 03:00"), at("2026-03-03 03:00"), at("2026-03-04 03:00")]
    assert report.with_result(Result.SUCCEEDED) == ["daily-backfill"]
    state = store.load_states()["daily-backfill"]
    assert state.last_success == at("2026-03-04 03:00")
    assert state.next_run == at("2026-03-05 03:00")
    with store.engine.connect() as conn:
        logged = conn.execute(sa.select(sql.crontabber_log.c.success)).scalars().all()
    assert sorted(logged)[-3:] == calls


def test_failure_stops_the_series_and_the_next_run_resumes_there(store: StateStore) -> None:
    Runner([daily()], store).run(now=at("2026-03-01 03:00"))
    calls.clear()
    fail_on.add(at("2026-03-03 03:00"))
    report = Runner([daily()], store).run(now=at("2026-03-04 03:30"))
    assert calls == [at("2026-03-02 03:00")]
    assert report.with_result(Result.FAILED) == ["daily-backfill"]
    state = store.load_states()["daily-backfill"]
    assert state.last_success == at("2026-03-02 03:00")
    assert state.error_count == 1
    assert "cannot do 2026-03-03" in state.last_error["value"]
    fail_on.clear()
    Runner([daily()], store).run(now=at("2026-03-04 04:00"))
    assert calls == [at("2026-03-02 03:00"), at("2026-03-03 03:00"), at("2026-03-04 03:00")]
    assert store.load_states()["daily-backfill"].error_count == 0


def test_dates_stay_aligned_to_the_time_when_runs_drift(store: StateStore) -> None:
    Runner([daily()], store).run(now=at("2026-03-01 03:00"))
    set_state(store, last_success=at("2026-03-01 03:17"), next_run=at("2026-03-02 03:00"))
    calls.clear()
    Runner([daily()], store).run(now=at("2026-03-03 03:05"))
    assert calls == [at("2026-03-02 03:00"), at("2026-03-03 03:00")]


def test_hourly_backfill_without_a_time(store: StateStore) -> None:
    spec = make_spec(Daily, frequency=dt.timedelta(hours=1))
    Runner([spec], store).run(now=at("2026-03-01 10:20"))
    calls.clear()
    Runner([spec], store).run(now=at("2026-03-01 13:25"))
    assert calls == [at("2026-03-01 11:20"), at("2026-03-01 12:20"), at("2026-03-01 13:20")]
    assert store.load_states()["daily-backfill"].next_run == at("2026-03-01 14:20")
