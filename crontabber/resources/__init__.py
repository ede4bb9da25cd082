"""What jobs use: database connections and transactions, and commands to run.

- :mod:`crontabber.resources.connection_factory`: the PostgreSQL connection
  factory (``crontabber.connection_factory.ConnectionFactory``);
- :mod:`crontabber.resources.transaction_executor`: the transaction executors,
  on the one retry policy of :mod:`crontabber.db.retry`;
- :mod:`crontabber.resources.mixins`: the class decorators that give a job its
  resources (``crontabber.mixins``);
- :mod:`crontabber.resources.processes`: the subprocess mixin.

Importing this package imports none of them (nor psycopg2).
"""

from __future__ import annotations

# A job's <name>_max_retries and <name>_backoff_seconds, when its options do not say.
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 1.0
