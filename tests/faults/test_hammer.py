"""The hammer: 16 processes x 50 rounds over 10 jobs on PostgreSQL, with injected crashes.

Every round makes every job due and releases all workers at once. Some job runs
crash their process (SIGKILL to crontabber) right after starting; the crashed claim is on
this host with a dead pid, so a later run recovers it (in that round, or the
next): it records the crash as a failure and leaves the job to its retry time. At the end: no
job ran twice in a round or overlapped itself, every round either finished or
crashed each job, every finished run has its outcome in the log, every crash
has exactly one "abandoned" record, and no claim is left. CRONTABBER_HAMMER_ROUNDS and CRONTABBER_HAMMER_WORKERS make it
longer (benchmarks/ runs it so).
"""

from __future__ import annotations

import collections
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers import script
from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module

WORKERS = int(os.environ.get("CRONTABBER_HAMMER_WORKERS", "16"))
ROUNDS = int(os.environ.get("CRONTABBER_HAMMER_ROUNDS", "50"))
JOBS = 10

JOB_CLASSES = (
    Job(
        "Hammered",
        run="""
            round_number = os.environ["ROUND"]
            note("start", self.app_name, round_number, crontabber_pid(), time.time())
            marker = os.path.join(HERE, f"crash-{self.app_name}-{round_number}")
            if "HAMMER_NO_CRASH" not in os.environ and hash((self.app_name, round_number)) % 9 == 0:
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    pass  # crash once per job and round, not on the recovery
                else:
                    os.kill(crontabber_pid(), 9)  # crontabber dies, and its run with it
                    time.sleep(60)
            time.sleep(0.005)
            note("end", self.app_name, round_number, crontabber_pid(), time.time())
        """,
    ),
    *(Job(f"Job{i}", f"job{i}", base="Hammered", run=None) for i in range(JOBS)),
)


def spawn(config: Path, directory: Path, worker: str, first: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            script("hammer_worker.py"),
            str(config),
            str(directory),
            worker,
            str(first),
            str(ROUNDS),
        ],
        cwd=directory,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stderr=subprocess.PIPE,
        text=True,
    )


def make_all_due(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE crontabber SET next_run = now() - interval '1 second'")


def drive_rounds(config: Path, directory: Path, engine: sa.Engine) -> tuple[list[int], int]:
    """Release every worker once per round; replace crashed ones. Exit statuses and crashes."""
    workers = {str(n): spawn(config, directory, str(n), 0) for n in range(WORKERS)}
    statuses: list[int] = []
    crashed = 0
    for number in range(ROUNDS):
        if number:
            make_all_due(engine)
        (directory / f"go-{number}").touch()
        deadline = time.monotonic() + 60
        pending = dict(workers)
        while pending:
            assert time.monotonic() < deadline, f"round {number} did not finish"
            for worker, process in list(pending.items()):
                done = directory / f"done-{number}-{worker}"
                if done.exists() and done.read_text():
                    statuses.append(int(done.read_text()))
                    del pending[worker]
                elif process.poll() is not None:
                    _, stderr = process.communicate()
                    assert process.returncode == -9, stderr  # only injected crashes end a worker
                    assert "Traceback" not in stderr, stderr
                    crashed += 1
                    del pending[worker], workers[worker]
                    replacement = str(WORKERS + crashed)
                    workers[replacement] = spawn(config, directory, replacement, number + 1)
            time.sleep(0.005)
    for process in workers.values():
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    return statuses, crashed


def executions_of(runs_file: Path) -> tuple[dict[str, list], collections.Counter]:
    """Per job, its runs as (start, end, round) sorted by start (end == start: it crashed)."""
    executions = collections.defaultdict(list)
    open_runs: dict[tuple[str, str], tuple[float, str]] = {}
    for line in runs_file.read_text().splitlines():
        what, app, round_number, pid, when = line.split()
        if what == "start":
            open_runs[(app, pid)] = (float(when), round_number)
        else:
            started, started_round = open_runs.pop((app, pid))
            executions[app].append((started, float(when), started_round))
    crashes = collections.Counter(app for app, _pid in open_runs)
    for (app, _pid), (started, round_number) in open_runs.items():
        executions[app].append((started, started, round_number))
    for runs in executions.values():
        runs.sort()
    return executions, crashes


@pytest.mark.postgres
@pytest.mark.slow
def test_hammer(tmp_path: Path, pg_url: str) -> None:
    write_job_module(tmp_path, "hammerjobs", *JOB_CLASSES)
    config = write_config(
        tmp_path, "\n".join(f"hammerjobs.Job{i}|1h" for i in range(JOBS)), database_url=pg_url
    )
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    statuses, crashed_workers = drive_rounds(config, tmp_path, engine)
    make_all_due(engine)  # a last run recovers the claims of the last round's crashes
    final = run_crontabber(
        f"--admin.conf={config}", cwd=tmp_path, env={"ROUND": str(ROUNDS), "HAMMER_NO_CRASH": "1"}
    )
    assert final.status == 0, final.stderr
    assert set(statuses) <= {0, 2, 3}
    assert crashed_workers > 0, "no crash was injected"

    executions, crashes = executions_of(tmp_path / "runs.txt")
    for app, runs in executions.items():
        for (_, end, _), (next_start, _, _) in itertools.pairwise(runs):
            assert end <= next_start, f"{app} ran twice at once"
        finished_per_round = collections.Counter(r for start, end, r in runs if end > start)
        assert max(finished_per_round.values()) == 1, f"{app} finished twice in a round"
        # every round ran it, to its end or to an injected crash, except a round that
        # recovered the previous round's crash (recorded as failed, never re-run at once)
        ran_in = {r for _, _, r in runs}
        crashed_in = {int(r) for start, end, r in runs if end == start}
        for number in range(ROUNDS):
            assert str(number) in ran_in or number - 1 in crashed_in, (app, number)
    with engine.connect() as conn:
        logged = dict(
            conn.exec_driver_sql(
                "SELECT coalesce(exc_type, 'ok'), count(*) FROM crontabber_log GROUP BY 1"
            ).all()
        )
        ongoing = conn.exec_driver_sql(
            "SELECT count(*) FROM crontabber WHERE ongoing IS NOT NULL"
        ).scalar()
    engine.dispose()
    finished = sum(1 for runs in executions.values() for start, end, _ in runs if end > start)
    assert logged.get("ok") == finished  # no outcome lost
    assert logged.get("crontabber.Abandoned") == sum(crashes.values())  # each crash recovered once
    assert set(logged) <= {"ok", "crontabber.Abandoned"}
    assert ongoing == 0
