"""The ``crontabber`` command as a user runs it: exit statuses and bad input."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers.command import crontabber_command, resource_postgresql, run_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module

JOBS = (
    Job("Hello", "hello", run='note("hello")'),
    Job(
        "Configured",
        "configured",
        base="BaseCronApp",
        depends_on="hello",
        attributes="""
            required_config = Namespace()
            required_config.add_option("word", default="default-word")
        """,
        run='note("configured", self.config.word)',
    ),
    Job("Failing", "failing", run='raise RuntimeError("it broke")'),
    Job("Slow", "slow", run="time.sleep(30)"),
    Job("CycleA", "cycle-a", depends_on="cycle-b"),
    Job("CycleB", "cycle-b", depends_on="cycle-a"),
    Job("NeedsMissing", "needs-missing", depends_on="nowhere"),
)
IMPORTS = "from configman import Namespace\nfrom crontabber import BaseCronApp"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory like a user's: a jobs module beside the config file."""
    write_job_module(tmp_path, "myjobs", *JOBS, imports=IMPORTS, notes="ran.txt")
    return tmp_path


def ran(project: Path) -> list[str]:
    return noted(project, "ran.txt")


def test_runs_jobs_beside_the_config_and_keeps_state_in_sqlite(project: Path) -> None:
    config = write_config(project, "myjobs.Configured|1h\nmyjobs.Hello|5m")
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    result = run_crontabber(f"--admin.conf={config}", cwd=elsewhere)
    assert result.status == 0, result.stderr
    assert ran(project) == ["hello", "configured default-word"]
    assert (project / "crontabber.sqlite").exists()
    again = run_crontabber(f"--admin.conf={config}", cwd=elsewhere)
    assert again.status == 0
    assert ran(project) == ["hello", "configured default-word"]


def test_app_options_from_the_ini_file_and_the_command_line(project: Path) -> None:
    extra = """
        [[class-Configured]]
            word=from-ini
    """
    config = write_config(
        project,
        "myjobs.Hello|5m\nmyjobs.Configured|1h",
        extra=textwrap.indent(textwrap.dedent(extra), "    "),
    )
    assert run_crontabber(f"--admin.conf={config}", cwd=project).status == 0
    assert ran(project)[-1] == "configured from-ini"
    (project / "crontabber.sqlite").unlink()
    result = run_crontabber(
        f"--admin.conf={config}", "--crontabber.class-Configured.word=from-argv", cwd=project
    )
    assert result.status == 0, result.stderr
    assert ran(project)[-1] == "configured from-argv"


def test_failing_job_exits_zero_and_is_recorded(project: Path) -> None:
    config = write_config(project, "myjobs.Failing|5m\nmyjobs.Hello|5m")
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 0
    assert "RuntimeError: it broke" in result.stderr
    assert ran(project) == ["hello"]
    with contextlib.closing(sqlite3.connect(project / "crontabber.sqlite")) as db:
        (count,) = db.execute(
            "select error_count from crontabber where app_name='failing'"
        ).fetchone()
    assert count == 1


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ("nosuchmodule.Job|5m", "cannot import module 'nosuchmodule' for job 'nosuchmodule.Job'"),
        ("myjobs.NoSuchClass|5m", "module 'myjobs' has no class 'NoSuchClass'"),
        ("myjobs.Hello|5 minutes", "jobs entry 'myjobs.Hello|5 minutes': bad frequency"),
        ("myjobs.Hello|1d|24:61", "jobs entry 'myjobs.Hello|1d|24:61': bad time '24:61'"),
        ("myjobs.Hello|6h|03:00", "a time (03:00) needs a frequency of at least a day"),
        ("myjobs.CycleA|5m\nmyjobs.CycleB|5m", "dependency cycle: cycle-"),
        (
            "myjobs.NeedsMissing|5m",
            "'needs-missing' depends on 'nowhere', which is not in the jobs list",
        ),
    ],
)
def test_configuration_mistakes_are_one_line_and_exit_1(
    project: Path, jobs: str, message: str
) -> None:
    """A misconfigured job is one ERROR line (at the default level, off a terminal);
    the run exits 1 (the other jobs, here none, would run)."""
    config = write_config(project, jobs)
    result = run_crontabber(f"--admin.conf={config}", cwd=project, env={"logging.level": ""})
    assert result.status == 1
    assert " ERROR crontabber misconfigured: " in result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_job_does_not_stop_the_good_ones(project: Path) -> None:
    config = write_config(project, "myjobs.Hello|5m\nmyjobs.Hello2|5m")
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 1  # documented: a misconfigured job was reported
    assert "misconfigured: module 'myjobs' has no class 'Hello2'" in result.stderr
    assert ran(project) == ["hello"]


def test_unreadable_config_file(project: Path) -> None:
    result = run_crontabber("--admin.conf=/nonexistent/crontabber.ini", cwd=project)
    assert result.status == 1
    assert result.stderr == "crontabber: cannot read config file '/nonexistent/crontabber.ini'\n"


