"""Benchmark crontabber's own overhead, each figure beside a floor measured in the same run,
check the targets, and rewrite benchmarks/RESULTS.md (keeping its hand-written analysis).

    python benchmarks/run.py            # everything: about 4 minutes on 2 cores
    python benchmarks/run.py --quick    # fewer sizes and rounds: about 2 minutes
    python benchmarks/run.py --scenarios idle,busy --stores postgresql --output -

Scenarios: startup, idle, busy, sharing, daemon, web (see README.md). PostgreSQL
is found through --pg-url (default: $CRONTABBER_BENCH_DATABASE_URL, else
$CRONTABBER_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres);
its user must be allowed to create databases (scratch ones, dropped at the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import processes
import ticks
import web
from common import DEFAULT_PG_URL, HERE, Databases

SCENARIOS = ("startup", "idle", "busy", "sharing", "daemon", "web")
STORES = ("postgresql", "sqlite")
ANALYSIS = re.compile(r"<!-- analysis -->\n(.*?)\n?<!-- /analysis -->", re.S)
# The targets: bounds on ratios to floors measured alongside, and absolute ones.
IDLE_RATIO = {1: 2.0, 1000: 3.0}  # jobs: an idle tick / the driver floor
PER_JOB_RATIO = 1.3  # a due job's own cost / its statements replayed by bare psycopg2
CLI_MS = 60.0  # crontabber --version and --help
SHARING = {"command": 0.8, "daemon": 0.9}  # efficiency with K = 4
LATENESS_P99_MS, IDLE_CPU_PCT, RSS_GROWTH_MIB, PAGE_MS = 100.0, 1.0, 1.0, 200.0


class Plan:
    """Sizes and rounds of one run (default or --quick)."""

    def __init__(self, quick: bool, sizes: str | None) -> None:
        self.mode = "quick" if quick else "default"
        default_sizes = [1, 100, 1000] if quick else [1, 10, 100, 1000, 10000]
        self.sizes = [int(n) for n in sizes.split(",")] if sizes else default_sizes
        self.repeats, self.busy_repeats = (3, 2) if quick else (7, 3)
        self.startup_repeats = 5 if quick else 9
        self.sharing_counts, self.sharing_jobs = ([4], 16) if quick else ([1, 2, 4, 8], 32)
        self.lateness_seconds, self.idle_seconds = (40.0, 20.0) if quick else (70.0, 30.0)
        self.web_rounds = 10 if quick else 30


def machine(dbs: Databases | None) -> dict[str, str]:
    import psycopg2

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    direct = importlib.metadata.distribution("crontabber-ng").read_text("direct_url.json") or ""
    info = {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "psycopg2, SQLite": f"{psycopg2.__version__.split()[0]}, {sqlite3.sqlite_version}",
        "crontabber install": "editable" if '"editable": true' in direct else "regular",
    }
    if dbs is not None:
        settings = ("server_version", "synchronous_commit", "fsync", "shared_buffers")
        values = [f"{name}={dbs.admin(f'SHOW {name}')}" for name in settings]
        info["PostgreSQL"] = f"{dbs.admin_url.host or 'local socket'}, {', '.join(values)}"
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    git = ["git", "-C", str(HERE.parent)]
    commit = subprocess.check_output([*git, "rev-parse", "--short", "HEAD"], text=True).strip()
    dirty = subprocess.check_output([*git, "status", "--porcelain", "crontabber"])
    info["crontabber commit"] = commit + (" (modified)" if dirty else "")
    return info


def measure(scenarios: list[str], plan: Plan, dbs: Databases, kinds: list[str]) -> dict:
    """Every scenario asked for: a list of result rows under each key of SECTIONS."""
    results: dict = {"sharing": []}
    if "startup" in scenarios:
        print("\nstart-up")
        results["startup"] = ticks.startup(plan.startup_repeats)
    if {"idle", "busy"} & set(scenarios):
        print("\nidle and busy ticks")
        busy, results["ticks"] = plan.busy_repeats if "busy" in scenarios else 0, []
        for kind in kinds:
            for jobs in plan.sizes:  # busy ticks: PostgreSQL at 1,000 jobs (the target)
                due = busy if (kind, jobs) == ("postgresql", 1000) else 0
                results["ticks"].append(
                    ticks.ticks(dbs, kind, jobs, repeats=plan.repeats, busy_repeats=due)
                )
        results["busy"] = [tick for tick in results["ticks"] if "busy" in tick]
    if "sharing" in scenarios:
        print("\nwork sharing")
        for kind in kinds:
            results["sharing"] += processes.sharing(
                dbs, kind, plan.sharing_counts, jobs=plan.sharing_jobs, sleep=0.5
            )
    if "daemon" in scenarios and "postgresql" in kinds:
        print("\ndaemon mode")
        results["sharing"] += processes.sharing(
            dbs, "postgresql", [4], jobs=40, sleep=1, daemon=True
        )
        results["lateness"] = [processes.lateness(dbs, 1000, plan.lateness_seconds)]
        results["daemon"] = [processes.idle_and_memory(dbs, plan.idle_seconds, 10000)]
    if "web" in scenarios:
        print("\nstatus page")
        results["web"] = [web.status_page(dbs, kinds[0], 1000, plan.web_rounds)]
    return results


def verdicts(results: dict) -> list[list[str]]:
    """[target, measured, verdict, context] for each target this run measured."""
    found = []

    def add(target: str, measured: str, met: bool, context: str, bound: bool = True) -> None:
        verdict = ("met" if met else "**not met**") if bound else ("within" if met else "beyond")
        found.append([target, measured, verdict + ("" if bound else " (no target)"), context])

    for t in results.get("ticks", []):
        if t["jobs"] in IDLE_RATIO:
            add(
                f"idle tick at {t['jobs']:,} job{'s' * (t['jobs'] > 1)} within "
                f"{IDLE_RATIO[t['jobs']]:g}x of the driver floor ({t['store']})",
                f"{t['idle']:.0f} ms / {t['driver']:.0f} ms = {t['idle_ratio']:.2f}x",
                t["idle_ratio"] <= IDLE_RATIO[t["jobs"]],
                f"interpreter start {t['interpreter']:.0f} ms; tick CPU {t['idle_cpu']:.0f} ms",
                bound=t["store"] == "PostgreSQL",
            )
    for t in results.get("busy", []):
        add(
            f"a due job's own cost within {PER_JOB_RATIO:g}x of its statements replayed by bare "
            f"psycopg2, {t['jobs']:,} jobs (PostgreSQL)",
            f"{t['per_job']:.2f} ms / {t['replay']:.2f} ms = {t['per_job_ratio']:.2f}x",
            t["per_job_ratio"] <= PER_JOB_RATIO,
            f"CPU per job {t['per_job_cpu']:.2f} ms; {t['per_job_statements']:.2f} statements",
        )
        add(
            "a run's own process (crontabber.isolate_runs) within 2x of a bare fork of crontabber",
            f"{t['process']:.2f} ms / {t['fork']:.2f} ms = {t['process_ratio']:.2f}x",
            t["process_ratio"] <= 2.0,
            f"CPU per run {t['process_cpu']:.2f} ms; the due job's cost above is in-process",
            bound=False,
        )
    wall = {row["command"]: row for row in results.get("startup", [])}
    for label in ("crontabber --version", "crontabber --help"):
        if label in wall:
            add(
                f"`{label}` under {CLI_MS:g} ms",
                f"{wall[label]['wall']:.0f} ms",
                wall[label]["wall"] < CLI_MS,
                f"interpreter start {wall['python -c pass']['wall']:.0f} ms; "
                f"CPU {wall[label]['cpu']:.0f} ms",
            )
    for row in results["sharing"]:
        if row["K"] == 4:
            add(
                f"work-sharing efficiency at least {SHARING[row['mode']]} with K = 4 "
                f"({row['store']}, {row['mode']}s)",
                f"{row['efficiency']:.2f}",
                row["efficiency"] >= SHARING[row["mode"]],
                f"J = {row['J']}, S = {row['S']:g} s: ideal {row['ideal']:.2f} s, "
                f"makespan {row['makespan']:.2f} s",
            )
    checked = results["sharing"] + results.get("lateness", [])
    if checked:
        bad = sum(row["duplicates"] + row.get("missing", 0) for row in checked)
        add(
            "zero duplicate runs in every scenario",
            f"{bad} duplicate or missing in {sum(row['runs'] for row in checked):,} runs",
            bad == 0,
            "work sharing (commands and daemons), daemon lateness",
        )
    for store in ticks.STORE_LABELS.values():
        idle = [t for t in results.get("ticks", []) if t["store"] == store]
        counts = sorted({len(t["statements"]) for t in idle})
        sizes = ", ".join(f"{t['jobs']:,}" for t in idle)
        if len(idle) > 1:
            add(
                f"idle tick sends a constant number of statements ({store})",
                f"{' / '.join(map(str, counts))} at {sizes} jobs",
                len(counts) == 1,
                f"{idle[0]['names']} on {idle[0]['connections']} connection(s)",
            )
    for late in results.get("lateness", []):
        add(
            f"daemon: lateness p99 under {LATENESS_P99_MS:g} ms, {late['jobs']:,} `1m` jobs",
            f"{late['p99']:.1f} ms",
            late["p99"] < LATENESS_P99_MS,
            f"p50 {late['p50']:.1f} ms, max {late['max']:.1f} ms over {late['runs']:,} runs",
        )
    for daemon in results.get("daemon", []):
        add(
            f"daemon: an idle daemon under {IDLE_CPU_PCT:g}% of a core",
            f"{daemon['idle_cpu_pct']:.3f}%",
            daemon["idle_cpu_pct"] < IDLE_CPU_PCT,
            f"over {daemon['idle_seconds']:.0f} s",
        )
        growth = daemon["rss_last"] - daemon["rss_first"]
        add(
            f"daemon: resident memory grows under {RSS_GROWTH_MIB:g} MiB over 10,000 ticks",
            f"{growth:+.1f} MiB",
            growth < RSS_GROWTH_MIB,
            f"{daemon['rss_first']:.1f} MiB after {daemon['first_mark']:,} ticks, "
            f"{daemon['rss_last']:.1f} MiB after {daemon['ticks']:,}",
        )
    for page in results.get("web", []):
        add(
            f"status page `/` with {page['jobs']:,} jobs under {PAGE_MS:g} ms ({page['store']})",
            f"{page['median']:.1f} ms",
            page["median"] < PAGE_MS,
            f"its statements in the driver {page['database']:.1f} ms; p95 {page['p95']:.1f} ms",
        )
    return found


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


SECTIONS = [  # (results key, title, what it shows, "header: format | ..." over each row)
    (
        "ticks",
        "1. Idle tick (nothing due)",
        "Wall time of the real `crontabber` command, spawn to exit: the median of the runs after "
        "a warm-up, each taken in turn with its floors (`python -c pass`; the *driver floor*, a "
        "fresh `python` that imports the driver, connects to the same database, runs `SELECT 1` "
        "and exits). *statements*: one more run, its store's connections traced by name "
        "(`crontabber.store.trace.Recorder`).",
        "store: {store} | jobs: {jobs:,} | tick (median): {idle:.0f} ms | range: {idle_range[0]:.0f}"
        "-{idle_range[1]:.0f} ms | tick CPU: {idle_cpu:.0f} ms | interpreter start: {interpreter:.0f}"
        " ms | driver floor: {driver:.0f} ms | tick / driver floor: **{idle_ratio:.2f}x** | "
        "statements: {names} | connections: {connections}",
    ),
    (
        "busy",
        "2. Busy tick (every job due, each a no-op)",
        "The same command after every job's `next_run` is set a minute back. *Per job*: (busy - "
        "idle) / jobs. *Replay*: right after each busy tick, `claim` and `finish` with the "
        "parameters a tick passes, by bare psycopg2 on one autocommit connection over the same "
        "rows: the floor of a due job. *executed* counts BEGIN/COMMIT too. Those run jobs in "
        "crontabber's process (`isolate_runs=false`); *process* is what the default, each run in "
        "a process of its own, adds per run, beside *fork*: a bare fork, exit and wait of a "
        "process with crontabber's modules imported.",
        "store: {store} | jobs: {jobs:,} | busy tick: {busy:.0f} ms | per job: {per_job:.2f} ms | "
        "CPU per job: {per_job_cpu:.2f} ms | replay per job: {replay:.2f} ms | per job / replay: "
        "**{per_job_ratio:.2f}x** | statements / job: {per_job_statements:.2f} | executed / job: "
        "{per_job_executed:.2f} | process per run: {process:.2f} ms (CPU {process_cpu:.2f} ms) "
        "| fork: {fork:.2f} ms",
    ),
    (
        "startup",
        "3. Start-up",
        "Fresh processes, the commands taken in turn; the first turn is dropped.",
        "command: `{command}` | wall (median): {wall:.0f} ms | CPU (median): {cpu:.0f} ms",
    ),
    (
        "sharing",
        "4. Work sharing",
        "K processes over J due jobs that each sleep S s: `crontabber` commands started together, "
        "or `crontabber --daemon` for which the jobs fall due 3 s after the start. Makespan: from "
        "the first run's start to the last run's end; efficiency (J*S/K) / makespan. Exit status 2 "
        "is a lost row-lock race, 3 a job found running elsewhere.",
        "store: {store} | processes: {mode}s | K: {K} | J: {J} | S: {S:g} s | ideal J*S/K: "
        "{ideal:.2f} s | makespan: {makespan:.2f} s | efficiency: **{efficiency:.2f}** | runs: "
        "{runs} | duplicates: {duplicates} | missing: {missing} | exit statuses: {statuses}",
    ),
    (
        "lateness",
        "5. Daemon mode",
        "One daemon over jobs of `1m` whose first runs are spread over the minute: how long after "
        "its due instant (the database's time) each run started. Idle CPU and memory: in Targets.",
        "jobs: {jobs:,} | for: {seconds:.0f} s | runs: {runs:,} | p50: {p50:.1f} ms | p99: "
        "**{p99:.1f} ms** | max: {max:.1f} ms | duplicates: {duplicates}",
    ),
    (
        "web",
        "6. Status page",
        "Server time of `/` (the WSGI application called directly, call to last byte); its floor: "
        "the time its statements spent in the driver's `execute`, traced on the page's connection.",
        "store: {store} | jobs: {jobs:,} | rounds: {rounds} | median: **{median:.1f} ms** | p95: "
        "{p95:.1f} ms | statements in the driver: {database:.1f} ms | page: {kib:.0f} KiB",
    ),
]


def render(results: dict, run: dict, analysis: str) -> str:
    out = [
        "# crontabber benchmark results",
        f"Written by `{run['command']}` on {run['date']} ({run['mode']} mode, "
        f"{run['seconds']:.0f} s). How to run it and what each scenario does: [README.md](README.md).",
        "## Machine\n\n" + table(["", ""], [list(item) for item in run["machine"].items()]),
        "## Targets\n\n" + table(["target", "measured", "verdict", "context"], run["verdicts"]),
    ]
    if run["skipped"]:
        out.append("Not measured: " + "; ".join(run["skipped"]) + ".")
    for key, title, text, columns in SECTIONS:
        if results.get(key):
            headers, formats = zip(*(c.split(": ", 1) for c in columns.split(" | ")), strict=True)
            rows = [[f.format(**row) for f in formats] for row in results[key]]
            out.append(f"## {title}\n\n{text}\n\n{table(list(headers), rows)}")
    out.append(
        "## Analysis\n\nHand-written; `run.py` keeps this section when it rewrites the file."
        f"\n\n<!-- analysis -->\n{analysis.strip()}\n<!-- /analysis -->"
    )
    return "\n\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and rounds")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--stores", default=",".join(STORES), help="postgresql, sqlite")
    parser.add_argument("--sizes", help="comma-separated job counts of the idle ticks")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="its user may create databases")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"), help="'-' for nowhere")
    args = parser.parse_args(argv)
    args.scenarios, kinds = args.scenarios.split(","), args.stores.split(",")
    for name in set(args.scenarios) - set(SCENARIOS) | set(kinds) - set(STORES):
        parser.error(f"unknown scenario or store {name!r}")
    plan, started = Plan(args.quick, args.sizes), time.monotonic()
    run = {
        "command": " ".join(["python benchmarks/run.py", *argv]),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": plan.mode,
        "skipped": [],
    }
    dbs = Databases(args.pg_url)
    if "postgresql" in kinds and (why := dbs.postgres_problem()):
        print(f"skipping PostgreSQL: {why}")
        run["skipped"].append(f"PostgreSQL ({why}), and with it daemon mode")
        kinds.remove("postgresql")
    # Children cache their bytecode (as an installed crontabber does) in a scratch
    # directory, even where PYTHONDONTWRITEBYTECODE is set; nothing is written to the tree.
    with tempfile.TemporaryDirectory(prefix="crontabber-bench-pycache-") as pycache:
        os.environ["PYTHONPYCACHEPREFIX"] = pycache
        try:
            run["machine"] = machine(dbs if "postgresql" in kinds else None)
            print("\n".join(f"{key}: {value}" for key, value in run["machine"].items()))
            results = measure(args.scenarios, plan, dbs, kinds)
        finally:
            dbs.close()
    run["machine"]["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    run["seconds"], run["verdicts"] = time.monotonic() - started, verdicts(results)
    output = None if args.output == "-" else Path(args.output)
    found = ANALYSIS.search(output.read_text()) if output and output.exists() else None
    markdown = render(results, run, found.group(1) if found else "(none yet)")
    print("\n" + markdown.split("## 1.")[0].rstrip())
    if output is not None:
        output.write_text(markdown)
        print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
