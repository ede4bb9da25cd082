"""Start-up budget: commands that need no database import no database library.

Each test runs the real command in a fresh interpreter with ``-X importtime``,
which names every module imported, and looks for the heavy ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .clitools import run_crontabber, write_config

DATABASE_LIBRARIES = ("sqlalchemy", "psycopg2", "alembic")


def imported_packages(*args: str, cwd: Path) -> set[str]:
    """The top-level packages ``python -m crontabber ARGS`` imports."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "crontabber", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize("args", [("--version",), ("-v",), ("--help",)])
def test_version_and_help_import_no_database_library(tmp_path: Path, args: tuple[str]) -> None:
    packages = imported_packages(*args, cwd=tmp_path)
    assert "crontabber" in packages  # the check really saw the command's imports
    assert packages.isdisjoint(DATABASE_LIBRARIES), sorted(packages & set(DATABASE_LIBRARIES))


def test_a_run_on_a_current_schema_does_not_import_alembic(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    assert run_crontabber(f"--admin.conf={config}", cwd=tmp_path).status == 0  # migrates
    packages = imported_packages(f"--admin.conf={config}", cwd=tmp_path)
    assert "sqlalchemy" in packages  # it did open the state database
    assert "alembic" not in packages
