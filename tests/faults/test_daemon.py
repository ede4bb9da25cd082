"""Daemon mode with real processes: on time, exactly once beside other daemons and
crontab runs, graceful on SIGTERM, reloading on SIGHUP, riding out a database restart."""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers.command import run_crontabber, start_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.pgcluster import PgCluster
from ..helpers.waiting import wait_until

JOBS = (
    Job(
        "Marking",
        attributes="seconds = 0.0",
        run="""
            note("start", self.app_name, crontabber_pid(), time.time())
            time.sleep(float(os.environ.get("JOB_SECONDS", self.seconds)))
            note("end", self.app_name, crontabber_pid(), time.time())
        """,
    ),
    Job("Tick", "tick", base="Marking", run=None),
    Job("Other", "other", base="Marking", run=None),
    *(
        Job(f"Shared{n}", f"shared-{n}", base="Marking", attributes="seconds = 0.3", run=None)
        for n in range(6)
    ),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "daemonjobs", *JOBS, notes="marks.txt")
    return tmp_path


def marks(project: Path) -> list[tuple[str, str, int, float]]:
    found = []
    for line in noted(project, "marks.txt"):
        what, app, pid, when = line.split()
        found.append((what, app, int(pid), float(when)))
    return found


def starts(project: Path, app: str) -> list[float]:
    return [when for what, name, _, when in marks(project) if what == "start" and name == app]


def daemon(config: Path, project: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return start_crontabber(config, project, "--daemon", *args, env=env)


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> tuple[int, str]:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


JITTER = 0.05  # seconds: how much a claim's latency may vary between two runs


def test_a_due_job_starts_within_a_second_of_its_time(project: Path) -> None:
    """A 2s job in an idle daemon: each start is 2 s after the last, plus its lateness."""
    config = write_config(project, "daemonjobs.Tick|2s")
    process = daemon(config, project)
    wait_until(lambda: len(starts(project, "tick")) >= 5, "five runs", timeout=30)
    status, stderr = stop(process)
    assert status == 0, stderr
    times = starts(project, "tick")
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # A run is due 2 s after the tick that started the last one; each start mark is
    # taken after that run's claim, whose latency varies by milliseconds under load.
    assert all(2.0 - JITTER <= gap < 3.0 for gap in gaps), gaps
    assert "Traceback" not in stderr


def test_sigterm_lets_the_running_job_finish_and_exits_0(project: Path) -> None:
    config = write_config(
        project, "daemonjobs.Tick|1h", extra="[daemon]\n    shutdown_grace_seconds=20\n"
    )
    process = daemon(config, project, env={"JOB_SECONDS": "2"})
    wait_until(lambda: starts(project, "tick"), "the job started")
    status, stderr = stop(process)
    assert status == 0, stderr
    assert [what for what, *_ in marks(project)] == ["start", "end"]
    assert "received SIGTERM: stopping after the running job" in stderr
    state = run_crontabber(f"--admin.conf={config}", "--list-jobs", "--json", cwd=project)
    assert '"error_count": 0' in state.stdout and '"ongoing": null' in state.stdout


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_job_still_running_after_the_grace_is_interrupted_and_recorded(
    project: Path, signum: int, expected: int
) -> None:
    config = write_config(
        project, "daemonjobs.Tick|1h", extra="[daemon]\n    shutdown_grace_seconds=1\n"
    )
    process = daemon(config, project, env={"JOB_SECONDS": "60"})
    wait_until(lambda: starts(project, "tick"), "the job started")
    began = time.monotonic()
    status, stderr = stop(process, signum)
    assert status == expected, stderr
    assert time.monotonic() - began < 15
    assert "tick did not finish within the grace period (1s)" in stderr
    listed = run_crontabber(f"--admin.conf={config}", "--list-jobs", "--json", cwd=project)
    assert '"ongoing": null' in listed.stdout and '"error_count": 1' in listed.stdout


def test_sighup_reloads_a_good_configuration_and_keeps_the_old_on_a_bad_one(
    project: Path,
) -> None:
    config = write_config(project, "daemonjobs.Tick|1s")
    process = daemon(config, project)
    wait_until(lambda: starts(project, "tick"), "tick ran")
    write_config(project, "daemonjobs.Tick|1s\ndaemonjobs.Other|1s")
    process.send_signal(signal.SIGHUP)
    wait_until(lambda: starts(project, "other"), "the reloaded job ran")
    config.write_text("[crontabber]\n    jobs='''\n        daemonjobs.Tick|1s\n")  # unparseable
    process.send_signal(signal.SIGHUP)
    before = len(starts(project, "other"))
    wait_until(lambda: len(starts(project, "other")) >= before + 2, "the old config goes on")
    # A bad jobs line: the old configuration stays whole, the job it names included.
    write_config(project, "daemonjobs.Tick|1s\ndaemonjobs.Other|1s\ndaemonjobs.Nowhere|1s")
    process.send_signal(signal.SIGHUP)
    before = len(starts(project, "other"))
    wait_until(lambda: len(starts(project, "other")) >= before + 2, "other still runs")
    status, stderr = stop(process)
    assert status == 0, stderr
    assert "SIGHUP: reloaded the configuration: 2 jobs" in stderr
    refused = [line for line in stderr.splitlines() if "was not reloaded" in line]
    assert len(refused) == 2, stderr
    assert "has no class 'Nowhere'" in refused[1], refused
    assert "Traceback" not in stderr


@pytest.mark.postgres
def test_a_restarted_database_is_ridden_out(project: Path, private_cluster: PgCluster) -> None:
    config = write_config(project, "daemonjobs.Tick|1s", database_url=private_cluster.url)
    process = daemon(config, project)
    wait_until(lambda: len(starts(project, "tick")) >= 2, "two runs")
    private_cluster.stop()
    time.sleep(4)
    private_cluster.start()
    back = len(starts(project, "tick"))
    wait_until(lambda: len(starts(project, "tick")) >= back + 3, "runs after the restart")
    assert process.poll() is None, "the daemon exited"
    status, stderr = stop(process)
    assert status == 0, stderr
    # Said once as the outage begins and once as it ends; or, when it began while a run's
    # outcome was being written, by that write's retries, which ride it out.
    ridden = "retrying until it answers" in stderr and "answers again after" in stderr
    assert ridden or "; retrying in " in stderr, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) <= 2, errors  # one line per outage (a job's write may add one)


