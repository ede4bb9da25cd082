"""Hosts whose clocks are wrong, with real processes and a real PostgreSQL.

Host A's wall clock is shifted two minutes behind or ahead by the LD_PRELOAD shim
(tests/helpers/wallclock.py); host B's is right, as is the database server's. Leases and
the time of a tick are the database's, so neither host's error matters: a live
claim by A is never taken over by B, and a job A ran is due again one period
after the database's now, not two minutes early or late.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers.command import HEARTBEAT, Completed, crontabber_command, run_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.waiting import wait_until
from ..helpers.wallclock import Wallclock

pytestmark = pytest.mark.postgres

SKEWS = [pytest.param(-120, id="clock-behind"), pytest.param(120, id="clock-ahead")]
MINUTE = dt.timedelta(minutes=1)
TIMEOUT = 60  # seconds, for any one wait

JOBS = (
    Job(
        "Slow",
        "slow",
        run="""
            note(f"start {crontabber_pid()}")
            time.sleep(float(os.environ.get("SLOW_SECONDS", "5")))
            note(f"end {crontabber_pid()}")
        """,
    ),
    Job("Minutely", "minutely", run='note(f"minutely {crontabber_pid()}")'),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "skewjobs", *JOBS)
    return tmp_path


def runs(project: Path) -> list[str]:
    """runs.txt's lines: ``start PID``, ``end PID``, ``minutely PID``."""
    return noted(project)


def host(config: Path, project: Path, name: str, env: dict[str, str] | None = None) -> Completed:
    """One run of crontabber as host ``name``, to its end."""
    return run_crontabber(
        f"--admin.conf={config}", f"--crontabber.host_name={name}", cwd=project, env=env
    )


def row_and_db_now(url: str, name: str) -> tuple[sa.Row, dt.datetime]:
    """The job's row, and the database server's clock as it is read."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT * FROM crontabber WHERE app_name = :name"), {"name": name}
            ).one()
            db_now = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    finally:
        engine.dispose()
    return row, db_now


@pytest.mark.parametrize("skew", SKEWS)
def test_a_live_claim_by_a_host_with_a_wrong_clock_is_never_taken_over(
    project: Path, pg_url: str, wallclock: Wallclock, skew: int
) -> None:
    """A runs ``slow`` for 5 s, longer than the 3 s stale window, its clock 2 minutes off;
    B, whose clock is right, runs crontabber again and again meanwhile."""
    config = write_config(project, "skewjobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    with subprocess.Popen(
        [*crontabber_command(), f"--admin.conf={config}", "--crontabber.host_name=host-a"],
        cwd=project,
        env={**os.environ, **wallclock.shifted_env(skew), "SLOW_SECONDS": "5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            wait_until(
                lambda: f"start {holder.pid}" in runs(project),
                "slow started",
                TIMEOUT,
                process=holder,
            )
            statuses, deadline = [], time.monotonic() + TIMEOUT
            # Only B's runs that ended while A's job still ran count: once A has recorded
            # "end" it releases its claim and the job is simply not due. SLOW_SECONDS=0: a
            # B run that wrongly took the job over ends at once, and the checks below fail.
            while f"end {holder.pid}" not in runs(project):
                assert time.monotonic() < deadline, "host A's job never ended"
                result = host(config, project, "host-b", env={"SLOW_SECONDS": "0"})
                if f"end {holder.pid}" not in runs(project):
                    statuses.append((result.status, result.stderr))
            _, stderr = holder.communicate(timeout=TIMEOUT)
        except BaseException:
            holder.kill()
            raise
    assert holder.returncode == 0, stderr
    assert runs(project) == [f"start {holder.pid}", f"end {holder.pid}"]  # exactly once
    assert statuses, "no run of host B ended while host A's job ran"
    for status, b_stderr in statuses:  # running elsewhere
        assert status == 3, b_stderr
        assert f"skipped slow: running on host-a pid {holder.pid}" in b_stderr


@pytest.mark.parametrize("skew", SKEWS)
def test_a_job_run_by_a_host_with_a_wrong_clock_is_next_due_in_the_databases_time(
    project: Path, pg_url: str, wallclock: Wallclock, skew: int
) -> None:
    """A ``|1m`` job run by A is due again a minute after the database's now: not at once
    (A's clock behind), not in three minutes (A's clock ahead)."""
    config = write_config(project, "skewjobs.Minutely|1m", database_url=pg_url)
    first = host(config, project, "host-a", env=wallclock.shifted_env(skew))
    assert first.status == 0, first.stderr
    assert len(runs(project)) == 1
    row, db_now = row_and_db_now(pg_url, "minutely")
    again = host(config, project, "host-b")  # at once, with the right clock: not due
    assert again.status == 0, again.stderr
    assert len(runs(project)) == 1, "host B ran the job again at once"
    assert row.ongoing is None and row.error_count == 0
    off_by = (row.next_run - (db_now + MINUTE)).total_seconds()
    assert abs(off_by) < 5, f"next_run is {row.next_run}, the database's now + 1 min {off_by:+.1f}s"
