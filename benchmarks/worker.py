"""What runs in the benchmarks' child processes; one sub-command each.

    worker.py cli START READY -- ARGS...        the crontabber command, released by a start file
    worker.py hammer START READY OUT URL SECONDS JOBS
                                                claim a few always-due jobs in a loop (contention)
    worker.py count OUT -- ARGS...              the crontabber command, recording every statement
    worker.py profile OUT -- ARGS...            the crontabber command under pyinstrument

A released worker first imports everything and writes READY, then waits for
START, so that all of them begin at the same instant. Statements are counted
through the store's connection seam (:mod:`dbcount`), as a program would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path


def wait_for_start(start: str, ready: str) -> None:
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while not os.path.exists(start):
        if time.monotonic() > deadline:
            sys.exit("worker: no start file")
        time.sleep(0.001)


def cli(start: str, ready: str, args: list[str]) -> int:
    import crontabber.cli
    import crontabber.config.configman_edge
    import crontabber.run.runner
    import crontabber.store.abc  # imported before the start, not after
    import crontabber.store.postgresql
    import crontabber.store.sqlite

    wait_for_start(start, ready)
    return crontabber.cli.main(args)


# Contention ---------------------------------------------------------------------------

RUNS: list[tuple[str, str | None, float, float]] = []


def _hot_class(index: int) -> type:
    from crontabber import App

    class Hot(App):
        app_name = f"hot-{index}"

        def run(self) -> None:
            started = time.time()
            claimed = self.job_information.next_run
            RUNS.append(
                (self.app_name, claimed.isoformat() if claimed else None, started, time.time())
            )

    return Hot


def hammer(start: str, ready: str, out: str, url: str, *, seconds: float, jobs: int) -> int:
    """Tick again and again over ``jobs`` jobs that are due again a millisecond after each run."""
    from collections import Counter

    import dbcount

    from crontabber.jobs.schedule import FrequencySchedule
    from crontabber.jobs.spec import JobSpec
    from crontabber.run.runner import Runner
    from crontabber.store import open_store

    specs = [
        JobSpec(
            app_name=f"hot-{i}",
            app_class=_hot_class(i),
            class_path=f"worker.Hot{i}",
            schedule=FrequencySchedule(dt.timedelta(milliseconds=1)),
        )
        for i in range(jobs)
    ]
    counter = dbcount.Counter()
    dbcount.install(counter)
    store = open_store(url)
    runner = Runner(specs, store)
    store.load_states()  # a warm connection before the start
    counter.statements.clear()
    wait_for_start(start, ready)
    results: Counter[str] = Counter()
    ticks = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        report = runner.run()
        ticks += 1
        results.update(job.result.value for job in report.jobs)
    elapsed = time.perf_counter() - started
    store.close()
    names = Counter(counter.statements)
    Path(out).write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "elapsed": elapsed,
                "ticks": ticks,
                "results": dict(results),
                "runs": RUNS,
                "statements": dict(names),
                "connections": counter.connections,
            }
        )
    )
    return 0


# Counting statements ------------------------------------------------------------------


def count(out: str, args: list[str]) -> int:
    """The crontabber command, with every statement its store sends written to ``out``."""
    import dbcount

    counter = dbcount.Counter()
    dbcount.install(counter)
    import crontabber.cli

    status = crontabber.cli.main(args)
    Path(out).write_text(json.dumps(counter.to_json()))
    return status


# Profiling ----------------------------------------------------------------------------


def profile(out: str, args: list[str]) -> int:
    """The crontabber command (imports included) under pyinstrument; the session to ``out``."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    import crontabber.cli

    status = crontabber.cli.main(args)
    profiler.stop()
    profiler.last_session.save(out)
    return status


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    if "--" in rest:
        split = rest.index("--")
        rest, args = rest[:split], rest[split + 1 :]
    else:
        args = []
    if command == "cli":
        return cli(rest[0], rest[1], args)
    if command == "hammer":
        start, ready, out, url, seconds, jobs = rest
        return hammer(start, ready, out, url, seconds=float(seconds), jobs=int(jobs))
    if command == "count":
        return count(rest[0], args)
    if command == "profile":
        return profile(rest[0], args)
    sys.exit(f"worker: unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
