"""The restart loop: PostgreSQL stopped and started again and again under busy workers.

Four worker threads each run the real ``crontabber`` command over and over, one
OS process per run, each worker as its own host (``host-N``), so that only the
heartbeat can tell a live claim from an abandoned one. Meanwhile the test stops
the server for 0-2.5 s every 2-7 s (seeded, so repeatable; some stops are
``immediate``, as if it crashed). The jobs run hourly, so each must run exactly
once; their rows are made due two at a time over the loop, so that many
stops fall on running jobs and on their outcome writes. Each job body sleeps
1-3 s, or 4-6 s for every fourth job: longer than the 3 s lease window (1 s
heartbeats, stale after 3), so that only its heartbeats through the restarts
keep another worker from taking it over. Each body writes ``start``/``end``
markers with the system-wide monotonic clock.

Afterwards, over every marker and the log table: no body of a job overlapped
another of the same job, none started after another had finished, every job
finished, every finished body has its outcome in ``crontabber_log``, no claim
is left, and no run printed a traceback (a one-line error with exit status 1,
when the database was down as a run began, is fine). CRONTABBER_RESTART_SEED
picks another series of stops.
"""

from __future__ import annotations

import collections
import os
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers.command import HEARTBEAT, crontabber_command, write_config
from ..helpers.jobs import Job, write_job_module
from ..helpers.pgcluster import PgCluster

SEED = int(os.environ.get("CRONTABBER_RESTART_SEED", "20260301"))
WORKERS = 4
APPS = 48
BATCH = 2  # jobs that become due together
DUE_EVERY = 2.2  # seconds between one batch becoming due and the next
LONG_EVERY = 4  # every fourth job outlasts the lease window: only its heartbeats keep it
LOOP_SECONDS = 62.0  # of stopping and starting the server
RUN_TIMEOUT = 90.0  # for one crontabber run: far beyond its 60 s of retries
ABANDONED = "crontabber.Abandoned"

JOB_CLASSES = (
    Job(
        "Body",
        attributes="seconds = (1.0, 3.0)",
        run="""
            note("start", self.app_name, os.getpid(), time.monotonic())
            time.sleep(random.Random(self.app_name).uniform(*self.seconds))
            note("end", self.app_name, os.getpid(), time.monotonic())
        """,
    ),
    *(
        Job(
            f"Job{i:02}",
            f"job{i:02}",
            base="Body",
            attributes="seconds = (4.0, 6.0)" if i % LONG_EVERY == LONG_EVERY - 1 else "",
            run=None,
        )
        for i in range(APPS)
    ),
)
APP_NAMES = [f"job{i:02}" for i in range(APPS)]


@dataclass
class Run:
    worker: int
    began: float
    status: int | None  # None: hung and killed
    stderr: str


