"""Daemon mode: schedule lateness, idle CPU, memory over many ticks, work sharing.

    python benchmarks/daemon.py [--quick] [--pg-url URL]

Every scenario runs real `crontabber --daemon` processes against a scratch
PostgreSQL database, dropped at the end, and prints one line per measurement.

- lateness: J jobs of frequency F whose first runs are spread evenly over F;
  each run notes how late it started against its recorded next run (the
  database's time, read by the job from its own state). Reported p50, p99 and
  max for J = 10, 1,000 (and 10,000 without --quick), in one daemon and
  shared by 4 daemons.
- idle CPU: a daemon whose jobs are not due for an hour, CPU time over 30 s,
  as a share of one core.
- memory: a daemon polling every millisecond (each poll is a tick) for about
  10,000 ticks: resident memory after 1,000 and after 10,000 ticks.
- sharing: 4 daemons, 40 jobs due at once that each sleep 1 s: efficiency is
  the ideal makespan (40 x 1 s / 4) over the measured one.

Targets (issue 15): lateness p99 under 100 ms with 1,000 1m jobs in one
daemon; an idle daemon under 1% of a core; sharing efficiency at least 0.9.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2

JOBS = """
import os
import time

from crontabber import App

HERE = os.path.dirname(__file__)


class Noted(App):
    sleep = 0.0

    def run(self):
        due = self.job_information.next_run
        late = time.time() - due.timestamp() if due is not None else 0.0
        with open(os.path.join(HERE, f"late-{os.getpid()}.txt"), "a") as f:
            f.write(f"{self.app_name} {late:.6f} {time.time():.6f}\\n")
        if self.sleep:
            time.sleep(self.sleep)
