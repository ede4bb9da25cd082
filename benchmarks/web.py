"""How long the status page takes to render ``/`` for 1,000 jobs: server time, no network.

    python benchmarks/web.py [--jobs 1000] [--rounds 30] [--store postgresql|sqlite]

Builds a scratch state database (PostgreSQL: a database created and dropped on
the server of ``CRONTABBER_BENCH_PG_URL``, default the local one; SQLite: a
temporary file), gives the jobs every state (ok, failing with a traceback,
running, held back, never run), and calls the WSGI application directly,
timing each request from call to last byte (the database read included). The
target is under 200 ms for ``/`` with 1,000 jobs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from crontabber import App, web
from crontabber.jobs.schedule import FrequencySchedule
from crontabber.jobs.spec import JobSpec
from crontabber.store import open_store
from crontabber.store import tables as sql

UTC = dt.timezone.utc
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 200.0
TRACEBACK = "Traceback (most recent call last):\n" + '  File "job.py", line 1, in run\n' * 20


class Job(App):
    app_name = "job"

    def run(self) -> None:
        pass


def job_specs(count: int) -> list[JobSpec]:
    """``count`` jobs; every fifth depends on the one before it."""
    specs = []
    for index in range(count):
        depends_on = (f"job-{index - 1:05d}",) if index % 5 == 4 else ()
        specs.append(
            JobSpec(
                f"job-{index:05d}",
                Job,
                "benchmarks.web.Job",
                FrequencySchedule(dt.timedelta(minutes=5 * (1 + index % 12))),
                depends_on,
            )
        )
    return specs


def fill(engine: sa.Engine, specs: list[JobSpec], now: dt.datetime) -> None:
    """A state row for each job but every seventh (never run), and a few log rows."""
    rows, logged = [], []
    for index, spec in enumerate(specs):
        if index % 7 == 6:
            continue
        failing, running = index % 11 == 3, index % 13 == 5
        rows.append(
            {
                "app_name": spec.app_name,
                "next_run": now + dt.timedelta(minutes=index % 60 - 20),
                "first_run": now - dt.timedelta(days=30),
                "last_run": now - dt.timedelta(minutes=index % 60),
                "last_success": now - dt.timedelta(minutes=index % 60 + (90 if failing else 0)),
                "error_count": 2 if failing else 0,
                "depends_on": list(spec.depends_on),
                "last_error": (
                    {"type": "ValueError", "value": f"bad row {index}", "traceback": TRACEBACK}
                    if failing
                    else {}
                ),
                "ongoing": now - dt.timedelta(seconds=30) if running else None,
                "ongoing_host": "worker-1" if running else None,
                "ongoing_pid": 1000 + index if running else None,
                "ongoing_token": uuid.uuid4().hex if running else None,
                "heartbeat": now - dt.timedelta(seconds=5) if running else None,
                "lease_expires": now + dt.timedelta(seconds=90) if running else None,
            }
        )
        logged.append(
            {
                "app_name": spec.app_name,
                "log_time": now - dt.timedelta(minutes=index % 60),
                "duration": dt.timedelta(seconds=index % 30),
                "success": None if failing else now,
                "exc_type": "ValueError" if failing else None,
                "token": uuid.uuid4().hex,
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(sql.crontabber), rows)
        conn.execute(sa.insert(sql.crontabber_log), logged)


@contextmanager
def scratch_database(store: str) -> Iterator[str]:
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'state.sqlite'}"
        return
    admin_url = sa.make_url(os.environ.get("CRONTABBER_BENCH_PG_URL", DEFAULT_PG_URL))
    admin_url = admin_url.set(drivername="postgresql+psycopg2")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"crontabber_bench_web_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def request_ms(app: web.StatusApp, path: str) -> tuple[float, int]:
    """One GET of ``path``: milliseconds from call to last byte, and the body's size."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    statuses = []
    started = time.perf_counter()
    body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    elapsed = (time.perf_counter() - started) * 1000
    if not statuses[0].startswith("200"):
        raise SystemExit(f"{path}: {statuses[0]}")
    return elapsed, len(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    options = parser.parse_args()
    specs = job_specs(options.jobs)
    with scratch_database(options.store) as url:
        store = open_store(url)
        store.ensure_schema()
        fill(store.engine, specs, store.read_snapshot().now)
        store.close()
        app = web.create_app(url, specs)
        try:
            print(f"status page, {options.jobs} jobs on {options.store}, {options.rounds} rounds")
            verdict = 0
            for path in ("/", "/fragments/status", "/api/jobs", "/metrics"):
                request_ms(app, path)  # warm: templates compiled, connection open
                times = sorted(request_ms(app, path)[0] for _ in range(options.rounds))
                size = request_ms(app, path)[1]
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                print(
                    f"  {path:<18} median {statistics.median(times):7.1f} ms   "
                    f"p95 {p95:7.1f} ms   {size / 1024:7.0f} KiB"
                )
                if path == "/" and statistics.median(times) >= TARGET_MS:
                    verdict = 1
            print(f"target: / under {TARGET_MS:.0f} ms: {'missed' if verdict else 'met'}")
            return verdict
        finally:
            app.close()


if __name__ == "__main__":
    sys.exit(main())
