"""Transactional resources for jobs: the PostgreSQL connection factory and the executor.

A *connection factory* is called with no arguments and returns a context
manager that yields an open connection and always closes it; its
``is_transient(exc)`` says whether a failure is worth a new connection and
another attempt. :class:`TransactionExecutor` runs a function in a transaction
on such a factory, retrying transient failures with a growing pause.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import psycopg2
import psycopg2.extensions

from .database import postgres_params

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECTION_KEYS = ("host", "port", "dbname", "user", "password")
# Class 08 (connection exception) and the shutdown codes of class 57 (operator intervention).
TRANSIENT_SQLSTATE_CLASS = "08"
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, starting up
MAX_BACKOFF_SECONDS = 60.0
HIDDEN = "<hidden>"


class ConnectionFactory(Protocol):
    """What :class:`TransactionExecutor` and the mixins need from a resource."""

    def __call__(self) -> contextlib.AbstractContextManager[Any]:
        """A context manager yielding an open connection, closed on exit whatever happens."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection failed and a new attempt may succeed."""
        ...


def is_transient_postgres_error(exc: BaseException) -> bool:
    """A lost or refused PostgreSQL connection, judged by driver class and SQLSTATE only.

    ``InterfaceError`` (the connection is already closed) and an
    ``OperationalError`` without a SQLSTATE (libpq could not reach the server, or
    the server went away) are transient, as is any error whose SQLSTATE is in
    class 08 or is 57P01, 57P02 or 57P03.
    """
    if isinstance(exc, psycopg2.InterfaceError):
        return True
    if not isinstance(exc, psycopg2.Error):
        return False
    code = exc.pgcode
    if code is None:
        return isinstance(exc, psycopg2.OperationalError)
    return code.startswith(TRANSIENT_SQLSTATE_CLASS) or code in TRANSIENT_SQLSTATES


def option(config: Any, key: str, default: Any = "") -> Any:
    """``config.<key>``, or ``default`` when the config has no such option."""
    try:
        value = getattr(config, key)
    except (AttributeError, KeyError):
        return default
    return default if value is None else value


def optional_int(text: Any) -> int | str:
    """An option converter: an integer, or ``""`` for a blank value."""
    text = str(text).strip()
    return int(text) if text else ""


def params_from_url(url: str) -> dict[str, Any]:
    """psycopg2 keyword arguments from a job's ``database_url`` (see
    :func:`crontabber.database.postgres_params`); errors never repeat the URL."""
    try:
        return postgres_params(url)
    except ValueError as exc:
        raise ValueError(f"database_url: {exc}") from None


def postgres_section(config: Any) -> Any:
    """``[resource] [[postgresql]]``, reached from a job's options through acquisition."""
    return option(option(config, "resource", None), "postgresql", None)


def connection_params(config: Any) -> dict[str, Any]:
    """psycopg2 keyword arguments from a job's options.

    A non-empty ``database_url`` is used as it is. Otherwise each of ``host``,
    ``port``, ``dbname``, ``user`` and ``password`` left empty takes its value
    from ``[resource] [[postgresql]]``; keys empty in both are left to libpq.
    """
    url = option(config, "database_url")
    if url:
        return params_from_url(str(url))
    fallback = postgres_section(config)
    params: dict[str, Any] = {}
    for key in CONNECTION_KEYS:
        value = option(config, key)
        if value == "" and fallback is not None:
            value = option(fallback, key)
        if value != "":
            params[key] = int(value) if key == "port" else str(value)
    return params


def describe(params: dict[str, Any]) -> str:
    """``user@host:port/dbname``, for log lines: never the password."""
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"{user}{params.get('host', 'localhost')}{port}/{params.get('dbname', '')}"


