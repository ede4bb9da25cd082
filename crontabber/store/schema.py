"""The schema as a tick knows it: its revision and the columns statements return.

Where the schema is written down, and what keeps the places equal:

- the migrations (``migrations/versions``) build it; :data:`SCHEMA_REVISION`
  is the newest of them (a test keeps it equal to Alembic's head);
- :mod:`crontabber.store.tables` describes the same tables in SQLAlchemy Core,
  for migrations and tests (a test compares a migrated database with it);
- ``sql/postgresql.sql`` and ``sql/sqlite.sql`` hold every statement a tick
  sends; each returns a job's row as :data:`STATE_COLUMNS`, in that order, and
  a log page as :data:`LOG_COLUMNS` (a test runs each on a migrated database).

No SQLAlchemy here: a tick imports this module.
"""

from __future__ import annotations

# The schema revision this crontabber works with: the newest in migrations/versions.
SCHEMA_REVISION = "0007_notifications"
VERSION_TABLE = "crontabber_alembic_version"  # Alembic's record, named apart from an app's own

# The columns of a job's row in the ``crontabber`` table, in the order every statement
# returns them (JobState's fields).
STATE_COLUMNS = (
    "app_name",
    "next_run",
    "first_run",
    "last_run",
    "last_success",
    "error_count",
    "depends_on",
    "last_error",
    "ongoing",
    "ongoing_host",
    "ongoing_pid",
    "ongoing_token",
    "heartbeat",
    "lease_expires",
    "fence",
    "run_now",
    "run_now_displaced",
    "cancel_requested",
)

# The columns of a ``crontabber_log`` row as the status page reads them (LogEntry's fields).
LOG_COLUMNS = (
    "id",
    "app_name",
    "log_time",
    "duration",
    "success",
    "exc_type",
    "exc_value",
    "exc_traceback",
    "superseded",
    "host",
    "pid",
    "trigger",
    "output",
)
