"""A crontab line that is silent while all is well and loud on the first failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module

JOBS = (
    Job("Fine", "fine"),
    Job(
        "Flaky",
        "flaky",
        run='if os.environ.get("FAIL"):\n    raise RuntimeError("the disk is full")',
    ),
    Job("Dependent", "dependent", depends_on="flaky"),
)
QUIET = {"logging.level": ""}  # the default: not the INFO the other tests ask for


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "quietjobs", *JOBS)
    return tmp_path


def test_a_healthy_run_off_a_terminal_prints_nothing(project: Path) -> None:
    config = write_config(project, "quietjobs.Fine|1m\nquietjobs.Flaky|1m\nquietjobs.Dependent|1m")
    for _ in range(3):  # the first run (which migrates), then runs with nothing due
        result = run_crontabber(f"--admin.conf={config}", cwd=project, env=QUIET)
        assert result.status == 0
        assert (result.stdout, result.stderr) == ("", "")


def test_a_failure_is_loud_and_a_held_back_dependent_is_not(project: Path) -> None:
    config = write_config(project, "quietjobs.Flaky|1m\nquietjobs.Dependent|1m")
    failed = run_crontabber(f"--admin.conf={config}", cwd=project, env={**QUIET, "FAIL": "1"})
    assert failed.status == 0
    assert "ERROR crontabber flaky failed after" in failed.stderr
    assert "RuntimeError: the disk is full" in failed.stderr
    assert "dependent" not in failed.stderr  # held back: INFO, not worth a mail


def test_a_log_file_keeps_the_whole_record(project: Path) -> None:
    config = write_config(project, "quietjobs.Fine|1m")
    log = project / "crontabber.log"
    result = run_crontabber(
        f"--admin.conf={config}", f"--logging.file={log}", cwd=project, env=QUIET
    )
    assert (result.status, result.stderr) == (0, "")
    assert "INFO crontabber ran fine in" in log.read_text()


def test_an_unwritable_log_file_is_one_line(project: Path) -> None:
    config = write_config(project, "quietjobs.Fine|1m")
    result = run_crontabber(
        f"--admin.conf={config}", f"--logging.file={project}/no/such/dir.log", cwd=project
    )
    assert result.status == 1
    assert result.stderr == (
        f"crontabber: cannot write logging.file '{project}/no/such/dir.log': "
        "No such file or directory\n"
    )
