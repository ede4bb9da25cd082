"""A holder cut off or frozen, with real processes: a proxy that stops forwarding without
closing anything (a silent partition), and SIGSTOP (issue 21's reproductions 1 and 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2

from crontabber.db.url import parse_url

from ..helpers.command import (
    run_crontabber,
    start_crontabber,
    start_daemon,
    write_config,
)
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.pgbouncer import through
from ..helpers.proxy import FreezingProxy
from ..helpers.waiting import wait_until

HELD = Job(
    "Held",
    "held",
    run="""
        open(os.path.join(HERE, "started"), "w").close()
        while not os.path.exists(os.path.join(HERE, "go")):
            time.sleep(0.02)
    """,
)
QUICK = Job("Quick", "quick", run='note("ran")')
# 20 s of work, a line per 50 ms, each with the pid and the monotonic clock.
LONG = Job(
    "Long",
    "long",
    run="""
        for _ in range(400):
            note(crontabber_pid(), time.monotonic())
            time.sleep(0.05)
    """,
)
SHORT_RETRIES = "    state_retry_seconds=6\n    state_timeout_seconds=2\n"


def project(tmp_path: Path, pg_url: str, jobs: str, extra: str = "") -> Path:
    write_job_module(tmp_path, "fieldjobs", HELD, QUICK, LONG)
    config = write_config(tmp_path, jobs, extra=extra, database_url=pg_url)
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    return config


def port_of(url: str) -> int:
    return urlsplit(url).port or 5432


def test_a_tick_started_during_a_partition_exits_with_one_line(tmp_path: Path, pg_url: str) -> None:
    """Reproduction 3: a fresh tick during a silent partition hung for the whole
    partition. It now gives up after libpq's connect timeout, in one line."""
    config = project(tmp_path, pg_url, "fieldjobs.Quick|5m", SHORT_RETRIES)
    with FreezingProxy(port_of(pg_url)) as proxy:
        proxy.freeze()
        started = time.monotonic()
        process = start_crontabber(
            config, tmp_path, f"--crontabber.database_url={through(pg_url, proxy.port)}"
        )
        try:
            _, stderr = process.communicate(timeout=6 + 5 + 10)
        finally:
            process.kill()
        elapsed = time.monotonic() - started
    assert process.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("crontabber: cannot reach the state database"), stderr
    assert elapsed < 6 + 5  # state_retry_seconds + 5 s, the bound
    assert noted(tmp_path) == []


def test_an_outcome_written_during_a_partition_gives_up_in_time(
    tmp_path: Path, pg_url: str
) -> None:
    """Reproduction 3: the holder's outcome write blocked until the partition healed.
    It now gives up within state_retry_seconds and a deadline, in one line, exit 1."""
    config = project(tmp_path, pg_url, "fieldjobs.Held|5m", SHORT_RETRIES)
    with FreezingProxy(port_of(pg_url)) as proxy:
        process = start_crontabber(
            config, tmp_path, f"--crontabber.database_url={through(pg_url, proxy.port)}"
        )
        try:
            wait_until((tmp_path / "started").exists, "the job started", process=process)
            proxy.freeze()
            (tmp_path / "go").write_text("")
            partitioned = time.monotonic()
            _, stderr = process.communicate(timeout=6 + 5 + 2 + 10)
            elapsed = time.monotonic() - partitioned
        finally:
            process.kill()
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("crontabber: recording the outcome of held failed: "), stderr
    assert last.endswith("its claim will expire and a later run recovers"), stderr
    assert elapsed < 6 + 5 + 2  # retries, then at most a connect timeout and a deadline


