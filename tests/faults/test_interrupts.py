"""Signals and hung jobs with real processes and a real PostgreSQL: SIGTERM and SIGINT
record the running job as failed and release it, even while its last outcome is
written; max_runtime ends hung jobs and the commands they started; sys.exit() in a job
is that job's failure."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers.command import run_crontabber, write_config
from ..helpers.command import start_crontabber as start
from ..helpers.jobs import fault_runs as runs
from ..helpers.jobs import wait_for_start, write_fault_jobs
from ..helpers.store import state_of, waiting_on_a_lock
from ..helpers.waiting import wait_until


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory like a user's: the fault jobs (tests/helpers/jobs.py) beside its config."""
    return write_fault_jobs(tmp_path).parent


@contextlib.contextmanager
def outcome_write_blocked(project: Path, pg_url: str, admin_engine: sa.Engine) -> Iterator[None]:
    """Another session holds the Gate job's row (FOR UPDATE) while the job is let finish
    (its file "go"), until its outcome write waits for that lock; released on leaving."""
    database = sa.make_url(pg_url).database
    with admin_engine.connect() as admin:
        locker = sa.create_engine(pg_url, poolclass=sa.NullPool)
        with locker.connect() as lock, lock.begin():
            lock.exec_driver_sql("SELECT * FROM crontabber WHERE app_name = 'gate' FOR UPDATE")
            (project / "go").touch()
            wait_until(
                lambda: waiting_on_a_lock(admin, database, "WITH released AS"),
                "the outcome write waits for the lock",
            )
            yield
        locker.dispose()


@pytest.mark.postgres
def test_sigterm_records_the_job_as_failed_and_releases_it(project: Path, pg_url: str) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url)
    process = start(config, project, env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - began < 5
    assert process.returncode == 143
    assert stderr.endswith("crontabber: terminated by SIGTERM\n")
    state = state_of(pg_url, "slow")
    assert state["ongoing"] is None
    assert state["error_count"] == 1
    assert state["last_error"]["type"] == "crontabber.interrupts.Terminated"
    assert state["logs"] == ["crontabber.interrupts.Terminated"]


@pytest.mark.postgres
def test_sigint_records_the_job_as_failed(project: Path, pg_url: str) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url)
    process = start(config, project, env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback (most recent call last)" not in stderr.split("failed after")[-1]
    assert state_of(pg_url, "slow")["ongoing"] is None


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_signal_while_the_last_outcome_is_written_is_not_lost(
    project: Path, pg_url: str, pg_admin_engine: sa.Engine, signum: int, status: int
) -> None:
    """Reproduction 6: the signal arrives while the outcome write waits for a row lock."""
    config = write_config(project, "faultjobs.Gate|5m", database_url=pg_url)
    process = start(config, project)
    wait_for_start(project)
    with outcome_write_blocked(project, pg_url, pg_admin_engine):
        process.send_signal(signum)
        time.sleep(0.3)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    assert runs(project) == ["start", "end"]
    state = state_of(pg_url, "gate")
    assert state["ongoing"] is None and state["error_count"] == 0  # the job did finish
    assert state["logs"] == [None]


@pytest.mark.postgres
def test_sys_exit_in_a_job_is_that_jobs_failure(project: Path, pg_url: str) -> None:
    """Reproduction 8: the run goes on; the exit status is the documented one."""
    config = write_config(
        project,
        "faultjobs.ExitsThree|5m\nfaultjobs.ExitsZero|5m\nfaultjobs.Healthy|5m",
        database_url=pg_url,
    )
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 0, result.stderr
    assert runs(project, "healthy") == ["start", "end"]
    for name, code in (("exits-three", 3), ("exits-zero", 0)):
        state = state_of(pg_url, name)
        assert state["error_count"] == 1
        assert state["last_error"]["type"] == "SystemExit"
        assert state["last_error"]["value"] == f"the job called sys.exit({code})"
        assert state["logs"] == ["SystemExit"]
        assert f"{name} failed after" in result.stderr


@pytest.mark.postgres
def test_max_runtime_bounds_hung_jobs(project: Path, pg_url: str) -> None:
    config = write_config(
        project, "faultjobs.HungPython|5m\nfaultjobs.HungCommand|5m", database_url=pg_url
    )
    began = time.monotonic()
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert time.monotonic() - began < 15
    assert result.status == 0, result.stderr
    for name in ("hung-python", "hung-command"):
        state = state_of(pg_url, name)
        assert state["ongoing"] is None
        assert state["last_error"]["type"] == "crontabber.interrupts.MaxRuntimeExceeded"
    sleeps = subprocess.run(
        ["pgrep", "-f", "^sleep 59.713$"], capture_output=True, text=True, check=False
    )
    assert sleeps.stdout == "", "the hung command was not killed"


@pytest.mark.postgres
def test_max_runtime_from_the_ini_file(project: Path, pg_url: str) -> None:
    extra = "    [[class-Slow]]\n        max_runtime=1\n"
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=extra)
    began = time.monotonic()
    result = run_crontabber(f"--admin.conf={config}", cwd=project, env={"SLOW_SECONDS": "60"})
    assert time.monotonic() - began < 15
    assert result.status == 0, result.stderr
    state = state_of(pg_url, "slow")
    assert state["last_error"]["type"] == "crontabber.interrupts.MaxRuntimeExceeded"
    assert runs(project) == ["start"]


@pytest.mark.postgres
def test_sigterm_ends_a_daemon_whose_outcome_write_is_blocked_within_its_grace(
    project: Path, pg_url: str, pg_admin_engine: sa.Engine
) -> None:
    """Another session keeps the job's row locked, so its outcome cannot be written and
    each try is retried for state_retry_seconds (60 s): SIGTERM still ends the daemon
    once its grace period is over, in one line, leaving the claim to expire."""
    config = write_config(
        project,
        "faultjobs.Gate|5m",
        database_url=pg_url,
        extra="[daemon]\n    shutdown_grace_seconds=2\n",
    )
    process = start(config, project, "--daemon")
    wait_for_start(project)
    with outcome_write_blocked(project, pg_url, pg_admin_engine):
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        took = time.monotonic() - began
    assert took < 15, stderr  # the grace (2 s), then a lock_timeout (3 s) at most
    assert "Traceback" not in stderr
    assert "its claim will expire" in stderr
    assert runs(project) == ["start", "end"]
