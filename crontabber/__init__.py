"""crontabber: a distributed cron job runner with database locking.

Users import :class:`App` (``BaseCronApp``, the original's name) and
:class:`LeaseLost` from here;
the rest of the package is laid out by concern:

- ``jobs/``: the job class, the jobs syntax, schedules, job specs;
- ``config/``: options, the ini file read with or without configman, ``Settings``;
- ``db/``: the state database's URLs, connections and the one retry policy;
- ``store/``: the state store's contract, its PostgreSQL and SQLite backends,
  records, the lease, the statements, the schema and its migrations;
- ``run/``: the runner of a tick, the daemon, interrupts, error reports;
- ``resources/``: what jobs use: connections, transactions, subprocesses;
- ``status`` and ``actions``: what operators see and do, as library functions;
- ``cli/``: the ``crontabber`` command; ``web/``: the status page;
- ``errors``: every exception that crosses a layer; ``record``: frozen records.

``base``, ``mixins``, ``connection_factory``, ``transaction_executor`` and
``interrupts`` keep the original crontabber's dotted names as thin re-exports.

A tick from crontab starts often, so what it imports is a budget, guarded by
``tests/unit/test_startup.py``. An idle tick on PostgreSQL imports only these
modules of the package (and configman, SQLAlchemy, Alembic and sentry-sdk
not at all):

.. tick-modules

    crontabber
    crontabber.cli, .cli.commands, .cli.entry, .cli.operating
    crontabber.config, .config.configman_compat, .config.configman_edge,
        .config.job_config, .config.jobs_option, .config.options,
        .config.plain, .config.settings, .config.state_database, .config.values
    crontabber.db, .db.connect, .db.deadline, .db.retry, .db.url
    crontabber.errors
    crontabber.jobs, .jobs.app, .jobs.policy, .jobs.schedule, .jobs.setting,
        .jobs.spec
    crontabber.record
    crontabber.run, .run.error_reporting, .run.interrupts, .run.outcomes,
        .run.reports, .run.runner, .run.sharing
    crontabber.store, .store.abc, .store.lease, .store.operators, .store.outbox,
        .store.postgresql, .store.queries, .store.records, .store.schema,
        .store.session, .store.timeouts, .store.views
"""

from __future__ import annotations

from crontabber.config import configman_compat
from crontabber.errors import LeaseLost
from crontabber.jobs.app import App, BaseCronApp

# Job modules written for the original crontabber do `from configman import
# Namespace`; this cheap patch lets that import work on Python 3.10+. The others
# (inspect.getargspec included) are applied by configman_compat.load(), before
# configman reads anything.
configman_compat.restore_collections_aliases()

__version__ = "1.0.0"

__all__ = ["App", "BaseCronApp", "LeaseLost", "__version__"]