@dataclass
class Worker:
    """Runs ``crontabber`` as ``host-N`` until told to stop; one OS process per run."""

    number: int
    command: list[str]
    cwd: Path
    stop: threading.Event
    runs: list[Run] = field(default_factory=list)
    error: BaseException | None = None
    process: subprocess.Popen | None = None

    def loop(self) -> None:
        try:
            while not self.stop.is_set():
                self.run_once()
                self.stop.wait(0.25)
        except BaseException as exc:  # re-raised by the test
            self.error = exc

    def run_once(self) -> None:
        began = time.monotonic()
        self.process = subprocess.Popen(
            [*self.command, f"--crontabber.host_name=host-{self.number}"],
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, stderr = self.process.communicate(timeout=RUN_TIMEOUT)
            status: int | None = self.process.returncode
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
            status = None
        self.runs.append(Run(self.number, began, status, stderr))
        with open(self.cwd / f"host-{self.number}.log", "a") as log:  # for a post-mortem
            log.write(f"--- run at {began:.3f}: exit {status}\n{stderr}")


@dataclass
class Body:
    app: str
    pid: str
    start: float
    end: float | None  # None: its process died inside it


def bodies_from(markers: Path) -> dict[str, list[Body]]:
    """Each app's bodies, by start time, pairing each start with the end its process wrote."""
    bodies: dict[str, list[Body]] = collections.defaultdict(list)
    started: dict[tuple[str, str], float] = {}
    lines = markers.read_text().splitlines() if markers.exists() else []
    for line in lines:
        what, app, pid, when = line.split()
        if what == "start":
            started[(app, pid)] = float(when)
        else:
            bodies[app].append(Body(app, pid, started.pop((app, pid)), float(when)))
    for (app, pid), start in started.items():
        bodies[app].append(Body(app, pid, start, None))
    for runs in bodies.values():
        runs.sort(key=lambda body: body.start)
    return bodies


def overlaps_and_reruns(runs: list[Body]) -> tuple[int, int]:
    """Pairs of bodies that ran at once, and pairs where one began after the other ended."""
    overlaps = reruns = 0
    for i, earlier in enumerate(runs):
        for later in runs[i + 1 :]:
            if earlier.end is None or later.start < earlier.end:
                overlaps += 1
            else:
                reruns += 1
    return overlaps, reruns


def restart_loop(cluster: PgCluster, rng: random.Random, seconds: float) -> list[tuple]:
    """Stop the server for 0-2.5 s every 2-7 s; the outages as (mode, stopping, up again)."""
    outages = []
    deadline = time.monotonic() + seconds
    while True:
        # Every draw is made whatever the timing, so that a seed gives one series.
        wait, down = rng.uniform(2.0, 7.0), rng.uniform(0.0, 2.5)
        mode = "immediate" if rng.random() < 0.3 else "fast"
        if time.monotonic() + wait + down > deadline:
            return outages
        time.sleep(wait)
        stopping = time.monotonic()
        cluster.stop(mode)
        time.sleep(down)
        cluster.start()
        outages.append((mode, stopping, time.monotonic()))


def make_due_in_batches(url: str) -> None:
    """Each job's row, a batch due every ``DUE_EVERY`` s (hourly jobs: each runs once)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        for index, name in enumerate(APP_NAMES):
            conn.execute(
                sa.text(
                    "INSERT INTO crontabber (app_name, next_run, depends_on, error_count) "
                    "VALUES (:name, now() + make_interval(secs => :seconds), '{}', 0)"
                ),
                {"name": name, "seconds": 2.0 + DUE_EVERY * (index // BATCH)},
            )
    engine.dispose()


def wait_until_settled(url: str, timeout: float) -> None:
    """Until every job has run and no claim is held (or the time is up)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    pending = conn.exec_driver_sql(
                        "SELECT count(*) FROM crontabber "
                        "WHERE last_run IS NULL OR ongoing IS NOT NULL"
                    ).scalar()
                if pending == 0:
                    return
            except sa.exc.OperationalError:
                pass
            time.sleep(0.5)
    finally:
        engine.dispose()


def database_facts(url: str) -> tuple[collections.Counter, collections.Counter, list[str]]:
    """Outcome rows and abandoned rows per app, and the apps whose claim is still held."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT app_name, exc_type FROM crontabber_log").all()
        held = conn.exec_driver_sql(
            "SELECT app_name FROM crontabber WHERE ongoing IS NOT NULL ORDER BY app_name"
        ).all()
    engine.dispose()
    outcomes = collections.Counter(app for app, exc_type in rows if exc_type != ABANDONED)
    abandoned = collections.Counter(app for app, exc_type in rows if exc_type == ABANDONED)
    return outcomes, abandoned, [row.app_name for row in held]


def stderr_lines(runs: list[Run], *words: str) -> list[str]:
    return [
        f"host-{run.worker}: {line.split(' crontabber ', 1)[-1]}"
        for run in runs
        for line in run.stderr.splitlines()
        if any(word in line for word in words)
    ]


def bad_runs(runs: list[Run]) -> list[str]:
    """Runs that hung, printed a traceback, or ended other than 0, 2, 3 or 1 with one line."""
    bad = []
    for run in runs:
        last = run.stderr.rstrip().splitlines()[-1:] or [""]
        one_line_error = run.status == 1 and last[0].startswith("crontabber: ")
        if (
            "Traceback" in run.stderr
            or run.status not in (0, 1, 2, 3)
            or (run.status == 1 and not one_line_error)
        ):
            bad.append(f"host-{run.worker} exit {run.status}:\n{run.stderr[-3000:]}")
    return bad


@pytest.mark.postgres
@pytest.mark.slow
def test_restart_loop(tmp_path: Path, private_cluster: PgCluster) -> None:
    cluster = private_cluster
    write_job_module(
        tmp_path, "restartjobs", *JOB_CLASSES, imports="import random", notes="markers.txt"
    )
    jobs = "\n".join(f"restartjobs.Job{i:02}|1h" for i in range(APPS))
    config = write_config(tmp_path, jobs, extra=HEARTBEAT, database_url=cluster.url)
    command = [*crontabber_command(), f"--admin.conf={config}"]
    migrated = subprocess.run(
        [*command, "--migrate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    make_due_in_batches(cluster.url)

    stop = threading.Event()
    workers = [Worker(n, command, tmp_path, stop) for n in range(1, WORKERS + 1)]
    threads = [threading.Thread(target=w.loop, name=f"host-{w.number}") for w in workers]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    try:
        outages = restart_loop(cluster, random.Random(SEED), LOOP_SECONDS)
        wait_until_settled(cluster.url, timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=RUN_TIMEOUT + 10)
        for worker, thread in zip(workers, threads, strict=True):
            if thread.is_alive() and worker.process is not None:
                worker.process.kill()
                thread.join(timeout=10)
    elapsed = time.monotonic() - began
    for worker, thread in zip(workers, threads, strict=True):
        assert not thread.is_alive(), f"worker host-{worker.number} did not stop"
        if worker.error is not None:
            raise worker.error

    runs = [run for worker in workers for run in worker.runs]
    bodies = bodies_from(tmp_path / "markers.txt")
    outcomes, abandoned, held = database_facts(cluster.url)
    all_bodies = [body for app_bodies in bodies.values() for body in app_bodies]
    ended = collections.Counter(body.app for body in all_bodies if body.end is not None)
    overlaps = {app: overlaps_and_reruns(bodies.get(app, []))[0] for app in APP_NAMES}
    reruns = {app: overlaps_and_reruns(bodies.get(app, []))[1] for app in APP_NAMES}
    unfinished = [app for app in APP_NAMES if ended[app] == 0]
    missing = {app: ended[app] - outcomes[app] for app in APP_NAMES if ended[app] > outcomes[app]}
    bad = bad_runs(runs)
    hit = sum(
        any(b.start < up and (b.end is None or b.end > stopping) for b in all_bodies)
        for _, stopping, up in outages
    )
    takeovers = stderr_lines(runs, "taking over", "recovered", "abandoned")
    statuses = collections.Counter(run.status for run in runs)
    summary = "\n".join(
        [
            f"restart loop, seed {SEED}: {elapsed:.0f} s, {len(outages)} restarts "
            f"({sum(mode == 'immediate' for mode, *_ in outages)} immediate), "
            f"{hit} while a job body ran; "
            f"downtime {sum(up - stopping for _, stopping, up in outages):.1f} s",
            f"runs {len(runs)}, exit statuses {dict(sorted(statuses.items(), key=str))}",
            f"bodies {len(all_bodies)} for {APPS} jobs, ended {sum(ended.values())}; "
            f"overlaps {sum(overlaps.values())} {_nonzero(overlaps)}; "
            f"re-runs after an end {sum(reruns.values())} {_nonzero(reruns)}",
            f"outcome rows {sum(outcomes.values())}, abandoned rows {sum(abandoned.values())}, "
            f"missing outcomes {sum(missing.values())} {missing or ''}; claims still held {held}",
            f"takeover/recovery lines in stderr: {len(takeovers)}",
            *(f"  {line}" for line in takeovers[:20]),
            f"one-line errors: {collections.Counter(_last_line(r) for r in runs if r.status == 1)}",
        ]
    )
    print(summary)
    problems = [
        *(f"{app}: {n} overlapping pair(s) of bodies" for app, n in overlaps.items() if n),
        *(f"{app}: {n} body(ies) began after another had ended" for app, n in reruns.items() if n),
        *(f"{app}: no body finished" for app in unfinished),
        *(f"{app}: {n} finished body(ies) without an outcome row" for app, n in missing.items()),
        *(f"{app}: claim still held at the end" for app in held),
        *bad[:5],
    ]
    assert not problems, "\n".join([summary, "", *problems])


def _nonzero(counts: dict[str, int]) -> dict[str, int] | str:
    return {app: n for app, n in counts.items() if n} or ""


def _last_line(run: Run) -> str:
    lines = run.stderr.rstrip().splitlines()
    return lines[-1].split(": ", 1)[-1][:100] if lines else ""
