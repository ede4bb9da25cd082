"""Idle and busy ticks of the real ``crontabber`` command, for a growing number of jobs,
each beside its floor measured in the same run.

For each store and job count: seed one state row per job, then time the
command when nothing is due (idle) and when every job is due and a no-op
(busy), and count what each kind of tick sends in one more run.

Floors, measured interleaved with the ticks they are compared with (a floor,
then the tick, repeat), so that load from other processes hits both alike:

* *interpreter*: ``python -c pass``;
* *driver floor*: a fresh process that imports the driver, connects to the same
  database, runs ``SELECT 1`` and exits (psycopg2 in autocommit, as crontabber
  connects; or sqlite3 on the same file);
* *replay*: after each busy tick, the statements a due job sends (``claim`` and
  ``finish`` from ``crontabber.store.queries``, with the same parameters) replayed by
  bare psycopg2 on one autocommit connection over the same rows; on SQLite
  ``lock``, ``mark_ongoing``, ``finish`` and ``insert_log`` in two ``BEGIN
  IMMEDIATE`` transactions through bare sqlite3.

Counting: every statement by its name, through the store's connection seam in
the command's process (``worker.py count``, see :mod:`dbcount`); on PostgreSQL
also every message on the wire, through a proxy (:mod:`wirecount`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa
from common import (
    NOOP_MODULE_HEAD,
    WORKER,
    Stores,
    Workspace,
    check,
    make_all_due,
    median,
    run_timed,
    seed_states,
    workspace,
)
from dbcount import TRANSACTION_CONTROL, WRITES
from wirecount import CountingProxy, WireCount

from crontabber.db.url import parse_url
from crontabber.store.queries import queries

UTC = dt.timezone.utc

PG_DRIVER_FLOOR = (
    "import sys, psycopg2\n"
    "c = psycopg2.connect(sys.argv[1])\n"
    "c.autocommit = True\n"
    "cur = c.cursor()\n"
    "cur.execute('SELECT 1')\n"
    "cur.fetchall()\n"
    "c.close()\n"
)
SQLITE_DRIVER_FLOOR = (
    "import sys, sqlite3\n"
    "c = sqlite3.connect(sys.argv[1])\n"
    "c.execute('SELECT 1').fetchall()\n"
    "c.close()\n"
)


def floor_commands(url: str) -> dict[str, list[str]]:
    """``python -c pass`` and the driver floor for the database at ``url``."""
    parsed = parse_url(url)
    if parsed.dialect == "postgresql":
        driver = [sys.executable, "-c", PG_DRIVER_FLOOR, url]
    else:
        driver = [sys.executable, "-c", SQLITE_DRIVER_FLOOR, parsed.connect_args["database"]]
    return {"interpreter": [sys.executable, "-c", "pass"], "driver": driver}


@dataclass
class Sent:
    """What one run of the command sent to the state database."""

    statements: int  # everything but BEGIN/COMMIT/ROLLBACK
    executed: int  # every statement, transaction control included (PostgreSQL: round trips)
    commits: int  # PostgreSQL: writing statements (each its own transaction); SQLite: COMMITs
    connections: int
    names: dict[str, int] = field(default_factory=dict)
    sequence: list[str] = field(default_factory=list)  # names in order, small runs only
    wire: str = ""  # PostgreSQL: the client's messages in order (small runs only)
    wire_messages: dict[str, int] = field(default_factory=dict)  # PostgreSQL: by kind
    queries: list[str] = field(default_factory=list)  # PostgreSQL: SQL as sent, small runs only


def _sent(names: list[str], connections: int, wire: WireCount | None, sqlite: bool) -> Sent:
    counts = Counter(names)
    control = sum(n for name, n in counts.items() if name in TRANSACTION_CONTROL)
    commits = counts["COMMIT"] if sqlite else sum(counts[name] for name in WRITES)
    small = len(names) <= 60
    return Sent(
        statements=len(names) - control,
        executed=len(names),
        commits=commits,
        connections=connections,
        names=dict(counts),
        sequence=names if small else [],
        wire=wire.summary() if wire is not None and small else "",
        wire_messages=dict(Counter(wire.messages)) if wire is not None else {},
        queries=wire.queries if wire is not None and small else [],
    )


class SentCounter:
    """Counts one run of the command against a store (``worker.py count``)."""

    def __init__(self, kind: str, url: str, ws: Workspace) -> None:
        self.ws = ws
        self.sqlite = kind == "sqlite"
        self.proxy: CountingProxy | None = None
        if self.sqlite:
            self.config = ws.write_config(url, "counted.ini")
        else:
            parsed = sa.make_url(url)
            self.proxy = CountingProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
            proxied = parsed.set(host="127.0.0.1", port=self.proxy.port)
            self.config = ws.write_config(
                proxied.render_as_string(hide_password=False), "counted.ini"
            )

    def run(self) -> Sent:
        args = [f"--admin.conf={self.config}", "--logging.level=WARNING"]
        out = self.ws.dir / "count.json"
        if self.proxy is not None:
            self.proxy.take()
        check(
            run_timed(
                [sys.executable, str(WORKER), "count", str(out), "--", *args], cwd=self.ws.dir
            )
        )
        wire = None
        if self.proxy is not None:
            time.sleep(0.05)  # let the proxy threads see the last messages
            wire = self.proxy.take()
        data = json.loads(out.read_text())
        sent = _sent(data["statements"], data["connections"], wire, self.sqlite)
        if wire is not None and len(wire.queries) + wire.syncs != sent.executed:
            raise RuntimeError(
                f"the wire shows {len(wire.queries)} queries and {wire.syncs} syncs, "
                f"the store executed {sent.executed} statements: {wire.summary()[:300]}"
            )
        return sent

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()


@dataclass
class TickResult:
    store: str
    jobs: int
    idle_seconds: list[float]
    idle_cpu_seconds: list[float]
    interpreter_seconds: list[float]  # python -c pass, interleaved with the idle ticks
    driver_seconds: list[float]  # the driver floor, interleaved with the idle ticks
    idle_sent: Sent
    busy_seconds: list[float]
    busy_cpu_seconds: list[float]
    busy_sent: Sent | None
    replay_ms: list[float] = field(default_factory=list)  # per job, one after each busy tick
    replay_jobs: int = 0

    @property
    def idle(self) -> float:
        return median(self.idle_seconds)

    @property
    def busy(self) -> float:
        return median(self.busy_seconds)

    @property
    def idle_cpu(self) -> float:
        return median(self.idle_cpu_seconds)

    @property
    def busy_cpu(self) -> float:
        return median(self.busy_cpu_seconds)

    @property
    def interpreter(self) -> float:
        return median(self.interpreter_seconds)

    @property
    def driver_floor(self) -> float:
        return median(self.driver_seconds)

    @property
    def idle_ratio(self) -> float:
        """The idle tick over the driver floor measured alongside it."""
        return self.idle / self.driver_floor

    @property
    def busy_ratio(self) -> float:
        return self.busy / self.driver_floor

    @property
    def per_job_ms(self) -> float:
        """What a due job adds to a tick: (busy - idle) / jobs."""
        return (self.busy - self.idle) / self.jobs * 1000

    @property
    def per_job_cpu_ms(self) -> float:
        """The CPU time of crontabber's process a due job adds to a tick."""
        return (self.busy_cpu - self.idle_cpu) / self.jobs * 1000

    @property
    def replay(self) -> float | None:
        """The bare driver's replay of a due job's statements, ms per job (median)."""
        return median(self.replay_ms) if self.replay_ms else None

    @property
    def per_job_ratio(self) -> float | None:
        return self.per_job_ms / self.replay if self.replay else None

    def _per_job(self, attribute: str) -> float | None:
        if self.busy_sent is None:
            return None
        return (getattr(self.busy_sent, attribute) - getattr(self.idle_sent, attribute)) / self.jobs

    @property
    def statements_per_job(self) -> float | None:
        return self._per_job("statements")

    @property
    def executed_per_job(self) -> float | None:
        return self._per_job("executed")

    @property
    def commits_per_job(self) -> float | None:
        return self._per_job("commits")

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "idle": self.idle,
            "busy": self.busy,
            "driver_floor": self.driver_floor,
            "per_job_ms": self.per_job_ms if self.busy_seconds else None,
            "replay": self.replay,
        }


