"""Operator mistakes in job modules and in the state database's URL: each is one line
and a documented exit status, shows no password, and harms nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers.command import resource_postgresql, run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module

HELLO = Job("Hello", "hello", run="note(self.app_name)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "myjobs", HELLO, notes="ran.txt")
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
    write_job_module(project, "plainjobs", Job("Plain", "plain", base=""))
    config = write_config(project, "plainjobs.Plain|5m\nmyjobs.Hello|5m")
    checked = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=project)
    assert checked.status == 1
    assert checked.stdout == (
        "job 'plainjobs.Plain' cannot be made as Plain(config, job_information): "
        "derive it from crontabber.App\n"
    )


def test_configtest_refuses_a_job_class_without_run(project: Path) -> None:
    write_job_module(project, "lazyjobs", Job("Lazy", "lazy", run=None))
    config = write_config(project, "lazyjobs.Lazy|5m\nmyjobs.Hello|5m")
    checked = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=project)
    assert (checked.status, checked.stdout) == (
        1,
        "job 'lazyjobs.Lazy' does not implement run(): define run(self) in it\n",
    )


SECRET_URLS = [
    ("postgresql://ops@127.0.0.1:9/db?password=S3cretQ", 1, "cannot reach the state database"),
    ("postgresql://ops:S3cret@x@127.0.0.1:9/db", 1, "cannot reach the state database"),
    ("postgresql://ops:S3cret@127.0.0.1:59x9/db", 1, "its port is not a number"),
    # libpq's other secret: the passphrase of the client's key
    ("postgresql://ops@127.0.0.1:9/db?sslpassword=S3cretK", 1, "cannot reach the state database"),
]
COMMANDS = [[], ["-l"], ["-l", "--json"], ["-n"], ["-r", "hello"], ["--migrate"]]
COMMANDS += [["--audit-ghosts"], ["--graph"]]


@pytest.mark.parametrize(("url", "status", "says"), SECRET_URLS)
def test_no_output_shows_a_password_whatever_the_url_form(
    project: Path, url: str, status: int, says: str
) -> None:
    config = write_config(project, "myjobs.Hello|5m", database_url=url)
    for command in COMMANDS:
        result = run_crontabber(f"--admin.conf={config}", *command, cwd=project)
        output = result.stdout + result.stderr
        assert "S3cret" not in output, (command, output)
        migrating = command == ["--migrate"] and "port" not in says
        assert (says if not migrating else "migrating the state database") in output
        assert len(output.strip().splitlines()) == 1, (command, output)
        assert result.status == (3 if command == ["-n"] else status), (command, output)


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
def test_a_state_database_in_memory_is_refused(project: Path, url: str) -> None:
    config = write_config(project, "myjobs.Hello|5m", database_url=url)
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 1
    assert result.stderr == (
        f"crontabber: bad database URL '{url}': the state must outlive a run: "
        "name a file, not memory\n"
    )
    assert not (project / "ran.txt").exists()


def test_a_relative_sqlite_path_is_read_beside_the_config_file(tmp_path: Path) -> None:
    """Like the default file, not against the working directory of the run."""
    project = tmp_path / "project"
    project.mkdir()
    write_job_module(project, "myjobs", HELLO, notes="ran.txt")
    config = write_config(project, "myjobs.Hello|5m", database_url="sqlite:///state/jobs.sqlite")
    (project / "state").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_crontabber(f"--admin.conf={config}", cwd=elsewhere)
    assert result.status == 0, result.stderr
    assert (project / "state" / "jobs.sqlite").exists()
    assert not list(elsewhere.iterdir())


@pytest.mark.postgres
def test_the_state_database_from_resource_postgresql_without_sqlalchemy(
    project: Path, pg_url: str
) -> None:
    """[resource] [[postgresql]] names the state database; the URL is built, and the
    run made, without importing SQLAlchemy."""
    config = write_config(project, "myjobs.Hello|5m", extra=resource_postgresql(pg_url))
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=project).status == 0
    probe = (
        "import sys\n"
        "from crontabber import cli\n"
        f"status = cli.main(['--admin.conf={config}'])\n"
        "assert status == 0, status\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
    assert (project / "ran.txt").read_text() == "hello\n"
    assert not (project / "crontabber.sqlite").exists()


BROKEN = {
    "syntax": "class Broken(:\n",
    "raises": "raise RuntimeError('the module blew up at import')\n",
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_one_broken_module_affects_only_itself(project: Path, how: str) -> None:
    (project / "brokenjobs.py").write_text(BROKEN[how])
    write_job_module(project, "dependentjobs", Job("Dependent", "dependent", depends_on="broken"))
    config = write_config(
        project, "brokenjobs.Broken|5m\nmyjobs.Hello|5m\ndependentjobs.Dependent|5m"
    )
    ran = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert ran.status == 1  # documented: the others ran, the misconfigured were reported
    assert (project / "ran.txt").read_text() == "hello\n"
    assert "ERROR crontabber misconfigured: " in ran.stderr
    assert "module 'brokenjobs' for job 'brokenjobs.Broken'" in ran.stderr
    assert "ERROR crontabber misconfigured: job 'dependent' depends on 'broken'" in ran.stderr
    assert "Traceback" not in ran.stderr

    listed = run_crontabber(f"--admin.conf={config}", "-l", cwd=project)
    assert listed.status == 0, listed.stderr
    assert "hello (myjobs.Hello)" in listed.stdout
    assert "misconfigured: " in listed.stdout and "brokenjobs" in listed.stdout

    nagios = run_crontabber(f"--admin.conf={config}", "-n", cwd=project)
    assert nagios.status == 2
    assert nagios.stdout.startswith("CRITICAL - misconfigured: ")
    assert len(nagios.stdout.splitlines()) == 1

    reset = run_crontabber(f"--admin.conf={config}", "-r", "hello", cwd=project)
    assert reset.status == 0 and reset.stdout.startswith("reset hello")
    graph = run_crontabber(f"--admin.conf={config}", "--graph", cwd=project)
    assert graph.status == 0 and graph.stdout.startswith("digraph")
    refused = run_crontabber(f"--admin.conf={config}", "--audit-ghosts", "--force", cwd=project)
    assert refused.status == 1
    assert refused.stderr.splitlines()[-1].startswith(
        "crontabber: not removing ghosts while jobs are misconfigured"
    )
