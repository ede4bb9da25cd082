"""Helpers to run the real ``crontabber`` command in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path


def crontabber_command() -> list[str]:
    script = Path(sys.executable).parent / "crontabber"
    return [str(script)] if script.exists() else [sys.executable, "-m", "crontabber"]


@dataclass
class Completed:
    status: int
    stdout: str
    stderr: str


def run_crontabber(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Completed:
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTHONPATH", None)
    done = subprocess.run(
        [*crontabber_command(), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Completed(done.returncode, done.stdout, done.stderr)


def write_config(directory: Path, jobs: str, extra: str = "", database_url: str = "") -> Path:
    """An ini file in ``directory`` with the given jobs lines."""
    jobs_block = "\n".join(f"        {line}" for line in jobs.strip().splitlines())
    text = "[crontabber]\n    jobs='''\n" + jobs_block + "\n    '''\n"
    if database_url:
        text += f"    database_url={database_url}\n"
    text += textwrap.dedent(extra)
    path = directory / "crontabber.ini"
    path.write_text(text)
    return path
