"""The original crontabber's ``crontabber.mixins``: the decorators that give jobs resources.

Thin re-exports; the decorators live in :mod:`crontabber.resources.mixins` and
the subprocess mixin in :mod:`crontabber.resources.processes`.
"""

from __future__ import annotations

from crontabber.resources.mixins import (
    as_backfill_cron_app,
    as_single_postgres_transaction,
    using_postgres,
    with_postgres_connection_as_argument,
    with_postgres_transactions,
    with_resource_connection_as_argument,
    with_single_postgres_transaction,
    with_single_transaction,
    with_transactional_resource,
)
from crontabber.resources.processes import ProcessTimeout, with_subprocess

__all__ = [
    "ProcessTimeout",
    "as_backfill_cron_app",
    "as_single_postgres_transaction",
    "using_postgres",
    "with_postgres_connection_as_argument",
    "with_postgres_transactions",
    "with_resource_connection_as_argument",
    "with_single_postgres_transaction",
    "with_single_transaction",
    "with_subprocess",
    "with_transactional_resource",
]
