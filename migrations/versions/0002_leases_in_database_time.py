"""Leases in the database's clock, and log rows written exactly once.

Revision ID: 0002_leases_in_database_time
Revises: 0001_initial_schema
Create Date: 2026-11-23

``crontabber.lease_expires`` holds the database's time at which a claim lapses
unless its holder renews it. ``crontabber_log.token`` names the attempt that
wrote a row (unique, so a retried write cannot log twice) and
``crontabber_log.superseded`` marks an outcome its holder logged after its claim
had been taken over.

A claim in progress while this runs keeps a lease of the old default window
(90 s) from its last heartbeat.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_leases_in_database_time"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None

OLD_DEFAULT_WINDOW_SECONDS = 90


def upgrade() -> None:
    with op.batch_alter_table("crontabber") as batch:
        batch.add_column(sa.Column("lease_expires", sa.DateTime(timezone=True)))
    with op.batch_alter_table("crontabber_log") as batch:
        batch.add_column(sa.Column("token", sa.Text))
        batch.add_column(
            sa.Column("superseded", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_index("crontabber_log_token_idx", "crontabber_log", ["token"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        expires = f"heartbeat + interval '{OLD_DEFAULT_WINDOW_SECONDS} seconds'"
    else:
        expires = f"strftime('%Y-%m-%d %H:%M:%f000', heartbeat, '+{OLD_DEFAULT_WINDOW_SECONDS} seconds')"
    op.execute(
        f"UPDATE crontabber SET lease_expires = {expires} "
        "WHERE ongoing IS NOT NULL AND heartbeat IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("crontabber_log_token_idx", "crontabber_log")
    with op.batch_alter_table("crontabber_log") as batch:
        batch.drop_column("superseded")
        batch.drop_column("token")
    with op.batch_alter_table("crontabber") as batch:
        batch.drop_column("lease_expires")
