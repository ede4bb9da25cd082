"""Operators' actions against real processes on PostgreSQL: a pause holds on four hosts
racing, ends by itself at its --until, a run-now wakes a sleeping daemon and a crontab
run once, and a cancel stops a run on another host within two heartbeats."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..helpers.command import (
    HEARTBEAT,
    run_crontabber,
    start_crontabber,
    start_daemon,
    write_config,
)
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.waiting import wait_until

# How long the four hosts race (the issue asks for a minute; CRONTABBER_RACE_SECONDS
# shortens it for a quick local look).
RACE_SECONDS = float(os.environ.get("CRONTABBER_RACE_SECONDS", "60"))

JOBS = (
    Job(
        "Marking",
        run="""
            note("start", self.app_name, crontabber_pid(), time.time())
            time.sleep(float(os.environ.get("JOB_SECONDS", "0.05")))
            note("end", self.app_name, crontabber_pid(), time.time())
        """,
    ),
    Job("Tick", "tick", base="Marking", run=None),
    Job("Held", "held", base="Marking", run=None),
    Job("Dependent", "dependent", base="Marking", depends_on="held", run=None),
    Job("Daily", "daily", base="Marking", run=None),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "opsjobs", *JOBS)
    return tmp_path


def starts(project: Path, app: str) -> list[float]:
    found = []
    for line in noted(project):
        what, name, _, when = line.split()
        if what == "start" and name == app:
            found.append(float(when))
    return found


def crontabber(config: Path, project: Path, *args: str) -> str:
    done = run_crontabber(f"--admin.conf={config}", *args, cwd=project)
    assert done.status == 0, done.stderr
    return done.stdout


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr


def test_a_paused_job_is_not_run_by_four_hosts_racing(project: Path, pg_url: str) -> None:
    config = write_config(
        project,
        "opsjobs.Tick|1s\nopsjobs.Held|1s\nopsjobs.Dependent|1s",
        database_url=pg_url,
    )
    crontabber(config, project, "--migrate")
    crontabber(config, project, "--pause=held", "--reason=racing")
    daemons = [start_daemon(config, project, f"host-{n}") for n in range(4)]
    try:
        time.sleep(RACE_SECONDS)
    finally:
        stop(*daemons)
    ticks = sorted(starts(project, "tick"))
    assert starts(project, "held") == [] and starts(project, "dependent") == []
    # The others ran all along, each due instant once: one run a second at most.
    assert RACE_SECONDS / 2 <= len(ticks) <= RACE_SECONDS + 2, len(ticks)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    # Two runs of one due instant would start milliseconds apart; runs of successive
    # instants are a second apart, less what a loaded machine delays one note by.
    assert min(gaps) > 0.5, gaps


def test_a_pause_ends_by_itself_at_its_until(project: Path, pg_url: str) -> None:
    config = write_config(project, "opsjobs.Tick|1s", database_url=pg_url)
    crontabber(config, project, "--migrate")
    crontabber(config, project, "--pause=tick", "--until=3s")
    paused_at = time.time()
    daemon = start_daemon(config, project, "host-a")
    try:
        wait_until(lambda: starts(project, "tick"), "the pause ended", timeout=30, process=daemon)
    finally:
        stop(daemon)
    first = starts(project, "tick")[0]
    assert 3.0 - 0.5 <= first - paused_at <= 3.0 + 2.0, first - paused_at


def test_run_now_wakes_a_sleeping_daemon_and_the_next_crontab_run_once(
    project: Path, pg_url: str
) -> None:
    config = write_config(project, "opsjobs.Daily|1d", database_url=pg_url)
    crontabber(config, project, "--migrate")
    daemon = start_crontabber(config, project, "--daemon", "--daemon.poll_seconds=60")
    try:
        wait_until(lambda: len(starts(project, "daily")) == 1, "the first run", process=daemon)
        time.sleep(1.5)  # the daemon sleeps now, until the next poll a minute away
        crontabber(config, project, "--run-now=daily")
        asked = time.time()
        wait_until(lambda: len(starts(project, "daily")) == 2, "the run-now", timeout=10)
        assert starts(project, "daily")[1] - asked < 3.0
        time.sleep(2.0)
        assert len(starts(project, "daily")) == 2  # once
    finally:
        stop(daemon)
    crontabber(config, project, "--run-now=daily")
    crontabber(config, project)
    crontabber(config, project)
    assert len(starts(project, "daily")) == 3
    runs = [
        json.loads(line)
        for line in crontabber(config, project, "--history=daily", "--json").splitlines()
    ]
    assert [run["trigger"] for run in runs] == ["run-now", "run-now", "schedule"]
    [listed] = [
        json.loads(line)
        for line in crontabber(config, project, "--list-jobs", "--json").splitlines()
    ]
    assert listed["run_now_asked"] is None


def test_cancel_stops_a_run_on_another_host_within_two_heartbeats(
    project: Path, pg_url: str
) -> None:
    config = write_config(project, "opsjobs.Tick|1d", database_url=pg_url, extra=HEARTBEAT)
    crontabber(config, project, "--migrate")
    host_a = start_crontabber(
        config, project, "--crontabber.host_name=host-a", env={"JOB_SECONDS": "60"}
    )
    try:
        wait_until(lambda: starts(project, "tick"), "the run started", process=host_a)
        said = crontabber(
            config, project, "--cancel=tick", "--reason=stuck", "--crontabber.host_name=host-b"
        )
        asked = time.monotonic()
        assert said.startswith("asked host-a pid ") and "to cancel tick" in said
        _, stderr = host_a.communicate(timeout=30)
        stopped_after = time.monotonic() - asked
    finally:
        if host_a.poll() is None:
            host_a.kill()
            host_a.communicate()
    assert host_a.returncode == 0, stderr
    assert stopped_after < 2 * 1.0 + 1.0, stopped_after  # two heartbeats of 1 s, and slack
    [run] = [
        json.loads(line)
        for line in crontabber(config, project, "--history=tick", "--json").splitlines()
    ]
    assert run["outcome"] == "cancelled" and run["host"] == "host-a"
    assert [line.split()[0] for line in noted(project)] == ["start"]  # it never ended
    [entry] = [
        json.loads(line)
        for line in crontabber(config, project, "--audit-log", "--json").splitlines()
    ]
    assert (entry["action"], entry["reason"]) == ("cancel", "stuck")
    assert entry["detail"].startswith("the run on host-a pid ")
