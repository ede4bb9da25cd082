"""The state database's plumbing: URLs, the one way to connect, the one retry policy.

- :mod:`crontabber.db.url`: URLs read and shown without secrets;
- :mod:`crontabber.db.connect`: DB-API connections for a tick, a SQLAlchemy
  engine for migrations and tests;
- :mod:`crontabber.db.retry`: which errors are transient, and
  :class:`~crontabber.db.retry.RetryPolicy`, used by the store, the jobs'
  transaction executors and the daemon alike.
"""
