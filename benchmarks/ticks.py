"""Idle and busy ticks of the real ``crontabber`` command, for a growing number of jobs.

For each store and job count: seed one state row per job, then time the
command when nothing is due (idle) and when every job is due and a no-op
(busy), and count what each kind of tick sends to the database in one more
run. PostgreSQL is counted on the wire (:mod:`wirecount`), SQLite by its own
trace callback inside the command's process (``worker.py sqlite-count``).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
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
from wirecount import TRANSACTION_CONTROL, CountingProxy


@dataclass
class Sent:
    """What one run of the command sent to the state database."""

    round_trips: int  # every statement incl. BEGIN/COMMIT/ROLLBACK (PostgreSQL: Query messages)
    statements: int  # without transaction control
    commits: int
    connections: int
    verbs: dict[str, int] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)  # in order, kept for small runs only


def _sent(queries: list[str], connections: int, syncs: int = 0) -> Sent:
    """``syncs``: extended-protocol round trips, whose statements are not in ``queries``."""
    verbs = Counter((query.split(None, 1) or [""])[0].upper() for query in queries)
    return Sent(
        round_trips=len(queries) + syncs,
        statements=sum(n for verb, n in verbs.items() if verb not in TRANSACTION_CONTROL),
        commits=verbs["COMMIT"],
        connections=connections,
        verbs=dict(verbs),
        queries=queries if len(queries) <= 60 else [],
    )


class SentCounter:
    """Counts one run of the command against a store."""

    def __init__(self, kind: str, url: str, ws: Workspace) -> None:
        self.kind = kind
        self.ws = ws
        self.proxy: CountingProxy | None = None
        if kind == "sqlite":
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
        if self.proxy is not None:
            self.proxy.take()
            check(run_timed(self.ws.command(self.config), cwd=self.ws.dir))
            time.sleep(0.05)  # let the proxy threads see the last messages
            count = self.proxy.take()
            return _sent(count.queries, count.connections, count.syncs)
        out = self.ws.dir / "sqlite-count.json"
        check(
            run_timed(
                [sys.executable, str(WORKER), "sqlite-count", str(out), "--", *args],
                cwd=self.ws.dir,
            )
        )
        data = json.loads(out.read_text())
        return _sent(data["statements"], data["connections"])

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()


@dataclass
class TickResult:
    store: str
    jobs: int
    idle_seconds: list[float]
    idle_cpu_seconds: list[float]
    idle_sent: Sent
    busy_seconds: list[float]
    busy_cpu_seconds: list[float]
    busy_sent: Sent | None

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
    def per_job_ms(self) -> float:
        """What a due job adds to a tick: (busy - idle) / jobs."""
        return (self.busy - self.idle) / self.jobs * 1000

    @property
    def per_job_cpu_ms(self) -> float:
        """The CPU time of crontabber's process a due job adds to a tick."""
        return (self.busy_cpu - self.idle_cpu) / self.jobs * 1000

    @property
    def statements_per_job(self) -> float | None:
        if self.busy_sent is None:
            return None
        return (self.busy_sent.statements - self.idle_sent.statements) / self.jobs

    @property
    def round_trips_per_job(self) -> float | None:
        if self.busy_sent is None:
            return None
        return (self.busy_sent.round_trips - self.idle_sent.round_trips) / self.jobs

    @property
    def commits_per_job(self) -> float | None:
        if self.busy_sent is None:
            return None
        return (self.busy_sent.commits - self.idle_sent.commits) / self.jobs

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "idle": self.idle,
            "busy": self.busy,
            "per_job_ms": self.per_job_ms if self.busy_seconds else None,
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
    log=print,
) -> TickResult:
    """Idle and busy ticks of ``jobs`` no-op jobs on a fresh database of ``kind``."""
    url = stores.new("sqlite" if kind == "sqlite" else "postgresql")
    if kind == "postgresql-async":
        stores.set_database_option(url, "synchronous_commit", "off")
    try:
        with workspace("benchjobs", NOOP_MODULE_HEAD, "Noop", jobs) as ws:
            seed_states(url, ws.app_names(), due=False)
            config = ws.write_config(url)
            command = ws.command(config)
            counter = SentCounter(kind, url, ws)
            try:
                check(run_timed(command, cwd=ws.dir))  # warm-up: compiles the job module
                idle = [check(run_timed(command, cwd=ws.dir)) for _ in range(idle_repeats)]
                idle_sent = counter.run()
                log(
                    f"  {STORE_LABELS[kind]:<12} {jobs:>6} jobs  idle "
                    f"{median([run.seconds for run in idle]) * 1000:7.0f} ms"
                    f"  ({idle_sent.round_trips} round trips)"
                )
                busy = []
                busy_sent = None
                for _ in range(busy_repeats):
                    make_all_due(url)
                    busy.append(check(run_timed(command, cwd=ws.dir)))
                if busy_repeats and count_busy:
                    make_all_due(url)
                    busy_sent = counter.run()
                if busy_repeats:
                    counted = f"  ({busy_sent.round_trips} round trips)" if busy_sent else ""
                    log(
                        f"  {STORE_LABELS[kind]:<12} {jobs:>6} jobs  busy "
                        f"{median([run.seconds for run in busy]):7.2f} s" + counted
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
        idle_sent=idle_sent,
        busy_seconds=[run.seconds for run in busy],
        busy_cpu_seconds=[run.cpu for run in busy],
        busy_sent=busy_sent,
    )


