"""The configuration and the command line as an operator gives them: each mistake is
one line and a documented exit status, and what configman wrote reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module

JOBS = (
    Job("Hello", "hello", run="note(self.app_name)"),
    Job(
        "Sum",
        "sum",
        attributes="""
            required_config = Namespace()
            required_config.add_option("count", default=3, from_string_converter=int)
            required_config.add_option("ratio", default=1.5)
            required_config.add_option("loud", default=False)
        """,
        run='note("sum", self.config.count, self.config.ratio, self.config.loud)',
    ),
)

NO_CONFIGURATION = (
    "no configuration found: give one with --admin.conf=FILE, "
    "or run in a directory that has a crontabber.ini"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(
        tmp_path, "myjobs", *JOBS, imports="from configman import Namespace", notes="ran.txt"
    )
    return tmp_path


def ran(project: Path) -> list[str]:
    return noted(project, "ran.txt")


# 8. No configuration at all


@pytest.mark.parametrize(
    ("args", "status", "stdout", "stderr"),
    [
        ((), 1, "", f"crontabber: {NO_CONFIGURATION}\n"),
        (("--configtest",), 1, "", f"crontabber: {NO_CONFIGURATION}\n"),
        (("--list-jobs",), 1, "", f"crontabber: {NO_CONFIGURATION}\n"),
        (("--nagios",), 3, f"UNKNOWN - {NO_CONFIGURATION}\n", ""),
    ],
)
def test_no_configuration_is_an_error(
    tmp_path: Path, args: tuple[str, ...], status: int, stdout: str, stderr: str
) -> None:
    """It used to create ./crontabber.sqlite and report OK."""
    result = run_crontabber(*args, cwd=tmp_path)
    assert (result.status, result.stdout, result.stderr) == (status, stdout, stderr)
    assert not list(tmp_path.iterdir())


def test_version_and_help_need_no_configuration(tmp_path: Path) -> None:
    version = run_crontabber("--version", cwd=tmp_path)
    assert version.status == 0 and version.stdout.startswith("crontabber ")
    helped = run_crontabber("--help", cwd=tmp_path)
    assert helped.status == 0, helped.stderr
    assert "--crontabber.jobs" in helped.stdout
    assert "3 UNKNOWN" in " ".join(helped.stdout.split())  # every status --nagios gives
    short = run_crontabber("-h", cwd=tmp_path)
    assert (short.status, short.stdout) == (0, helped.stdout)
    assert not list(tmp_path.iterdir())


def test_a_crontabber_ini_in_the_working_directory_is_the_configuration(project: Path) -> None:
    write_config(project, "myjobs.Hello|5m")
    result = run_crontabber(cwd=project)
    assert result.status == 0, result.stderr
    assert ran(project) == ["hello"]  # its directory is on the import path, as with --admin.conf
    assert (project / "crontabber.sqlite").exists()


# 9. Arguments that are not options, and switches that go with a command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("foo",), "unexpected argument 'foo': options start with --"),
        (("--configtest", "foo"), "unexpected argument 'foo': options start with --"),
        (
            ("crontabber.ini",),
            "unexpected argument 'crontabber.ini': options start with -- "
            "(a config file is given as --admin.conf=crontabber.ini)",
        ),
        (("--", "--list-jobs"), "unexpected argument '--list-jobs': options start with --"),
        (("--json",), "--json goes with --list-jobs, --history or --audit-log"),
        (("--nagios", "--json"), "--json goes with --list-jobs, --history or --audit-log"),
        (("--force",), "--force goes with --job, --reset-job or --audit-ghosts"),
        (("-f", "--graph"), "--force goes with --job, --reset-job or --audit-ghosts"),
        (("--job", "hello", "extra"), "unexpected argument 'extra': options start with --"),
    ],
)
def test_arguments_that_would_be_ignored_are_errors(
    project: Path, args: tuple[str, ...], message: str
) -> None:
    config = write_config(project, "myjobs.Hello|5m")
    result = run_crontabber(f"--admin.conf={config}", *args, cwd=project)
    nagios = "--nagios" in args
    assert result.status == (3 if nagios else 1)
    if nagios:
        assert result.stdout == f"UNKNOWN - {message}\n"
    else:
        assert (result.stdout, result.stderr) == ("", f"crontabber: {message}\n")
    assert ran(project) == []
    assert not (project / "crontabber.sqlite").exists()


def test_command_values_after_a_space_still_work(project: Path) -> None:
    config = write_config(project, "myjobs.Hello|5m")
    assert run_crontabber(f"--admin.conf={config}", "--job", "hello", cwd=project).status == 0
    assert ran(project) == ["hello"]
    forced = run_crontabber(f"--admin.conf={config}", "-j", "hello", "-f", cwd=project)
    assert forced.status == 0, forced.stderr
    assert ran(project) == ["hello", "hello"]
    reset = run_crontabber(f"--admin.conf={config}", "--reset-job", "hello", cwd=project)
    assert (reset.status, reset.stderr) == (0, "")
    assert reset.stdout == "reset hello: it will run as if it had never run\n"
    listed = run_crontabber(f"--admin.conf={config}", "-l", "--json", cwd=project)
    assert listed.status == 0 and '"app_name": "hello"' in listed.stdout


# 10. Boolean options on the command line


def test_a_boolean_option_can_be_set_to_false_on_the_command_line(project: Path) -> None:
    config = write_config(project, "myjobs.Hello|5m")
    for value in ("False", "false", "0", "no"):
        result = run_crontabber(
            f"--admin.conf={config}", f"--crontabber.auto_migrate={value}", cwd=project
        )
        assert result.status == 1, (value, result.stderr)
        assert "crontabber.auto_migrate is off: run crontabber with --migrate" in result.stderr
        assert ran(project) == []
    for switch in ("--crontabber.auto_migrate", "--crontabber.auto_migrate=True"):
        (project / "crontabber.sqlite").unlink()
        result = run_crontabber(f"--admin.conf={config}", switch, cwd=project)
        assert result.status == 0, (switch, result.stderr)
    assert ran(project) == ["hello", "hello"]


def test_a_job_boolean_option_from_the_command_line(project: Path) -> None:
    config = write_config(project, "myjobs.Sum|5m")
    result = run_crontabber(
        f"--admin.conf={config}", "--crontabber.class-Sum.loud=yes", cwd=project
    )
    assert result.status == 0, result.stderr
    assert ran(project) == ["sum 3 1.5 True"]


# 18. Values that do not convert


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "    [[class-Sum]]\n        count=lots\n",
            "crontabber.class-Sum.count: 'lots' is not a whole number",
        ),
        (
            "    [[class-Sum]]\n        ratio=half\n",
            "crontabber.class-Sum.ratio: 'half' is not a number",
        ),
        (
            "    [[class-Sum]]\n        loud=very\n",
            "crontabber.class-Sum.loud: 'very' is not true or false",
        ),
        (
            "    error_retry_time=soon\n",
            "crontabber.error_retry_time: 'soon' is not a whole number",
        ),
        ("    auto_migrate=maybe\n", "crontabber.auto_migrate: 'maybe' is not true or false"),
        (
            "[resource]\n    [[postgresql]]\n        port=fivefour\n",
            "resource.postgresql.port: 'fivefour' is not a whole number",
        ),
    ],
)
def test_a_value_that_does_not_convert_names_the_option_and_the_type(
    project: Path, where: str, message: str
) -> None:
    config = write_config(project, "myjobs.Sum|5m", extra=where)
    for args in ((), ("--configtest",)):
        result = run_crontabber(f"--admin.conf={config}", *args, cwd=project)
        assert (result.status, result.stdout, result.stderr) == (1, "", f"crontabber: {message}\n")
    assert ran(project) == []


def test_a_value_from_the_command_line_that_does_not_convert(project: Path) -> None:
    config = write_config(project, "myjobs.Sum|5m")
    for option, message in (
        ("--crontabber.class-Sum.count=lots", "crontabber.class-Sum.count: 'lots' is not"),
        ("--crontabber.auto_migrate=perhaps", "crontabber.auto_migrate: 'perhaps' is not"),
    ):
        result = run_crontabber(f"--admin.conf={config}", option, cwd=project)
        kind = "a whole number" if "count" in option else "true or false"
        assert (result.status, result.stderr) == (1, f"crontabber: {message} {kind}\n")


def test_a_negative_retention_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "", extra="    log_retention_days=-1\n")
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 1
    assert result.stderr == (
        "crontabber: crontabber.log_retention_days must not be negative (0 keeps every row)\n"
    )


def test_a_negative_state_timeout_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "", extra="    state_timeout_seconds=-1\n")
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 1
    assert result.stderr == (
        "crontabber: crontabber.state_timeout_seconds must not be negative (0: no limit)\n"
    )


# 11. What configman writes reads back; secrets stay masked

SECRET_PASSWORD = "S3cretPw"
SECRET_KEY = "K3yK3yK3y"

EXTRA = f"""
    [[class-Sum]]
        count=7
