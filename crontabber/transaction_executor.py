"""The original crontabber's transaction executors, under their original names.

``with_transactional_resource`` builds ``executor_class(config.<name>,
connection_factory)``; ``executor(function, *args)`` runs
``function(connection, *args)`` in one transaction: commit on return,
rollback on exception. The classes differ in what they do when the
connection fails (see :mod:`crontabber.connection_factory` for how a failure
is judged transient):

- :class:`TransactionExecutor` retries ``<name>_max_retries`` times (default
  3) after pauses of ``<name>_backoff_seconds``, doubling (the original's
  class did not retry at all);
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

from . import resources
from .resources import first_line, option

log = logging.getLogger("crontabber")

T = TypeVar("T")

DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 1.0


def string_to_list_of_ints(text: Any) -> list[int]:
    """``"10, 30, 60"`` (quotes allowed) -> ``[10, 30, 60]``; a list stays a list."""
    if isinstance(text, (list, tuple)):
        return [int(value) for value in text]
    cleaned = str(text).replace('"', "").replace("'", "")
    return [int(part) for part in cleaned.split(",") if part.strip()]


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


class TransactionExecutor(resources.TransactionExecutor):
    """The original's ``TransactionExecutor(config, connection_factory)``, retrying lost connections.

    ``resource_name`` (given by ``with_transactional_resource``) names the
    ``<name>_max_retries`` and ``<name>_backoff_seconds`` options read from
    ``config``; ``quit_check_callback`` is called before every attempt.
    """

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
        super().__init__(
            connection_factory,
            max_retries=int(option(config, f"{resource_name}_max_retries", DEFAULT_MAX_RETRIES)),
            backoff_seconds=float(
                option(config, f"{resource_name}_backoff_seconds", DEFAULT_BACKOFF_SECONDS)
            ),
            name=resource_name,
            sleep=sleep,
        )
        self.config = config
        self.quit_check = quit_check_callback or (lambda: None)
        self.do_quit_check = True

    @property
    def connection_source_type(self) -> str:
        return type(self.connection_factory).__module__

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient_failure(self.connection_factory, exc)

    def before_retry(self) -> None:
        force_reconnect = getattr(self.connection_factory, "force_reconnect", None)
        if force_reconnect is not None:
            force_reconnect()

    def _attempt(self, function: Callable[..., T], args: tuple, kwargs: dict) -> T:
        if self.do_quit_check:
            self.quit_check()
        return super()._attempt(function, args, kwargs)


def _backoff_options() -> Any:
    from . import configman_compat

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

    @classmethod
    def get_required_config(cls) -> Any:
        return _backoff_options()

    def delays(self) -> Iterator[float]:
        yield from string_to_list_of_ints(option(self.config, "backoff_delays", "10, 30, 60"))

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        delays = self.delays()
        while True:
            try:
                return self._attempt(function, args, kwargs)
            except Exception as exc:
                if not self.is_transient(exc):
                    raise
                pause = next(delays, None)
                if pause is None:
                    raise
                log.warning(
                    "%s: connection failed (%s: %s); retrying in %ss",
                    self.name,
                    type(exc).__name__,
                    first_line(exc),
                    pause,
                )
                self.responsive_sleep(pause)
                self.before_retry()

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

    def delays(self) -> Iterator[float]:
        delays = list(super().delays()) or [1]
        yield from delays
        while True:
            yield delays[-1]