REPLAY_CLAIM = (
    "SELECT * FROM crontabber WHERE app_name = %(app)s FOR UPDATE NOWAIT",
    "UPDATE crontabber SET depends_on = '{}', ongoing = %(now)s, heartbeat = %(now)s, "
    "ongoing_host = 'bench', ongoing_pid = 1, ongoing_token = %(token)s WHERE app_name = %(app)s",
)
REPLAY_FINISH = (
    "UPDATE crontabber SET next_run = %(next)s, last_run = %(now)s, "
    "first_run = coalesce(first_run, %(now)s), ongoing = NULL, heartbeat = NULL, "
    "ongoing_host = NULL, ongoing_pid = NULL, ongoing_token = NULL, last_success = %(now)s, "
    "error_count = 0, last_error = '{}' WHERE app_name = %(app)s AND ongoing_token = %(token)s "
    "RETURNING *",
    "INSERT INTO crontabber_log (app_name, log_time, duration, success) "
    "VALUES (%(app)s, %(now)s, interval '1 millisecond', %(now)s)",
)


def database_floor(stores: Stores, samples: int = 300) -> dict[str, float]:
    """What the server and the driver cost, without crontabber or SQLAlchemy, with psycopg2.

    A ``SELECT 1`` round trip; a one-row UPDATE + COMMIT; and a due job's
    statements (claim: lock, mark ongoing, commit; finish: record the outcome,
    log, commit) replayed against crontabber's own tables, per job, with the
    server's synchronous_commit and with it off. Whatever crontabber does, a
    busy tick cannot cost less per job than that replay.
    """
    import datetime as dt
    import uuid

    import psycopg2

    url = stores.new("postgresql")
    names = [f"job-{i}" for i in range(samples)]
    try:
        seed_states(url, names, due=True)
        parsed = sa.make_url(url)
        conn = psycopg2.connect(
            host=parsed.host, port=parsed.port, user=parsed.username,
            password=parsed.password, dbname=parsed.database,
        )  # fmt: skip
        try:
            cur = conn.cursor()
            conn.autocommit = True
            round_trip = []
            for _ in range(samples):
                started = time.perf_counter()
                cur.execute("SELECT 1")
                cur.fetchall()
                round_trip.append(time.perf_counter() - started)
            conn.autocommit = False
            commit = []
            for name in names:
                started = time.perf_counter()
                cur.execute("UPDATE crontabber SET error_count = 0 WHERE app_name = %s", (name,))
                conn.commit()
                commit.append(time.perf_counter() - started)

            def replay() -> float:
                started = time.perf_counter()
                for name in names:
                    now = dt.datetime.now(dt.timezone.utc)
                    values = {
                        "app": name,
                        "now": now,
                        "next": now + dt.timedelta(hours=1),
                        "token": uuid.uuid4().hex,
                    }
                    for statements in (REPLAY_CLAIM, REPLAY_FINISH):
                        for statement in statements:
                            cur.execute(statement, values)
                            if cur.description:
                                cur.fetchall()
                        conn.commit()
                return (time.perf_counter() - started) / samples

            job = replay()
            cur.execute("SET synchronous_commit = off")
            conn.commit()
            job_unsynced = replay()
        finally:
            conn.close()
    finally:
        stores.drop(url)
    return {
        "round_trip_ms": statistics.median(round_trip) * 1000,
        "round_trip_mean_ms": statistics.fmean(round_trip) * 1000,
        "commit_ms": statistics.median(commit) * 1000,
        "commit_mean_ms": statistics.fmean(commit) * 1000,
        "job_ms": job * 1000,
        "job_unsynced_ms": job_unsynced * 1000,
    }


def sqlite_floor(directory: Path, samples: int = 200) -> dict[str, float]:
    """SQLite's cost of one tiny write transaction in WAL mode (synchronous=FULL, the default)."""
    import sqlite3

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
