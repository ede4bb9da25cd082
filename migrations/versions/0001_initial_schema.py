"""Create crontabber's tables, or adopt an existing crontabber's in place.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2026-03-01

A database without the tables gets them as crontabber/sql.py defined them at
this revision. A database that already has them keeps every row and gains only
what it lacks. That covers the original mozilla/crontabber's tables (with or
without ``ongoing``, with or without the unique index on ``app_name``, a log
with or without a primary key) and tables created by a crontabber from before
migrations existed (without ``heartbeat``).

The table definitions are written out here, not imported from crontabber.store.tables:
a revision is a snapshot, and later schema changes are later revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crontabber.errors import StateStoreError

revision = "0001_initial_schema"
down_revision = None
branch_labels = None
depends_on = None

STATE = "crontabber"
LOG = "crontabber_log"
UNIQUE_APP_NAME = "crontabber_unique_app_name_idx"
LOG_PRIMARY_KEY = "crontabber_log_pkey"  # the name PostgreSQL gives it in CREATE TABLE


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def state_columns() -> list[sa.Column]:
    return [
        sa.Column("app_name", sa.Text, nullable=False),
        sa.Column("next_run", timestamp()),
        sa.Column("first_run", timestamp()),
        sa.Column("last_run", timestamp()),
        sa.Column("last_success", timestamp()),
        sa.Column("error_count", sa.Integer, server_default=sa.text("0")),
        sa.Column("depends_on", postgresql.ARRAY(sa.Text).with_variant(sa.JSON(), "sqlite")),
        sa.Column("last_error", sa.JSON),
        sa.Column("ongoing", timestamp()),
        sa.Column("ongoing_host", sa.Text),
        sa.Column("ongoing_pid", sa.Integer),
        sa.Column("ongoing_token", sa.Text),
        sa.Column("heartbeat", timestamp()),
    ]


def log_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_name", sa.Text, nullable=False),
        sa.Column("log_time", timestamp(), nullable=False, server_default=sa.func.now()),
        sa.Column("duration", sa.Interval),
        sa.Column("success", timestamp()),
        sa.Column("exc_type", sa.Text),
        sa.Column("exc_value", sa.Text),
        sa.Column("exc_traceback", sa.Text),
    ]


# index name -> (table, columns, unique)
INDEXES = {
    UNIQUE_APP_NAME: (STATE, ["app_name"], True),
    "crontabber_log_app_name_idx": (LOG, ["app_name"], False),
    "crontabber_log_log_time_idx": (LOG, ["log_time"], False),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present: set[str] = set()  # names of the indexes already there
    for table, columns in ((STATE, state_columns()), (LOG, log_columns())):
        if inspector.has_table(table):
            present.update(index["name"] for index in inspector.get_indexes(table))
            adopt(inspector, table, columns)
        else:
            op.create_table(table, *columns)
    for name, (table, columns, unique) in INDEXES.items():
        if name in present:
            continue
        if unique:
            refuse_duplicates(table, columns[0])
        op.create_index(name, table, columns, unique=unique)


def adopt(inspector: sa.Inspector, table: str, columns: list[sa.Column]) -> None:
    """Add the columns and primary key ``table`` lacks, keeping its rows."""
    existing = {column["name"] for column in inspector.get_columns(table)}
    missing = [column for column in columns if column.name not in existing]
    required = [column.name for column in missing if not column.nullable]
    if required:
        raise StateStoreError(
            f"table {table!r} has no column {', '.join(required)}: "
            "it is not a crontabber table this migration can adopt"
        )
    wanted_key = [column.name for column in columns if column.primary_key]
    has_key = bool(inspector.get_pk_constraint(table)["constrained_columns"])
    if not missing and (has_key or not wanted_key):
        return
    with op.batch_alter_table(table) as batch:
        for column in missing:
            batch.add_column(column)
        if wanted_key and not has_key:
            batch.create_primary_key(LOG_PRIMARY_KEY, wanted_key)


def refuse_duplicates(table: str, column: str) -> None:
    """A unique index cannot be built over duplicates; name them rather than fail obscurely."""
    name = sa.column(column)
    duplicates = (
        op.get_bind()
        .execute(
            sa.select(name).select_from(sa.table(table)).group_by(name).having(sa.func.count() > 1)
        )
        .scalars()
        .all()
    )
    if duplicates:
        raise StateStoreError(
            f"table {table!r} has more than one row for {', '.join(sorted(duplicates))}: "
            f"delete the extra rows, then migrate again"
        )


def downgrade() -> None:
    raise StateStoreError(
        "the first revision cannot be undone: it may have adopted an existing crontabber "
        "database, whose tables it must not drop"
    )
