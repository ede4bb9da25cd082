"""Each run in a process of its own: a job's processes never outlive it, and nothing a job
does (os._exit, a fork that returns, a signal, a table lock it keeps) ends or splits the
scheduler. Real crontab runs and daemons, real processes, real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ..helpers.command import run_crontabber, start_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.store import state_of
from ..helpers.waiting import wait_until

JOBS = (
    # Starts a child, a child in a session of its own (setsid) and a grandchild whose
    # parent ends at once (adopted), notes their pids, then sleeps for SECONDS.
    Job(
        "Spawning",
        "spawning",
        attributes="seconds = 0.0",
        run="""
            import subprocess
            plain = subprocess.Popen(["sleep", "300.017"])
            escaped = subprocess.Popen(["setsid", "sleep", "301.017"])
            orphan = subprocess.Popen(["sh", "-c", "sleep 302.017 >/dev/null 2>&1 & echo $!"], stdout=subprocess.PIPE)
            grandchild = orphan.stdout.read().strip().decode()
            orphan.wait()
            note("pids", plain.pid, grandchild)
            time.sleep(self.seconds)
        """,
    ),
    Job("Stuck", "stuck", base="Spawning", attributes="seconds = 300.0", run=None),
    Job(
        "Limited",
        "limited",
        base="Spawning",
        attributes="seconds = 300.0\nmax_runtime = 1",
        run=None,
    ),
    Job(
        "Exiting",
        "exiting",
        run='note("exiting", os.getpid())\nprint("last words", flush=True)\nos._exit(0)',
    ),
    Job("Killed", "killed", run="os.kill(os.getpid(), 9)"),
    # Forks, and both processes return (the parent after the fork has).
    Job(
        "Forking",
        "forking",
        run='pid = os.fork()\nif pid:\n    os.waitpid(pid, 0)\nnote("forked", pid)',
    ),
    Job("After", "after", run='note("after", os.getpid())'),
    Job(
        "Locking",
        "locking",
        run="""
            import psycopg2
            global KEPT
            KEPT = psycopg2.connect(os.environ["STATE_URL"])
            KEPT.cursor().execute("LOCK TABLE crontabber IN ACCESS EXCLUSIVE MODE")
            note("locked")
        """,
    ),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "isolated", *JOBS)
    return tmp_path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie is not running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sleepers() -> list[int]:
    """The pids of the ``sleep 30x.017`` processes the jobs start, still running (an odd
    duration: a ``sleep 300`` of anyone else's on the machine is not one of them)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if command in (b"sleep\x00300.017\x00", b"sleep\x00301.017\x00", b"sleep\x00302.017\x00"):
            found.append(int(entry))
    return [pid for pid in found if alive(pid)]


@pytest.fixture(autouse=True)
def no_sleepers() -> None:
    yield
    for pid in sleepers():  # a failed test leaves nothing to the next
        os.kill(pid, signal.SIGKILL)


def error_of(url: str, app: str) -> str:
    state = state_of(url, app)
    return state["last_error"].get("type", "") + ": " + state["last_error"].get("value", "")


def test_a_job_s_processes_end_with_its_run(project: Path, pg_url: str) -> None:
    """A child, a setsid escapee and an adopted grandchild: none outlives the run."""
    config = write_config(project, "isolated.Spawning|1d", database_url=pg_url)
    done = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert done.status == 0, done.stderr
    assert [line.split()[0] for line in noted(project)] == ["pids"]
    wait_until(lambda: not sleepers(), "the job's processes ended", timeout=10)
    assert state_of(pg_url, "spawning")["error_count"] == 0


def test_max_runtime_ends_the_whole_run(project: Path, pg_url: str) -> None:
    config = write_config(project, "isolated.Limited|1d", database_url=pg_url)
    started = time.monotonic()
    done = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert done.status == 0, done.stderr
    assert time.monotonic() - started < 60
    wait_until(lambda: not sleepers(), "the job's processes ended", timeout=10)
    assert "MaxRuntimeExceeded" in error_of(pg_url, "limited")


@pytest.mark.parametrize("mode", ["crontab", "daemon"])
def test_a_killed_crontabber_takes_its_run_s_processes_along(
    project: Path, pg_url: str, mode: str
) -> None:
    """SIGKILL to crontabber while its job runs: the job and all it started end too, so
    no second generation can overlap it once the lease passes."""
    config = write_config(project, "isolated.Stuck|1d", database_url=pg_url)
    args = ("--daemon",) if mode == "daemon" else ()
    process = start_crontabber(config, project, *args)
    try:
        wait_until(lambda: noted(project), "the job started", timeout=30)
        wait_until(lambda: len(sleepers()) == 3, "its three processes", timeout=10)
        process.kill()
        process.wait(timeout=30)
        wait_until(lambda: not sleepers(), "the job's processes ended", timeout=10)
    finally:
        process.kill()
        process.communicate(timeout=30)


def test_os_exit_and_a_signal_fail_the_run_not_crontabber(project: Path, pg_url: str) -> None:
    """os._exit(0) and SIGKILL in a job: each recorded as that run's failure in one line;
    the job after them runs in the same crontab run."""
    jobs = "isolated.Exiting|1d\nisolated.Killed|1d\nisolated.After|1d"
    config = write_config(project, jobs, database_url=pg_url)
    done = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert done.status == 0, done.stderr
    assert [line.split()[0] for line in noted(project)] == ["exiting", "after"]
    assert error_of(pg_url, "exiting") == (
        "crontabber.RunProcessEnded: the run's process exited with status 0 (os._exit?) "
        "before the job returned"
    )
    assert "was killed by SIGKILL" in error_of(pg_url, "killed")
    assert "Traceback" not in done.stderr
    history = run_crontabber(f"--admin.conf={config}", "--history=exiting", "--json", cwd=project)
    assert "last words" in json.loads(history.stdout.splitlines()[0])["output"]


def test_a_fork_that_returns_is_the_run_s_failure(project: Path, pg_url: str) -> None:
    """The job forks and both processes return: one outcome, a failure saying so; the
    scheduler goes on in one process, on its own connection."""
    config = write_config(project, "isolated.Forking|1d\nisolated.After|1d", database_url=pg_url)
    done = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert done.status == 0, done.stderr
    assert sorted(line.split()[0] for line in noted(project)) == ["after", "forked", "forked"]
    assert "returned into crontabber" in error_of(pg_url, "forking")
    assert state_of(pg_url, "after")["error_count"] == 0
    assert "Traceback" not in done.stderr and "KeyError" not in done.stderr


def test_a_daemon_outlives_jobs_that_exit_or_fork(project: Path, pg_url: str) -> None:
    jobs = "isolated.Exiting|1s\nisolated.Forking|1s\nisolated.After|1s"
    config = write_config(project, jobs, database_url=pg_url, extra="    error_retry_time=1\n")
    process = start_crontabber(config, project, "--daemon", "--daemon.poll_seconds=0.2")
    try:
        wait_until(
            lambda: sum(line.startswith("after") for line in noted(project)) >= 3,
            "three rounds",
            timeout=60,
        )
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_a_table_lock_the_job_keeps_dies_with_its_run(project: Path, pg_url: str) -> None:
    """LOCK TABLE crontabber on a connection the job keeps: its process ends with the
    run, so does the connection and the lock; the outcome is recorded at once."""
    config = write_config(project, "isolated.Locking|1d\nisolated.After|1d", database_url=pg_url)
    started = time.monotonic()
    done = run_crontabber(
        f"--admin.conf={config}", cwd=project, env={"STATE_URL": pg_url.replace("+psycopg2", "")}
    )
    assert done.status == 0, done.stderr
    assert time.monotonic() - started < 30
    assert state_of(pg_url, "locking")["error_count"] == 0, error_of(pg_url, "locking")
    assert [line.split()[0] for line in noted(project)] == ["locked", "after"]
    again = run_crontabber(f"--admin.conf={config}", "--nagios", cwd=project)
    assert again.status == 0, again.stdout + again.stderr


def test_a_killed_worker_is_logged_and_started_again(project: Path, pg_url: str) -> None:
    """daemon.workers=2: SIGKILL the worker, it is logged and replaced; SIGKILL the
    daemon, the worker ends with it."""
    config = write_config(
        project, "isolated.After|1s", database_url=pg_url, extra="[daemon]\n    workers=2\n"
    )
    process = start_crontabber(config, project, "--daemon", "--daemon.poll_seconds=0.2")
    try:
        wait_until(lambda: len(workers_of(process.pid)) == 1, "the worker", timeout=30)
        (first,) = workers_of(process.pid)
        time.sleep(5.5)  # Workers.RESTART_AFTER: a worker is not restarted in a loop
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: [pid for pid in workers_of(process.pid) if pid != first],
            "another worker",
            timeout=30,
        )
        (second,) = [pid for pid in workers_of(process.pid) if pid != first]
        process.kill()
        process.wait(timeout=30)
        wait_until(lambda: not alive(second), "the worker ended with its daemon", timeout=10)
    finally:
        process.kill()
        _, stderr = process.communicate(timeout=30)
    assert f"worker daemon pid {first} was killed by signal 9; starting another" in stderr


def workers_of(pid: int) -> list[int]:
    """The worker daemons (children running crontabber) of the daemon ``pid``."""
    found = []
    for child in children_of(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if b"--daemon.workers=1" in command and alive(child):
            found.append(child)
    return found


def children_of(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(child) for child in f.read().split()]
        except OSError:
            continue
    return found


@pytest.mark.parametrize("mode", ["crontab", "daemon"])
def test_sigterm_ends_the_run_and_all_it_started(project: Path, pg_url: str, mode: str) -> None:
    """SIGTERM to a crontab run (at once) or to a daemon (after its grace): the job is
    interrupted, recorded as such, and none of its processes is left."""
    config = write_config(
        project,
        "isolated.Stuck|1d",
        database_url=pg_url,
        extra="[daemon]\n    shutdown_grace_seconds=1\n",
    )
    args = ("--daemon",) if mode == "daemon" else ()
    process = start_crontabber(config, project, *args)
    try:
        wait_until(lambda: len(sleepers()) == 3, "the job's three processes", timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    wait_until(lambda: not sleepers(), "the job's processes ended", timeout=10)
    assert "Terminated" in error_of(pg_url, "stuck")
    assert "Traceback" not in stderr