STORE_LABELS = {
    "postgresql": "PostgreSQL",
    "sqlite": "SQLite",
    "postgresql-async": "PostgreSQL, synchronous_commit=off",
}


def measure(
    stores: Stores,
    kind: str,
    jobs: int,
    *,
    idle_repeats: int,
    busy_repeats: int,
    count_busy: bool = True,
    replay_jobs: int = 0,
    log=print,
) -> TickResult:
    """Idle and busy ticks of ``jobs`` no-op jobs on a fresh database of ``kind``, with floors.

    ``replay_jobs``: after each busy tick, replay a due job's statements by the bare
    driver over that many of the same rows (0: no replay).
    """
    url = stores.new("sqlite" if kind == "sqlite" else "postgresql")
    if kind == "postgresql-async":
        stores.set_database_option(url, "synchronous_commit", "off")
    replay_jobs = min(replay_jobs, jobs)
    try:
        with workspace("benchjobs", NOOP_MODULE_HEAD, "Noop", jobs) as ws:
            seed_states(url, ws.app_names(), due=False)
            config = ws.write_config(url)
            command = ws.command(config)
            floors = floor_commands(url)
            counter = SentCounter(kind, url, ws)
            try:
                check(run_timed(command, cwd=ws.dir))  # warm-up: compiles the job module
                for args in floors.values():
                    check(run_timed(args, cwd=ws.dir))
                interpreter, driver, idle = [], [], []
                for _ in range(idle_repeats):  # interleaved: a floor, the tick, again
                    interpreter.append(check(run_timed(floors["interpreter"], cwd=ws.dir)))
                    driver.append(check(run_timed(floors["driver"], cwd=ws.dir)))
                    idle.append(check(run_timed(command, cwd=ws.dir)))
                idle_sent = counter.run()
                idle_ms = median([run.seconds for run in idle]) * 1000
                floor_ms = median([run.seconds for run in driver]) * 1000
                log(
                    f"  {STORE_LABELS[kind]:<12} {jobs:>6} jobs  idle {idle_ms:7.0f} ms"
                    f"  driver floor {floor_ms:5.0f} ms ({idle_ms / floor_ms:4.2f}x)"
                    f"  ({idle_sent.executed} statements)"
                )
                busy, replay = [], []
                busy_sent = None
                for _ in range(busy_repeats):
                    make_all_due(url)
                    busy.append(check(run_timed(command, cwd=ws.dir)))
                    if replay_jobs:
                        replay.append(replay_due_jobs(url, replay_jobs))
                if busy_repeats and count_busy:
                    make_all_due(url)
                    busy_sent = counter.run()
                if busy_repeats:
                    counted = f"  ({busy_sent.executed} statements)" if busy_sent else ""
                    busy_s = median([run.seconds for run in busy])
                    per_job = (busy_s * 1000 - idle_ms) / jobs
                    replayed = (
                        f", replay {median(replay):.2f} ms ({per_job / median(replay):4.2f}x)"
                        if replay
                        else ""
                    )
                    log(
                        f"  {STORE_LABELS[kind]:<12} {jobs:>6} jobs  busy {busy_s:7.2f} s"
                        f"  per job {per_job:.2f} ms{replayed}" + counted
                    )
            finally:
                counter.close()
    finally:
        stores.drop(url)
    return TickResult(
        STORE_LABELS[kind],
        jobs,
        idle_seconds=[run.seconds for run in idle],
        idle_cpu_seconds=[run.cpu for run in idle],
        interpreter_seconds=[run.seconds for run in interpreter],
        driver_seconds=[run.seconds for run in driver],
        idle_sent=idle_sent,
        busy_seconds=[run.seconds for run in busy],
        busy_cpu_seconds=[run.cpu for run in busy],
        busy_sent=busy_sent,
        replay_ms=replay,
        replay_jobs=replay_jobs if replay else 0,
    )


