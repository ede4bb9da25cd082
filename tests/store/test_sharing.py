"""Hosts share the due jobs on PostgreSQL by claiming in turn (crontabber/run/sharing.py):
a row another process is claiming is skipped, not waited on or failed against, and a
job another host has just run is not run again."""

from __future__ import annotations

import datetime as dt

import psycopg2
import pytest

from crontabber import App
from crontabber.run.runner import Result, Runner, RunReport
from crontabber.store import StateStore, open_store
from crontabber.store.lease import LeasePolicy
from crontabber.store.records import Holder
from crontabber.store.trace import Recorder

from ..helpers.specs import at, make_spec

NOW = at("2026-03-01 12:00")
ran: list[str] = []


class First(App):
    app_name = "first"
    during: object = None

    def run(self) -> None:
        ran.append(self.app_name)
        if callable(First.during):
            First.during()


class Second(App):
    app_name = "second"

    def run(self) -> None:
        ran.append(self.app_name)


class Dependent(App):
    app_name = "dependent"
    depends_on = ("first",)

    def run(self) -> None:
        ran.append(self.app_name)


@pytest.fixture(autouse=True)
def _clean() -> None:
    ran.clear()
    First.during = None


def runner(store: StateStore, *classes: type[App], host: str) -> Runner:
    return Runner(
        [make_spec(cls, frequency=dt.timedelta(hours=1)) for cls in classes],
        store,
        holder=Holder(host, 1),
        lease=LeasePolicy(host=host),
    )


def a_then_b_during_first(pg_url: str, *classes: type[App]) -> tuple[RunReport, RunReport]:
    """Host A ticks; while A runs "first", host B ticks: both reports."""
    store_a, store_b = open_store(pg_url), open_store(pg_url)
    reports_b: list[RunReport] = []
    try:
        store_a.ensure_schema()
        First.during = lambda: reports_b.append(runner(store_b, *classes, host="b").run(now=NOW))
        report_a = runner(store_a, *classes, host="a").run(now=NOW)
    finally:
        store_a.close()
        store_b.close()
    [report_b] = reports_b
    return report_a, report_b


@pytest.mark.postgres
def test_a_row_another_process_is_claiming_is_skipped_not_waited_on(
    pg_store: StateStore, pg_url: str
) -> None:
    runner(pg_store, First, Second, host="a").run(now=NOW)  # both have rows now
    ran.clear()
    later = at("2026-03-01 14:00")
    locker = psycopg2.connect(**pg_store.url.connect_args, connect_timeout=5)
    recorder = Recorder()
    pg_store.close()
    pg_store.connection_factory = recorder.connect
    try:
        with locker.cursor() as cursor:  # another process in the middle of claiming "first"
            cursor.execute("SELECT 1 FROM crontabber WHERE app_name = 'first' FOR UPDATE")
        report = runner(pg_store, First, Second, host="b").run(now=later)
    finally:
        locker.rollback()
        locker.close()
    assert ran == ["second"]
    assert report.with_result(Result.SUCCEEDED) == ["second"]
    assert report.with_result(Result.LOCKED) == ["first"]
    # one claim that took "second", then its outcome written with a claim that found
    # nothing left it could take: no statement waited on the lock or failed against it
    assert recorder.statements == ["read_states", "claim_next", "finish_claim_next"]


@pytest.mark.postgres
def test_a_job_another_host_runs_meanwhile_is_not_run_again(pg_url: str) -> None:
    """Host A runs "first"; while it runs, host B ticks: it skips "first" (A holds it)
    and takes "second". When A looks again, "second" has been run: A leaves it."""
    report_a, report_b = a_then_b_during_first(pg_url, First, Second)
    assert sorted(ran) == ["first", "second"]  # each once
    assert report_a.with_result(Result.SUCCEEDED) == ["first"]
    assert [job.app_name for job in report_a.jobs] == ["first"]  # "second": run, not news
    assert report_b.with_result(Result.ONGOING) == ["first"]
    assert report_b.with_result(Result.SUCCEEDED) == ["second"]


@pytest.mark.postgres
def test_a_dependent_is_claimed_in_the_same_tick_once_its_dependency_succeeded(
    pg_store: StateStore,
) -> None:
    report = runner(pg_store, First, Dependent, host="a").run(now=NOW)
    assert ran == ["first", "dependent"]
    assert report.with_result(Result.SUCCEEDED) == ["first", "dependent"]


@pytest.mark.postgres
def test_a_dependent_held_back_all_tick_is_reported_skipped(pg_url: str) -> None:
    """While another host runs the dependency, the dependent is held back, not claimed."""
    _, report_b = a_then_b_during_first(pg_url, First, Dependent)
    assert report_b.with_result(Result.ONGOING) == ["first"]
    assert report_b.with_result(Result.SKIPPED) == ["dependent"]
    assert ran == ["first", "dependent"]  # A ran both, B neither


@pytest.mark.postgres
def test_a_run_of_many_jobs_costs_about_one_statement_each(pg_store: StateStore) -> None:
    """A cost guard: each outcome is written with the next claim, in one statement."""
    runner(pg_store, First, Second, Dependent, host="a").run(now=NOW)  # rows made
    ran.clear()
    recorder = Recorder()
    pg_store.close()
    pg_store.connection_factory = recorder.connect
    report = runner(pg_store, First, Second, Dependent, host="a").run(now=at("2026-03-01 14:00"))
    assert report.with_result(Result.SUCCEEDED) == ["first", "second", "dependent"]
    # one read, one claim, then each outcome written with the next claim ("dependent"
    # is claimed with "second"'s outcome, "first" having succeeded by then)
    assert recorder.statements == [
        "read_states",
        "claim_next",  # first
        "finish_claim_next",  # first's outcome; claims second
        "finish_claim_next",  # second's outcome; claims dependent
        "finish",  # dependent's outcome: nothing left to claim
    ]
