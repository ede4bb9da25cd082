"""Which database holds the state (issue 21's reproduction 8): the early releases' names
are read, and a configuration naming PostgreSQL in a form that gives no database is
refused in one line, never turned into a SQLite file of each host's own. A damaged
SQLite state file is one line that says so, never advice to migrate it."""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..helpers.command import Completed, run_crontabber, write_config
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


CORRUPT = re.compile(
    r"crontabber: the SQLite state file (?P<path>.+) is corrupt \(PRAGMA quick_check: [^\n]+\); "
    r"restore it from a backup or remove it to start afresh"
)


def damage(path: Path, table: str, *, leaf: bool = False) -> None:
    """Random bytes over the page header of ``table``'s root page, or (``leaf``) of a
    page its root points to (SQLite's file format: an interior page is type 5, its
    cell count at 3, its cell pointers from 12, each cell starting with a child page)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
        (size,) = connection.execute("PRAGMA page_size").fetchone()
        (page,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
    if leaf:
        root = path.read_bytes()[(page - 1) * size : page * size]
        assert root[0] == 0x05, "the table fits in one page: add rows"
        cells = int.from_bytes(root[3:5], "big")
        middle = 12 + 2 * (cells // 2)  # the pointer to a middle cell
        pointer = int.from_bytes(root[middle : middle + 2], "big")
        page = int.from_bytes(root[pointer : pointer + 4], "big")
    with path.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(bytes(random.Random(26).randrange(256) for _ in range(16)))


def state_file_with_log(tmp_path: Path) -> tuple[Path, Path]:
    """A config whose SQLite state file is migrated and holds 60 log rows of 1.5 KB."""
    write_job_module(tmp_path, "earlyjobs", Job("Quick", "quick", run='note("ran")'))
    config = write_config(tmp_path, "earlyjobs.Quick|5m")
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    path = tmp_path / "crontabber.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.executemany(
            "INSERT INTO crontabber_log (app_name, log_time, output) VALUES ('old', ?, ?)",
            [(f"2026-03-01 12:00:{i:02d}.000000", "x" * 1500) for i in range(60)],
        )
    return config, path


def said_corrupt(done: Completed, path: Path) -> None:
    """Exit status 1 (a state database error), one line naming the file, no traceback,
    and no word of migrating it."""
    assert done.status == 1, done.stderr
    stderr = done.stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    found = CORRUPT.fullmatch(lines[-1])
    assert found and found["path"] == str(path), stderr
    assert not [line for line in lines if "migrat" in line], stderr


@pytest.mark.parametrize("command", [(), ("--migrate",)], ids=["run", "migrate"])
def test_a_damaged_schema_version_page_is_corrupt_not_out_of_date(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config, path = state_file_with_log(tmp_path)
    damage(path, "crontabber_alembic_version")
    damaged = path.read_bytes()
    done = run_crontabber(f"--admin.conf={config}", *command, cwd=tmp_path)
    said_corrupt(done, path)
    assert noted(tmp_path) == []  # no job ran on it
    assert path.read_bytes() == damaged  # nor was it migrated


def test_a_damaged_log_page_is_refused_by_migrate(tmp_path: Path) -> None:
    """A tick reads only what it needs (the whole file is not checked every minute);
    --migrate checks it all before it migrates."""
    config, path = state_file_with_log(tmp_path)
    damage(path, "crontabber_log", leaf=True)
    said_corrupt(run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path), path)
