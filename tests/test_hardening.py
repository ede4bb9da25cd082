"""Operator hardening: bad values and bad modules give one line and a documented status."""

from __future__ import annotations

from pathlib import Path

import pytest

from .clitools import run_crontabber, write_config

JOBS = """
import os

from crontabber import App

HERE = os.path.dirname(__file__)


class Hello(App):
    app_name = "hello"

    def run(self):
        with open(os.path.join(HERE, "ran.txt"), "a") as f:
            f.write(self.app_name + "\\n")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "myjobs.py").write_text(JOBS)
    return tmp_path


def test_a_frequency_too_long_to_compute_is_a_configuration_error(project: Path) -> None:
    """It used to pass --configtest, then crash every run and leave the job claimed."""
    for frequency in ("3000000d", "99999999999d"):
        config = write_config(project, f"myjobs.Hello|{frequency}")
        checked = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=project)
        assert checked.status == 1, checked.stderr
        assert checked.stdout == (
            f"jobs entry 'myjobs.Hello|{frequency}': bad frequency '{frequency}': at most "
            "36500d (a next run further away than that cannot be computed)\n"
        )
        run = run_crontabber(f"--admin.conf={config}", cwd=project)
        assert run.status == 1 and "Traceback" not in run.stderr


def test_a_class_that_is_not_an_app_is_a_configuration_error(project: Path) -> None:
    """It used to pass --configtest, then fail every run with "Plain() takes no arguments"."""
    (project / "plainjobs.py").write_text(
        "class Plain:\n    app_name = 'plain'\n\n    def run(self):\n        pass\n"
    )
    config = write_config(project, "plainjobs.Plain|5m\nmyjobs.Hello|5m")
    checked = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=project)
    assert checked.status == 1
    assert checked.stdout == (
        "job 'plainjobs.Plain' cannot be made as Plain(config, job_information): "
        "derive it from crontabber.App\n"
    )
