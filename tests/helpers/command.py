"""Run the real ``crontabber`` command in a scratch directory, and write its ini file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

# An ini file's crontabber section: a claim is stale after 3 s without a heartbeat.
HEARTBEAT = "    heartbeat_interval=1\n    heartbeat_stale_intervals=3\n"


def crontabber_command() -> list[str]:
    script = Path(sys.executable).parent / "crontabber"
    return [str(script)] if script.exists() else [sys.executable, "-m", "crontabber"]


@dataclass
class Completed:
    status: int
    stdout: str
    stderr: str


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``env`` over it, without PYTHONPATH: the command
    finds the package installed, as a user's would, not through the tests' path."""
    found = {**os.environ, **(env or {})}
    found.pop("PYTHONPATH", None)
    return found


def run_crontabber(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Completed:
    done = subprocess.run(
        [*crontabber_command(), *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Completed(done.returncode, done.stdout, done.stderr)


def start_crontabber(
    config: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """The command with ``--admin.conf=config`` started in the background, its output piped."""
    return subprocess.Popen(
        [*crontabber_command(), f"--admin.conf={config}", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_daemon(
    config: Path, cwd: Path, host: str, *, stderr: int | None = None
) -> subprocess.Popen:
    """Host ``host``'s daemon, polling every 0.2 s; its output dropped (``stderr``:
    ``subprocess.PIPE`` keeps that, as text)."""
    return subprocess.Popen(
        [
            *crontabber_command(),
            f"--admin.conf={config}",
            "--daemon",
            "--daemon.poll_seconds=0.2",
            f"--crontabber.host_name={host}",
        ],
        cwd=cwd,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if stderr is None else stderr,
        text=True,
    )


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


def resource_postgresql(url: str | sa.URL, **more: object) -> str:
    """An ini file's ``[resource] [[postgresql]]`` section naming the database at ``url``
    by its parts, as the original crontabber's deployments did, with ``more`` keys."""
    url = sa.make_url(url)
    keys = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        **more,
    }
    return "[resource]\n    [[postgresql]]\n" + "".join(
        f"        {key}={value}\n" for key, value in keys.items()
    )


def import_order(*args: str, cwd: Path, whole_names: bool = False) -> list[str]:
    """The top-level packages ``python -m crontabber ARGS`` imports, first import first
    (``whole_names``: every module, by its dotted name)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "crontabber", *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    order: list[str] = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            name = name if whole_names else name.split(".")[0]
            if name not in order:
                order.append(name)
    return order


def imported_packages(*args: str, cwd: Path) -> set[str]:
    """The top-level packages ``python -m crontabber ARGS`` imports."""
    return set(import_order(*args, cwd=cwd))