@pytest.mark.postgres
@pytest.mark.slow
def test_three_daemons_and_crontab_runs_run_every_instant_once(project: Path, pg_url: str) -> None:
    """Six 5s jobs for a minute: no run twice or overlapping, no instant missed."""
    seconds = float(os.environ.get("CRONTABBER_DAEMON_SECONDS", "60"))
    lines = "\n".join(f"daemonjobs.Shared{n}|5s" for n in range(6))
    config = write_config(
        project, lines, database_url=pg_url, extra="[daemon]\n    poll_seconds=2\n"
    )
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=project).status == 0
    daemons = [daemon(config, project, f"--crontabber.host_name=daemon-{n}") for n in range(3)]
    stopping = threading.Event()
    cron_statuses: list[int] = []

    def crontab() -> None:
        while not stopping.wait(1.3):
            result = run_crontabber(
                f"--admin.conf={config}", "--crontabber.host_name=cron", cwd=project
            )
            cron_statuses.append(result.status)

    cron = threading.Thread(target=crontab)
    cron.start()
    time.sleep(seconds)
    stopping.set()
    cron.join()
    results = [stop(process) for process in daemons]
    assert all(status == 0 for status, _ in results), results
    assert set(cron_statuses) <= {0, 2, 3}, cron_statuses

    bodies = collections.defaultdict(list)
    open_bodies = {}
    for what, app, pid, when in marks(project):
        if what == "start":
            open_bodies[(app, pid)] = when
        else:
            bodies[app].append((open_bodies.pop((app, pid)), when))
    assert not open_bodies, open_bodies
    assert sorted(bodies) == [f"shared-{n}" for n in range(6)]
    for app, runs in bodies.items():
        runs.sort()
        for (start, end), (next_start, _) in itertools.pairwise(runs):
            assert end <= next_start, f"{app} overlapped itself"
            assert next_start - start >= 5.0 - 0.05, f"{app} ran twice within 5 s"
            assert next_start - start < 5.0 + 2.5, f"{app} missed an instant"
        assert len(runs) >= seconds / 5 - 2, (app, len(runs))
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        held = conn.exec_driver_sql("SELECT count(*) FROM crontabber WHERE ongoing IS NOT NULL")
        assert held.scalar() == 0
    engine.dispose()


def test_a_daemon_serves_the_status_page_when_web_port_is_set(project: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(project, "daemonjobs.Tick|1h")
    process = daemon(config, project, f"--web.port={port}")
    wait_until(lambda: starts(project, "tick"), "the job ran")

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs", timeout=5) as r:
                return b'"tick"' in r.read()
        except OSError:
            return False

    wait_until(answers, "the status page answers")
    status, stderr = stop(process)
    assert status == 0, stderr


@pytest.mark.postgres
def test_workers_run_independent_jobs_at_the_same_time(project: Path, pg_url: str) -> None:
    """daemon.workers=3: three daemons in all, each job through the claim, all stopped
    by one SIGTERM to the first."""
    lines = "\n".join(f"daemonjobs.Shared{n}|1h" for n in range(3))
    config = write_config(project, lines, database_url=pg_url, extra="[daemon]\n    workers=3\n")
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=project).status == 0
    process = daemon(config, project, env={"JOB_SECONDS": "3"})
    wait_until(lambda: len([m for m in marks(project) if m[0] == "end"]) == 3, "three runs")
    status, stderr = stop(process)
    assert status == 0, stderr
    runs = marks(project)
    first = {app: when for what, app, _, when in runs if what == "start"}
    assert sorted(first) == ["shared-0", "shared-1", "shared-2"]
    assert max(first.values()) - min(first.values()) < 2.5  # side by side, not one by one
    assert len([m for m in runs if m[0] == "start"]) == 3  # each once
    assert len({pid for _, _, pid, _ in runs}) >= 2
    workers = [
        int(line.rsplit(" ", 1)[1])
        for line in stderr.splitlines()
        if "started worker daemon pid" in line
    ]
    assert len(workers) == 2, stderr
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        ), f"worker {pid} is still running"


def test_a_state_file_removed_under_a_daemon_stops_it_with_one_line(project: Path) -> None:
    config = write_config(project, "daemonjobs.Tick|1s")
    process = daemon(config, project)
    wait_until(lambda: len(starts(project, "tick")) >= 2, "two runs")
    (project / "crontabber.sqlite").unlink()
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("crontabber: the state file ") and last.endswith(
        "was removed while crontabber had it open; stopping rather than write into a file "
        "nobody reads"
    ), stderr
    assert "Traceback" not in stderr
    assert not (project / "crontabber.sqlite").exists()  # nothing written into a new one
