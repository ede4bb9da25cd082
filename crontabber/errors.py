"""Every exception crontabber raises across its layers, in one place.

- :class:`CrontabberError` and its subclasses mean "crontabber cannot work", as
  opposed to a job failing. Each carries a message fit to print as the single
  line a user sees; the CLI prints it and exits with status 1 (a command may
  document another), and no state has been changed.
- :class:`Unreachable` and :class:`LockNotAvailable` pass between the state
  store's connection handling and its operations; they never reach a user.
- :class:`Terminated`, :class:`MaxRuntimeExceeded`, :class:`LeaseLost`,
  :class:`Cancelled` and :class:`GracefulStop` interrupt a running job. They are not ``Exception``: job code must not
  swallow them. The first two are recorded as a run's error under the names
  ``crontabber.interrupts.Terminated`` and ``crontabber.interrupts.MaxRuntimeExceeded``.
"""

from __future__ import annotations

INTERRUPTS_MODULE = "crontabber.interrupts"  # the recorded, documented name of the interrupts


class CrontabberError(Exception):
    """Base class: a problem crontabber reports in one line, never a traceback."""


class ConfigError(CrontabberError):
    """The configuration is wrong: a bad jobs line, an unknown class, a cycle..."""


class WebConfigError(ConfigError):
    """The status page cannot be served as configured (one line, naming the option)."""


class UnknownJob(CrontabberError):
    """A job name given on the command line is not in the configuration."""


class JobIsOngoing(CrontabberError):
    """The job is running, so it is left alone."""


class StateStoreError(CrontabberError):
    """The state database cannot be reached or used."""


class CannotReach(StateStoreError):
    """The state database cannot be reached."""


class StateFileGone(StateStoreError):
    """The SQLite state file was removed or replaced while crontabber had it open:
    writing on would go into a file nobody reads. A daemon stops (exit 1)."""


class StateFileCorrupt(StateStoreError):
    """The SQLite state file is damaged (``PRAGMA quick_check`` finds a problem): it is
    never migrated, and the one line says to restore it or remove it."""


class MigrationError(StateStoreError):
    """The schema cannot be brought up to date, or is newer than this crontabber."""


# What no migration mends: an unreachable database, a state file gone or damaged.
NO_MIGRATION_MENDS = (CannotReach, StateFileGone, StateFileCorrupt)


class Unreachable(Exception):
    """Connecting to the state database failed (``error``: the driver's error)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class LockNotAvailable(Exception):
    """Another process holds the row lock (SQLSTATE 55P03)."""


class ClaimLost(Exception):
    """Another process took over the claim while this one was running the job."""


class RunProcessEnded(Exception):
    """A run's process ended without its result (``os._exit``, a signal, the OOM
    killer), or a process the job forked returned into crontabber. Recorded as
    ``crontabber.RunProcessEnded``."""

    __module__ = "crontabber"


class Terminated(BaseException):
    """crontabber was asked to stop (SIGTERM). Not an Exception: job code must not swallow it."""

    __module__ = INTERRUPTS_MODULE


class MaxRuntimeExceeded(BaseException):
    """A job ran longer than its ``max_runtime``. Not an Exception: job code must not swallow it."""

    __module__ = INTERRUPTS_MODULE


class GracefulStop(BaseException):
    """A daemon was asked to stop and no job needed interrupting: it exits 0."""

    __module__ = INTERRUPTS_MODULE


class Cancelled(BaseException):
    """An operator cancelled the running job (``--cancel``, or the page): its holder's
    heartbeat read the request and the job is stopped as ``max_runtime`` stops it. Not
    an Exception: job code must not swallow it. Recorded as ``crontabber.Cancelled``."""

    __module__ = "crontabber"


class LeaseLost(BaseException):
    """This process lost the lease of the job it was running (taken over, not renewed in
    time, or the process was paused past it): the job is stopped at once, since another
    host may run it now. Not an Exception: job code must not swallow it. Recorded as
    ``crontabber.LeaseLost``."""

    __module__ = "crontabber"

    @classmethod
    def of(cls, app_name: str, reason: str) -> LeaseLost:
        """``APP: its lease was lost: REASON``, the one line a user sees."""
        return cls(f"{app_name}: its lease was lost: {reason}")
