"""The issue's targets, and whether a run's results meet them."""

from __future__ import annotations

from dataclasses import dataclass

TARGET_IDLE_RATIO = 1.5
TARGET_PER_JOB_MS = 2.0
TARGET_EFFICIENCY = 0.8


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured in this run
    note: str = ""

    @property
    def status(self) -> str:
        return {True: "met", False: "**not met**", None: "not measured"}[self.met]


def _tick(results: dict, store: str, jobs: int):
    for tick in results.get("ticks", []):
        if tick.store == store and tick.jobs == jobs:
            return tick
    return None


def verdicts(results: dict) -> list[Verdict]:
    found = []
    ticks = results.get("ticks", [])
    stores = [s for s in ("PostgreSQL", "SQLite") if any(t.store == s for t in ticks)]
    for store in stores:
        one, thousand = _tick(results, store, 1), _tick(results, store, 1000)
        if one and thousand:
            ratio = thousand.idle / one.idle
            found.append(
                Verdict(
                    f"idle tick at 1,000 jobs within {TARGET_IDLE_RATIO}x of 1 job ({store})",
                    f"{ms(thousand.idle)} / {ms(one.idle)} = {ratio:.2f}x",
                    ratio <= TARGET_IDLE_RATIO,
                    f"CPU: {ms(thousand.idle_cpu)} / {ms(one.idle_cpu)} = "
                    f"{thousand.idle_cpu / one.idle_cpu:.2f}x",
                )
            )
    floor = results.get("floor") or {}
    for store in stores:
        thousand = _tick(results, store, 1000)
        if not (thousand and thousand.busy_seconds):
            continue
        counted = [t.commits_per_job for t in ticks if t.store == store and t.busy_sent]
        commits = counted[-1] if counted else None
        floor_ms = floor.get("commit_ms" if store == "PostgreSQL" else "sqlite_commit_ms")
        notes = [f"crontabber's own CPU: {thousand.per_job_cpu_ms:.2f} ms per job"]
        if floor_ms and commits:
            notes.append(
                f"{commits:.0f} commits per job x {floor_ms:.2f} ms measured commit latency "
                f"= {commits * floor_ms:.2f} ms floor on this machine"
            )
        if store == "PostgreSQL" and floor.get("job_ms"):
            notes.append(
                f"the same statements replayed by bare psycopg2: {floor['job_ms']:.2f} ms per job"
            )
        unsynced = _tick(results, "PostgreSQL, synchronous_commit=off", 1000)
        if store == "PostgreSQL" and unsynced and unsynced.busy_seconds:
            notes.append(
                f"with synchronous_commit=off: {unsynced.per_job_ms:.2f} ms per job "
                f"(bare psycopg2 replay: {floor.get('job_unsynced_ms', float('nan')):.2f} ms)"
            )
        found.append(
            Verdict(
                f"busy tick per-job overhead under {TARGET_PER_JOB_MS:g} ms at 1,000 jobs ({store})",
                f"{thousand.per_job_ms:.2f} ms",
                thousand.per_job_ms < TARGET_PER_JOB_MS,
                "; ".join(notes),
            )
        )
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
        counts = sorted({tick.idle_sent.statements for tick in idle})
        if len(idle) > 1:
            found.append(
                Verdict(
                    f"idle tick sends a constant number of statements ({store})",
                    f"{' / '.join(str(c) for c in counts)} statements at "
                    f"{', '.join(f'{t.jobs:,}' for t in idle)} jobs",
                    len(counts) == 1,
                )
            )
    return found


def store_order(store: str) -> tuple[int, str]:
    return (0 if store == "PostgreSQL" else 1 if store == "SQLite" else 2, store)
