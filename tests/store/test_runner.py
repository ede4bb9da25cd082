"""The runner over plain specs, on both stores: due-ness, outcomes, dependencies, cost."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from crontabber import App
from crontabber.run.runner import Result, Runner
from crontabber.store import StateStore
from crontabber.store.trace import Recorder

from ..helpers.specs import at, make_spec
from ..helpers.store import hold_claim

NOW = at("2026-03-01 12:00")
MINUTE = dt.timedelta(minutes=1)

ran: list[str] = []


class Alpha(App):
    app_name = "alpha"

    def run(self) -> None:
        ran.append(self.app_name)


class Beta(App):
    app_name = "beta"
    depends_on = "alpha"

    def run(self) -> None:
        ran.append(self.app_name)


class Gamma(App):
    app_name = "gamma"
    depends_on = ("beta",)

    def run(self) -> None:
        ran.append(self.app_name)


class Broken(App):
    app_name = "broken"

    def run(self) -> None:
        ran.append(self.app_name)
        raise ValueError("no luck today")


class AfterBroken(App):
    app_name = "after-broken"
    depends_on = ["broken"]

    def run(self) -> None:
        ran.append(self.app_name)


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


def runner(store: StateStore, *classes: type, **kwargs) -> Runner:
    return Runner([make_spec(cls) for cls in classes], store, **kwargs)


def test_runs_in_dependency_order_whatever_the_list_order(store: StateStore) -> None:
    report = runner(store, Gamma, Beta, Alpha).run(now=NOW)
    assert ran == ["alpha", "beta", "gamma"]
    assert report.exit_status == 0
    assert report.with_result(Result.SUCCEEDED) == ["alpha", "beta", "gamma"]


def test_nothing_due_runs_nothing(store: StateStore) -> None:
    runner(store, Alpha).run(now=NOW)
    report = runner(store, Alpha).run(now=NOW + MINUTE)
    assert ran == ["alpha"]
    assert report.jobs == () and report.exit_status == 0
    runner(store, Alpha).run(now=NOW + 5 * MINUTE)
    assert ran == ["alpha", "alpha"]


def test_failure_is_recorded_and_the_run_goes_on(store: StateStore, caplog) -> None:
    caplog.set_level(logging.INFO, logger="crontabber")
    report = runner(store, Broken, Alpha, error_retry_time=dt.timedelta(seconds=120)).run(now=NOW)
    assert sorted(ran) == ["alpha", "broken"]
    assert report.exit_status == 0
    state = store.load_states()["broken"]
    assert state.error_count == 1
    assert state.next_run == NOW + dt.timedelta(seconds=120)
    assert state.last_error["type"] == "ValueError"
    assert state.last_error["value"] == "no luck today"
    assert "Traceback" in state.last_error["traceback"]
    assert "no luck today" in caplog.text


def test_dependent_of_a_failed_job_is_skipped(store: StateStore, caplog) -> None:
    caplog.set_level(logging.INFO, logger="crontabber")
    report = runner(store, Broken, AfterBroken).run(now=NOW)
    assert ran == ["broken"]
    assert report.with_result(Result.SKIPPED) == ["after-broken"]
    assert "dependency 'broken' failed last time" in caplog.text


def test_dependent_of_a_never_run_job_is_skipped(store: StateStore) -> None:
    beta = make_spec(Beta)
    alpha = make_spec(Alpha, time=dt.time(13, 0), frequency=dt.timedelta(days=1))
    report = Runner([alpha, beta], store).run(now=NOW)
    assert ran == []
    assert report.jobs[0].reason == "dependency 'alpha' has never run"


def test_dependent_of_an_overdue_job_is_skipped(store: StateStore) -> None:
    runner(store, Alpha, Beta).run(now=NOW)
    ran.clear()
    # alpha became due at NOW+5m, but only beta's part of the config runs now.
    beta_only = Runner([make_spec(Alpha, frequency=dt.timedelta(days=9)), make_spec(Beta)], store)
    beta_only.specs = [s for s in beta_only.specs if s.app_name == "beta"]
    report = beta_only.run(now=NOW + 10 * MINUTE)
    assert ran == []
    assert "has not run recently" in report.jobs[0].reason


def test_job_held_elsewhere_is_skipped_with_its_dependents(store: StateStore) -> None:
    hold_claim(store, "alpha", host="elsewhere", pid=4242)
    report = runner(store, Alpha, Beta, Broken).run(now=NOW + MINUTE)
    assert ran == ["broken"]
    assert report.with_result(Result.ONGOING) == ["alpha"]
    assert report.with_result(Result.SKIPPED) == ["beta"]
    assert report.exit_status == 3
    assert "elsewhere pid 4242" in report.jobs[0].reason


def test_abandoned_claim_is_recovered_as_a_failure_and_not_run(store: StateStore, caplog) -> None:
    hold_claim(store, "alpha", host="dead-host", pid=1, lapsed=True)
    report = runner(store, Alpha, Beta).run(now=NOW)
    assert ran == []  # retried after error_retry_time, like any failure
    assert report.with_result(Result.RECOVERED) == ["alpha"]
    assert report.with_result(Result.SKIPPED) == ["beta"]  # its dependency failed
    assert report.exit_status == 0
    assert "recovered alpha: the claim by dead-host pid 1" in caplog.text
    assert "its lease expired" in caplog.text


def test_time_pinned_job_waits_for_its_time(store: StateStore) -> None:
    spec = make_spec(Alpha, frequency=dt.timedelta(days=1), time=dt.time(12, 30))
    Runner([spec], store).run(now=NOW)
    assert ran == []
    Runner([spec], store).run(now=NOW + 31 * MINUTE)
    assert ran == ["alpha"]
    assert store.load_states()["alpha"].next_run == at("2026-03-02 12:30")


def test_keyboard_interrupt_is_recorded_and_the_claim_released(store: StateStore) -> None:
    class Interrupted(App):
        app_name = "interrupted"

        def run(self) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner(store, Interrupted).run(now=NOW)
    state = store.load_states()["interrupted"]
    assert state.ongoing is None
    assert state.error_count == 1 and state.last_error["type"] == "KeyboardInterrupt"


def test_app_receives_its_config_and_state(store: StateStore) -> None:
    seen = {}

    class Configured(App):
        app_name = "configured"

        def run(self) -> None:
            seen["config"] = self.config
            seen["info"] = self.job_information

    config = {"greeting": "hi"}
    Runner([make_spec(Configured, config=config)], store).run(now=NOW)
    assert seen["config"] is config
    assert seen["info"].app_name == "configured"
    assert seen["info"].last_run is None


def _many_jobs(count: int) -> list[type]:
    return [type(f"Job{i}", (Alpha,), {"app_name": f"job-{i}"}) for i in range(count)]


def recording(store: StateStore) -> Recorder:
    recorder = Recorder()
    store.close()
    store.connection_factory = recorder.connect
    return recorder


# What a tick sends, statement by statement (a cost guard, not a timing). On
# PostgreSQL each statement is one round trip in autocommit: no BEGIN, no COMMIT.
CLAIM = {"postgresql": ["claim_next"], "sqlite": ["BEGIN", "lock", "mark_ongoing", "COMMIT"]}
FINISH = {"postgresql": ["finish"], "sqlite": ["BEGIN", "finish", "insert_log", "COMMIT"]}


@pytest.mark.parametrize("count", [10, 1000])
def test_idle_tick_sends_one_statement_whatever_the_number_of_jobs(
    store: StateStore, count: int
) -> None:
    classes = _many_jobs(count)
    runner(store, *classes).run(now=NOW)
    recorder = recording(store)
    report = runner(store, *classes).run(now=NOW + MINUTE)
    assert report.jobs == ()
    # one connection, one statement: the schema's revision, the time and the states
    assert recorder.statements == ["read_states"]
    assert recorder.connections == 1


def test_due_job_costs_one_statement_to_claim_and_one_to_record(store: StateStore) -> None:
    runner(store, Alpha).run(now=NOW)
    recorder = recording(store)
    runner(store, Alpha).run(now=NOW + 10 * MINUTE)
    assert ran == ["alpha", "alpha"]
    dialect = store.dialect_name
    assert recorder.statements == ["read_states", *CLAIM[dialect], *FINISH[dialect]]
    assert recorder.connections == 1


def test_first_run_inserts_its_row_before_the_claim(store: StateStore) -> None:
    recorder = recording(store)
    runner(store, Alpha).run(now=NOW)
    dialect = store.dialect_name
    claim = (
        ["insert_states", "claim_next"]
        if dialect == "postgresql"
        else ["BEGIN", "insert_state", "lock", "mark_ongoing", "COMMIT"]
    )
    assert recorder.statements == ["read_states", *claim, *FINISH[dialect]]
