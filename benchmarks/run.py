"""Benchmark crontabber's own overhead; print the tables and write benchmarks/RESULTS.md.

    python benchmarks/run.py                      # everything, about 6-8 minutes on 2 cores
    python benchmarks/run.py --quick              # smaller sizes, fewer repeats: about a minute
    python benchmarks/run.py --scenarios idle,busy --stores postgresql

Scenarios: startup, idle, busy, sharing, contention, profile (see README.md).
PostgreSQL is found through --pg-url, else CRONTABBER_BENCH_DATABASE_URL, else
CRONTABBER_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres;
the user must be allowed to create databases (scratch ones, dropped at the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import concurrency
import profiles
import report
import startup
import targets
import ticks
from common import DEFAULT_PG_URL, HERE, Stores

SCENARIOS = ("startup", "idle", "busy", "sharing", "contention", "profile")
STORES = ("postgresql", "sqlite")


class Plan:
    """Sizes and repeats of one benchmark run (default or --quick)."""

    def __init__(self, quick: bool) -> None:
        self.mode = "quick" if quick else "default"
        self.sizes = [1, 100, 1000] if quick else [1, 10, 100, 1000, 10000]
        self.idle_repeats = 3 if quick else 7
        self.startup_repeats = 3 if quick else 9
        # K = 4 is the target; quick runs only that, with enough work per process to see it
        self.sharing_jobs, self.sharing_sleep = (8, 1.0) if quick else (32, 0.5)
        self.process_counts = [4] if quick else [1, 2, 4, 8]
        self.contention_processes = 4 if quick else 8
        self.contention_jobs = 3
        self.contention_seconds = 2.0 if quick else 8.0
        self.profile_idle_sizes = [300] if quick else [1, 1000, 10000]
        self.profile_busy_size = 300 if quick else 1000
        # the busy tick with synchronous_commit=off, to tell crontabber from the WAL flush
        self.async_sizes = [] if quick else [1000]

    def busy_repeats(self, jobs: int) -> int:
        if self.mode == "quick":
            return 1
        return 3 if jobs <= 1000 else 1

    def replay_jobs(self, jobs: int) -> int:
        """How many rows to replay a due job's statements over after each busy tick."""
        return min(jobs, 1000) if jobs >= 100 else 0

    def count_busy(self, jobs: int) -> bool:
        """Whether to count a busy tick's statements (one more run; per job they are constant)."""
        return jobs <= (100 if self.mode == "quick" else 1000)


def machine(stores: Stores, has_postgres: bool) -> dict[str, str]:
    import psycopg2
    import sqlalchemy

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "SQLAlchemy (migrations and set-up only)": sqlalchemy.__version__,
        "psycopg2": psycopg2.__version__.split()[0],
        "SQLite": sqlite3.sqlite_version,
    }
    if has_postgres:
        with stores.admin.connect() as conn:
            info["PostgreSQL"] = conn.exec_driver_sql("SHOW server_version").scalar()
            settings = [
                f"{name}={conn.exec_driver_sql(f'SHOW {name}').scalar()}"
                for name in ("synchronous_commit", "fsync", "wal_sync_method", "shared_buffers")
            ]
        host = stores.admin.url.host or "local socket"
        info["PostgreSQL server"] = f"{host}, {', '.join(settings)}"
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["crontabber commit"] = git_describe()
    return info


def git_describe() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "crontabber", "migrations")
    return commit + (" with uncommitted changes to crontabber/" if dirty else "")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--stores", default=",".join(STORES), help="comma-separated: postgresql, sqlite"
    )
    parser.add_argument(
        "--sizes",
        help="comma-separated job counts for the idle and busy ticks (overrides the mode)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("CRONTABBER_BENCH_DATABASE_URL")
        or os.environ.get("CRONTABBER_TEST_DATABASE_URL")
        or DEFAULT_PG_URL,
        help="a PostgreSQL URL whose user may create databases",
    )
    parser.add_argument(
        "--output",
        default=str(HERE / "RESULTS.md"),
        help="where to write the results (default benchmarks/RESULTS.md); '-' for nowhere",
    )
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    for name in args.scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}")
    for name in args.stores:
        if name not in STORES:
            parser.error(f"unknown store {name!r}")
    return args