def kill_all(*processes: subprocess.Popen | None) -> None:
    """End the hosts a test left running, and collect their output."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()


def work_lines(directory: Path) -> list[tuple[int, float]]:
    return [(int(pid), float(when)) for pid, when in (line.split() for line in noted(directory))]


def test_a_frozen_holder_stops_within_a_second_of_waking(tmp_path: Path, pg_url: str) -> None:
    """Reproduction 1: host A, frozen (SIGSTOP) early in a 20 s job for 8 s while a
    daemon B polls, ran 18 more seconds beside B. A now stops within a second of
    resuming, exits 4 with one line, and its outcome is logged as lost, superseded."""
    config = project(
        tmp_path,
        pg_url,
        "fieldjobs.Long|5m",
        "    heartbeat_interval=1\n    heartbeat_stale_intervals=3\n    error_retry_time=0\n",
    )
    host_a = start_crontabber(config, tmp_path, "--crontabber.host_name=host-a")
    host_b: subprocess.Popen | None = None
    try:
        wait_until(lambda: len(noted(tmp_path)) >= 20, "A did a second of work", process=host_a)
        os.kill(host_a.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        host_b = start_daemon(config, tmp_path, "host-b")
        b_pid = host_b.pid
        wait_until(lambda: any(pid == b_pid for pid, _ in work_lines(tmp_path)), "B runs it")
        time.sleep(max(0.0, stopped + 8 - time.monotonic()))
        os.kill(host_a.pid, signal.SIGCONT)
        resumed = time.monotonic()
        _, stderr_a = host_a.communicate(timeout=30)
    finally:
        kill_all(host_a, host_b)
    after = [when for pid, when in work_lines(tmp_path) if pid == host_a.pid and when > resumed]
    assert not after or max(after) - resumed < 1.0, (len(after), max(after) - resumed)
    # A's run, in a process of its own, held itself to its lease while A was frozen: it
    # stopped before B could take the claim over, so the two never ran at once.
    a_last = max(when for pid, when in work_lines(tmp_path) if pid == host_a.pid)
    b_first = min(when for pid, when in work_lines(tmp_path) if pid == b_pid)
    assert a_last < b_first, b_first - a_last
    assert host_a.returncode == 4, stderr_a
    last = stderr_a.strip().splitlines()[-1]
    assert last.startswith("crontabber: long: its lease was lost: "), stderr_a
    connection = psycopg2.connect(**parse_url(pg_url).connect_args)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT exc_type, superseded FROM crontabber_log"
                " WHERE app_name = 'long' AND exc_type = 'crontabber.LeaseLost'"
            )
            assert cursor.fetchall() == [("crontabber.LeaseLost", True)]
    finally:
        connection.close()


def test_a_partitioned_holder_stops_before_another_host_takes_over(
    tmp_path: Path, pg_url: str
) -> None:
    """Reproduction 3: host A, cut off by a silent partition, went on with its job while
    B took it over (13 s of overlap). A now stops at its renew deadline, before its
    lease lapses, and so before B can start: no overlap."""
    config = project(
        tmp_path,
        pg_url,
        "fieldjobs.Long|5m",
        "    heartbeat_interval=1\n    heartbeat_stale_intervals=3\n    error_retry_time=0\n"
        + SHORT_RETRIES,
    )
    with FreezingProxy(port_of(pg_url)) as proxy:
        host_a = start_crontabber(
            config,
            tmp_path,
            f"--crontabber.database_url={through(pg_url, proxy.port)}",
            "--crontabber.host_name=host-a",
        )
        host_b: subprocess.Popen | None = None
        try:
            wait_until(lambda: len(noted(tmp_path)) >= 10, "A is at work", process=host_a)
            proxy.freeze()
            host_b = start_daemon(config, tmp_path, "host-b")
            b_pid = host_b.pid
            wait_until(lambda: any(pid == b_pid for pid, _ in work_lines(tmp_path)), "B runs it")
            _, stderr_a = host_a.communicate(timeout=60)
        finally:
            kill_all(host_a, host_b)
    lines = work_lines(tmp_path)
    last_of_a = max(when for pid, when in lines if pid == host_a.pid)
    first_of_b = min(when for pid, when in lines if pid == b_pid)
    assert last_of_a < first_of_b, (last_of_a, first_of_b)
    assert host_a.returncode != 0, stderr_a
    assert "its lease is lost: it could not be renewed" in stderr_a, stderr_a
    assert "Traceback" not in stderr_a
