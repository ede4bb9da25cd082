"""The original crontabber's name for the job class: ``crontabber.base.BaseCronApp``.

A thin re-export; the class lives in :mod:`crontabber.jobs.app`.
"""

from __future__ import annotations

from crontabber.jobs.app import App, BaseCronApp

__all__ = ["App", "BaseCronApp"]
