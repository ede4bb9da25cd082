"""Several processes at once: work sharing, and daemon mode (lateness, idle CPU, memory).

Every run is noted by the job itself (``Noted`` in common.JOB_MODULE: its job,
the due instant it was claimed for, how late it started, start and end), so a
second run for the same due instant is a duplicate, whatever the scenario.

* *sharing*: K processes over J jobs, all due, that each sleep S seconds: K
  ``crontabber`` commands started together, or K ``crontabber --daemon`` for
  which the jobs fall due 3 s after the start. Makespan: from the first run's
  start to the last run's end; efficiency: (J*S/K) / makespan.
* *lateness*: one daemon over J jobs of ``1m`` whose first runs are spread over
  the minute: how long after its due instant (the database's time) each run
  started.
* *idle and memory*: a daemon whose jobs are due in an hour, its CPU share; and
  one polling every millisecond (each poll a tick), its resident memory after
  N/10 and after N ticks (counted by the server's ``xact_commit``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from common import Databases, Workspace, clean_env, seed
from ticks import STORE_LABELS


def duplicates(runs: list) -> int:
    """Runs beyond the first for the same job and due instant."""
    return sum(n - 1 for n in Counter((run[0], run[1]) for run in runs).values() if n > 1)


def start(ws: Workspace, count: int, *args: str, sleep: float = 0.0) -> list[subprocess.Popen]:
    env = clean_env(BENCH_SLEEP=str(sleep))
    return [
        subprocess.Popen(ws.command(*args), cwd=ws.dir, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]


def finish(processes: list[subprocess.Popen], stop: bool = False) -> Counter[int]:
    """Wait for the processes (after SIGTERM when ``stop``): their exit statuses."""
    for process in processes if stop else ():
        process.send_signal(signal.SIGTERM)
    statuses = Counter()
    for process in processes:
        stderr = process.communicate(timeout=600)[1]
        if "Traceback" in stderr:
            raise RuntimeError(f"a crontabber process failed:\n{stderr[-3000:]}")
        statuses[process.returncode] += 1
    return statuses


def sharing(
    dbs: Databases, kind: str, counts: list[int], *, jobs: int, sleep: float, daemon: bool = False
) -> list[dict]:
    found = []
    lead = 3.0 if daemon else -60.0  # daemons: due once every one of them is up
    with dbs.workspace(kind, jobs, base="Noted") as ws:
        for count in counts:
            seed(ws.url, ws.names, lambda i: lead)
            processes = start(ws, count, *(["--daemon"] if daemon else []), sleep=sleep)
            deadline = time.monotonic() + lead + jobs * sleep + 60
            while daemon and len(ws.runs()) < jobs and time.monotonic() < deadline:
                time.sleep(0.1)
            if daemon:
                time.sleep(sleep + 0.5)  # the last runs end; a second run would show
            statuses = finish(processes, stop=daemon)
            runs = ws.runs(clear=True)
            makespan = max(run[4] for run in runs) - min(run[3] for run in runs)
            row = {
                "store": STORE_LABELS[kind],
                "mode": "daemon" if daemon else "command",
                "K": count,
                "J": jobs,
                "S": sleep,
                "ideal": jobs * sleep / count,
                "makespan": makespan,
                "efficiency": jobs * sleep / count / makespan,
                "runs": len(runs),
                "duplicates": duplicates(runs),
                "missing": jobs - len({run[0] for run in runs}),
                "statuses": dict(sorted(statuses.items())),
            }
            found.append(row)
            print(
                f"  {row['store']:<10} {row['mode']:<7} K={count}  makespan {makespan:5.2f} s"
                f"  efficiency {row['efficiency']:.2f}  duplicates {row['duplicates']}"
                f"  missing {row['missing']}  exit statuses {row['statuses']}"
            )
    return found


def lateness(dbs: Databases, jobs: int, seconds: float) -> dict:
    spread = min(seconds - 8, 55.0)  # due from 4 s on, once the daemon is idle
    with dbs.workspace(
        "postgresql", jobs, base="Noted", frequency="1m", due_in=lambda i: 4 + i * spread / jobs
    ) as ws:
        processes = start(ws, 1, "--daemon")
        time.sleep(seconds)
        finish(processes, stop=True)
        runs = ws.runs()
    late = sorted(run[2] * 1000 for run in runs)
    row = {
        "jobs": jobs,
        "seconds": seconds,
        "runs": len(late),
        "duplicates": duplicates(runs),
        **{name: late[min(len(late) - 1, int(q * len(late)))] for name, q in PERCENTILES.items()},
    }
    print(f"  lateness, {jobs} jobs of 1m, 1 daemon: {len(late)} runs, p99 {row['p99']:.1f} ms")
    return row


PERCENTILES = {"p50": 0.5, "p99": 0.99, "max": 1.0}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle_and_memory(dbs: Databases, seconds: float, ticks: int) -> dict:
    """An idle daemon's CPU share over at least ``seconds``, measured while another daemon
    ticks ``ticks`` times (its memory after a tenth of them and after all)."""
    with (
        dbs.workspace("postgresql", 10) as idle,
        dbs.workspace("postgresql", 10, ini="[daemon]\n    poll_seconds=0.001\n") as busy,
    ):
        quiet, polling = start(idle, 1, "--daemon")[0], start(busy, 1, "--daemon")[0]
        time.sleep(3)  # both started
        cpu_before, started = cpu_seconds(quiet.pid), time.monotonic()
        name = busy.url.rsplit("/", 1)[1]
        commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
        base, rss = dbs.admin(commits, name), {}
        for mark in (ticks // 10, ticks):
            while dbs.admin(commits, name) - base < mark and time.monotonic() < started + 600:
                time.sleep(0.05)
            rss[mark] = rss_mib(polling.pid)
        done = dbs.admin(commits, name) - base
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        elapsed, used = time.monotonic() - started, cpu_seconds(quiet.pid) - cpu_before
        finish([quiet, polling], stop=True)
    row = {
        "idle_seconds": elapsed,
        "idle_cpu_pct": 100 * used / elapsed,
        "ticks": done,
        "rss_first": rss[ticks // 10],
        "rss_last": rss[ticks],
        "first_mark": ticks // 10,
    }
    print(
        f"  idle daemon {row['idle_cpu_pct']:.3f}% of a core over {elapsed:.0f} s; "
        f"RSS {row['rss_first']:.1f} MiB after {ticks // 10} ticks, {row['rss_last']:.1f} after "
        f"{done}"
    )
    return row
