"""Many processes at once: work sharing over sleeping jobs, and contention over a few hot jobs.

Work sharing starts K real ``crontabber`` processes together (a start file
releases them once each has imported everything) over J due jobs that each
sleep S seconds, and times the makespan from the release to the last exit.
Contention starts P processes that tick in a loop for some seconds over a few
jobs that are due again a millisecond after each run, through the library
(:class:`crontabber.run.runner.Runner` over job specs with that frequency, which
the ``jobs`` setting cannot express).

Every run is recorded by the job itself; a run twice for the same due instant
or two runs of one job overlapping in time is a duplicate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from common import (
    SLEEPER_MODULE_HEAD,
    WORKER,
    Barrier,
    Stores,
    check,
    clean_env,
    make_all_due,
    run_timed,
    seed_states,
    workspace,
)
from ticks import STORE_LABELS

from crontabber.store import open_store


def _stderr_of(paths: list[Path]) -> str:
    text = "".join(path.read_text() for path in paths if path.exists())
    if "Traceback" in text:
        raise RuntimeError(f"a worker failed:\n{text[-3000:]}")
    return text


@dataclass
class SharingResult:
    store: str
    processes: int
    jobs: int
    sleep: float
    makespan: float
    runs: int
    duplicates: int
    missing: int
    statuses: dict[int, int]
    per_process: tuple[int, int]  # fewest and most jobs one process ran

    @property
    def ideal(self) -> float:
        return self.jobs * self.sleep / self.processes

    @property
    def efficiency(self) -> float:
        return self.ideal / self.makespan

    def to_json(self) -> dict:
        return {**self.__dict__, "ideal": self.ideal, "efficiency": self.efficiency}


def work_sharing(
    stores: Stores, kind: str, *, jobs: int, sleep: float, process_counts: list[int], log=print
) -> list[SharingResult]:
    url = stores.new(kind)
    results = []
    try:
        with workspace("sleepers", SLEEPER_MODULE_HEAD, "Sleeper", jobs) as ws:
            seed_states(url, ws.app_names(), due=False)
            config = ws.write_config(url)
            check(run_timed(ws.command(config), cwd=ws.dir))  # warm-up: nothing is due yet
            for count in process_counts:
                make_all_due(url)
                runs_file = ws.dir / f"runs-{count}.txt"
                barrier = Barrier(ws.dir / f"start-{count}", count, timeout=120)
                env = clean_env(BENCH_SLEEP=str(sleep), BENCH_RUNS_FILE=str(runs_file))
                stderr_paths = [ws.dir / f"stderr-{count}-{i}.txt" for i in range(count)]
                processes = []
                for index in range(count):
                    with stderr_paths[index].open("w") as stderr:
                        processes.append(
                            subprocess.Popen(
                                [
                                    sys.executable,
                                    str(WORKER),
                                    "cli",
                                    str(barrier.start),
                                    str(barrier.ready_file(index)),
                                    "--",
                                    f"--admin.conf={config}",
                                    "--logging.level=WARNING",
                                ],
                                cwd=ws.dir,
                                env=env,
                                stdout=subprocess.DEVNULL,
                                stderr=stderr,
                            )
                        )
                released = barrier.release(processes)
                statuses = Counter(process.wait(timeout=600) for process in processes)
                makespan = time.perf_counter() - released
                _stderr_of(stderr_paths)
                lines = runs_file.read_text().splitlines() if runs_file.exists() else []
                per_job = Counter(line.split()[0] for line in lines)
                per_pid = Counter(line.split()[1] for line in lines)
                done_by = [per_pid.get(str(process.pid), 0) for process in processes]
                result = SharingResult(
                    store=STORE_LABELS[kind],
                    processes=count,
                    jobs=jobs,
                    sleep=sleep,
                    makespan=makespan,
                    runs=len(lines),
                    duplicates=sum(n - 1 for n in per_job.values() if n > 1),
                    missing=jobs - len(per_job),
                    statuses=dict(sorted(statuses.items())),
                    per_process=(min(done_by), max(done_by)),
                )
                results.append(result)
                log(
                    f"  {result.store:<12} K={count}  makespan {makespan:6.2f} s"
                    f"  efficiency {result.efficiency:4.2f}  duplicates {result.duplicates}"
                    f"  missing {result.missing}  exit statuses {result.statuses}"
                )
    finally:
        stores.drop(url)
    return results


@dataclass
class ContentionResult:
    store: str
    processes: int
    jobs: int
    seconds: float
    ticks: int
    runs: int
    lost_races: int  # claims that met the row locked by another process (NOWAIT)
    held_elsewhere: int  # due jobs found running in another process
    duplicates: int  # runs of a job for a due instant that already had a run
    overlaps: int  # runs of a job that started before another run of it ended
    statements: dict[str, int]  # by name, BEGIN/COMMIT/ROLLBACK included, every process

    @property
    def statement_count(self) -> int:
        return sum(self.statements.values())

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.seconds

    @property
    def ticks_per_second(self) -> float:
        return self.ticks / self.seconds

    def to_json(self) -> dict:
        return {
            **self.__dict__,
            "runs_per_second": self.runs_per_second,
            "ticks_per_second": self.ticks_per_second,
        }


def contention(
    stores: Stores, kind: str, *, processes: int, jobs: int, seconds: float, log=print
) -> ContentionResult:
    url = stores.new(kind)
    try:
        store = open_store(url)
        store.ensure_schema()
        store.close()
        with tempfile.TemporaryDirectory(prefix="crontabber-bench-") as root:
            directory = Path(root)
            barrier = Barrier(directory / "start", processes, timeout=120)
            outs = [directory / f"out-{i}.json" for i in range(processes)]
            stderr_paths = [directory / f"stderr-{i}.txt" for i in range(processes)]
            workers = []
            for index in range(processes):
                with stderr_paths[index].open("w") as stderr:
                    workers.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                str(WORKER),
                                "hammer",
                                str(barrier.start),
                                str(barrier.ready_file(index)),
                                str(outs[index]),
                                url,
                                str(seconds),
                                str(jobs),
                            ],
                            cwd=directory,
                            env=clean_env(),
                            stderr=stderr,
                        )
                    )
            barrier.release(workers)
            for worker in workers:
                worker.wait(timeout=seconds + 300)
            _stderr_of(stderr_paths)
            reports = [json.loads(out.read_text()) for out in outs]
    finally:
        stores.drop(url)
    runs = [tuple(run) for report in reports for run in report["runs"]]
    per_due_instant = Counter((name, claimed) for name, claimed, _, _ in runs)
    by_job: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name, _, started, ended in runs:
        by_job[name].append((started, ended))
    overlaps = 0
    for intervals in by_job.values():
        latest_end = float("-inf")
        for started, ended in sorted(intervals):
            overlaps += started < latest_end
            latest_end = max(latest_end, ended)
    results: Counter[str] = Counter()
    for report in reports:
        results.update(report["results"])
    result = ContentionResult(
        store=STORE_LABELS[kind],
        processes=processes,
        jobs=jobs,
        seconds=max(report["elapsed"] for report in reports),
        ticks=sum(report["ticks"] for report in reports),
        runs=len(runs),
        lost_races=results["locked"],
        held_elsewhere=results["ongoing"],
        duplicates=sum(n - 1 for n in per_due_instant.values() if n > 1),
        overlaps=overlaps,
        statements=dict(
            sum((Counter(report["statements"]) for report in reports), Counter()).most_common()
        ),
    )
    log(
        f"  {result.store:<12} P={processes} over {jobs} jobs  {result.runs_per_second:7.1f} runs/s"
        f"  lost races {result.lost_races}  duplicates {result.duplicates}"
        f"  overlaps {result.overlaps}  {result.statement_count / result.seconds:.0f} statements/s"
    )
    return result
