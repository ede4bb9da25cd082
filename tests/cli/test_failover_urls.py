"""libpq multi-host URLs, as after a failover, wherever a URL is read (issue 21's
reproduction 6): the first host refuses connections, the second is the server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crontabber.store import open_store
from crontabber.web import create_app

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module


def multi_host(pg_url: str) -> str:
    """``pg_url`` behind a first host that refuses connections."""
    parts = urlsplit(pg_url.replace("+psycopg2", ""))
    user = f"{parts.username}@" if parts.username else ""
    return (
        f"postgresql://{user}127.0.0.1:1,{parts.hostname}:{parts.port or 5432}{parts.path}"
        "?target_session_attrs=read-write"
    )


@pytest.mark.parametrize("quoted", [True, False], ids=["quoted", "unquoted"])
def test_a_multi_host_url_works_everywhere_a_url_is_read(
    tmp_path: Path, pg_url: str, quoted: bool
) -> None:
    """--migrate, a tick, an admin command and the page take a libpq multi-host URL,
    quoted in the ini file or not (configobj splits an unquoted one on its commas)."""
    url = multi_host(pg_url)
    write_job_module(tmp_path, "failoverjobs", Job("Quick", "quick", run='note("ran")'))
    value = f'"{url}"' if quoted else url
    config = write_config(tmp_path, "failoverjobs.Quick|5m", extra=f"    database_url={value}\n")
    migrated = run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path)
    assert migrated.status == 0, migrated.stderr
    assert "migrated the state database" in migrated.stdout
    ran = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert ran.status == 0, ran.stderr
    assert noted(tmp_path) == ["ran"]
    listed = run_crontabber(f"--admin.conf={config}", "--list-jobs", "--json", cwd=tmp_path)
    assert listed.status == 0 and '"quick"' in listed.stdout, listed.stderr
    answers: list[str] = []
    app = create_app(url, ())
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz"}
    b"".join(app(environ, lambda status, _headers: answers.append(status)))
    assert answers == ["200 OK"]


def test_a_fresh_database_is_migrated_through_a_multi_host_url(pg_url: str) -> None:
    """Automatic migration, on the first read (it ended in a ValueError traceback)."""
    store = open_store(multi_host(pg_url))
    try:
        assert store.load_states() == {}
        assert store.ensure_schema()
    finally:
        store.close()
