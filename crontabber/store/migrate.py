"""Schema migrations: bring a state database to the schema this crontabber expects.

The revisions are Alembic's, in the ``crontabber.migrations`` package
(``migrations/`` in the source tree); this module runs them programmatically,
with no configuration file. On PostgreSQL :func:`upgrade` holds a
transaction-scoped advisory lock (the one :func:`crontabber.store.tables.lock_schema`
takes) for the whole migration, so of many hosts starting at once on an old
schema exactly one migrates; the others wait for its commit and then find
nothing to do. The lock ends with the transaction, so this also works behind a
transaction-pooling PgBouncer.

Alembic records the revision in its own table, named :data:`VERSION_TABLE` so
that it cannot collide with the ``alembic_version`` of an application sharing
the database.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crontabber.errors import MigrationError
from crontabber.record import record
from crontabber.store import tables as sql
from crontabber.store.schema import SCHEMA_REVISION, VERSION_TABLE

# The newest revision in migrations/versions, so that the check every run makes
# needs no Alembic (it costs a tenth of a second to import). A test keeps it
# equal to what Alembic finds.
HEAD_REVISION = SCHEMA_REVISION


def read_only(conn: sa.Connection) -> sa.Connection:
    """``conn`` set up for a read: no write lock on SQLite (see database.sqlalchemy_engine)."""
    if conn.dialect.name == "sqlite":
        return conn.execution_options(crontabber_read_only=True)
    return conn


@record
class Upgrade:
    """What :func:`upgrade` did: the revision it found and the one it left."""

    before: str | None  # None: no crontabber revision yet (new or original database)
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def script_location() -> str:
    """The directory of the installed ``crontabber.migrations`` package.

    From a source checkout installed before that package was declared, the
    ``migrations/`` directory beside the ``crontabber`` package.
    """
    spec = importlib.util.find_spec("crontabber.migrations")
    if spec is not None and spec.submodule_search_locations:
        return str(next(iter(spec.submodule_search_locations)))
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if (checkout / "env.py").is_file():
        return str(checkout)
    raise MigrationError("crontabber is installed without its migrations (crontabber.migrations)")


def head_revision() -> str:
    """The revision this crontabber's schema is at."""
    return _script().get_current_head() or ""


def upgrade(engine: sa.Engine, *, lock_timeout: float | None = None) -> Upgrade:
    """Apply every revision the database lacks, in one transaction.

    On PostgreSQL the transaction first takes the schema lock, so concurrent
    callers run one after another and all but the first find nothing to do.
    Then, with ``lock_timeout`` (seconds), each of its statements waits that long at
    most for a table lock (``SET LOCAL``): an ALTER stuck behind another session's
    lock would queue every other statement on the table behind it. No statement
    timeout: a migration may take long.
    On SQLite pass the engine of :func:`crontabber.store.open_store`, whose
    transactions begin with ``BEGIN IMMEDIATE``: the plain pysqlite driver
    would run each ALTER outside any transaction.

    Raises :class:`MigrationError` when the database is at a revision this
    crontabber does not know (a newer crontabber migrated it) or a revision fails.
    """
    from alembic import command
    from alembic.util import CommandError

    with (
        _reporting(engine, "migrating", CommandError),
        engine.connect() as conn,
        conn.begin(),
    ):
        if engine.dialect.name == "postgresql":
            conn.execute(sql.lock_schema())
            if lock_timeout is not None:
                conn.execute(sql.set_lock_timeout(lock_timeout))
        before = _migration_context(conn).get_current_revision()
        if before == head_revision():
            return Upgrade(before, before)
        if before is not None and before not in _known_revisions():
            raise MigrationError(_unknown_revision(before))
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        return Upgrade(before, _migration_context(conn).get_current_revision() or "")


def is_current(engine: sa.Engine) -> bool:
    """Whether the database is at this crontabber's head revision.

    Cheap enough for every run: one ``SELECT`` of the version row. A database without crontabber's tables, or with an original
    crontabber's, is not current; neither is one a newer crontabber migrated.
    """
    with _reporting(engine, "checking the schema of"), engine.connect() as conn:
        reader = read_only(conn)
        try:
            versions = set(reader.execute(sql.select_schema_revisions()).scalars())
        except sa.exc.DBAPIError:
            # Most likely no version table yet (and another host may be creating
            # it right now). Not current: upgrade() decides under the schema lock
            # and reports any other error.
            reader.rollback()
            return False
    return versions == {HEAD_REVISION}


def current_revision(engine: sa.Engine) -> str | None:
    """The database's revision, or None when no revision was ever applied."""
    with _reporting(engine, "checking the schema of"), engine.connect() as conn:
        reader = read_only(conn)
        revision = _migration_context(reader).get_current_revision()
        reader.rollback()
    return revision


@functools.cache
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script().walk_revisions())


def _config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location())
    return config


def _migration_context(conn: sa.Connection) -> Any:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})


def _unknown_revision(revision: str) -> str:
    return (
        f"the state database is at schema revision {revision!r}, which this crontabber "
        f"does not know (its newest is {head_revision()!r}): a newer crontabber migrated "
        "it; upgrade crontabber on this host"
    )


@contextlib.contextmanager
def _reporting(engine: sa.Engine, doing: str, *also: type[Exception]) -> Iterator[None]:
    """Turn database failures (and ``also``, Alembic's) into a one-line :class:`MigrationError`."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        yield
    except sa.exc.DBAPIError as exc:
        lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
        raise MigrationError(f"{doing} the state database {where} failed: {lines[0]}") from exc
    except also as exc:
        raise MigrationError(f"{doing} the state database {where} failed: {exc}") from exc
