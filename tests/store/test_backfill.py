"""Backfill jobs: one call per missed date, each date recorded as it succeeds."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crontabber import App
from crontabber.mixins import as_backfill_cron_app
from crontabber.run.runner import Result, Runner
from crontabber.store import StateStore, open_store
from crontabber.store import tables as sql

from .clitools import crontabber_command, run_crontabber, write_config
from .conftest import at, make_spec

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


# --- real processes -------------------------------------------------------------

JOBS = """
import os
import signal

from crontabber import App
from crontabber.mixins import as_backfill_cron_app

HERE = os.path.dirname(__file__)


@as_backfill_cron_app
class Series(App):
    app_name = "series"

    def run(self, date):
        with open(os.path.join(HERE, "dates.txt"), "a") as f:
            f.write(date.strftime("%Y-%m-%d") + "\\n")
        if os.path.exists(os.path.join(HERE, "kill-on-" + date.strftime("%Y-%m-%d"))):
            os.remove(os.path.join(HERE, "kill-on-" + date.strftime("%Y-%m-%d")))
            os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.postgres
def test_a_killed_series_never_reruns_a_finished_date(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "seriesjobs.py").write_text(JOBS)
    config = write_config(
        tmp_path,
        "seriesjobs.Series|1d|00:00",
        database_url=pg_url,
        extra="    error_retry_time=1\n",  # the recovered series is retried a second later
    )
    store = open_store(pg_url)
    store.ensure_schema()
    # The database's day, as the runs see it (not the test's clock).
    today = store.read_snapshot().now.replace(hour=0, minute=0, second=0, microsecond=0)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(sql.crontabber).values(
                app_name="series",
                last_success=today - 4 * DAY,
                next_run=today - 3 * DAY,
                error_count=0,
            )
        )
    store.close()
    day = [(today - n * DAY).strftime("%Y-%m-%d") for n in (3, 2, 1, 0)]
    (tmp_path / f"kill-on-{day[1]}").touch()

    killed = subprocess.run(
        [*crontabber_command(), f"--admin.conf={config}"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "dates.txt").read_text().split() == day[:2]

    # The dead holder was on this host: its claim is recovered at once, recorded as
    # a failure, and the series resumes after error_retry_time.
    recovered = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert recovered.status == 0, recovered.stderr
    assert f"recovered series: the claim by {socket.gethostname()} pid" in recovered.stderr
    assert (tmp_path / "dates.txt").read_text().split() == day[:2]
    time.sleep(1.5)
    resumed = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert resumed.status == 0, resumed.stderr
    dates = (tmp_path / "dates.txt").read_text().split()
    # Every day from day[0] to the last date run, once, but the killed day[1] twice.
    # The last is today, or tomorrow should the test cross midnight (UTC).
    store = open_store(pg_url)
    last = store.load_states()["series"].last_success
    store.close()
    assert last - today in (dt.timedelta(0), DAY)
    expected = [
        (today - 3 * DAY + n * DAY).strftime("%Y-%m-%d") for n in range((last - today).days + 4)
    ]
    assert dates == [expected[0], expected[1], *expected[1:]]
    assert dates.count(day[0]) == 1


def test_job_and_force_refuse_a_backfill_job(tmp_path: Path) -> None:
    (tmp_path / "seriesjobs.py").write_text(JOBS)
    config = write_config(tmp_path, "seriesjobs.Series|1d")
    for args in (["--job=series"], ["--job=series", "--force"]):
        result = run_crontabber(f"--admin.conf={config}", *args, cwd=tmp_path)
        assert result.status == 1
        assert result.stderr == (
            "crontabber: series is a backfill job: --job and --force do not run it, "
            "as that would break its series of dates; it runs on its schedule\n"
        )
    assert not (tmp_path / "dates.txt").exists()