class PostgreSQLConnectionFactory:
    """psycopg2 connections configured by a job's options (see :func:`connection_params`)."""

    def __init__(self, config: Any) -> None:
        self.params = connection_params(config)

    @classmethod
    def get_required_config(cls) -> Any:
        """The options this factory reads, each empty by default."""
        from . import configman_compat

        namespace = configman_compat.load().Namespace()
        namespace.add_option(
            "database_url",
            default="",
            doc="postgresql:// URL of the job's database; when set, the options below are unused",
            secret=True,
        )
        for key, doc in (
            ("host", "PostgreSQL host; empty: [resource] [[postgresql]] host"),
            ("port", "PostgreSQL port; empty: [resource] [[postgresql]] port"),
            ("dbname", "database name; empty: [resource] [[postgresql]] dbname"),
            ("user", "PostgreSQL user; empty: [resource] [[postgresql]] user"),
            ("password", "PostgreSQL password; empty: [resource] [[postgresql]] password"),
        ):
            namespace.add_option(
                key,
                default="",
                doc=doc,
                secret=key == "password",
                from_string_converter=optional_int if key == "port" else str,
            )
        return namespace

    # The options a job's own [[class-Name]] section may give for this resource,
    # each empty by default (see crontabber.mixins.with_transactional_resource).
    job_section_options = get_required_config

    def connect(self) -> psycopg2.extensions.connection:
        """A new connection; an error never carries the password."""
        log.debug("connecting to PostgreSQL %s", describe(self.params))
        try:
            return psycopg2.connect(**self.params)
        except psycopg2.Error as exc:
            password = self.params.get("password")
            if password and password in str(exc):
                raise type(exc)(str(exc).replace(password, HIDDEN)) from None
            raise

    @contextlib.contextmanager
    def __call__(self) -> Iterator[psycopg2.extensions.connection]:
        connection = self.connect()
        try:
            yield connection
        finally:
            connection.close()

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient_postgres_error(exc)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self.params)!r})"


class TransactionExecutor:
    """Runs ``function(connection, *args)`` in a transaction on a fresh connection.

    Returning commits, raising rolls back. When the failure is transient
    (``connection_factory.is_transient``) the whole function runs again on a new
    connection, up to ``max_retries`` more times, after pauses of
    ``backoff_seconds``, then twice that, and so on (at most 60 seconds). The
    function must therefore be safe to run again: a transient failure during
    ``COMMIT`` leaves unknown whether the first attempt was committed.
    """

    def __init__(
        self,
        connection_factory: ConnectionFactory,
        *,
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        name: str = "database",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_retries < 0 or backoff_seconds < 0:
            raise ValueError(f"{name}: max_retries and backoff_seconds must not be negative")
        self.connection_factory = connection_factory
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.name = name
        self.sleep = sleep

    def delay(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1, 2, ...)."""
        return min(self.backoff_seconds * 2 ** (retry - 1), MAX_BACKOFF_SECONDS)

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        retry = 0
        while True:
            try:
                return self._attempt(function, args, kwargs)
            except Exception as exc:
                if retry >= self.max_retries or not self.is_transient(exc):
                    raise
                retry += 1
                pause = self.delay(retry)
                log.warning(
                    "%s: connection failed (%s: %s); retry %d of %d in %.1fs",
                    self.name,
                    type(exc).__name__,
                    first_line(exc),
                    retry,
                    self.max_retries,
                    pause,
                )
                self.sleep(pause)
                self.before_retry()

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt on a new connection."""
        return self.connection_factory.is_transient(exc)

    def before_retry(self) -> None:
        """Called after the pause, before the next attempt (nothing here)."""

    def _attempt(self, function: Callable[..., T], args: tuple, kwargs: dict) -> T:
        with self.connection_factory() as connection:
            try:
                result = function(connection, *args, **kwargs)
            except BaseException:
                rollback_quietly(connection, self.name)
                raise
            connection.commit()
            return result


def rollback_quietly(connection: Any, name: str) -> None:
    """Roll back, ignoring a connection that is already gone: the first error matters."""
    try:
        connection.rollback()
    except Exception as exc:
        log.debug("%s: rollback failed: %s: %s", name, type(exc).__name__, first_line(exc))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
