"""Cron schedules through the runner and a real state store (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from crontabber import App
from crontabber.jobs.schedule import CronSchedule
from crontabber.jobs.spec import JobSpec
from crontabber.mixins import as_backfill_cron_app
from crontabber.run.runner import Result, Runner
from crontabber.store import Holder, StateStore

from ..helpers.specs import at

BERLIN = ZoneInfo("Europe/Berlin")
calls: list[tuple[str, dt.datetime | None]] = []


class Report(App):
    app_name = "weekday-report"

    def run(self) -> None:
        calls.append((self.app_name, None))


@as_backfill_cron_app
class Totals(App):
    app_name = "weekday-totals"

    def run(self, date: dt.datetime) -> None:
        calls.append((self.app_name, date))


@pytest.fixture(autouse=True)
def _clear() -> None:
    calls.clear()


def cron_spec(app_class: type, expression: str, zone: dt.tzinfo = BERLIN) -> JobSpec:
    return JobSpec(
        app_name=app_class.app_name,
        app_class=app_class,
        class_path=f"{app_class.__module__}.{app_class.__qualname__}",
        schedule=CronSchedule(expression, zone),
    )


def test_after_a_week_down_a_cron_job_runs_once_then_keeps_its_schedule(
    store: StateStore,
) -> None:
    runner = Runner([cron_spec(Report, "0 2 * * MON-FRI")], store)
    runner.run(now=at("2026-03-02 01:00"))  # Monday 02:00 CET
    assert store.load_states()["weekday-report"].next_run == at("2026-03-03 01:00")
    report = runner.run(now=at("2026-03-09 12:00"))  # back a week later, on Monday noon
    assert [job.result for job in report.jobs] == [Result.SUCCEEDED]
    assert store.load_states()["weekday-report"].next_run == at("2026-03-10 01:00")
    assert runner.run(now=at("2026-03-09 12:05")).jobs == ()
    runner.run(now=at("2026-03-10 01:00"))
    assert len(calls) == 3


def test_backfill_cron_job_gets_one_call_per_missed_instant(store: StateStore) -> None:
    runner = Runner([cron_spec(Totals, "0 2 * * MON-FRI")], store)
    runner.run(now=at("2026-03-02 01:00"))
    runner.run(now=at("2026-03-09 12:00"))
    dates = [date for _, date in calls]
    assert dates == [
        at("2026-03-02 01:00"),  # never ran: once, for now
        at("2026-03-03 01:00"),
        at("2026-03-04 01:00"),
        at("2026-03-05 01:00"),
        at("2026-03-06 01:00"),
        at("2026-03-09 01:00"),
    ]
    assert all(date is not None and date.tzinfo is not None for date in dates)
    state = store.load_states()["weekday-totals"]
    assert state.last_success == at("2026-03-09 01:00")
    assert state.next_run == at("2026-03-10 01:00")


def test_never_run_cron_job_waits_for_its_schedule(store: StateStore) -> None:
    runner = Runner([cron_spec(Report, "0 2 * * MON-FRI")], store)
    assert runner.run(now=at("2026-03-07 12:00")).jobs == ()  # Saturday
    assert "weekday-report" not in store.load_states()
    assert [job.result for job in runner.run(now=at("2026-03-09 01:02")).jobs] == [Result.SUCCEEDED]


@pytest.mark.parametrize(
    ("expression", "start", "end", "expected"),
    [
        # Weekdays at 02:00 Berlin, Thursday to Friday across the week clocks spring forward.
        ("0 2 * * MON-FRI", "2026-03-26 00:00", "2026-04-04 00:00", 7),
        # Daily at 02:30 Berlin over both transitions' days: once a day.
        ("30 2 * * *", "2026-03-28 00:00", "2026-03-31 00:00", 3),
        ("30 2 * * *", "2026-10-24 00:00", "2026-10-27 00:00", 3),
    ],
)
def test_two_hosts_ticking_across_dst_run_each_instant_once(
    store: StateStore, expression: str, start: str, end: str, expected: int
) -> None:
    spec = cron_spec(Report, expression)
    hosts = [Runner([spec], store, holder=Holder(name, 1)) for name in ("host-a", "host-b")]
    now, stop = at(start), at(end)
    while now < stop:
        for offset, runner in enumerate(hosts):  # both hosts' crontabs fire each 10 minutes
            runner.run(now=now + dt.timedelta(seconds=offset))
        now += dt.timedelta(minutes=10)
    assert len(calls) == expected
    next_run = store.load_states()["weekday-report"].next_run
    assert next_run == spec.schedule.next_run_after(stop)