"""


def admin(url: str, statement: str) -> None:
    """One statement outside any transaction (CREATE or DROP DATABASE)."""
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        conn.cursor().execute(statement)
    finally:
        conn.close()


def crontabber() -> list[str]:
    script = Path(sys.executable).parent / "crontabber"
    return [str(script)] if script.exists() else [sys.executable, "-m", "crontabber"]


class Scratch:
    """A scratch database and directory for one scenario."""

    def __init__(self, admin_url: str, jobs: int, frequency: str, sleep: float = 0.0) -> None:
        self.admin_url = admin_url
        self.name = f"crontabber_daemon_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin(admin_url, f'CREATE DATABASE "{self.name}"')
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name
        self.dir = Path(tempfile.mkdtemp(prefix="crontabber-daemon-bench-"))
        classes = "\n".join(
            f"class J{n}(Noted):\n    app_name = 'j{n}'\n    sleep = {sleep}\n" for n in range(jobs)
        )
        (self.dir / "benchjobs.py").write_text(JOBS + classes)
        lines = "\n".join(f"        benchjobs.J{n}|{frequency}" for n in range(jobs))
        (self.dir / "crontabber.ini").write_text(
            f"[crontabber]\n    database_url={self.url}\n    jobs='''\n{lines}\n    '''\n"
        )
        migrated = subprocess.run(
            [*crontabber(), f"--admin.conf={self.dir / 'crontabber.ini'}", "--migrate"],
            capture_output=True,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr

    def seed(self, jobs: int, spread: float, start_in: float = 1.0) -> None:
        """Every job's next run, spread evenly over ``spread`` seconds from now + start_in."""
        with psycopg2.connect(self.url) as conn, conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crontabber (app_name, next_run, last_run, error_count, depends_on) "
                "SELECT 'j' || n, clock_timestamp() + make_interval(secs => %s + n * %s), "
                "clock_timestamp(), 0, '{}' FROM generate_series(0, %s - 1) AS n",
                (start_in, spread / max(jobs, 1), jobs),
            )

    def daemon(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [*crontabber(), f"--admin.conf={self.dir / 'crontabber.ini'}", "--daemon", *args],
            cwd=self.dir,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "logging.level": "ERROR"},
        )

    def notes(self) -> list[tuple[str, float, float]]:
        found = []
        for path in self.dir.glob("late-*.txt"):
            for line in path.read_text().splitlines():
                app, late, when = line.split()
                found.append((app, float(late), float(when)))
        return found

    def commits(self) -> int:
        with psycopg2.connect(self.admin_url) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (self.name,)
            )
            return int(cursor.fetchone()[0])

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        admin(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def lateness(admin_url: str, jobs: int, daemons: int, seconds: float) -> dict:
    scratch = Scratch(admin_url, jobs, "1m")
    try:
        # due from 4 s on: every daemon has started and is idle by then
        scratch.seed(jobs, spread=min(seconds - 8, 55.0), start_in=4.0)
        processes = [scratch.daemon(f"--crontabber.host_name=d{n}") for n in range(daemons)]
        time.sleep(seconds)
        stop(processes)
        late = [late for _, late, _ in scratch.notes()]
        return {
            "jobs": jobs,
            "daemons": daemons,
            "runs": len(late),
            "p50_ms": 1000 * percentile(late, 0.5) if late else float("nan"),
            "p99_ms": 1000 * percentile(late, 0.99) if late else float("nan"),
            "max_ms": 1000 * max(late) if late else float("nan"),
        }
    finally:
        scratch.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle_cpu(admin_url: str, seconds: float) -> dict:
    scratch = Scratch(admin_url, 10, "1h")
    try:
        scratch.seed(10, spread=10, start_in=3600)
        process = scratch.daemon()
        time.sleep(3)
        before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        used = cpu_seconds(process.pid) - before
        elapsed = time.monotonic() - started
        stop([process])
        return {"seconds": elapsed, "cpu_share_pct": 100 * used / elapsed}
    finally:
        scratch.close()


def memory(admin_url: str, ticks: int) -> dict:
    scratch = Scratch(admin_url, 10, "1h")
    try:
        scratch.seed(10, spread=10, start_in=3600)
        with open(scratch.dir / "crontabber.ini", "a") as f:
            f.write("[daemon]\n    poll_seconds=0.001\n")
        process = scratch.daemon()
        base = scratch.commits()
        marks = {}
        deadline = time.monotonic() + 600
        for mark in (ticks // 10, ticks):
            while scratch.commits() - base < mark and time.monotonic() < deadline:
                time.sleep(0.05)
            marks[mark] = rss_mib(process.pid)
        done = scratch.commits() - base
        stop([process])
        return {"ticks": done, **{f"rss_mib_at_{mark}": value for mark, value in marks.items()}}
    finally:
        scratch.close()


def sharing(admin_url: str, daemons: int = 4, jobs: int = 40, sleep: float = 1.0) -> dict:
    scratch = Scratch(admin_url, jobs, "1h", sleep=sleep)
    try:
        scratch.seed(jobs, spread=0, start_in=4.0)
        processes = [scratch.daemon(f"--crontabber.host_name=d{n}") for n in range(daemons)]
        deadline = time.monotonic() + 120
        while len(scratch.notes()) < jobs and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(sleep + 0.5)
        stop(processes)
        notes = scratch.notes()
        starts = [when for _, _, when in notes]
        makespan = max(starts) + sleep - min(starts) if starts else float("nan")
        ideal = jobs * sleep / daemons
        runs = len(notes)
        return {
            "runs": runs,
            "duplicates": runs - len({app for app, _, _ in notes}),
            "makespan_s": makespan,
            "ideal_s": ideal,
            "efficiency": ideal / makespan if makespan else float("nan"),
        }
    finally:
        scratch.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "CRONTABBER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    sizes = [10, 1000] if args.quick else [10, 1000, 10000]
    seconds = 40.0 if args.quick else 70.0
    results = []
    for jobs in sizes:
        for daemons in (1, 4):
            result = lateness(args.pg_url, jobs, daemons, seconds)
            results.append(("lateness", result))
            print(
                f"lateness {jobs:>6} jobs, {daemons} daemon(s): {result['runs']} runs, "
                f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                f"max {result['max_ms']:.1f} ms",
                flush=True,
            )
    idle = idle_cpu(args.pg_url, 20.0 if args.quick else 60.0)
    print(f"idle daemon: {idle['cpu_share_pct']:.3f}% of a core over {idle['seconds']:.0f} s")
    mem = memory(args.pg_url, 10000)
    print(
        f"memory: {mem['ticks']} ticks; RSS {mem['rss_mib_at_1000']:.1f} MiB after 1,000, "
        f"{mem['rss_mib_at_10000']:.1f} MiB after 10,000",
        flush=True,
    )
    shared = sharing(args.pg_url)
    print(
        f"sharing: 4 daemons, 40 jobs of 1 s: makespan {shared['makespan_s']:.2f} s, ideal "
        f"{shared['ideal_s']:.2f} s, efficiency {shared['efficiency']:.2f}, "
        f"{shared['duplicates']} duplicates",
        flush=True,
    )
    thousand = next(r for _, r in results if r["jobs"] == 1000 and r["daemons"] == 1)
    print()
    print(f"target lateness p99 < 100 ms (1,000 jobs, 1 daemon): {thousand['p99_ms']:.1f} ms")
    print(f"target idle CPU < 1% of a core: {idle['cpu_share_pct']:.3f}%")
    print(f"target sharing efficiency >= 0.9: {shared['efficiency']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
