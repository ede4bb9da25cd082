"""What an install without an extra says, in one line, when a command needs it: the page
(web), Sentry (sentry), a PostgreSQL state database (postgres)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..helpers.command import crontabber_command, environment, write_config
from ..helpers.jobs import Job, write_job_module


def without(project: Path, *modules: str) -> dict[str, str]:
    """An environment in which ``modules`` cannot be imported, as if not installed."""
    shadow = project / "not-installed"
    for module in modules:
        (shadow / module).mkdir(parents=True, exist_ok=True)
        (shadow / module / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n"
        )
    return {**environment(), "PYTHONPATH": os.pathsep.join([str(shadow), str(project)])}


def run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*crontabber_command(), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "extrajobs", Job("Boom", "boom", run="raise RuntimeError('x')"))
    return tmp_path


def test_the_page_without_the_web_extra(project: Path) -> None:
    config = write_config(project, "extrajobs.Boom|5m")
    done = run(project, without(project, "jinja2"), f"--admin.conf={config}", "--serve")
    assert done.returncode == 1
    assert done.stderr == (
        "crontabber: the status page needs the web extra: pip install 'crontabber-ng[web]' "
        "(missing: jinja2)\n"
    )


def test_sentry_without_its_extra_is_one_line_and_the_run_goes_on(project: Path) -> None:
    config = write_config(
        project, "extrajobs.Boom|5m", extra="[sentry]\n    dsn=http://key@127.0.0.1:9/1\n"
    )
    done = run(project, without(project, "sentry_sdk"), f"--admin.conf={config}")
    assert done.returncode == 0, done.stderr
    assert "Sentry reporting is off: sentry-sdk is not installed" in done.stderr
    assert "Traceback (most recent call last)" not in done.stderr.split("boom failed")[0]
    test = run(project, without(project, "sentry_sdk"), f"--admin.conf={config}", "--sentrytest")
    assert (test.returncode, test.stdout) == (
        1,
        "sentry-sdk is not installed: pip install 'crontabber-ng[sentry]'\n",
    )


def test_postgresql_without_a_driver(project: Path) -> None:
    config = write_config(
        project, "extrajobs.Boom|5m", database_url="postgresql://ops@127.0.0.1:9/db"
    )
    done = run(project, without(project, "psycopg2"), f"--admin.conf={config}", "--list-jobs")
    assert done.returncode == 1
    assert done.stderr == (
        "crontabber: a PostgreSQL state database needs psycopg2: "
        "pip install 'crontabber-ng[postgres]' (or psycopg2, built from source)\n"
    )
