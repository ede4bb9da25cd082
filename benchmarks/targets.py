"""The issue's targets, and whether a run's results meet them.

Speed targets are ratios to floors measured in the same run, interleaved with
what they are compared with (see ticks.py), so that a loaded machine moves both:

* an idle tick (the whole ``crontabber`` command, spawn to exit) within 2x of the
  driver floor at 1 job and 3x at 1,000 jobs (PostgreSQL; SQLite reported against
  its own floor);
* a due job's own cost, (busy - idle) / jobs, within 1.3x of its statements
  replayed by bare psycopg2 (PostgreSQL, 1,000 jobs; SQLite reported);
* ``crontabber --version`` and ``--help`` under 60 ms;

and the correctness ones: no job runs twice, the idle tick sends as many
statements at any number of jobs, the work is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET_IDLE_RATIO = {1: 2.0, 1000: 3.0}  # jobs: idle tick / driver floor
TARGET_PER_JOB_RATIO = 1.3  # a due job's own cost / its statements replayed by the bare driver
TARGET_PER_JOB_JOBS = 1000
TARGET_CLI_MS = 60.0  # crontabber --version and --help
TARGET_EFFICIENCY = 0.8
TARGET_STORE = "PostgreSQL"  # the targets are set on PostgreSQL; SQLite is reported alongside


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured in this run
    note: str = ""
    informational: bool = False  # reported against the same bound, not a target

    @property
    def status(self) -> str:
        if self.met is None:
            return "not measured"
        if self.informational:
            return "within (no target)" if self.met else "beyond (no target)"
        return "met" if self.met else "**not met**"


def _tick(results: dict, store: str, jobs: int):
    for tick in results.get("ticks", []):
        if tick.store == store and tick.jobs == jobs:
            return tick
    return None


def _idle_verdicts(results: dict, stores: list[str]) -> list[Verdict]:
    found = []
    for store in stores:
        for jobs, bound in TARGET_IDLE_RATIO.items():
            tick = _tick(results, store, jobs)
            if tick is None:
                continue
            floor = "psycopg2" if store.startswith("PostgreSQL") else "sqlite3"
            found.append(
                Verdict(
                    f"idle tick at {jobs:,} job{'s' if jobs > 1 else ''} within {bound:g}x "
                    f"of the driver floor ({store})",
                    f"{ms(tick.idle)} / {ms(tick.driver_floor)} = {tick.idle_ratio:.2f}x",
                    tick.idle_ratio <= bound,
                    f"driver floor: a fresh `python` that imports {floor}, connects, runs "
                    f"`SELECT 1` and exits; interpreter start (`python -c pass`) "
                    f"{ms(tick.interpreter)}; tick CPU {ms(tick.idle_cpu)}",
                    informational=store != TARGET_STORE,
                )
            )
    return found


def _per_job_verdicts(results: dict, stores: list[str]) -> list[Verdict]:
    found = []
    for store in stores:
        tick = _tick(results, store, TARGET_PER_JOB_JOBS)
        if not (tick and tick.busy_seconds and tick.replay):
            continue
        driver = "psycopg2 on one autocommit connection" if store == "PostgreSQL" else "sqlite3"
        notes = [
            f"replay: the same statements by bare {driver}, after each busy tick",
            f"CPU per job {tick.per_job_cpu_ms:.2f} ms",
        ]
        if tick.statements_per_job is not None:
            notes.append(f"{tick.statements_per_job:.2f} statements per job")
        unsynced = _tick(results, "PostgreSQL, synchronous_commit=off", TARGET_PER_JOB_JOBS)
        if store == "PostgreSQL" and unsynced and unsynced.replay:
            notes.append(
                f"with synchronous_commit=off: {unsynced.per_job_ms:.2f} ms / "
                f"{unsynced.replay:.2f} ms = {unsynced.per_job_ratio:.2f}x"
            )
        found.append(
            Verdict(
                f"a due job's own cost within {TARGET_PER_JOB_RATIO:g}x of its statements "
                f"replayed by the bare driver, {TARGET_PER_JOB_JOBS:,} jobs ({store})",
                f"{tick.per_job_ms:.2f} ms / {tick.replay:.2f} ms = {tick.per_job_ratio:.2f}x",
                tick.per_job_ratio <= TARGET_PER_JOB_RATIO,
                "; ".join(notes),
                informational=store != TARGET_STORE,
            )
        )
    return found


def _cli_verdicts(results: dict) -> list[Verdict]:
    startup = results.get("startup")
    if not startup:
        return []
    found = []
    interpreter = startup["wall"].get("python -c pass")
    for label in ("crontabber --version", "crontabber --help"):
        if label not in startup["wall"]:
            continue
        wall = startup["wall"][label]
        found.append(
            Verdict(
                f"`{label}` under {TARGET_CLI_MS:g} ms",
                ms(wall),
                wall * 1000 < TARGET_CLI_MS,
                f"interpreter start {ms(interpreter)}; CPU {ms(startup['cpu'][label])}"
                if interpreter
                else "",
            )
        )
    return found


def verdicts(results: dict) -> list[Verdict]:
    ticks = results.get("ticks", [])
    stores = [s for s in ("PostgreSQL", "SQLite") if any(t.store == s for t in ticks)]
    found = _idle_verdicts(results, stores)
    found += _per_job_verdicts(results, stores)
    found += _cli_verdicts(results)
    for sharing in results.get("sharing", []):
        if sharing.processes == 4:
            found.append(
                Verdict(
                    f"work-sharing efficiency at least {TARGET_EFFICIENCY} with K = 4 ({sharing.store})",
                    f"{sharing.efficiency:.2f}",
                    sharing.efficiency >= TARGET_EFFICIENCY,
                    f"J = {sharing.jobs}, S = {sharing.sleep:g} s: ideal {sharing.ideal:.2f} s, "
                    f"makespan {sharing.makespan:.2f} s",
                )
            )
    sharing_bad = sum(s.duplicates + s.missing for s in results.get("sharing", []))
    contention_bad = sum(c.duplicates + c.overlaps for c in results.get("contention", []))
    if results.get("sharing") or results.get("contention"):
        runs = sum(s.runs for s in results.get("sharing", [])) + sum(
            c.runs for c in results.get("contention", [])
        )
        found.append(
            Verdict(
                "zero duplicate runs in every scenario",
                f"{sharing_bad + contention_bad} duplicate, overlapping or missing runs "
                f"in {runs} runs",
                sharing_bad + contention_bad == 0,
            )
        )
    for store in stores:
        idle = [tick for tick in ticks if tick.store == store]
        counts = sorted({tick.idle_sent.executed for tick in idle})
        if len(idle) > 1:
            found.append(
                Verdict(
                    f"idle tick sends a constant number of statements ({store})",
                    f"{' / '.join(str(c) for c in counts)} statements at "
                    f"{', '.join(f'{t.jobs:,}' for t in idle)} jobs",
                    len(counts) == 1,
                    "; ".join(sorted({_sequence(tick) for tick in idle})),
                )
            )
    return found


def _sequence(tick) -> str:
    sent = tick.idle_sent
    names = ", ".join(sent.sequence) if sent.sequence else f"{sent.executed} statements"
    return f"{names} on {sent.connections} connection{'s' if sent.connections != 1 else ''}"


def store_order(store: str) -> tuple[int, str]:
    return (0 if store == "PostgreSQL" else 1 if store == "SQLite" else 2, store)
