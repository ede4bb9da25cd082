"""Twelve daemons on a PostgreSQL that takes seven connections (issue 21's reproduction 5):
no holder loses a live lease for want of a connection, so no job runs twice at once."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from pathlib import Path

from ..helpers.command import run_crontabber, start_daemon, write_config
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.pgcluster import PgCluster

DAEMONS = 12
JOBS = [
    Job(
        f"Busy{i}",
        f"busy{i}",
        run="""
            note(self.app_name, "start", crontabber_pid(), time.monotonic())
            time.sleep(1.0)
            note(self.app_name, "end", crontabber_pid(), time.monotonic())
        """,
    )
    for i in range(4)
]


def intervals(directory: Path) -> dict[str, list[tuple[float, float, int]]]:
    """Each job's runs as (start, end, pid); a run that did not end ends at infinity."""
    started: dict[tuple[str, int], float] = {}
    runs: dict[str, list[tuple[float, float, int]]] = {}
    for line in noted(directory):
        app, what, pid, when = line.split()
        if what == "start":
            started[(app, int(pid))] = float(when)
        else:
            runs.setdefault(app, []).append((started.pop((app, int(pid))), float(when), int(pid)))
    for (app, pid), when in started.items():
        runs.setdefault(app, []).append((when, float("inf"), pid))
    return runs


def test_twelve_daemons_on_seven_connections_never_overlap(
    tmp_path: Path, private_cluster: PgCluster
) -> None:
    private_cluster.settings = {"max_connections": "7", "superuser_reserved_connections": "0"}
    private_cluster.restart()
    url = private_cluster.url
    write_job_module(tmp_path, "budgetjobs", *JOBS)
    config = write_config(
        tmp_path,
        "\n".join(f"budgetjobs.Busy{i}|2s" for i in range(4)),
        extra="    heartbeat_interval=0.5\n    heartbeat_stale_intervals=3\n"
        "    error_retry_time=0\n",
        database_url=url,
    )
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    daemons = [
        start_daemon(config, tmp_path, f"daemon-{n}", stderr=subprocess.PIPE)
        for n in range(DAEMONS)
    ]
    try:
        time.sleep(20)
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        errors = [daemon.communicate(timeout=60)[1] for daemon in daemons]
    runs = intervals(tmp_path)
    assert sum(len(found) for found in runs.values()) >= 8, runs  # the work got done
    for app, found in runs.items():
        found.sort()
        for (_, end, pid), (start, _, other) in itertools.pairwise(found):
            assert start >= end, f"{app} ran in {pid} and {other} at once"
    for stderr in errors:
        assert "its lease is lost" not in stderr, stderr
        assert "Traceback" not in stderr, stderr
        # A daemon that cannot connect says so once per outage, not once a poll.
        assert stderr.count("retrying until it answers") <= 1, stderr
