"""The results as Markdown tables, for the terminal and RESULTS.md.

RESULTS.md is rewritten on every run, except the hand-written analysis between
``<!-- analysis -->`` and ``<!-- /analysis -->``, which is kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from targets import Verdict, ms, store_order

ANALYSIS_START = "<!-- analysis -->"
ANALYSIS_END = "<!-- /analysis -->"


def table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: float | None, digits: int = 1) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


# Sections ----------------------------------------------------------------------------


def machine_section(machine: dict) -> str:
    return table(["", ""], [[key, value] for key, value in machine.items()])


def verdict_section(found: list[Verdict]) -> str:
    return table(
        ["target", "measured", "verdict", "context"],
        [[v.target, v.measured, v.status, v.note] for v in found],
    )


def idle_section(results: dict) -> str:
    rows = []
    for tick in sorted(results["ticks"], key=lambda t: (store_order(t.store), t.jobs)):
        sent = tick.idle_sent
        rows.append(
            [
                tick.store,
                f"{tick.jobs:,}",
                ms(tick.idle),
                f"{min(tick.idle_seconds) * 1000:.0f}-{max(tick.idle_seconds) * 1000:.0f}",
                ms(tick.idle_cpu),
                ms(tick.driver_floor),
                f"**{tick.idle_ratio:.2f}x**",
                ms(tick.interpreter),
                f"{tick.idle / tick.interpreter:.2f}x",
                sent.statements,
                sent.executed,
                sent.connections,
            ]
        )
    return table(
        [
            "store",
            "jobs",
            "tick wall (median)",
            "range (ms)",
            "tick CPU",
            "driver floor (median)",
            "tick / driver floor",
            "interpreter start",
            "tick / interpreter",
            "statements",
            "executed (incl. BEGIN/COMMIT)",
            "connections",
        ],
        rows,
    )


def busy_section(results: dict) -> str:
    rows = []
    for tick in sorted(results["ticks"], key=lambda t: (store_order(t.store), t.jobs)):
        if not tick.busy_seconds:
            continue
        rows.append(
            [
                tick.store,
                f"{tick.jobs:,}",
                f"{tick.busy:.2f} s",
                len(tick.busy_seconds),
                ms(tick.driver_floor),
                f"{tick.busy_ratio:.1f}x",
                f"{tick.per_job_ms:.2f} ms",
                f"{tick.per_job_cpu_ms:.2f} ms",
                f"{tick.replay:.2f} ms" if tick.replay else None,
                f"**{tick.per_job_ratio:.2f}x**" if tick.per_job_ratio else None,
                num(tick.statements_per_job, 2),
                num(tick.executed_per_job, 2),
                num(tick.commits_per_job, 2),
            ]
        )
    return table(
        [
            "store",
            "jobs",
            "busy wall (median)",
            "runs",
            "driver floor",
            "busy / driver floor",
            "per job (busy - idle) / jobs",
            "CPU per job",
            "replay per job (bare driver)",
            "per job / replay",
            "statements / job",
            "executed / job",
            "commits / job",
        ],
        rows,
    )


def idle_statements_section(results: dict) -> str:
    """What the smallest idle and busy tick of each store sent, statement by statement."""
    parts = []
    seen = set()
    for tick in sorted(results["ticks"], key=lambda t: (store_order(t.store), t.jobs)):
        if tick.store in seen or tick.store not in ("PostgreSQL", "SQLite"):
            continue
        seen.add(tick.store)
        for what, sent in (("idle", tick.idle_sent), ("busy", tick.busy_sent)):
            if sent is None or not sent.sequence:
                continue
            lines = [f"statements by name: {', '.join(sent.sequence)}"]
            lines.append(f"connections opened: {sent.connections}")
            if sent.wire:
                lines.append(f"on the wire (client messages): {sent.wire}")
                lines += [f"  Query: {' '.join(query.split())[:100]}" for query in sent.queries]
            parts.append(
                f"{tick.store}, {what} tick of {tick.jobs} job(s):\n\n```\n"
                + "\n".join(lines)
                + "\n```"
            )
    return "\n\n".join(parts)


def sharing_section(results: dict) -> str:
    rows = [
        [
            s.store,
            s.processes,
            s.jobs,
            f"{s.sleep:g} s",
            f"{s.ideal:.2f} s",
            f"{s.makespan:.2f} s",
            f"{s.efficiency:.2f}",
            s.runs,
            s.duplicates,
            s.missing,
            f"{s.per_process[0]}-{s.per_process[1]}",
            ", ".join(f"{status}: {n}" for status, n in s.statuses.items()),
        ]
        for s in results["sharing"]
    ]
    return table(
        [
            "store",
            "K",
            "J",
            "S",
            "ideal J*S/K",
            "makespan",
            "efficiency",
            "runs",
            "duplicates",
            "missing",
            "jobs per process",
            "exit statuses",
        ],
        rows,
    )


def contention_section(results: dict) -> str:
    rows = [
        [
            c.store,
            c.processes,
            c.jobs,
            f"{c.seconds:.1f} s",
            f"{c.runs_per_second:.0f}",
            f"{c.ticks_per_second:.0f}",
            c.lost_races,
            c.held_elsewhere,
            c.duplicates,
            c.overlaps,
            f"{c.statement_count / c.seconds:.0f}",
            f"{c.statement_count / max(c.runs, 1):.2f}",
            ", ".join(f"{name} {n}" for name, n in c.statements.items()),
        ]
        for c in results["contention"]
    ]
    return table(
        [
            "store",
            "processes",
            "jobs",
            "for",
            "claims won / s",
            "ticks / s",
            "lost races",
            "held elsewhere",
            "duplicates",
            "overlaps",
            "statements / s",
            "statements / run",
            "statements by name",
        ],
        rows,
    )


def startup_section(startup: dict) -> str:
    wall = table(
        ["command", "wall (median)", "CPU (median)"],
        [
            [f"`{label}`", ms(seconds), ms(startup["cpu"][label])]
            for label, seconds in startup["wall"].items()
        ],
    )
    packages = sorted(
        {p for audit in startup["imports"] for p in list(audit.by_package)[:12]},
        key=lambda p: -max(a.by_package.get(p, 0) for a in startup["imports"]),
    )
    imports = table(
        ["package", *[f"`{audit.command}`" for audit in startup["imports"]]],
        [
            [p, *[num(audit.by_package.get(p), 1) or "-" for audit in startup["imports"]]]
            for p in packages
        ]
        + [["**total**", *[f"{audit.total_ms:.1f}" for audit in startup["imports"]]]],
    )
    return (
        wall + "\n\nImport time by package (ms of self time, `python -X importtime`):\n\n" + imports
    )


def profile_section(profiles: list) -> str:
    parts = []
    for profile in profiles:
        kinds = table(
            ["where the time goes (self time)", "seconds", "share"],
            [
                [kind, f"{seconds:.3f}", f"{seconds / profile.seconds:.0%}"]
                for kind, seconds in profile.by_kind[:8]
            ],
        )
        own = table(
            [
                "innermost crontabber function on the stack (its own time and the libraries "
                "and imports it calls)",
                "seconds",
                "share",
            ],
            [
                [f"`{name}`", f"{seconds:.3f}", f"{seconds / profile.seconds:.0%}"]
                for name, seconds in profile.crontabber[:12]
            ],
        )
        leaves = table(
            ["hottest functions (self time)", "seconds"],
            [[f"`{name}`", f"{seconds:.3f}"] for name, seconds in profile.leaves[:10]],
        )
        parts.append(
            f"### {profile.name}: {profile.seconds:.2f} s under the profiler "
            f"([call tree]({profile.tree_file}))\n\n{kinds}\n\n{own}\n\n{leaves}"
        )
    return "\n\n".join(parts)


def render_markdown(results: dict, found: list[Verdict], analysis: str) -> str:
    sections = [
        "# crontabber benchmark results",
        f"Written by `{results['command']}` on {results['date']} ({results['mode']} mode, "
        f"{results['duration']:.0f} s). How to run and what each scenario does: "
        "[benchmarks/README.md](README.md).",
        "## Machine\n\n" + machine_section(results["machine"]),
        "## Targets\n\n" + verdict_section(found),
    ]
    if results.get("skipped"):
        sections.append("Not measured: " + "; ".join(results["skipped"]) + ".")
    if results.get("ticks"):
        repeats = results["repeats"]
        sections.append(
            "## 1. Idle tick (nothing due)\n\n"
            f"Wall time of the real `crontabber` command, spawn to exit, median of "
            f"{repeats['idle']} runs after a warm-up run, beside its floors measured in turn "
            "with it (a floor, the tick, again): the *driver floor* is a fresh `python` that "
            "imports the driver, connects to the same database, runs `SELECT 1` and exits "
            "(psycopg2 in autocommit, as crontabber connects; sqlite3 on the same file, where "
            "`SELECT 1` does not read it); the *interpreter start* is `python -c pass`. "
            "Statements are those of one more run, counted by name through the store's "
            "connection seam (`StateStore.connection_factory`) inside the command; on "
            "PostgreSQL every message is also counted on the wire by a proxy, and the two "
            "counts must agree. *statements* leaves out BEGIN/COMMIT/ROLLBACK; on SQLite it "
            "includes the `PRAGMA journal_mode=WAL` run on connecting.\n\n" + idle_section(results)
        )
        sections.append(
            "## 2. Busy tick (every job due, each a no-op)\n\n"
            "Same command after setting every job's `next_run` a minute back. *Per job* is "
            "what a due job adds to a tick: (busy wall - idle wall) / jobs; the per-job counts "
            "are (busy - idle) / jobs; below 100 jobs the per-job time is within the noise of "
            "process start-up. *Replay*: right after each busy tick, the statements a due job "
            "sends replayed over the same rows (up to 1,000) by the bare driver, with the same "
            "parameters (PostgreSQL: `claim` and `finish` from `crontabber.store.queries` on one "
            "autocommit psycopg2 connection; SQLite: `lock`, `mark_ongoing`, `finish` and "
            "`insert_log` in two `BEGIN IMMEDIATE` transactions); the median of the replays is "
            "the floor of a due job. *Commits*: on PostgreSQL each writing statement is its own "
            "transaction (autocommit); on SQLite, the COMMITs. Counted busy ticks are skipped "
            "where the table leaves the counts empty (they are the same per job at every "
            "size).\n\n" + busy_section(results) + "\n\n" + floor_text(results)
        )
        statements = idle_statements_section(results)
        if statements:
            sections.append("### What a tick sends\n\n" + statements)
    if results.get("sharing"):
        params = results["sharing"][0]
        sections.append(
            "## 3. Work sharing\n\n"
            f"K real `crontabber` processes (each imports everything, then waits for a start "
            f"file) over J = {params.jobs} due jobs that each sleep S = {params.sleep:g} s. "
            "Makespan: from the release to the last exit. Efficiency: (J*S/K) / makespan. "
            "Duplicates: runs beyond the first of a job; missing: due jobs that did not run. "
            "Exit status 2 is a lost row-lock race, 3 a job found running elsewhere.\n\n"
            + sharing_section(results)
        )
    if results.get("contention"):
        sections.append(
            "## 4. Contention\n\n"
            "P processes tick in a loop through the library (`Runner.run()` over `JobSpec`s "
            "with a 1 ms frequency, so each job is due again as soon as its run is recorded) "
            "over a few no-op jobs. *Claims won*: runs; *lost races*: claims that met the row "
            "locked by another process (`FOR UPDATE NOWAIT`); *held elsewhere*: due jobs "
            "found running in another process; *duplicates*: a second run for the same due "
            "instant (`next_run` as claimed); *overlaps*: a run of a job starting before "
            "another run of it ended.\n\n" + contention_section(results)
        )
    if results.get("startup"):
        sections.append("## Start-up\n\n" + startup_section(results["startup"]))
    if results.get("profiles"):
        sections.append(
            "## Profiles\n\n"
            "pyinstrument, one run of the command each (imports included). Kinds of work: "
            "*imports* is everything under the import system; *database driver calls* is time "
            "inside psycopg2's C `execute`/`commit`/`connect` (the round trip and the server's "
            "work, fsync included); *Python in X* is self time in package X outside imports.\n\n"
            + profile_section(results["profiles"])
        )
    sections.append(
        "## Analysis\n\n"
        "Hand-written; `run.py` keeps this section when it rewrites the file.\n\n"
        f"{ANALYSIS_START}\n{analysis.strip()}\n{ANALYSIS_END}"
    )
    return "\n\n".join(sections) + "\n"


def floor_text(results: dict) -> str:
    floor = results.get("floor") or {}
    parts = []
    if "commit_ms" in floor:
        parts.append(
            f"PostgreSQL server floor, measured alongside with psycopg2 on one autocommit "
            f"connection: a `SELECT 1` round trip {floor['round_trip_ms']:.3f} ms median "
            f"({floor['round_trip_mean_ms']:.3f} ms mean); a one-row `UPDATE` with its commit "
            f"{floor['commit_ms']:.2f} ms median ({floor['commit_mean_ms']:.2f} ms mean; "
            f"synchronous_commit={floor.get('synchronous_commit', '?')}, the commit waits for "
            "the WAL flush)."
        )
    if "sqlite_commit_ms" in floor:
        parts.append(
            f"SQLite floor: `BEGIN IMMEDIATE` + one-row `UPDATE` + `COMMIT` in WAL mode, "
            f"{floor['sqlite_commit_ms']:.2f} ms median."
        )
    return " ".join(parts)


def existing_analysis(path: Path) -> str:
    if not path.exists():
        return "(none yet)"
    match = re.search(
        re.escape(ANALYSIS_START) + r"\n(.*?)\n?" + re.escape(ANALYSIS_END),
        path.read_text(),
        re.S,
    )
    return match.group(1) if match else "(none yet)"
