"""Start-up, and idle and busy ticks of the real ``crontabber`` command, each beside its floor.

Floors are measured in turn with what they are compared with (a floor, the
command, again), so that load from other processes on the machine hits both:

* *interpreter*: ``python -c pass``;
* *driver floor*: a fresh ``python`` that imports the driver, connects to the
  same database, runs ``SELECT 1`` and exits (psycopg2 in autocommit, as
  crontabber connects; sqlite3 on the same file);
* *replay*: right after each busy tick, the statements a due job sends
  (``claim`` and ``finish`` from ``crontabber.store.queries``, with the
  parameters a tick passes) replayed by bare psycopg2 on one autocommit
  connection over the same rows.

Statements are counted in one more, untimed run whose store connects through
:class:`crontabber.store.trace.Recorder` (``StateStore.connection_factory``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from common import CRONTABBER, UTC, Databases, Workspace, seed, timed

from crontabber.db.url import parse_url
from crontabber.store.queries import queries

DRIVER_FLOOR = {
    "postgresql": "import sys, psycopg2\nc = psycopg2.connect(sys.argv[1])\nc.autocommit = True\n"
    "cur = c.cursor()\ncur.execute('SELECT 1')\ncur.fetchall()\nc.close()",
    "sqlite": "import sys, sqlite3\nc = sqlite3.connect(sys.argv[1])\n"
    "c.execute('SELECT 1').fetchall()\nc.close()",
}
# The crontabber command with its store's connections traced (statement names and
# connections written to the file named first).
COUNTED = """import json, sys
from crontabber.cli import main
from crontabber.store import StateStore
from crontabber.store.trace import Recorder
recorder = Recorder()
StateStore.connection_factory = staticmethod(recorder.connect)
status = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"statements": recorder.statements, "connections": recorder.connections}, out)
sys.exit(status)
"""
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}
STORE_LABELS = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def median_ms(samples: list[tuple[float, float]], index: int = 0) -> float:
    return statistics.median(sample[index] for sample in samples) * 1000


def in_turn(commands: dict[str, list[str]], cwd: Path, repeats: int) -> dict[str, list]:
    """(wall, CPU) of each command ``repeats`` times, taken in turn so that a burst of load
    hits all alike, after a first turn that warms the caches (and compiles the job module)."""
    for args in commands.values():
        timed(args, cwd)
    turns = [[timed(args, cwd) for args in commands.values()] for _ in range(repeats)]
    return dict(zip(commands, zip(*turns, strict=True), strict=True))


def startup(repeats: int) -> list[dict]:
    """``python -c pass``, ``crontabber --version`` and ``--help``, in turn; medians."""
    with tempfile.TemporaryDirectory() as cwd:
        runs = in_turn(
            {
                "python -c pass": [sys.executable, "-c", "pass"],
                "crontabber --version": [*CRONTABBER, "--version"],
                "crontabber --help": [*CRONTABBER, "--help"],
            },
            Path(cwd),
            repeats,
        )
    rows = [
        {"command": label, "wall": median_ms(done), "cpu": median_ms(done, 1)}
        for label, done in runs.items()
    ]
    for row in rows:
        print(f"  {row['command']:<24} {row['wall']:5.0f} ms  (CPU {row['cpu']:.0f} ms)")
    return rows


def count(ws: Workspace) -> tuple[list[str], int]:
    """One run of the command, traced: its statements' names in order, and its connections."""
    out = ws.dir / "counted.json"
    timed([sys.executable, "-c", COUNTED, str(out), *ws.command()[len(CRONTABBER) :]], ws.dir)
    counted = json.loads(out.read_text())
    return counted["statements"], counted["connections"]


def ticks(dbs: Databases, kind: str, jobs: int, *, repeats: int, busy_repeats: int) -> dict:
    """Idle ticks of ``jobs`` no-op jobs beside their floors, then busy ticks (PostgreSQL)."""
    with dbs.workspace(kind, jobs) as ws:
        target = ws.url if kind == "postgresql" else parse_url(ws.url).connect_args["database"]
        runs = in_turn(
            {
                "interpreter": [sys.executable, "-c", "pass"],
                "driver": [sys.executable, "-c", DRIVER_FLOOR[kind], target],
                "idle": ws.command(),
            },
            ws.dir,
            repeats,
        )
        names, connections = count(ws)
        idle = [wall * 1000 for wall, _ in runs["idle"]]
        result = {
            "store": STORE_LABELS[kind],
            "jobs": jobs,
            "idle": statistics.median(idle),
            "idle_range": (min(idle), max(idle)),
            "idle_cpu": median_ms(runs["idle"], 1),
            "interpreter": median_ms(runs["interpreter"]),
            "driver": median_ms(runs["driver"]),
            "statements": names,
            "names": ", ".join(names),
            "connections": connections,
        }
        result["idle_ratio"] = result["idle"] / result["driver"]
        print(
            f"  {result['store']:<10} {jobs:>6} jobs  idle {result['idle']:5.0f} ms, driver floor "
            f"{result['driver']:3.0f} ms: {result['idle_ratio']:.2f}x  ({result['names']})"
        )
        if busy_repeats:
            result.update(busy(ws, busy_repeats, result))
    return result


