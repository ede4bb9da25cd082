"""An outbox of notifications: each event a job's hosts see, recorded once, sent once.

Revision ID: 0007_notifications
Revises: 0006_operator_actions
Create Date: 2026-12-06

``crontabber_notification`` holds one row per event and destination (``sink``:
webhook or email): a job failed, recovered, is late, is stuck, was paused by its
policy. The unique index on (app_name, kind, about, sink) makes several hosts that
see the same thing record it once. Any host delivers pending rows: it claims them
for a while (``lease_until``), sends, and marks them sent, or pending again later
(``next_attempt``, backing off), or failed for good.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_notifications"
down_revision = "0006_operator_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crontabber_notification",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("about", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sink", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("host", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("sent", sa.DateTime(timezone=True)),
        sa.Column("delivery_error", sa.Text),
    )
    op.create_index(
        "crontabber_notification_once_idx",
        "crontabber_notification",
        ["app_name", "kind", "about", "sink"],
        unique=True,
    )
    op.create_index(
        "crontabber_notification_pending_idx",
        "crontabber_notification",
        ["status", "next_attempt"],
    )


def downgrade() -> None:
    op.drop_index("crontabber_notification_pending_idx", table_name="crontabber_notification")
    op.drop_index("crontabber_notification_once_idx", table_name="crontabber_notification")
    op.drop_table("crontabber_notification")
