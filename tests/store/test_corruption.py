"""A damaged SQLite state file is told apart from an old schema: ``PRAGMA quick_check``
runs when the schema looks wrong, when a statement fails as on a damaged file, and
before a migration (never on every tick), and a file that fails it is one line that
says to restore or remove it, never to migrate it. (The command: tests/cli.)"""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
from pathlib import Path

import pytest

from crontabber.errors import StateFileCorrupt, StateStoreError
from crontabber.store import open_store

CORRUPT = re.compile(
    r"the SQLite state file (?P<path>.+) is corrupt \(PRAGMA quick_check: (?P<problem>[^\n]+)\); "
    r"restore it from a backup or remove it to start afresh"
)


def page_size_and_root(path: Path, table: str) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
        (size,) = connection.execute("PRAGMA page_size").fetchone()
        (root,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
    return size, root


def leaf_pages(path: Path, table: str) -> list[int]:
    """The pages under ``table``'s root, an interior page of its b-tree (SQLite's file
    format: page type 5, cell count at 3, right-most child at 8, cell pointers from 12,
    each cell beginning with its child's page number)."""
    size, root = page_size_and_root(path, table)
    page = path.read_bytes()[(root - 1) * size : root * size]
    assert page[0] == 0x05, "the table fits in one page: add rows"
    cells = int.from_bytes(page[3:5], "big")
    pointers = [int.from_bytes(page[12 + 2 * i : 14 + 2 * i], "big") for i in range(cells)]
    children = [int.from_bytes(page[at : at + 4], "big") for at in pointers]
    return [*children, int.from_bytes(page[8:12], "big")]


def overwrite(path: Path, page: int, offset: int, count: int) -> None:
    """Random bytes (always the same) over ``count`` bytes of ``page`` from ``offset``."""
    size, _ = page_size_and_root(path, "crontabber")
    noise = bytes(random.Random(26).randrange(256) for _ in range(count))
    with path.open("r+b") as file:
        file.seek((page - 1) * size + (offset if offset >= 0 else size + offset))
        file.write(noise)


def state_file(tmp_path: Path, log_rows: int = 0) -> Path:
    path = tmp_path / "state.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.ensure_schema()
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.executemany(
            "INSERT INTO crontabber_log (app_name, log_time, output) VALUES ('job', ?, ?)",
            [(f"2026-03-01 12:00:{i % 60:02d}.000000", "x" * 1500) for i in range(log_rows)],
        )
    return path


# Where the bytes land in the page of the schema's version table: its page header
# (SQLite cannot read the page), or its one cell (today read as no revision at all,
# which said "out of date", or migrated the damaged file).
DAMAGE = {"header": (0, 16), "cell": (-40, 40)}


@pytest.mark.parametrize("auto_migrate", [True, False], ids=["auto-migrate", "no-auto-migrate"])
@pytest.mark.parametrize("where", list(DAMAGE))
def test_a_damaged_schema_version_page_is_corrupt_not_out_of_date(
    tmp_path: Path, where: str, auto_migrate: bool
) -> None:
    path = state_file(tmp_path)
    _, root = page_size_and_root(path, "crontabber_alembic_version")
    overwrite(path, root, *DAMAGE[where])
    damaged = path.read_bytes()
    store = open_store(f"sqlite:///{path}", auto_migrate=auto_migrate)
    try:
        with pytest.raises(StateFileCorrupt) as read:
            store.load_states()
        with pytest.raises(StateFileCorrupt) as migrated:
            store.migrate()
    finally:
        store.close()
    for failed in (read, migrated):
        line = str(failed.value)
        found = CORRUPT.fullmatch(line)
        assert found, line
        assert found["path"] == str(path)
        assert "migrate" not in line
    assert path.read_bytes() == damaged  # never migrated


def test_a_file_that_is_not_a_database_is_corrupt(tmp_path: Path) -> None:
    path = state_file(tmp_path)
    with path.open("r+b") as file:
        file.write(b"not SQLite, no!\0")  # over the header's "SQLite format 3\0"
    store = open_store(f"sqlite:///{path}")
    try:
        with pytest.raises(StateFileCorrupt) as failed:
            store.load_states()
    finally:
        store.close()
    assert CORRUPT.fullmatch(str(failed.value)), failed.value
    assert "file is not a database" in str(failed.value)


def test_a_damaged_log_page_is_found_before_a_migration_and_when_a_read_meets_it(
    tmp_path: Path,
) -> None:
    path = state_file(tmp_path, log_rows=60)
    pages = leaf_pages(path, "crontabber_log")
    overwrite(path, pages[len(pages) // 2], 0, 16)
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.load_states() == {}  # a tick does not read the whole file
        with pytest.raises(StateFileCorrupt) as migrated:
            store.migrate()
        with pytest.raises(StateFileCorrupt) as checked:
            store.check_integrity()
        with pytest.raises(StateFileCorrupt) as read:
            store.read_log_page("job", limit=100)
    finally:
        store.close()
    for failed in (migrated, checked, read):
        assert CORRUPT.fullmatch(str(failed.value)), failed.value


def test_an_intact_file_passes_and_an_old_schema_is_still_out_of_date(tmp_path: Path) -> None:
    path = state_file(tmp_path, log_rows=60)
    store = open_store(f"sqlite:///{path}")
    try:
        store.check_integrity()
    finally:
        store.close()
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()  # a file with no schema yet: not damaged, only old
    old = open_store(f"sqlite:///{empty}", auto_migrate=False)
    try:
        with pytest.raises(StateStoreError, match=r"out of date .* run crontabber with --migrate"):
            old.load_states()
        assert old.migrate()[1]  # and migrated on request
    finally:
        old.close()