def test_unparseable_config_file(project: Path) -> None:
    config = project / "broken.ini"
    config.write_text("[crontabber\njobs=x\n")
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 1
    assert result.stderr.startswith("crontabber: cannot parse config file")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            "[web]\n    [[port]]\n        number = 8080\n",
            "[[port]] is a section, but web.port is an option: write port = VALUE under [web]",
        ),
        (
            "    [[class-Configured]]\n        [[[word]]]\n            x = 1\n",
            "a section stands where an option is expected (a job's option written [[name]] "
            "where name = VALUE belongs?)",
        ),
    ],
    ids=["crontabbers-option", "a-jobs-option"],
)
@pytest.mark.parametrize("mode", [(), ("--configtest",), ("--daemon",)])
def test_an_option_written_as_a_section_is_one_line(
    project: Path, extra: str, line: str, mode: tuple[str, ...]
) -> None:
    """configman itself fails on it with a KeyError: crontabber says what is wrong."""
    config = write_config(project, "myjobs.Configured|1h", extra=extra)
    result = run_crontabber(f"--admin.conf={config}", *mode, cwd=project)
    assert result.status == 1
    assert result.stderr == f"crontabber: config file {str(config)!r}: {line}\n"
    assert ran(project) == []


def test_unknown_option_in_the_config_file(project: Path) -> None:
    # As in the original: a warning naming it, and the run goes on.
    config = write_config(project, "myjobs.Hello|5m", extra="    databse_url=x\n")
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 0, result.stderr
    assert "unknown option 'crontabber.databse_url'" in result.stderr
    assert (project / "ran.txt").read_text() == "hello\n"


def test_unknown_option_with_admin_strict(project: Path) -> None:
    config = write_config(project, "myjobs.Hello|5m", extra="    databse_url=x\n")
    result = run_crontabber(f"--admin.conf={config}", "--admin.strict", cwd=project)
    assert result.status == 1
    assert "unknown option 'crontabber.databse_url'" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (project / "ran.txt").exists()


def test_unknown_command_line_switch(project: Path) -> None:
    config = write_config(project, "myjobs.Hello|5m")
    result = run_crontabber(f"--admin.conf={config}", "--frobnicate", cwd=project)
    assert result.status == 1
    assert result.stderr == "crontabber: option --frobnicate not recognized\n"


def test_bad_option_value(project: Path) -> None:
    config = write_config(project, "myjobs.Hello|5m")
    result = run_crontabber(
        f"--admin.conf={config}", "--crontabber.error_retry_time=soon", cwd=project
    )
    assert result.status == 1
    assert "error_retry_time" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.postgres
def test_unreachable_database_hides_the_password(project: Path) -> None:
    url = "postgresql://crontabber:hunter2@127.0.0.1:9/crontabber"
    config = write_config(project, "myjobs.Hello|5m", database_url=url)
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 1
    assert result.stderr.startswith("crontabber: cannot reach the state database postgresql")
    assert "hunter2" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert ran(project) == []


@pytest.mark.postgres
def test_resource_postgresql_keys_select_postgresql(project: Path, pg_url: str) -> None:
    config = write_config(project, "myjobs.Hello|5m", extra=resource_postgresql(pg_url))
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 0, result.stderr
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        names = conn.exec_driver_sql("select app_name from crontabber").scalars().all()
    engine.dispose()
    assert names == ["hello"]
    assert not (project / "crontabber.sqlite").exists()


@pytest.mark.postgres
def test_exit_3_when_a_due_job_runs_elsewhere(project: Path, pg_url: str) -> None:
    config = write_config(project, "myjobs.Slow|5m\nmyjobs.Hello|5m", database_url=pg_url)
    first = subprocess.Popen(
        [*crontabber_command(), f"--admin.conf={config}"], cwd=project, stderr=subprocess.DEVNULL
    )
    try:
        engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    if conn.exec_driver_sql(
                        "select 1 from crontabber where app_name='slow' and ongoing is not null"
                    ).first():
                        break
            except sa.exc.ProgrammingError:
                pass
            time.sleep(0.1)
        engine.dispose()
        second = run_crontabber(f"--admin.conf={config}", cwd=project)
    finally:
        first.kill()
        first.wait()
    assert second.status == 3, second.stderr
    assert "skipped slow: running on" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.postgres
def test_exit_2_when_a_due_job_is_lost_to_a_simultaneous_claim(project: Path, pg_url: str) -> None:
    config = write_config(project, "myjobs.Hello|5m\nmyjobs.Configured|1h", database_url=pg_url)
    assert run_crontabber(f"--admin.conf={config}", cwd=project).status == 0
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE crontabber SET next_run = now() - interval '1 minute'")
    with engine.connect() as other, other.begin():
        # another process is in the middle of claiming 'hello': its row is locked
        other.exec_driver_sql("SELECT * FROM crontabber WHERE app_name = 'hello' FOR UPDATE")
        result = run_crontabber(f"--admin.conf={config}", cwd=project)
    engine.dispose()
    assert result.status == 2, result.stderr
    assert "skipped hello: another process is claiming it right now" in result.stderr
    assert "skipped configured: dependency 'hello' has not run recently" in result.stderr
    assert "Traceback" not in result.stderr