IN_PROCESS = "--crontabber.isolate_runs=false"  # the in-process run: crontabber's own cost
FORKS = 200
# The floor of a run's own process: crontabber's modules imported, then FORKS times a fork
# whose child exits at once and is waited for.
FORK_FLOOR = [
    sys.executable,
    "-c",
    "import os, crontabber.cli.entry, crontabber.run.runner, crontabber.run.execution, psycopg2\n"
    f"for _ in range({FORKS}):\n"
    "    pid = os.fork()\n"
    "    if pid == 0: os._exit(0)\n"
    "    os.waitpid(pid, 0)",
]


def busy(ws: Workspace, repeats: int, idle: dict) -> dict:
    """Every job due (each a no-op): the command's time, and a due job's against its replay."""
    jobs, runs, replays, apart, forks = len(ws.names), [], [], [], []
    for _ in range(repeats):
        seed(ws.url, ws.names, lambda i: -60)
        runs.append(timed(ws.command(IN_PROCESS), ws.dir))
        replays.append(replay(ws.url, min(jobs, 1000)))
        seed(ws.url, ws.names, lambda i: -60)
        apart.append(timed(ws.command(), ws.dir))  # each run in a process of its own
        forks.append(timed(FORK_FLOOR, ws.dir))
    seed(ws.url, ws.names, lambda i: -60)
    names = Counter(count(ws)[0])
    names.subtract(idle["statements"])
    found = {
        "busy": median_ms(runs),
        "busy_cpu": median_ms(runs, 1),
        "per_job": (median_ms(runs) - idle["idle"]) / jobs,
        "per_job_cpu": (median_ms(runs, 1) - idle["idle_cpu"]) / jobs,
        "replay": statistics.median(replays),
        "per_job_statements": sum(n for s, n in names.items() if s not in TRANSACTION_CONTROL)
        / jobs,
        "per_job_executed": sum(names.values()) / jobs,
    }
    found["per_job_ratio"] = found["per_job"] / found["replay"]
    found["process"] = (median_ms(apart) - median_ms(runs)) / jobs
    found["process_cpu"] = (median_ms(apart, 1) - median_ms(runs, 1)) / jobs
    found["fork"] = (median_ms(forks) - idle["interpreter"]) / FORKS
    found["process_ratio"] = found["process"] / found["fork"]
    print(
        f"  {idle['store']:<10} {jobs:>6} jobs  a run's own process {found['process']:.2f} ms "
        f"(CPU {found['process_cpu']:.2f} ms), a bare fork of crontabber {found['fork']:.2f} ms"
    )
    print(
        f"  {idle['store']:<10} {jobs:>6} jobs  busy {found['busy'] / 1000:5.2f} s, per job "
        f"{found['per_job']:.2f} ms, replay {found['replay']:.2f} ms"
    )
    return found


def replay(url: str, count: int) -> float:
    """``claim`` then ``finish`` per row, as a tick sends them, by bare psycopg2: ms per job.

    Each row is claimed as seen (its ``next_run`` read first), so every claim
    succeeds, and released with a success, as a no-op job's run is.
    """
    import psycopg2

    sql = queries("postgresql")
    connection = psycopg2.connect(url)
    connection.autocommit = True
    claim = {
        "depends_on": [],
        "dead_token": None,
        "max_age_seconds": 12 * 3600.0,  # LeasePolicy's defaults, as a tick passes them
        "lease_seconds": 120.0,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "force": False,
    }
    finish = {
        "failed": False,
        "error": None,
        "duration": dt.timedelta(microseconds=20),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "trigger": "schedule",
        **dict.fromkeys(("exc_type", "exc_value", "exc_traceback", "output")),
    }
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
                    {**claim, "app_name": app_name, "token": token, "seen_next_run": next_run},
                )
                row = dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))
                claimed += row["claimed"]
                now = dt.datetime.now(UTC)
                cursor.execute(
                    sql["finish"],
                    {
                        **finish,
                        "app_name": app_name,
                        "token": token,
                        "next_run": now + dt.timedelta(hours=1),
                        **dict.fromkeys(("started", "last_success", "finished", "success"), now),
                    },
                )
                cursor.fetchall()
            elapsed = time.perf_counter() - started
    finally:
        connection.close()
    if claimed != len(rows):
        raise RuntimeError(f"the replay claimed {claimed} of {len(rows)} rows")
    return elapsed / len(rows) * 1000
