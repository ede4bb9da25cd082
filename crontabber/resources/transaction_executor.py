"""The job-facing transaction executors, under the original crontabber's names.

``with_transactional_resource`` builds ``executor_class(config.<name>,
connection_factory)``; ``executor(function, *args)`` runs
``function(connection, *args)`` in one transaction on a fresh connection:
commit on return, rollback on exception. When the connection fails (the
factory says so: :func:`is_transient_failure`) the whole function runs again
on a new connection, after the pauses of the executor's
:class:`~crontabber.db.retry.RetryPolicy`:

- :class:`TransactionExecutor` retries ``<name>_max_retries`` times (default
  3) after pauses of ``<name>_backoff_seconds``, doubling, at most 60 seconds
  (the original's class did not retry at all);
- :class:`TransactionExecutorWithLimitedBackoff` retries once after each of
  ``backoff_delays`` seconds, then gives up;
- :class:`TransactionExecutorWithInfiniteBackoff` retries for ever, pausing
  ``backoff_delays`` seconds and then the last of them again and again.

A function run through any of them must be safe to run again: a failure
during ``COMMIT`` leaves unknown whether the first attempt was committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from crontabber.db.retry import RetryPolicy
from crontabber.resources import DEFAULT_BACKOFF_SECONDS, DEFAULT_MAX_RETRIES
from crontabber.resources.connection_factory import option

log = logging.getLogger("crontabber")

T = TypeVar("T")

MAX_BACKOFF_SECONDS = 60.0
ORIGINAL_MODULE = "crontabber.transaction_executor"  # what dump_conf writes for these classes


def string_to_list_of_ints(text: Any) -> list[int]:
    """``"10, 30, 60"`` (quotes allowed) -> ``[10, 30, 60]``; a list stays a list."""
    if isinstance(text, (list, tuple)):
        return [int(value) for value in text]
    cleaned = str(text).replace('"', "").replace("'", "")
    return [int(part) for part in cleaned.split(",") if part.strip()]


string_to_list_of_ints.__module__ = ORIGINAL_MODULE


def is_transient_failure(connection_factory: Any, exc: BaseException) -> bool:
    """Whether ``exc`` is a connection failure of ``connection_factory``'s resource.

    A factory of this package says so itself (``is_transient``); one written
    for the original crontabber through ``operational_exceptions``,
    ``conditional_exceptions`` and ``is_operational_exception``.
    """
    is_transient = getattr(connection_factory, "is_transient", None)
    if is_transient is not None:
        return bool(is_transient(exc))
    if isinstance(exc, tuple(getattr(connection_factory, "operational_exceptions", ()))):
        return True
    conditional = tuple(getattr(connection_factory, "conditional_exceptions", ()))
    return isinstance(exc, conditional) and bool(connection_factory.is_operational_exception(exc))


class TransactionExecutor:
    """The original's ``TransactionExecutor(config, connection_factory)``, retrying lost connections.

    ``resource_name`` (given by ``with_transactional_resource``) names the
    ``<name>_max_retries`` and ``<name>_backoff_seconds`` options read from
    ``config``; ``quit_check_callback`` is called before every attempt.
    """

    __module__ = ORIGINAL_MODULE

    required_config: Any = None

    def __init__(
        self,
        config: Any,
        connection_factory: Any,
        quit_check_callback: Callable[[], Any] | None = None,
        *,
        resource_name: str = "database",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.connection_factory = connection_factory
        self.name = resource_name
        self.sleep = sleep
        self.quit_check = quit_check_callback or (lambda: None)
        self.do_quit_check = True
        self.policy = self.retry_policy()

    def retry_policy(self) -> RetryPolicy:
        """The pauses between attempts, from ``<name>_max_retries`` and ``<name>_backoff_seconds``."""
        max_retries = int(option(self.config, f"{self.name}_max_retries", DEFAULT_MAX_RETRIES))
        backoff = float(
            option(self.config, f"{self.name}_backoff_seconds", DEFAULT_BACKOFF_SECONDS)
        )
        if max_retries < 0 or backoff < 0:
            raise ValueError(f"{self.name}: max_retries and backoff_seconds must not be negative")
        return RetryPolicy(
            first_delay=backoff,
            max_delay=MAX_BACKOFF_SECONDS,
            retries=max_retries,
            transient=self.is_transient,
        )

    @property
    def max_retries(self) -> int | None:
        """How many times a lost connection is retried (None: for ever)."""
        return self.policy.retries

    @property
    def backoff_seconds(self) -> float:
        """The first pause before a retry."""
        return self.policy.first_delay

    @property
    def connection_source_type(self) -> str:
        return type(self.connection_factory).__module__

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        pauses = self.policy.pauses()
        while True:
            try:
                return self._attempt(function, args, kwargs)
            except Exception as exc:
                pause = pauses.next() if self.policy.transient(exc) else None
                if pause is None:
                    raise
                self.say_retry(exc, pauses.retries, pause)
                self.wait(pause)
                self.before_retry()

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt on a new connection."""
        return is_transient_failure(self.connection_factory, exc)

    def say_retry(self, exc: BaseException, retry: int, pause: float) -> None:
        log.warning(
            "%s: connection failed (%s: %s); retry %d of %d in %.1fs",
            self.name,
            type(exc).__name__,
            first_line(exc),
            retry,
            self.policy.retries,
            pause,
        )

    def wait(self, seconds: float) -> None:
        self.sleep(seconds)

    def before_retry(self) -> None:
        """After the pause, before the next attempt: a pooling factory forgets its connection."""
        force_reconnect = getattr(self.connection_factory, "force_reconnect", None)
        if force_reconnect is not None:
            force_reconnect()

    def _attempt(self, function: Callable[..., T], args: tuple, kwargs: dict) -> T:
        if self.do_quit_check:
            self.quit_check()
        with self.connection_factory() as connection:
            try:
                result = function(connection, *args, **kwargs)
            except BaseException:
                rollback_quietly(connection, self.name)
                raise
            connection.commit()
            return result


