"""The library's Runner with ``isolate=True``, on both stores: each run forked into a
process of its own, its outcome, output and backfill dates written by this process."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
from pathlib import Path

import pytest

from crontabber import App
from crontabber.mixins import as_backfill_cron_app
from crontabber.run import tee
from crontabber.run.output import RunOutput
from crontabber.run.runner import Result, Runner
from crontabber.store import StateStore

from ..helpers.specs import at, make_spec

NOW = at("2026-03-01 12:00")
DAY = dt.timedelta(days=1)


class Printing(App):
    app_name = "printing"

    def run(self) -> None:
        where = "its own process" if os.getsid(0) == os.getpid() else "this one"
        logging.getLogger("printing").warning("logged in %s", where)


class Failing(App):
    app_name = "failing"

    def run(self) -> None:
        raise ValueError("no luck today")


@as_backfill_cron_app
class Series(App):
    app_name = "series"

    def run(self, date: dt.datetime) -> None:
        if date.day == 28:  # the third date fails: the first two stay recorded
            raise RuntimeError(f"stopped at {date:%Y-%m-%d}")


def runner(store: StateStore, *apps: type, frequency: dt.timedelta = DAY) -> Runner:
    specs = [make_spec(app, frequency) for app in apps]
    return Runner(specs, store, isolate=True, capture_fds=False)


def test_a_run_in_its_own_process_is_recorded_with_its_output(store: StateStore) -> None:
    report = runner(store, Printing, Failing).run(now=NOW)
    assert [job.result for job in report.jobs] == [Result.SUCCEEDED, Result.FAILED]
    [printed] = store.read_log_page("printing").entries
    assert printed.output == "WARNING printing: logged in its own process\n"
    failing = store.load_states()["failing"]
    assert failing.last_error["type"] == "ValueError"
    assert failing.last_error["value"] == "no luck today"
    assert 'raise ValueError("no luck today")' in failing.last_error["traceback"]


def test_a_backfill_series_records_each_date_through_this_process(store: StateStore) -> None:
    """The child asks for each date to be recorded before it runs the next."""
    first = runner(store, Series)
    first.run(now=at("2026-02-25 00:00"))  # the first run: one date
    report = runner(store, Series).run(now=at("2026-02-28 00:00"))
    assert report.jobs[0].result is Result.FAILED
    state = store.load_states()["series"]
    assert state.last_success == at("2026-02-27 00:00")
    assert state.last_error["value"] == "stopped at 2026-02-28"


def test_no_process_to_be_had_fails_the_run_in_one_line(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    report = runner(store, Printing).run(now=NOW)
    assert report.jobs[0].result is Result.FAILED
    error = store.load_states()["printing"].last_error
    assert error["type"] == "crontabber.RunProcessEnded"
    assert error["value"] == (
        "could not start the run's process: [Errno 11] Resource temporarily unavailable"
    )


def test_a_run_in_its_own_process_starts_no_tee(
    store: StateStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its descriptors are crontabber's pipes, read by crontabber: the tee that a run in
    crontabber's own process shares (crontabber.run.tee) would be a thread and two
    pipes more in each run's process (a regression once, found by the cost benchmark)."""
    started = tmp_path / "tee"

    def no_tee(self: tee.Tee) -> None:
        started.write_text(str(os.getpid()))
        raise AssertionError("a tee in a run's own process")

    monkeypatch.setattr(tee.Tee, "__init__", no_tee)
    specs = [make_spec(Printing, DAY)]
    report = Runner(specs, store, isolate=True, capture_fds=True).run(now=NOW)
    assert [job.result for job in report.jobs] == [Result.SUCCEEDED]
    assert not started.exists()
    [printed] = store.read_log_page("printing").entries
    assert printed.output == "WARNING printing: logged in its own process\n"


def test_runs_in_their_own_processes_leave_no_garbage_in_crontabber(
    store: StateStore,
) -> None:
    """A busy daemon kept each run's leftovers once (about 1 KB a run, for good): the
    collector was frozen around each fork, so what was young went to the oldest
    generation at every run, and the run's output and its log handler referred to each
    other. With the collector off, what a run leaves must be freed by reference counts,
    and what was young stay young."""
    apps = [
        type(f"Quiet{i}", (App,), {"app_name": f"quiet{i}", "run": lambda self: None})
        for i in range(12)
    ]
    specs = [make_spec(app, DAY) for app in apps]
    gc.collect()
    gc.disable()
    try:
        young = [object()]  # a container: the collector tracks it
        frozen = gc.get_freeze_count()  # 375 on 3.12.1 from the start, 0 elsewhere
        assert any(item is young for item in gc.get_objects(generation=0))
        report = Runner(specs, store, isolate=True, capture_fds=True).run(now=NOW)
        assert [job.result for job in report.jobs] == [Result.SUCCEEDED] * 12
        left = [item for item in gc.get_objects() if isinstance(item, RunOutput)]
        assert left == []
        assert not any(item is young for item in gc.get_objects(generation=2))
        assert gc.get_freeze_count() == frozen
    finally:
        gc.enable()
