"""Alembic revisions of crontabber's tables, one file per schema change."""
