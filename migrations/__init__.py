"""crontabber's Alembic environment and revisions (installed as ``crontabber.migrations``).

Nothing here is imported as a module: Alembic reads ``env.py`` and the files of
``versions/`` from this package's directory. See :mod:`crontabber.migrate`.
"""