[resource]
    [[postgresql]]
        password={SECRET_PASSWORD}
[sentry]
    dsn=http://{SECRET_KEY}@127.0.0.1:9/1
"""

JOBS_LINES = """
# the basics
myjobs.Hello|5m
myjobs.Sum|cron(0 2 * * MON,FRI)|Europe/Berlin
"""


def test_a_dumped_configuration_reads_back(project: Path) -> None:
    config = write_config(
        project,
        JOBS_LINES,
        extra=EXTRA,
        database_url=f"postgresql://ops:{SECRET_PASSWORD}@127.0.0.1:9/db",
    )
    dumped = project / "dumped.ini"
    result = run_crontabber(
        f"--admin.conf={config}", f"--admin.dump_conf={dumped}", "--configtest", cwd=project
    )
    assert (result.status, result.stdout, result.stderr) == (0, "", "")
    text = dumped.read_text()
    assert SECRET_PASSWORD not in text and SECRET_KEY not in text
    assert "database_url=****************" in text
    assert "configtest" not in text  # commands are not configuration
    assert "myjobs.Sum|cron(0 2 * * MON,FRI)|Europe/Berlin" in text
    checked = run_crontabber(f"--admin.conf={dumped}", "--configtest", cwd=project)
    assert (checked.status, checked.stdout, checked.stderr) == (0, "configuration OK: 2 jobs\n", "")
    printed = run_crontabber(f"--admin.conf={dumped}", "--admin.print_conf=ini", cwd=project)
    assert printed.status == 0, printed.stderr
    original = run_crontabber(f"--admin.conf={config}", "--admin.print_conf=ini", cwd=project)
    assert printed.stdout == original.stdout  # the same jobs, options and (masked) secrets
    assert "        count=7\n" in printed.stdout


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--admin.print_conf=py",
            "--admin.print_conf=py: crontabber writes only --admin.print_conf=ini "
            "(the one format that reads back)",
        ),
        (
            "--admin.print_conf=json",
            "--admin.print_conf=json: crontabber writes only --admin.print_conf=ini "
            "(the one format that reads back)",
        ),
        (
            "--admin.dump_conf=out.py",
            "--admin.dump_conf=out.py: the file name must end in .ini, "
            "the one format crontabber writes (and reads back)",
        ),
    ],
)
def test_formats_that_do_not_read_back_are_refused(
    project: Path, option: str, message: str
) -> None:
    config = write_config(project, "myjobs.Hello|5m", extra=EXTRA)
    result = run_crontabber(f"--admin.conf={config}", option, cwd=project)
    assert (result.status, result.stdout, result.stderr) == (1, "", f"crontabber: {message}\n")
    assert not (project / "out.py").exists()


def test_print_conf_without_a_configuration_starts_one(tmp_path: Path) -> None:
    printed = run_crontabber("--admin.print_conf=ini", cwd=tmp_path)
    assert printed.status == 0, printed.stderr
    (tmp_path / "crontabber.ini").write_text(printed.stdout)
    checked = run_crontabber("--configtest", cwd=tmp_path)
    assert (checked.status, checked.stdout) == (0, "configuration OK: 0 jobs\n")


# 12. --help


def test_help_shows_the_jobs_as_text_and_empty_secrets_as_empty(project: Path) -> None:
    config = write_config(project, JOBS_LINES, extra=EXTRA)
    result = run_crontabber(f"--admin.conf={config}", "--help", cwd=project)
    assert result.status == 0, result.stderr
    assert "JobsSetting object" not in result.stdout
    assert (
        "(default: myjobs.Hello|5m, myjobs.Sum|cron(0 2 * * MON,FRI)|Europe/Berlin)"
        in result.stdout
    )
    blocks = {
        block.splitlines()[0].strip(): block for block in result.stdout.split("\n\n") if block
    }
    assert blocks["--crontabber.database_url"].endswith("(default: )")  # empty
    assert blocks["--resource.postgresql.password"].endswith("(default: *********)")  # set
    assert blocks["--sentry.dsn"].endswith("(default: *********)")
    assert SECRET_PASSWORD not in result.stdout and SECRET_KEY not in result.stdout


# 17. A byte-order mark


def test_a_config_file_with_a_byte_order_mark(project: Path) -> None:
    config = write_config(project, "myjobs.Sum|5m", extra="    [[class-Sum]]\n        count=9\n")
    config.write_text(config.read_text(), encoding="utf-8-sig")
    assert config.read_bytes().startswith(b"\xef\xbb\xbf")
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 0, result.stderr
    assert ran(project) == ["sum 9 1.5 False"]


def test_print_conf_writes_a_file_to_start_from(project: Path) -> None:
    config = write_config(project, "myjobs.Hello|5m", extra="[web]\n    auth_token=T0ken-set\n")
    printed = run_crontabber(f"--admin.conf={config}", "--admin.print_conf=ini", cwd=project)
    assert printed.status == 0, printed.stderr
    assert "#+include" not in printed.stdout
    assert "    #dsn=\n" in printed.stdout  # an empty secret reads as empty...
    assert "auth_token=****************" in printed.stdout  # ...a set one stays masked
    assert "T0ken-set" not in printed.stdout
    helped = run_crontabber(f"--admin.conf={config}", "--help", cwd=project)
    [line] = [
        later
        for earlier, later in zip(
            helped.stdout.splitlines(), helped.stdout.splitlines()[1:], strict=False
        )
        if earlier.strip() == "--admin.print_conf"
    ]
    assert (
        line.strip() == "write the current config to stdout as ini (the one format that reads back)"
    )
