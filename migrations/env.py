"""Alembic's environment for crontabber's tables.

:func:`crontabber.migrate.upgrade` runs it with a connection that is already in
a transaction holding the schema lock (``config.attributes["connection"]``), so
every revision and the version table's update commit together or not at all.

Developers run it through the ``alembic`` command instead (see alembic.ini),
naming the database with ``-x url=...``; it then opens its own connection and
takes the same lock. Offline mode (``--sql``) is not supported: the first
revision inspects the database to adopt an original crontabber's tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from crontabber.store import tables as sql
from crontabber.store.schema import VERSION_TABLE

config = context.config


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Autogenerate writes UTCDateTime as the plain type it creates in the database."""
    if type_ == "type" and isinstance(obj, sql.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=sql.metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER a table's constraints: batch operations copy the
        # table instead, and do plain ALTERs elsewhere.
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Re-entrant: crontabber.migrate already holds it in this transaction.
            connection.execute(sql.lock_schema())
        context.run_migrations()


def run_from_command_line() -> None:
    from crontabber.store import open_store

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("name the database: alembic -c migrations/alembic.ini -x url=... COMMAND")
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            run_migrations(connection)
    finally:
        store.close()


if context.is_offline_mode():
    raise SystemExit(
        "crontabber's migrations inspect the database: offline mode (--sql) is not supported"
    )
if "connection" in config.attributes:
    run_migrations(config.attributes["connection"])
else:
    run_from_command_line()
