"""``crontabber.interrupts``: the names under which an interrupted run's error is recorded.

A thin re-export of :class:`~crontabber.errors.Terminated` and
:class:`~crontabber.errors.MaxRuntimeExceeded`, so that a job may catch them by
the names the state table and the README give them; what raises them lives in
:mod:`crontabber.run.interrupts`.
"""

from __future__ import annotations

from crontabber.errors import GracefulStop, MaxRuntimeExceeded, Terminated

__all__ = ["GracefulStop", "MaxRuntimeExceeded", "Terminated"]
