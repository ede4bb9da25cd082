"""The state store: each job's state in one database table, and the claim that runs it once.

:func:`open_store` picks the backend from the URL: :mod:`crontabber.store.postgresql`
for ``postgresql://...``, :mod:`crontabber.store.sqlite` for ``sqlite:///path``.
Both implement the contract written once in :mod:`crontabber.store.abc`, on the
connection and retry policy of :mod:`crontabber.store.session`. The records
passed to and from a store are in :mod:`crontabber.store.records`, the lease
rule's client side in :mod:`crontabber.store.lease`, the statements in
``sql/`` (read by :mod:`crontabber.store.queries`), the schema's description in
:mod:`crontabber.store.schema` and its migrations in :mod:`crontabber.store.migrate`;
:mod:`crontabber.store.integrity` tells a damaged SQLite file from an old schema.

Names are imported from their modules when first asked for (module
``__getattr__``): importing this package imports no backend, so the backends
can import the contract without a cycle, and a tick loads only its own driver.
"""

from __future__ import annotations

import datetime as dt

from crontabber.store.session import RETRY_FOR, TIMEOUT

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from crontabber.store.abc import StateStore


# Public name -> the module that defines it.
_EXPORTS = {
    "StateStore": "crontabber.store.abc",
    "DEFAULT_MAX_AGE": "crontabber.store.abc",
    "Claim": "crontabber.store.records",
    "ClaimStatus": "crontabber.store.records",
    "Holder": "crontabber.store.records",
    "JobState": "crontabber.store.records",
    "LogCounts": "crontabber.store.records",
    "LogEntry": "crontabber.store.records",
    "LogPage": "crontabber.store.records",
    "Outcome": "crontabber.store.records",
    "ResetStatus": "crontabber.store.records",
    "Snapshot": "crontabber.store.records",
    "abandoned_error": "crontabber.store.records",
    "STATE_COLUMNS": "crontabber.store.schema",
    "LOG_COLUMNS": "crontabber.store.schema",
}

__all__ = [
    "DEFAULT_MAX_AGE",
    "LOG_COLUMNS",
    "STATE_COLUMNS",
    "Claim",
    "ClaimStatus",
    "Holder",
    "JobState",
    "LogCounts",
    "LogEntry",
    "LogPage",
    "Outcome",
    "ResetStatus",
    "Snapshot",
    "StateStore",
    "abandoned_error",
    "open_store",
]


def open_store(
    url: str,
    *,
    retry_for: dt.timedelta = RETRY_FOR,
    timeout: dt.timedelta | None = TIMEOUT,
    auto_migrate: bool = True,
    give_up: Callable[[], bool] | None = None,
) -> StateStore:
    """A store for ``postgresql://...`` or ``sqlite:///path``. Nothing is sent until used.

    Writes are retried through connection trouble for ``retry_for``, unless
    ``give_up()`` says to stop (asked before and during each pause); one statement
    may go unanswered for ``timeout`` (None: for ever) before its connection is
    given up (see :mod:`crontabber.db.deadline`), and on PostgreSQL the server ends
    it sooner (see :mod:`crontabber.store.session`)."""
    from crontabber.db.url import parse_url

    parsed = parse_url(str(url))
    options = {
        "retry_for": retry_for,
        "timeout": timeout,
        "auto_migrate": auto_migrate,
        "give_up": give_up,
    }
    if parsed.dialect == "postgresql":
        from crontabber.store.postgresql import PostgresStore

        return PostgresStore(parsed, **options)
    from crontabber.store.sqlite import SqliteStore

    return SqliteStore(parsed, **options)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crontabber.store' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
