"""Exactly once: many real crontabber processes released together, many rounds.

Each job appends one line per run to a file of its round; after every round
each due job must have run exactly once, and every process must have exited
0, 2 or 3.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crontabber.web import create_app

from ..helpers import script
from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module
from ..helpers.pgbouncer import pgbouncer, through

PROCESSES = 8

JOB_NAMES = [f"job{i}" for i in range(6)]
JOBS = (
    Job(
        "Recorder",
        run="""
            time.sleep(0.02)
            path = os.path.join(os.environ["RUNS_DIR"], "runs-" + os.environ["ROUND"] + ".txt")
            with open(path, "a") as f:
                f.write(f"{self.app_name} {crontabber_pid()}\\n")
        """,
    ),
    *(
        Job(
            f"Job{i}",
            f"job{i}",
            base="Recorder",
            depends_on="job0" if i in (3, 4) else None,
            run=None,
        )
        for i in range(6)
    ),
)


def release_round(project: Path, config: Path, round_number: int) -> list[int]:
    start = project / f"start-{round_number}"
    env = {"RUNS_DIR": str(project), "ROUND": str(round_number), "PATH": "/usr/bin:/bin"}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                script("barrier_run.py"),
                str(start),
                f"--admin.conf={config}",
                "--logging.level=WARNING",
            ],
            cwd=project,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    deadline = time.monotonic() + 60  # every process has imported and waits at the barrier
    while len(list(project.glob(f"{start.name}.ready-*"))) < PROCESSES:
        assert time.monotonic() < deadline, "the processes never reached the barrier"
        assert all(process.poll() is None for process in processes), "a process exited early"
        time.sleep(0.01)
    start.touch()
    statuses = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert "Traceback" not in stderr, stderr
        assert process.returncode in (0, 2, 3), stderr
        statuses.append(process.returncode)
    return statuses


def runs_of(project: Path, round_number: int) -> collections.Counter[str]:
    path = project / f"runs-{round_number}.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return collections.Counter(line.split()[0] for line in lines)


def exercise(project: Path, config: Path, engine: sa.Engine, rounds: int) -> None:
    all_statuses = []
    for round_number in range(rounds):
        if round_number:
            with engine.begin() as conn:
                if round_number % 2:  # re-runs: every job is due again
                    conn.exec_driver_sql("UPDATE crontabber SET next_run = last_run")
                else:  # first runs: no job has a row
                    conn.exec_driver_sql("DELETE FROM crontabber")
        statuses = release_round(project, config, round_number)
        all_statuses.extend(statuses)
        assert set(statuses) <= {0, 2, 3}, statuses
        assert runs_of(project, round_number) == dict.fromkeys(JOB_NAMES, 1), (
            round_number,
            statuses,
        )
    # the processes really competed: some saw jobs held or locked elsewhere
    assert {2, 3} & set(all_statuses)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "recorder", *JOBS)
    return tmp_path


@pytest.mark.postgres
@pytest.mark.slow
def test_exactly_once_on_postgresql(project: Path, pg_url: str) -> None:
    config = write_config(
        project, "\n".join(f"recorder.Job{i}|1h" for i in range(6)), database_url=pg_url
    )
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    try:
        exercise(project, config, engine, rounds=10)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_exactly_once_on_sqlite(project: Path) -> None:
    config = write_config(project, "\n".join(f"recorder.Job{i}|1h" for i in range(6)))
    engine = sa.create_engine(f"sqlite:///{project / 'crontabber.sqlite'}", poolclass=sa.NullPool)
    try:
        exercise(project, config, engine, rounds=4)
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_exactly_once_through_pgbouncer_with_the_page_serving(project: Path, pg_url: str) -> None:
    """The same rounds through a real PgBouncer in transaction mode, with the status page
    reading through it all along: nothing the page does reaches the runs."""
    with pgbouncer(pg_url, pool_size=4) as port:
        pooled = through(pg_url, port)
        config = write_config(
            project, "\n".join(f"recorder.Job{i}|1h" for i in range(6)), database_url=pooled
        )
        app = create_app(pooled, ())
        stop = threading.Event()
        answers: list[str] = []

        def browse() -> None:
            while not stop.is_set():
                for path in ("/", "/metrics"):
                    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
                    b"".join(app(environ, lambda status, _headers: answers.append(status)))
                time.sleep(0.05)

        browser = threading.Thread(target=browse, daemon=True)
        engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
        try:
            # The schema first, so that the page has one to read from the start.
            assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=project).status == 0
            browser.start()
            exercise(project, config, engine, rounds=6)
        finally:
            stop.set()
            if browser.is_alive():
                browser.join(timeout=30)
            engine.dispose()
    assert answers and set(answers) == {"200 OK"}
