"""When each PostgreSQL timeline began, as crontabber first saw it.

Revision ID: 0004_server_timelines
Revises: 0003_claim_fence
Create Date: 2026-12-06

The lease rule does not count time the server was down against a lease: a
lease lapses no sooner than its window after the server came up. A restart
resets ``pg_postmaster_start_time()``; a promoted standby does not (it has been
up all along, replaying), but it starts a new timeline. ``crontabber_timeline``
holds, for each timeline, the first time a crontabber saw the server on it,
which is no sooner than the promotion; the lease rule counts from the later of
the two. A timeline not yet recorded counts from now, so a promotion never
makes a live claim lapse.

On SQLite the table exists and stays empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_server_timelines"
down_revision = "0003_claim_fence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crontabber_timeline",
        sa.Column("timeline", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO crontabber_timeline (timeline, since) "
            "SELECT ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int, "
            "clock_timestamp()"
        )


def downgrade() -> None:
    op.drop_table("crontabber_timeline")
