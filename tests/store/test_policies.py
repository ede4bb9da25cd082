"""A job's policies in the runner, on SQLite and PostgreSQL, in the database's clock:
failures back off, a job pauses itself after too many in a row, and an excluded day
is neither run nor due."""

from __future__ import annotations

import datetime as dt

from crontabber import App
from crontabber.jobs.policy import Calendar, JobPolicy
from crontabber.jobs.schedule import CronSchedule
from crontabber.jobs.spec import JobSpec
from crontabber.run.runner import Result, Runner
from crontabber.store import StateStore
from crontabber.store.lease import LeasePolicy
from crontabber.store.operators import RunNowStatus
from crontabber.store.records import Holder

from ..helpers.specs import at

RETRY = dt.timedelta(seconds=300)


class Failing(App):
    app_name = "failing"

    def run(self) -> None:
        raise RuntimeError("the disk is full")


class Daily(App):
    app_name = "daily"
    runs = 0

    def run(self) -> None:
        Daily.runs += 1


def job(app_class: type, policy: JobPolicy, schedule: object = None) -> JobSpec:
    return JobSpec(
        app_class.app_name,  # type: ignore[attr-defined]
        app_class,
        f"tests.{app_class.__name__}",
        schedule or CronSchedule("*/5 * * * *"),  # type: ignore[arg-type]
        policy=policy,
    )


def test_failures_back_off_and_the_job_pauses_itself(store: StateStore) -> None:
    policy = JobPolicy(error_retry_backoff=2, max_error_retry_time=1000, max_consecutive_failures=4)
    runner = Runner(
        [job(Failing, policy)],
        store,
        lease=LeasePolicy(host="here"),
        holder=Holder.this_process("here"),
    )
    waits = []
    for _ in range(4):
        report = runner.run()
        assert [j.result for j in report.jobs] == [Result.FAILED]
        state = store.load_states()["failing"]
        waits.append((state.next_run - state.last_run).total_seconds())
        status, _ = store.run_now("failing", depends_on=(), actor="tester")  # due at once
    assert [round(wait) for wait in waits] == [300, 600, 1000, 1000]
    snapshot = store.read_snapshot()
    pause = snapshot.paused["failing"]
    assert pause.reason is not None and pause.reason.startswith("auto-paused after 4 failures")
    assert "RuntimeError: the disk is full" in pause.reason
    assert pause.actor == "crontabber on here (auto-pause)"
    assert status is RunNowStatus.PAUSED  # the last run-now, after the fourth failure
    [newest, *_] = store.read_audit_log("failing")
    assert newest.action == "pause" and newest.actor.endswith("(auto-pause)")


def test_an_excluded_holiday_is_neither_run_nor_due(store: StateStore) -> None:
    Daily.runs = 0
    policy = JobPolicy(exclude=Calendar("RDATE:20261225"))
    spec = job(Daily, policy, CronSchedule("0 6 * * *"))
    runner = Runner([spec], store, lease=LeasePolicy(host="here"))
    runner.run(now=at("2026-12-24 06:00"))
    assert Daily.runs == 1
    assert store.load_states()["daily"].next_run == at("2026-12-26 06:00")
    report = runner.run(now=at("2026-12-25 06:30"))
    assert report.jobs == () and Daily.runs == 1
    assert report.next_due == at("2026-12-26 06:00")
    runner.run(now=at("2026-12-26 06:00"))
    assert Daily.runs == 2
