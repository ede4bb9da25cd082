"""The original crontabber's ``crontabber.transaction_executor`` classes.

Thin re-exports, so that ini files and apps naming them keep working; the
classes live in :mod:`crontabber.resources.transaction_executor` and keep this
dotted name as their ``__module__``, which is what ``--admin.dump_conf`` writes.
"""

from __future__ import annotations

from crontabber.resources.transaction_executor import (
    TransactionExecutor,
    TransactionExecutorWithInfiniteBackoff,
    TransactionExecutorWithLimitedBackoff,
    string_to_list_of_ints,
)

__all__ = [
    "TransactionExecutor",
    "TransactionExecutorWithInfiniteBackoff",
    "TransactionExecutorWithLimitedBackoff",
    "string_to_list_of_ints",
]