# Replays by the bare driver -----------------------------------------------------------

MAX_AGE_SECONDS = 12 * 3600.0  # LeasePolicy's defaults, as a tick passes them
LEASE_SECONDS = 30 * 4.0


def replay_due_jobs(url: str, count: int) -> float:
    """A due job's statements replayed by the bare driver over ``count`` rows: ms per job."""
    if parse_url(url).dialect == "postgresql":
        return replay_postgresql(url, count)
    return replay_sqlite(parse_url(url).connect_args["database"], count)


def replay_postgresql(url: str, count: int) -> float:
    """``claim`` then ``finish``, as a tick sends them, on one autocommit psycopg2 connection.

    Each row is claimed as seen (its ``next_run`` read first), so every claim
    succeeds, and released with a success, as a no-op job's run is.
    """
    import psycopg2

    sql = queries("postgresql")
    host, pid = socket.gethostname(), os.getpid()
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT app_name, next_run FROM crontabber ORDER BY app_name LIMIT %s", (count,)
            )
            rows = cursor.fetchall()
            claimed = 0
            started = time.perf_counter()
            for app_name, next_run in rows:
                token = uuid.uuid4().hex
                cursor.execute(
                    sql["claim"],
                    {
                        "app_name": app_name,
                        "depends_on": [],
                        "dead_token": None,
                        "max_age_seconds": MAX_AGE_SECONDS,
                        "lease_seconds": LEASE_SECONDS,
                        "host": host,
                        "pid": pid,
                        "token": token,
                        "force": False,
                        "seen_next_run": next_run,
                    },
                )
                claimed += cursor.fetchall()[0][-1]
                now = dt.datetime.now(UTC)
                cursor.execute(
                    sql["finish"],
                    {
                        "app_name": app_name,
                        "token": token,
                        "started": now,
                        "next_run": now + dt.timedelta(hours=1),
                        "failed": False,
                        "last_success": now,
                        "error": None,
                        "finished": now,
                        "duration": dt.timedelta(microseconds=20),
                        "success": now,
                        "exc_type": None,
                        "exc_value": None,
                        "exc_traceback": None,
                    },
                )
                cursor.fetchall()
            elapsed = time.perf_counter() - started
    finally:
        connection.close()
    if claimed != len(rows):
        raise RuntimeError(f"the replay claimed {claimed} of {len(rows)} rows")
    return elapsed / len(rows) * 1000


