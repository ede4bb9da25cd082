"""Sentry: failures are sent with the app name as a tag; Sentry's trouble never breaks a run.

A small HTTP server on 127.0.0.1 stands in for Sentry and keeps what it receives.
"""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module

BOOM = Job(
    "Boom",
    "boom",
    run="""
        password = os.environ.get("JOB_PASSWORD", "")
        dsn = "postgresql://ops:" + password + "@db.example/jobs"
        raise ZeroDivisionError("the numbers did not add up")
    """,
)


class FakeSentry(http.server.ThreadingHTTPServer):
    def __init__(self, status: int) -> None:
        self.status = status
        self.bodies: list[bytes] = []
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/42"


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeSentry

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append(body)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def fake_sentry(status: int) -> Iterator[FakeSentry]:
    server = FakeSentry(status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    yield from fake_sentry(200)


@pytest.fixture
def broken_sentry() -> Iterator[FakeSentry]:
    yield from fake_sentry(500)


def project_with_dsn(tmp_path: Path, dsn: str) -> Path:
    write_job_module(tmp_path, "boomjobs", BOOM)
    return write_config(tmp_path, "boomjobs.Boom|5m", extra=f"[sentry]\n    dsn={dsn}\n")


def test_job_failure_is_sent_with_the_app_name_tag(tmp_path: Path, sentry: FakeSentry) -> None:
    config = project_with_dsn(tmp_path, sentry.dsn)
    result = run_crontabber(
        f"--admin.conf={config}", cwd=tmp_path, env={"JOB_PASSWORD": "Pa55-in-a-local"}
    )
    assert result.status == 0
    sent = b"".join(sentry.bodies).decode()
    assert "ZeroDivisionError" in sent
    assert '"app_name":"boom"' in sent.replace(" ", "")
    assert "Pa55-in-a-local" not in sent  # no frame variables, so no secrets in them


def test_sentry_failing_never_breaks_a_run(tmp_path: Path, broken_sentry: FakeSentry) -> None:
    config = project_with_dsn(tmp_path, broken_sentry.dsn)
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 0
    assert "boom failed" in result.stderr
    assert broken_sentry.bodies  # it was tried
    assert "a failure report could not be sent to Sentry" in result.stderr


def test_unreachable_sentry_never_breaks_a_run(tmp_path: Path) -> None:
    config = project_with_dsn(tmp_path, "http://key@127.0.0.1:9/1")
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 0
    assert "Traceback (most recent call last)" not in result.stderr.split("boom failed")[0]
    said = [line for line in result.stderr.splitlines() if "could not be sent to Sentry" in line]
    assert len(said) == 1 and "key@" not in said[0], result.stderr  # once, and no DSN


def test_bad_dsn_is_logged_and_the_run_goes_on(tmp_path: Path) -> None:
    config = project_with_dsn(tmp_path, "not-a-dsn")
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 0
    assert "Sentry reporting is off: the DSN is not usable" in result.stderr


def test_sentrytest_accepted(tmp_path: Path, sentry: FakeSentry) -> None:
    config = project_with_dsn(tmp_path, sentry.dsn)
    result = run_crontabber(f"--admin.conf={config}", "--sentrytest", cwd=tmp_path)
    assert result.status == 0
    assert result.stdout == "Sentry accepted the test event\n"
    assert b"crontabber --sentrytest" in b"".join(sentry.bodies)


def test_sentrytest_rejected(tmp_path: Path, broken_sentry: FakeSentry) -> None:
    config = project_with_dsn(tmp_path, broken_sentry.dsn)
    result = run_crontabber(f"--admin.conf={config}", "--sentrytest", cwd=tmp_path)
    assert result.status == 1
    assert result.stdout.startswith("Sentry did not accept the test event")


def test_sentrytest_without_a_dsn(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    result = run_crontabber(f"--admin.conf={config}", "--sentrytest", cwd=tmp_path)
    assert result.status == 1
    assert result.stdout == "no Sentry DSN configured (set [sentry] dsn=)\n"
