"""The original crontabber's ``crontabber.connection_factory.ConnectionFactory``.

A thin re-export, so that ini files and apps naming it keep working; the class
lives in :mod:`crontabber.resources.connection_factory` and keeps this dotted
name as its ``__module__``, which is what ``--admin.dump_conf`` writes.
"""

from __future__ import annotations

from crontabber.resources.connection_factory import ConnectionFactory

__all__ = ["ConnectionFactory"]
