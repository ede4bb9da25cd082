"""``crontabber.interrupts``: the names a run's error is recorded under, and the signal handlers.

Thin re-exports: :class:`~crontabber.errors.Terminated` and
:class:`~crontabber.errors.MaxRuntimeExceeded` (a job may catch them by the
names the state table and the README give them), and
:class:`~crontabber.run.interrupts.SignalInterrupts`, which a program that
drives a :class:`~crontabber.run.runner.Runner` itself passes as
``interrupts=`` to get signals and ``max_runtime``.
"""

from __future__ import annotations

from crontabber.errors import GracefulStop, MaxRuntimeExceeded, Terminated
from crontabber.run.interrupts import DaemonSignals, NoInterrupts, SignalInterrupts

__all__ = [
    "DaemonSignals",
    "GracefulStop",
    "MaxRuntimeExceeded",
    "NoInterrupts",
    "SignalInterrupts",
    "Terminated",
]
