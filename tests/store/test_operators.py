"""Operators' actions through the store and the runner (crontabber/store/operators.py),
on SQLite and PostgreSQL: a pause is enforced in the claim, a run-now makes a job due
once and keeps its schedule, a cancel reaches the holder's heartbeat, and every action
is audited in its own transaction."""

from __future__ import annotations

import datetime as dt

import pytest

from crontabber import App
from crontabber.mixins import as_backfill_cron_app
from crontabber.run.runner import Result, Runner
from crontabber.store import StateStore
from crontabber.store.lease import LeasePolicy
from crontabber.store.operators import RunNowStatus
from crontabber.store.records import ClaimStatus, Holder

from ..helpers.specs import make_spec

DAY = dt.timedelta(days=1)
ran: list[str] = []


class Upstream(App):
    app_name = "upstream"

    def run(self) -> None:
        ran.append(self.app_name)
        print("upstream printed this")


class Downstream(App):
    app_name = "downstream"
    depends_on = ("upstream",)

    def run(self) -> None:
        ran.append(self.app_name)


class Other(App):
    app_name = "other"

    def run(self) -> None:
        ran.append(self.app_name)


SPECS = [make_spec(Upstream, DAY), make_spec(Downstream, DAY), make_spec(Other, DAY)]


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


def runner(store: StateStore) -> Runner:
    return Runner(SPECS, store, lease=LeasePolicy(host="here"), holder=Holder.this_process("here"))


def results(report: object) -> dict[str, Result]:
    return {job.app_name: job.result for job in report.jobs}  # type: ignore[attr-defined]


def test_a_paused_job_is_not_run_and_holds_back_its_dependents(store: StateStore) -> None:
    pause = store.pause("upstream", actor="tester", reason="db upgrade")
    assert pause is not None and pause.until is None and pause.reason == "db upgrade"
    report = runner(store).run()
    assert ran == ["other"]
    assert results(report) == {
        "upstream": Result.PAUSED,
        "downstream": Result.SKIPPED,
        "other": Result.SUCCEEDED,
    }
    [held] = [job for job in report.jobs if job.app_name == "downstream"]
    assert held.reason == "dependency 'upstream' is paused"
    assert report.exit_status == 0
    assert store.read_snapshot().paused["upstream"].actor == "tester"

    assert store.resume("upstream", actor="tester")
    assert not store.resume("upstream", actor="tester")  # not paused any more
    report = runner(store).run()
    assert ran == ["other", "upstream", "downstream"]


def test_the_claim_refuses_a_paused_job_even_forced(store: StateStore) -> None:
    store.pause("upstream", actor="tester")
    claim = store.claim(
        "upstream",
        depends_on=(),
        seen=None,
        force=True,
        lease=LeasePolicy(host="here"),
        holder=Holder("here", 1),
        retry_after=dt.timedelta(minutes=5),
    )
    assert claim.status is ClaimStatus.PAUSED


def test_a_pause_ends_by_itself_at_its_until(store: StateStore) -> None:
    assert store.pause("upstream", actor="tester", until_seconds=-1) is None
    past = store.read_snapshot().now - dt.timedelta(seconds=1)
    assert store.pause("upstream", actor="tester", until=past) is None
    assert store.read_snapshot().paused == {}
    pause = store.pause("upstream", actor="tester", until_seconds=3600)
    assert pause is not None and pause.until is not None
    snapshot = store.read_snapshot()
    assert dt.timedelta(minutes=59) < pause.until - snapshot.now <= dt.timedelta(hours=1)
    # An expired pause is no pause: written directly, as time passing would leave it.
    store.pause("upstream", actor="tester", until_seconds=0.2)
    report = runner(store).run()
    assert results(report)["upstream"] is Result.PAUSED
    import time

    time.sleep(0.3)  # the database's clock passes the until
    report = runner(store).run()
    assert results(report)["upstream"] is Result.SUCCEEDED


def test_a_paused_job_is_not_a_daemons_next_due_until_its_pause_ends(store: StateStore) -> None:
    runner(store).run()
    store.pause("other", actor="tester")
    store.pause("upstream", actor="tester", until_seconds=7 * 86400)
    report = runner(store).run()
    states = store.load_states()
    assert report.next_due == states["downstream"].next_run


def test_run_now_makes_a_job_due_once_and_keeps_its_schedule(store: StateStore) -> None:
    runner(store).run()
    before = store.load_states()["other"].next_run
    ran.clear()
    status, state = store.run_now("other", depends_on=(), actor="tester", reason="asked")
    assert status is RunNowStatus.ASKED and state.next_run == before
    report = runner(store).run()
    assert ran == ["other"] and results(report) == {"other": Result.SUCCEEDED}
    after = store.load_states()["other"]
    assert after.next_run == before  # as if it had run on time
    assert after.run_now is None and after.run_now_displaced is None
    runner(store).run()
    assert ran == ["other"]  # once
    [newest, *_] = store.read_log_page("other").entries
    assert newest.trigger == "run-now" and newest.host == "here"