def _backoff_options() -> Any:
    from crontabber.config import configman_compat

    namespace = configman_compat.load().Namespace()
    namespace.add_option(
        "backoff_delays",
        default="10, 30, 60, 120, 300",
        doc="seconds to wait before each retry after a lost connection",
        from_string_converter=string_to_list_of_ints,
    )
    namespace.add_option(
        "wait_log_interval",
        default=10,
        doc="seconds between log lines while waiting to retry",
        from_string_converter=int,
    )
    return namespace


class TransactionExecutorWithLimitedBackoff(TransactionExecutor):
    """Retries a lost connection once after each of ``backoff_delays`` seconds, then gives up."""

    __module__ = ORIGINAL_MODULE
    repeat_last = False

    @classmethod
    def get_required_config(cls) -> Any:
        return _backoff_options()

    def retry_policy(self) -> RetryPolicy:
        delays = tuple(string_to_list_of_ints(option(self.config, "backoff_delays", "10, 30, 60")))
        if self.repeat_last:
            delays = delays or (1,)
        return RetryPolicy(delays=delays, repeat_last=self.repeat_last, transient=self.is_transient)

    def delays(self) -> Iterator[float]:
        """The pauses before each retry, in order (the original's name for them)."""
        pauses = self.policy.pauses()
        while (pause := pauses.next()) is not None:
            yield pause

    def say_retry(self, exc: BaseException, retry: int, pause: float) -> None:
        log.warning(
            "%s: connection failed (%s: %s); retrying in %ss",
            self.name,
            type(exc).__name__,
            first_line(exc),
            pause,
        )

    def wait(self, seconds: float) -> None:
        self.responsive_sleep(seconds)

    def responsive_sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, a second at a time, calling the quit check before each."""
        interval = int(option(self.config, "wait_log_interval", 0) or 0)
        waited = 0.0
        while waited < seconds:
            if interval and waited and int(waited) % interval == 0:
                log.debug("%s: %ds of %ss waited before retrying", self.name, waited, seconds)
            self.quit_check()
            step = min(1.0, seconds - waited)
            self.sleep(step)
            waited += step


class TransactionExecutorWithInfiniteBackoff(TransactionExecutorWithLimitedBackoff):
    """Retries a lost connection for ever: ``backoff_delays``, then the last delay again."""

    __module__ = ORIGINAL_MODULE
    repeat_last = True


def rollback_quietly(connection: Any, name: str) -> None:
    """Roll back, ignoring a connection that is already gone: the first error matters."""
    try:
        connection.rollback()
    except Exception as exc:
        log.debug("%s: rollback failed: %s: %s", name, type(exc).__name__, first_line(exc))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
