"""The status page's server time for ``/`` with 1,000 jobs, beside its statements' time.

    python benchmarks/web.py [--jobs 1000] [--rounds 30] [--store postgresql|sqlite]

(also the ``web`` scenario of run.py). Fills a scratch state database with jobs
in every state (ok, failing with a traceback, running, never run) and a log
row each, then calls the WSGI application directly, timing each request from
call to last byte. Its floor: the time its statements spend in the driver's
``execute`` (the round trips and the server's work), measured by tracing the
page's read-only connection (:class:`crontabber.store.trace.TracedConnection`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from common import DEFAULT_PG_URL, Databases, seed
from ticks import STORE_LABELS

from crontabber import App, web
from crontabber.jobs.schedule import FrequencySchedule
from crontabber.jobs.spec import JobSpec
from crontabber.store import open_store
from crontabber.store import tables as sql
from crontabber.store.trace import TracedConnection
from crontabber.web.reader import connect_read_only

TRACEBACK = "Traceback (most recent call last):\n" + '  File "job.py", line 1, in run\n' * 20
ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "SCRIPT_NAME": ""}
ENVIRON |= {"SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "wsgi.url_scheme": "http"}


class Job(App):
    def run(self) -> None:
        pass


def fill(url: str, count: int) -> list[JobSpec]:
    """``count`` jobs, every fifth depending on the one before; a state row and a log row for
    all but every seventh (never run); of those every eleventh failing, every thirteenth running."""
    specs = [
        JobSpec(
            f"job-{i:05d}",
            Job,
            "benchmarks.web.Job",
            FrequencySchedule(dt.timedelta(minutes=5 * (1 + i % 12))),
            (f"job-{i - 1:05d}",) if i % 5 == 4 else (),
        )
        for i in range(count)
    ]
    ran = [spec.app_name for i, spec in enumerate(specs) if i % 7 != 6]
    seed(url, ran, lambda i: (i % 60 - 20) * 60)
    failing = {name for i, name in enumerate(ran) if i % 11 == 3}
    running = [name for i, name in enumerate(ran) if i % 13 == 5]
    store, states = open_store(url), sql.crontabber
    now = store.read_snapshot().now
    error = {"type": "ValueError", "value": "bad row", "traceback": TRACEBACK}
    held = {"ongoing": now, "ongoing_host": "worker-1", "ongoing_pid": 1000, "ongoing_token": "t"}
    held |= {"heartbeat": now, "lease_expires": now + dt.timedelta(seconds=90)}
    logged = [
        {"app_name": name, "log_time": now - dt.timedelta(minutes=i % 60), "token": name}
        | (
            {"exc_type": "ValueError", "success": None}
            if name in failing
            else {"success": now, "exc_type": None}
        )
        for i, name in enumerate(ran)
    ]
    with store.engine.begin() as conn:
        conn.execute(
            states.update()
            .where(states.c.app_name.in_(failing))
            .values(error_count=2, last_error=error)
        )
        conn.execute(states.update().where(states.c.app_name.in_(running)).values(**held))
        conn.execute(sa.insert(sql.crontabber_log), logged)
    store.close()
    return specs


def status_page(dbs: Databases, kind: str, jobs: int, rounds: int) -> dict:
    """Median server time of ``/`` (and p95), and of its statements in the driver."""
    with dbs.database(kind) as url:
        app = web.create_app(url, fill(url, jobs))
        in_driver: list[float] = []

        def hook(event: str, _name: str, _connection: object) -> None:  # sum: after - before
            in_driver.append(time.perf_counter() * (-1 if event == "before" else 1))

        store = app.reader.store
        store.close()
        store.connection_factory = lambda url: TracedConnection(connect_read_only(url), hook)
        try:
            times, database, size, statuses = [], [], 0, []
            for turn in range(rounds + 1):  # the first compiles the templates and connects
                in_driver.clear()
                started = time.perf_counter()
                body = b"".join(
                    app({**ENVIRON, "wsgi.input": io.BytesIO()}, lambda s, _: statuses.append(s))
                )
                elapsed = (time.perf_counter() - started) * 1000
                if not statuses[-1].startswith("200"):
                    raise RuntimeError(f"/ answered {statuses[-1]}")
                if turn:
                    times.append(elapsed)
                    database.append(sum(in_driver) * 1000)
                size = len(body)
        finally:
            app.close()
    times.sort()
    row = {
        "store": STORE_LABELS[kind],
        "jobs": jobs,
        "rounds": rounds,
        "median": statistics.median(times),
        "p95": times[min(len(times) - 1, int(len(times) * 0.95))],
        "database": statistics.median(database),
        "kib": size / 1024,
    }
    print(
        f"  status page / {jobs} jobs ({row['store']}): median {row['median']:.1f} ms, p95 "
        f"{row['p95']:.1f} ms, of which statements {row['database']:.1f} ms; {row['kib']:.0f} KiB"
    )
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    options = parser.parse_args()
    dbs = Databases(options.pg_url)
    try:
        found = status_page(dbs, options.store, options.jobs, options.rounds)
    finally:
        dbs.close()
    sys.exit(0 if found["median"] < 200 else 1)
