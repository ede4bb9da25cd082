"""A fence number on each job's row, grown by every claim.

Revision ID: 0003_claim_fence
Revises: 0002_leases_in_database_time
Create Date: 2026-12-06

``crontabber.fence`` is 0 until the job is first claimed, and each claim sets
it one higher. A running job sees its claim's number as ``self.claim.fence``
and passes it with its writes to systems that can refuse a lower one than
they have seen (a fencing token), so that a holder whose lease was taken over
cannot overwrite its successor's work.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_claim_fence"
down_revision = "0002_leases_in_database_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crontabber") as batch:
        batch.add_column(
            sa.Column("fence", sa.BigInteger, nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("crontabber") as batch:
        batch.drop_column("fence")
