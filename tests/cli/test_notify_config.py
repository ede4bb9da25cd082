"""[notify] and the policies as a user configures them: --configtest says what is wrong
in one line naming the option, and no secret of the configuration is ever printed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "cfgjobs", Job("Hello", "hello"))
    return tmp_path


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configtest(project: Path, extra: str) -> tuple[int, str, str]:
    config = write_config(project, "cfgjobs.Hello|1d", extra=extra)
    done = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=project)
    return done.status, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[notify]\n    webhook_url=ftp://hooks.example.com/T0/SECRET\n", "notify.webhook_url"),
        ("[notify]\n    tick_ping_url=not a url\n", "notify.tick_ping_url"),
        (
            "[notify]\n    smtp_host=127.0.0.1\n    smtp_port={port}\n"
            "    email_from=cron@example.com\n    email_to=ops@example.com\n",
            "notify.smtp_host: cannot reach 127.0.0.1:",
        ),
        ("[notify]\n    email_to=ops@example.com\n", "notify."),
    ],
)
def test_a_misconfigured_notify_is_one_line_at_configtest(
    project: Path, extra: str, message: str
) -> None:
    status, stdout, stderr = configtest(project, extra.replace("{port}", str(closed_port())))
    assert status == 1, (stdout, stderr)
    lines = stdout.splitlines()
    assert lines and all(line.startswith("notify.") for line in lines), lines
    assert message in lines[0] and "SECRET" not in stdout + stderr


@pytest.mark.parametrize("name", ["smtp_starttls", "smtp_ssl"])
def test_a_bad_tls_switch_is_one_line_and_exit_1(project: Path, name: str) -> None:
    status, stdout, stderr = configtest(project, f"[notify]\n    {name}=perhaps\n")
    assert status == 1, (stdout, stderr)
    assert stderr == f"crontabber: notify.{name}: 'perhaps' is not true or false\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    error_retry_backoff=0.5\n", "crontabber.error_retry_backoff must be at least 1"),
        ("    jitter_seconds=soon\n", "jitter_seconds"),
        (
            "    [[class-Hello]]\n        exclude=RRULE:FREQ=SOMETIMES\n",
            "class-Hello.exclude: 'RRULE:FREQ=SOMETIMES' is not an RFC 5545 rule set",
        ),
        ("    [[class-Hello]]\n        ping_url=hc-ping.com/abc\n", "class-Hello.ping_url must be"),
    ],
)
def test_a_bad_policy_is_one_line(project: Path, extra: str, message: str) -> None:
    status, stdout, stderr = configtest(project, extra)
    assert status >= 1
    assert message in stdout + stderr and "Traceback" not in stderr


def test_the_smtp_password_is_never_printed(project: Path) -> None:
    extra = (
        "[notify]\n    smtp_host=127.0.0.1\n    smtp_port=1\n    smtp_password=hunter2secret\n"
        "    email_from=cron@example.com\n    email_to=ops@example.com\n"
    )
    config = write_config(project, "cfgjobs.Hello|1d", extra=extra)
    for args in (
        ("--configtest",),
        ("--help",),
        ("--admin.print_conf=ini",),
        ("--list-jobs", "--json"),
    ):
        done = run_crontabber(f"--admin.conf={config}", *args, cwd=project)
        assert "hunter2secret" not in done.stdout + done.stderr, args
