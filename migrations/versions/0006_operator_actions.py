"""What operators ask of a job (pause, run now, cancel), what each run printed, and who did what.

Revision ID: 0006_operator_actions
Revises: 0005_next_run_index
Create Date: 2026-12-06

- ``crontabber_pause``: one row per paused job, with since when, until when
  (NULL: until resumed), why and who paused it. A table of its own, so that a
  pause outlives ``--reset-job`` and can be set on a job that never ran. The
  claim statements refuse a job with a pause in force.
- ``crontabber.run_now`` (when a run was asked for) and ``run_now_displaced``
  (the next run it brought forward, so that the schedule goes on as if the job
  had run on time); ``crontabber.cancel_requested`` (when an operator asked the
  holder of the claim to stop the run, which its next heartbeat reads).
- ``crontabber_log.host``, ``pid``, ``trigger`` (schedule, run-now, forced, or
  the backfill date) and ``output`` (what the run printed and logged, capped).
- ``crontabber_audit``: every pause, resume, run-now, cancel, reset and ghost
  removal, in the database's time, with its actor.

Every new column is nullable and no column is renamed: the original crontabber
reads and writes its columns of a database that has them as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_operator_actions"
down_revision = "0005_next_run_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("crontabber", sa.Column("run_now", sa.DateTime(timezone=True)))
    op.add_column("crontabber", sa.Column("run_now_displaced", sa.DateTime(timezone=True)))
    op.add_column("crontabber", sa.Column("cancel_requested", sa.DateTime(timezone=True)))
    op.add_column("crontabber_log", sa.Column("host", sa.Text))
    op.add_column("crontabber_log", sa.Column("pid", sa.Integer))
    op.add_column("crontabber_log", sa.Column("trigger", sa.Text))
    op.add_column("crontabber_log", sa.Column("output", sa.Text))
    op.create_table(
        "crontabber_pause",
        sa.Column("app_name", sa.Text, primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_table(
        "crontabber_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("app_name", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_index("crontabber_audit_app_name_idx", "crontabber_audit", ["app_name"])


def downgrade() -> None:
    op.drop_index("crontabber_audit_app_name_idx", table_name="crontabber_audit")
    op.drop_table("crontabber_audit")
    op.drop_table("crontabber_pause")
    for column in ("output", "trigger", "pid", "host"):
        op.drop_column("crontabber_log", column)
    for column in ("cancel_requested", "run_now_displaced", "run_now"):
        op.drop_column("crontabber", column)