def test_run_now_respects_dependencies_and_refuses_a_paused_job(store: StateStore) -> None:
    store.pause("upstream", actor="tester")
    status, _ = store.run_now("upstream", depends_on=(), actor="tester")
    assert status is RunNowStatus.PAUSED
    status, _ = store.run_now("downstream", depends_on=("upstream",), actor="tester")
    assert status is RunNowStatus.ASKED  # asked, and held back by its paused dependency
    report = runner(store).run()
    assert "downstream" not in ran
    assert results(report)["downstream"] is Result.SKIPPED


def test_cancel_reaches_the_holders_heartbeat(store: StateStore) -> None:
    asked, state = store.cancel("other", actor="tester")
    assert not asked and state is None  # never ran
    holder = Holder("here", 1)
    claim = store.claim(
        "other",
        depends_on=(),
        seen=None,
        force=True,
        lease=LeasePolicy(host="here"),
        holder=holder,
        retry_after=dt.timedelta(minutes=5),
    )
    assert claim.status is ClaimStatus.CLAIMED
    assert store.heartbeat("other", holder, dt.timedelta(minutes=1)) is True
    asked, state = store.cancel("other", actor="tester", reason="stuck")
    assert asked and state is not None and state.ongoing_host == "here"
    assert store.heartbeat("other", holder, dt.timedelta(minutes=1)) == "cancel"
    status, _ = store.run_now("other", depends_on=(), actor="tester")
    assert status is RunNowStatus.ONGOING


def test_every_action_is_audited_with_its_actor_and_reason(store: StateStore) -> None:
    runner(store).run()
    store.pause("upstream", actor="alice@a (command line)", reason="r1", until_seconds=60)
    store.resume("upstream", actor="bob@b (command line)")
    store.run_now("other", depends_on=(), actor="10.0.0.1 (web, bearer token)", reason="r3")
    store.reset("other", force=False, actor="carol@c (command line)", reason="r4")
    store.resume("upstream", actor="nobody")  # not paused: nothing done, nothing audited
    entries = store.read_audit_log()
    assert [(e.action, e.app_name, e.actor, e.reason) for e in reversed(entries)] == [
        ("pause", "upstream", "alice@a (command line)", "r1"),
        ("resume", "upstream", "bob@b (command line)", None),
        ("run-now", "other", "10.0.0.1 (web, bearer token)", "r3"),
        ("reset", "other", "carol@c (command line)", "r4"),
    ]
    assert entries[-1].detail is not None and entries[-1].detail.startswith("until ")
    assert [e.action for e in store.read_audit_log("other")] == ["reset", "run-now"]


def test_a_reset_keeps_the_pause(store: StateStore) -> None:
    runner(store).run()
    store.pause("other", actor="tester")
    store.reset("other", force=False, actor="tester")
    assert "other" in store.read_snapshot().paused
    ran.clear()
    runner(store).run()
    assert "other" not in ran


def test_a_runs_output_host_and_trigger_are_logged(store: StateStore) -> None:
    runner(store).run()
    [entry] = store.read_log_page("upstream").entries
    assert entry.host == "here" and entry.trigger == "schedule"
    # Without file descriptors (the library's default) the log records are kept; the
    # job's print went to this process's stdout.
    assert entry.output is None or "upstream printed this" not in entry.output


def test_latest_action_is_what_a_sleeping_daemon_looks_for(store: StateStore) -> None:
    runner(store).run()
    assert store.latest_action() is None
    store.run_now("other", depends_on=(), actor="tester")
    first = store.latest_action()
    assert first is not None
    runner(store).run()
    assert store.latest_action() == first  # a run is no action
    store.resume("other", actor="tester")  # not paused: nothing done, nothing new
    assert store.latest_action() == first
    store.pause("other", actor="tester")
    assert (store.latest_action() or 0) > first


calls: list[dt.datetime] = []


@as_backfill_cron_app
class Backfilling(App):
    app_name = "backfilling"

    def run(self, date: dt.datetime) -> None:
        calls.append(date)


def test_run_now_of_a_backfill_job_runs_its_next_missing_date(store: StateStore) -> None:
    calls.clear()
    spec = make_spec(Backfilling, DAY, dt.time(3, 0))
    backfill = Runner([spec], store, lease=LeasePolicy(host="here"))
    backfill.run()  # never ran: once, for now
    following = store.load_states()["backfilling"].next_run
    assert following is not None and len(calls) == 1
    store.run_now("backfilling", depends_on=(), actor="tester")
    backfill.run()
    assert calls[1] == following  # the next date, early
    state = store.load_states()["backfilling"]
    assert state.last_success == following and state.next_run == following + DAY
    [newest, *_] = store.read_log_page("backfilling").entries
    assert newest.trigger == f"run-now: backfill {following.isoformat()}"
