"""Jobs that use PostgreSQL through the mixins.

Each job connects with its own options, set in ``[crontabber] [[class-Name]]``;
any of ``host``, ``port``, ``dbname``, ``user`` and ``password`` left empty is
taken from ``[resource] [[postgresql]]``, or give a whole ``database_url``::

    [crontabber]
    jobs = '''
    example_apps.postgres_job.HeartbeatApp|5m
    example_apps.postgres_job.PruneHeartbeatsApp|1d|03:00
    '''
      [[class-PruneHeartbeatsApp]]
      keep_days = 7
      database_max_retries = 5
    [resource]
      [[postgresql]]
      host = db.example.com
      dbname = jobs
      user = crontabber
      password = secret
"""

from __future__ import annotations

import logging
from typing import Any

from configman import Namespace

from crontabber import App
from crontabber.mixins import as_single_postgres_transaction, with_postgres_connection_as_argument

log = logging.getLogger(__name__)


@as_single_postgres_transaction()
class HeartbeatApp(App):
    """Records that it ran. The whole ``run`` is one transaction: it commits when
    ``run`` returns, rolls back when it raises, and runs again on a new connection
    if the connection is lost (``database_max_retries`` times)."""

    app_name = "heartbeat"

    def run(self, connection: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS example_heartbeat (at timestamptz NOT NULL)")
            cursor.execute("INSERT INTO example_heartbeat (at) VALUES (now())")


@with_postgres_connection_as_argument()
class PruneHeartbeatsApp(App):
    """Deletes old heartbeats in small batches, each its own transaction.

    ``run`` gets a plain connection and commits when it wants to; whatever it
    has not committed is rolled back when the connection is closed after ``run``.
    """

    app_name = "prune-heartbeats"
    depends_on = "heartbeat"
    required_config = Namespace()
    required_config.add_option("keep_days", default=30, doc="days of heartbeats to keep")
    required_config.add_option("batch_size", default=1000, doc="rows deleted per transaction")

    def run(self, connection: Any) -> None:
        deleted = 1
        while deleted:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM example_heartbeat WHERE ctid IN ("
                    " SELECT ctid FROM example_heartbeat"
                    " WHERE at < now() - make_interval(days => %s) LIMIT %s)",
                    (int(self.config.keep_days), int(self.config.batch_size)),
                )
                deleted = cursor.rowcount
            connection.commit()
            log.info("pruned %d heartbeats", deleted)
