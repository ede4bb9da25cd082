"""Start-up: how long the command takes before it does anything, and what it imports.

Wall times are medians of fresh processes, the commands taken in turn (one run
of each, then again) so that load from other processes hits them alike. The
floors are among them: ``python -c pass`` and the driver floor (import the
driver, connect, ``SELECT 1``, exit). What each command imports comes from
``python -X importtime``: the self time of every module, summed by top-level
package (so nothing is counted twice).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common import (
    NOOP_MODULE_HEAD,
    Completed,
    Stores,
    check,
    clean_env,
    crontabber_command,
    median,
    run_timed,
    seed_states,
    workspace,
)
from ticks import floor_commands

HEAVY = ("sqlalchemy", "psycopg2", "alembic", "sentry_sdk")


@dataclass
class Imports:
    """What one command imported: milliseconds of import time by top-level package."""

    command: str
    total_ms: float
    by_package: dict[str, float]

    def has(self, package: str) -> bool:
        return package in self.by_package


def import_times(stderr: str) -> tuple[float, dict[str, float]]:
    by_package: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        by_package[name.strip().split(".")[0]] += int(self_us) / 1000
    return sum(by_package.values()), dict(by_package.most_common())


def _audit(label: str, args: list[str], cwd: Path) -> Imports:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "crontabber", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{done.stderr[-3000:]}")
    total, by_package = import_times(done.stderr)
    return Imports(label, total, by_package)


def measure(stores: Stores, kind: str, *, repeats: int, log=print) -> dict:
    python = sys.executable
    driver = "psycopg2" if kind == "postgresql" else "sqlite3"
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import crontabber'": [python, "-c", "import crontabber"],
        "crontabber --version": [*crontabber_command(), "--version"],
        "crontabber --help": [*crontabber_command(), "--help"],
        f"python -c 'import {driver}'": [python, "-c", f"import {driver}"],
    }
    url = stores.new(kind)
    try:
        with workspace("benchjobs", NOOP_MODULE_HEAD, "Noop", 1) as ws:
            seed_states(url, ws.app_names(), due=False)
            config = ws.write_config(url)
            commands[f"driver floor ({driver}: connect, SELECT 1)"] = floor_commands(url)["driver"]
            idle_label = f"crontabber, idle tick, 1 job ({kind})"
            commands[idle_label] = ws.command(config)
            for args in commands.values():
                check(run_timed(args, cwd=ws.dir))  # warm the OS cache and .pyc files
            runs: dict[str, list[Completed]] = {label: [] for label in commands}
            for _ in range(repeats):  # in turn, so that a burst of load hits all alike
                for label, args in commands.items():
                    runs[label].append(check(run_timed(args, cwd=ws.dir)))
            wall = {label: median([run.seconds for run in done]) for label, done in runs.items()}
            cpu = {label: median([run.cpu for run in done]) for label, done in runs.items()}
            for label in commands:
                log(f"  {label:<52} {wall[label] * 1000:7.0f} ms (CPU {cpu[label] * 1000:.0f} ms)")
            audits = [
                _audit("crontabber --version", ["--version"], ws.dir),
                _audit("crontabber --help", ["--help"], ws.dir),
                _audit(idle_label, [f"--admin.conf={config}", "--logging.level=WARNING"], ws.dir),
            ]
    finally:
        stores.drop(url)
    for audit in audits:
        heavy = [package for package in HEAVY if audit.has(package)]
        log(f"  {audit.command:<52} imports {', '.join(heavy) or 'none of ' + '/'.join(HEAVY)}")
    return {"wall": wall, "cpu": cpu, "imports": audits, "idle_label": idle_label}