def run_ticks(stores: Stores, plan: Plan, kinds: list[str], scenarios: list[str]) -> dict:
    busy = "busy" in scenarios
    floor: dict = {}
    if "postgresql" in kinds and busy:
        floor.update(ticks.database_floor(stores))
        with stores.admin.connect() as conn:
            floor["synchronous_commit"] = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
    if "sqlite" in kinds and busy:
        with tempfile.TemporaryDirectory() as directory:
            floor["sqlite_commit_ms"] = ticks.sqlite_floor(Path(directory))["commit_ms"]
    variants = [(kind, plan.sizes) for kind in kinds]
    if "postgresql" in kinds and busy and plan.async_sizes:
        variants.append(("postgresql-async", plan.async_sizes))
    measured = [
        ticks.measure(
            stores,
            kind,
            jobs,
            idle_repeats=plan.idle_repeats,
            busy_repeats=plan.busy_repeats(jobs) if busy else 0,
            count_busy=plan.count_busy(jobs),
            replay_jobs=plan.replay_jobs(jobs) if busy else 0,
        )
        for kind, sizes in variants
        for jobs in sizes
    ]
    return {"floor": floor, "ticks": measured}


def run_scenarios(stores: Stores, plan: Plan, kinds: list[str], scenarios: list[str]) -> dict:
    results: dict = {}
    main_kind = "postgresql" if "postgresql" in kinds else "sqlite"
    if "startup" in scenarios:
        print("\nstart-up")
        results["startup"] = startup.measure(stores, main_kind, repeats=plan.startup_repeats)
    if {"idle", "busy"} & set(scenarios):
        print("\nidle and busy ticks")
        results.update(run_ticks(stores, plan, kinds, scenarios))
    if "sharing" in scenarios:
        print("\nwork sharing")
        results["sharing"] = [
            result
            for kind in kinds
            for result in concurrency.work_sharing(
                stores,
                kind,
                jobs=plan.sharing_jobs,
                sleep=plan.sharing_sleep,
                process_counts=plan.process_counts,
            )
        ]
    if "contention" in scenarios:
        print("\ncontention")
        results["contention"] = [
            concurrency.contention(
                stores,
                kind,
                processes=plan.contention_processes,
                jobs=plan.contention_jobs,
                seconds=plan.contention_seconds,
            )
            for kind in kinds
        ]
    if "profile" in scenarios:
        print("\nprofiles")
        results["profiles"] = profiles.measure(
            stores, main_kind, idle_sizes=plan.profile_idle_sizes, busy_size=plan.profile_busy_size
        )
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    plan = Plan(args.quick)
    if args.sizes:
        plan.sizes = [int(size) for size in args.sizes.split(",")]
    started = time.monotonic()
    results: dict = {
        "command": "python benchmarks/run.py" + "".join(f" {shlex.quote(a)}" for a in argv),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": plan.mode,
        "repeats": {"idle": plan.idle_repeats, "startup": plan.startup_repeats},
        "skipped": [],
    }
    stores = Stores(args.pg_url if "postgresql" in args.stores else None)
    kinds = list(args.stores)
    if "postgresql" in kinds and (why := stores.postgres_available()):
        print(f"skipping PostgreSQL: {why}")
        results["skipped"].append(f"PostgreSQL ({why})")
        kinds.remove("postgresql")
    # Children cache their bytecode (as an installed crontabber does) in a scratch
    # directory, even where PYTHONDONTWRITEBYTECODE is set; nothing is written to the tree.
    pycache = tempfile.TemporaryDirectory(prefix="crontabber-bench-pycache-")
    os.environ["PYTHONPYCACHEPREFIX"] = pycache.name
    try:
        results["machine"] = machine(stores, "postgresql" in kinds)
        for key, value in results["machine"].items():
            print(f"{key}: {value}")
        results.update(run_scenarios(stores, plan, kinds, args.scenarios))
    finally:
        stores.close()
        pycache.cleanup()
    results["machine"]["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["duration"] = time.monotonic() - started
    found = targets.verdicts(results)
    output = None if args.output == "-" else Path(args.output)
    analysis = report.existing_analysis(output) if output else ""
    markdown = report.render_markdown(results, found, analysis)
    print("\n" + markdown.split("## Analysis")[0].rstrip())
    if output is not None:
        output.write_text(markdown)
        print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
