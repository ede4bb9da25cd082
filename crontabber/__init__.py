"""crontabber: a distributed cron job runner with database locking."""

from __future__ import annotations

from crontabber.config import configman_compat
from crontabber.jobs.app import App, BaseCronApp

# Job modules written for the original crontabber do `from configman import
# Namespace`; this cheap patch lets that import work on Python 3.10+. The others
# (inspect.getargspec included) are applied by configman_compat.load(), before
# configman reads anything.
configman_compat.restore_collections_aliases()

__version__ = "0.1.0"

__all__ = ["App", "BaseCronApp", "__version__"]
