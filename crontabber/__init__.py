"""crontabber: a distributed cron job runner with database locking."""

from __future__ import annotations

from . import configman_compat
from .base import App, BaseCronApp

# Job modules written for the original crontabber do `from configman import
# Namespace`; these two cheap patches let that import work on Python 3.10+.
configman_compat.restore_collections_aliases()
configman_compat.restore_getargspec()

__version__ = "0.1.0"

__all__ = ["App", "BaseCronApp", "__version__"]