def _sqlite_time(value: dt.datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def replay_sqlite(path: str, count: int) -> float:
    """A due job's statements on SQLite (two ``BEGIN IMMEDIATE`` transactions), bare sqlite3."""
    sql = queries("sqlite")
    host, pid = socket.gethostname(), os.getpid()
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        rows = connection.execute(
            "SELECT app_name FROM crontabber ORDER BY app_name LIMIT ?", (count,)
        ).fetchall()
        started = time.perf_counter()
        for (app_name,) in rows:
            token = uuid.uuid4().hex
            claim = {
                "app_name": app_name,
                "depends_on": "[]",
                "dead_token": None,
                "max_age_seconds": MAX_AGE_SECONDS,
                "lease_seconds": LEASE_SECONDS,
                "host": host,
                "pid": pid,
                "token": token,
            }
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(sql["lock"], claim).fetchall()
            connection.execute(sql["mark_ongoing"], claim)
            connection.execute("COMMIT")
            now = _sqlite_time(dt.datetime.now(UTC))
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                sql["finish"],
                {
                    "app_name": app_name,
                    "token": token,
                    "started": now,
                    "next_run": _sqlite_time(dt.datetime.now(UTC) + dt.timedelta(hours=1)),
                    "failed": 0,
                    "last_success": now,
                    "error": None,
                },
            ).fetchall()
            connection.execute(
                sql["insert_log"],
                {
                    "app_name": app_name,
                    "log_time": now,
                    "duration": "1970-01-01 00:00:00.000020",
                    "success": now,
                    "exc_type": None,
                    "exc_value": None,
                    "exc_traceback": None,
                    "token": token,
                    "superseded": 0,
                },
            )
            connection.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    return elapsed / len(rows) * 1000


# The server's own floor ---------------------------------------------------------------


def database_floor(stores: Stores, samples: int = 300) -> dict[str, float]:
    """What one round trip and one durable write cost on this server, with bare psycopg2.

    A ``SELECT 1`` round trip, and a one-row ``UPDATE`` in autocommit (a statement
    and its commit, which waits for the WAL flush with synchronous_commit=on),
    on one connection.
    """
    import psycopg2

    url = stores.new("postgresql")
    names = [f"job-{i}" for i in range(samples)]
    try:
        seed_states(url, names, due=False)
        connection = psycopg2.connect(url)
        connection.autocommit = True
        try:
            cursor = connection.cursor()
            round_trip = []
            for _ in range(samples):
                started = time.perf_counter()
                cursor.execute("SELECT 1")
                cursor.fetchall()
                round_trip.append(time.perf_counter() - started)
            write = []
            for name in names:
                started = time.perf_counter()
                cursor.execute("UPDATE crontabber SET error_count = 0 WHERE app_name = %s", (name,))
                write.append(time.perf_counter() - started)
        finally:
            connection.close()
    finally:
        stores.drop(url)
    return {
        "round_trip_ms": statistics.median(round_trip) * 1000,
        "round_trip_mean_ms": statistics.fmean(round_trip) * 1000,
        "commit_ms": statistics.median(write) * 1000,
        "commit_mean_ms": statistics.fmean(write) * 1000,
    }


def sqlite_floor(directory: Path, samples: int = 200) -> dict[str, float]:
    """SQLite's cost of one tiny write transaction in WAL mode (synchronous=FULL, the default)."""
    path = directory / "floor.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE floor (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO floor VALUES (1, 0)")
        commit = []
        for _ in range(samples):
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE floor SET n = n + 1 WHERE id = 1")
            conn.execute("COMMIT")
            commit.append(time.perf_counter() - started)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return {"commit_ms": statistics.median(commit) * 1000}
