"""The status page behind a real PgBouncer in transaction pooling mode (issue 21's
reproduction 4): it leaves no session state for the next client of a server connection."""

from __future__ import annotations

from pathlib import Path

import psycopg2

from crontabber.db.url import parse_url
from crontabber.web import create_app

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.pgbouncer import pgbouncer, through


def test_the_status_page_leaves_nothing_on_a_pooled_connection(tmp_path: Path, pg_url: str) -> None:
    """After one page request through PgBouncer, crontab runs met a read-only session
    and could not record their outcomes (358 of 360 runs exited 1)."""
    write_job_module(tmp_path, "pooledjobs", Job("Quick", "quick", run='note("ran")'))
    config = write_config(tmp_path, "pooledjobs.Quick|5m", database_url=pg_url)
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    with pgbouncer(pg_url) as port:
        pooled = through(pg_url, port)
        app = create_app(pooled, ())
        answers: list[str] = []
        for path in ("/", "/api/jobs", "/metrics", "/healthz"):
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
            body = b"".join(app(environ, lambda status, _headers: answers.append(status)))
            assert answers.pop() == "200 OK", (path, body[:200])
        for _ in range(3):
            done = run_crontabber(
                f"--admin.conf={config}",
                f"--crontabber.database_url={pooled}",
                "--job=quick",
                "--force",
                cwd=tmp_path,
            )
            assert done.status == 0, done.stderr
        connection = psycopg2.connect(**parse_url(pooled).connect_args)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW default_transaction_read_only")
                assert cursor.fetchone() == ("off",)
                cursor.execute("SHOW statement_timeout")
                assert cursor.fetchone() == ("0",)
        finally:
            connection.close()
    assert noted(tmp_path) == ["ran"] * 3
