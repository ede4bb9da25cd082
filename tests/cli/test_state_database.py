"""Which database holds the state (issue 21's reproduction 8): the early releases' names
are read, and a configuration naming PostgreSQL in a form that gives no database is
refused in one line, never turned into a SQLite file of each host's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, noted, write_job_module

WHERE = Job(
    "Where",
    "where",
    decorator="using_postgres()",
    run="""
        with self.database_connection_factory() as connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_database()")
                note(cursor.fetchone()[0], self.config.database.database_name)
    """,
)


def test_the_early_names_are_the_state_database_and_the_jobs_own(
    tmp_path: Path, pg_url: str
) -> None:
    """An ini as crontabber's early releases and their largest user wrote it ran every job
    on a SQLite file per host, and the jobs' connections went to libpq's defaults."""
    url = sa.make_url(pg_url)
    write_job_module(
        tmp_path, "earlyjobs", WHERE, imports="from crontabber.mixins import using_postgres"
    )
    config = write_config(
        tmp_path,
        "earlyjobs.Where|5m",
        extra=f"""
[resource]
    [[postgresql]]
        database_hostname={url.host}
        database_port={url.port or 5432}
        database_name={url.database}
[secrets]
    [[postgresql]]
        database_username={url.username}
""",
    )
    migrated = run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path)
    assert migrated.status == 0, migrated.stderr
    ran = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert ran.status == 0, ran.stderr
    assert "unknown option" not in migrated.stderr + ran.stderr
    # The job's own connection reaches the same database, and sees the early name.
    assert noted(tmp_path) == [f"{url.database} {url.database}"]
    assert not (tmp_path / "crontabber.sqlite").exists()
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT app_name FROM crontabber").all()
    finally:
        engine.dispose()
    assert rows == [("where",)]  # the state is in PostgreSQL


@pytest.mark.parametrize(
    ("section", "named"),
    [
        (
            "[resource]\n    [[postgresql]]\n        database_class=somewhere.Connection\n",
            "resource.postgresql.database_class",
        ),
        (
            "[resource]\n    [[postgresql]]\n        password=s3cr3t-value\n",
            "resource.postgresql.password",
        ),
        (
            "[secrets]\n    [[postgresql]]\n        database_password=s3cr3t-value\n",
            "secrets.postgresql",
        ),
        ("[resource]\n    [[postgresql]]\n        port=5433\n", "resource.postgresql.port"),
    ],
)
def test_postgresql_named_without_a_database_is_refused_in_one_line(
    tmp_path: Path, section: str, named: str
) -> None:
    write_job_module(tmp_path, "earlyjobs", Job("Quick", "quick", run='note("ran")'))
    config = write_config(tmp_path, "earlyjobs.Quick|5m", extra=section)
    done = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert done.status == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("crontabber: the configuration names PostgreSQL ("), done.stderr
    assert named in lines[0]
    assert "s3cr3t-value" not in done.stderr  # a value is never shown, only its name
    assert noted(tmp_path) == []
    assert not (tmp_path / "crontabber.sqlite").exists()


def test_no_postgresql_at_all_is_still_a_sqlite_file_beside_the_config(tmp_path: Path) -> None:
    write_job_module(tmp_path, "earlyjobs", Job("Quick", "quick", run='note("ran")'))
    config = write_config(tmp_path, "earlyjobs.Quick|5m")
    done = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert done.status == 0, done.stderr
    assert noted(tmp_path) == ["ran"]
    assert (tmp_path / "crontabber.sqlite").exists()
