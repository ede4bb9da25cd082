"""An index on the jobs' next run, so that a daemon reads only the rows that may be due.

Revision ID: 0005_next_run_index
Revises: 0004_server_timelines
Create Date: 2026-12-06

Between its full reads a daemon asks for the rows whose ``next_run`` has come
(or is about to), that never ran, or that it names (``read_due_states`` in
``crontabber/store/sql/postgresql.sql``): with this index that costs the due
rows, not the table.
"""

from __future__ import annotations

from alembic import op

revision = "0005_next_run_index"
down_revision = "0004_server_timelines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("crontabber_next_run_idx", "crontabber", ["next_run"])


def downgrade() -> None:
    op.drop_index("crontabber_next_run_idx", table_name="crontabber")
