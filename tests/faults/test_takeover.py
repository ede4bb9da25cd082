"""Who takes over a claim, and when, with real processes and a real PostgreSQL: a
holder killed elsewhere only after the stale window, a dead one on this host at once,
a live one never, not even when its claim waited for a lock; a job that kills its
process, or a backfill series killed midway, is recovered as a failure and not rerun."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crontabber.store import open_store
from crontabber.store import tables as sql

from ..helpers.command import (
    HEARTBEAT,
    crontabber_command,
    run_crontabber,
    write_config,
)
from ..helpers.command import start_crontabber as start
from ..helpers.jobs import Job, wait_for_start, write_fault_jobs, write_job_module
from ..helpers.jobs import fault_runs as runs
from ..helpers.store import state_of, waiting_on_a_lock
from ..helpers.waiting import wait_until


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory like a user's: the fault jobs (tests/helpers/jobs.py) beside its config."""
    return write_fault_jobs(tmp_path).parent


def runs_elsewhere_while_it_runs(config: Path, project: Path) -> list[int]:
    """Run the command as host-b again and again until the job has noted its end; the exit
    statuses of the runs that ended while it still ran.

    Only those count: once the holder has noted "end" its claim is released and the
    job is simply not due, whether or not the holder process has exited yet.
    """
    statuses = []
    while "end" not in runs(project):
        result = run_crontabber(
            f"--admin.conf={config}", "--crontabber.host_name=host-b", cwd=project
        )
        if "end" not in runs(project):
            statuses.append(result.status)
    return statuses


@pytest.mark.postgres
def test_killed_holder_elsewhere_is_taken_over_only_after_the_stale_window(
    project: Path, pg_url: str
) -> None:
    # a 6 s stale window: wide enough that the early run below ends inside it even on a
    # busy machine, while the late run starts after it
    extra = "    heartbeat_interval=1\n    heartbeat_stale_intervals=6\n"
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=extra)
    victim = start(config, project, "--crontabber.host_name=host-a", env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    killed_at = time.monotonic()
    early = run_crontabber(f"--admin.conf={config}", "--crontabber.host_name=host-b", cwd=project)
    assert time.monotonic() - killed_at < 5, "too slow to test the window"
    assert early.status == 3, early.stderr
    time.sleep(max(0.0, 6.5 - (time.monotonic() - killed_at)))
    late = run_crontabber(
        f"--admin.conf={config}",
        "--crontabber.host_name=host-b",
        cwd=project,
        env={"SLOW_SECONDS": "0"},
    )
    assert late.status == 0, late.stderr
    assert "recovered slow: the claim by host-a" in late.stderr
    assert "its lease expired: the last heartbeat was" in late.stderr
    assert runs(project) == ["start"]  # retried after error_retry_time, not at once
    state = state_of(pg_url, "slow")
    assert state["ongoing"] is None and state["error_count"] == 1
    assert state["logs"] == ["crontabber.Abandoned"]


@pytest.mark.postgres
def test_dead_holder_on_this_host_is_reclaimed_immediately(project: Path, pg_url: str) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    victim = start(config, project, env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    result = run_crontabber(f"--admin.conf={config}", cwd=project, env={"SLOW_SECONDS": "0"})
    assert result.status == 0, result.stderr
    assert f"its process {victim.pid} on this host is gone" in result.stderr
    assert runs(project) == ["start"]
    assert state_of(pg_url, "slow")["error_count"] == 1


@pytest.mark.postgres
def test_a_live_holder_with_a_fresh_heartbeat_is_never_taken_over(
    project: Path, pg_url: str
) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    holder = start(config, project, "--crontabber.host_name=host-a", env={"SLOW_SECONDS": "5"})
    wait_for_start(project)
    statuses = runs_elsewhere_while_it_runs(config, project)  # for 5 s: longer than the window
    holder.communicate()
    assert holder.returncode == 0
    assert statuses and set(statuses) == {3}
    assert runs(project) == ["start", "end"]


@pytest.mark.postgres
def test_a_first_claim_delayed_by_a_lock_is_never_taken_over(
    project: Path, pg_url: str, pg_admin_engine: sa.Engine
) -> None:
    """Reproduction 1: the claim waits 5 s for a row another connection is inserting,
    longer than the 3 s lease window; its lease starts when it is granted."""
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    assert run_crontabber(f"--admin.conf={config}", "--list-jobs", cwd=project).status == 0
    database = sa.make_url(pg_url).database
    blocker = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with blocker.connect() as inserting, pg_admin_engine.connect() as admin:
        inserting.exec_driver_sql("INSERT INTO crontabber (app_name) VALUES ('slow')")
        holder = start(config, project, "--crontabber.host_name=host-a")
        wait_until(
            lambda: waiting_on_a_lock(admin, database, "INSERT INTO crontabber"),
            "host-a's claim waits for the lock",
        )
        time.sleep(5)
        inserting.rollback()
    blocker.dispose()
    wait_for_start(project)
    statuses = runs_elsewhere_while_it_runs(config, project)
    _, stderr = holder.communicate(timeout=60)
    assert holder.returncode == 0, stderr
    assert runs(project) == ["start", "end"], "the live run was taken over"
    assert statuses and set(statuses) == {3}, statuses
    assert state_of(pg_url, "slow")["logs"] == [None]


@pytest.mark.postgres
def test_a_job_that_kills_its_process_neither_crash_loops_nor_starves_the_others(
    project: Path, pg_url: str
) -> None:
    """Reproduction 7: the dead run is recovered as a failure, retried after
    error_retry_time; the healthy job runs on the next run."""
    config = write_config(project, "faultjobs.Killer|1m\nfaultjobs.Healthy|1m", database_url=pg_url)
    statuses = [run_crontabber(f"--admin.conf={config}", cwd=project) for _ in range(4)]
    assert statuses[0].status == -9  # the job killed crontabber
    assert [result.status for result in statuses[1:]] == [0, 0, 0]
    assert "recovered killer: the claim by" in statuses[1].stderr
    assert "on this host is gone" in statuses[1].stderr
    assert runs(project, "killer") == ["start"]
    assert runs(project, "healthy") == ["start", "end"]
    killer = state_of(pg_url, "killer")
    assert killer["error_count"] == 1 and killer["ongoing"] is None
    assert killer["last_error"]["type"] == "crontabber.Abandoned"
    assert killer["next_run"] - killer["last_run"] >= dt.timedelta(seconds=300)
    assert killer["logs"] == ["crontabber.Abandoned"]


# A backfill job that notes each date it runs, and kills its own process on the
# date a file "kill-on-DATE" beside it names (once: it removes the file first).
SERIES = Job(
    "Series",
    "series",
    decorator="as_backfill_cron_app",
    run_args=", date",
    run="""
        day = date.strftime("%Y-%m-%d")
        note(day)
        kill_on = os.path.join(HERE, "kill-on-" + day)
        if os.path.exists(kill_on):
            os.remove(kill_on)
            os.kill(crontabber_pid(), signal.SIGKILL)
    """,
)
SERIES_IMPORTS = "import signal\nfrom crontabber.mixins import as_backfill_cron_app"
DAY = dt.timedelta(days=1)


@pytest.mark.postgres
def test_a_killed_series_never_reruns_a_finished_date(tmp_path: Path, pg_url: str) -> None:
    write_job_module(tmp_path, "seriesjobs", SERIES, imports=SERIES_IMPORTS, notes="dates.txt")
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
