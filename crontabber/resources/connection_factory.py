"""The job-facing PostgreSQL connection factory: ``crontabber.connection_factory.ConnectionFactory``.

``with_transactional_resource(resource_class, name)`` builds
``resource_class(config.<name>)`` and hands it to a transaction executor. A
resource class written for the original crontabber (or Socorro) provides:

- ``__call__(name=None)``: a context manager yielding a connection, which has
  ``commit()`` and ``rollback()``; leaving the block hands the connection to
  ``close_connection``;
- ``close_connection(connection, force=False)``: close it (a pooling class may
  keep it unless ``force``);
- ``force_reconnect()``: forget any kept connection after a failure;
- ``operational_exceptions`` (a tuple: connection failures worth another
  attempt), ``conditional_exceptions`` (a tuple: failures that may be such)
  and ``is_operational_exception(exc)`` (whether one of the latter is);
- optionally ``required_config``: its options, which configman puts in the
  job's ``<name>`` namespace.

:class:`ConnectionFactory` is that interface for PostgreSQL. Unlike the
original's, it keeps no pool: each ``__call__`` opens a new connection and
always closes it, and a lost connection is recognised by SQLSTATE and driver
class (:func:`crontabber.db.retry.is_lost_connection`), never by message text.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions

from crontabber.db.connect import POSTGRES_DEFAULTS
from crontabber.db.retry import is_lost_connection
from crontabber.db.url import postgres_params

log = logging.getLogger(__name__)

CONNECTION_KEYS = ("host", "port", "dbname", "user", "password")
EARLY_KEYS = (
    "database_hostname",
    "database_port",
    "database_name",
    "database_username",
    "database_password",
)
REFERENCE = "resource.postgresql"
DEFAULT_PORT = 5432
# The names crontabber's early releases and their largest user gave the connection's
# values, where they were read from, and what each is.
EARLY_OPTIONS = (
    ("database_hostname", "resource.postgresql", "the hostname of the database"),
    ("database_port", "resource.postgresql", "the port for the database"),
    ("database_name", "resource.postgresql", "the name of the database"),
    ("database_username", "secrets.postgresql", "the name of the user"),
    ("database_password", "secrets.postgresql", "the user's database password"),
)
HIDDEN = "<hidden>"


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
    :func:`crontabber.db.url.postgres_params`); errors never repeat the URL."""
    try:
        return postgres_params(url)
    except ValueError as exc:
        raise ValueError(f"database_url: {exc}") from None


def connection_params(config: Any) -> dict[str, Any]:
    """psycopg2 keyword arguments from a job's options.

    A non-empty ``database_url`` is used as it is. Otherwise each of ``host``,
    ``port``, ``dbname``, ``user`` and ``password`` left empty takes its value
    from ``[resource] [[postgresql]]`` (reached through acquisition), else from
    the early releases' name for it (``database_hostname``...); keys empty
    everywhere are left to libpq.
    """
    url = option(config, "database_url")
    if url:
        return params_from_url(str(url))
    fallback = option(option(config, "resource", None), "postgresql", None)
    params: dict[str, Any] = {}
    for key, early in zip(CONNECTION_KEYS, EARLY_KEYS, strict=True):
        value = option(config, key)
        if value == "" and fallback is not None:
            value = option(fallback, key)
        if value in ("", DEFAULT_PORT if key == "port" else ""):
            value = option(config, early) or value  # the early releases' name for it
        if value != "":
            params[key] = int(value) if key == "port" else str(value)
    return params


def describe(params: dict[str, Any]) -> str:
    """``user@host:port/dbname``, for log lines: never the password."""
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"{user}{params.get('host', 'localhost')}{port}/{params.get('dbname', '')}"


def _namespace(url_doc: str, rows: tuple[tuple[str, Any, str], ...], reference: bool) -> Any:
    """A configman namespace: ``database_url``, then one option per row (name, default, doc)."""
    from crontabber.config import configman_compat

    namespace = configman_compat.load().Namespace()
    namespace.add_option("database_url", default="", doc=url_doc, secret=True)
    for key, default, doc in rows:
        extra: dict[str, Any] = {"reference_value_from": REFERENCE} if reference else {}
        if key == "port":
            extra["from_string_converter"] = optional_int
        elif not reference:
            extra["from_string_converter"] = str
        if key == "password":
            extra["secret"] = True
        namespace.add_option(key, default=default, doc=doc, **extra)
    return namespace


class ConnectionFactory:
    """PostgreSQL connections from a job's ``database`` namespace (the original's class).

    ``host``, ``port``, ``dbname``, ``user`` and ``password`` default to
    ``[resource] [[postgresql]]``; a non-empty ``database_url`` wins over them.
    """

    __module__ = "crontabber.connection_factory"  # the original's name: what dump_conf writes

    IntegrityError = psycopg2.IntegrityError
    operational_exceptions: tuple[type[BaseException], ...] = (
        psycopg2.OperationalError,
        psycopg2.InterfaceError,
        socket.timeout,
    )
    conditional_exceptions: tuple[type[BaseException], ...] = (psycopg2.ProgrammingError,)

    def __init__(self, config: Any, local_config: Any = None) -> None:
        self.config = config
        self.params = connection_params(config if local_config is None else local_config)

    @classmethod
    def get_required_config(cls) -> Any:
        """The options configman puts in the resource's namespace, as the original had them,
        and the names crontabber's early releases gave the same values (read, so that
        ``self.config.database.database_name`` and its kin are what they were then)."""
        namespace = _namespace(
            "postgresql:// URL of the database; when set, the options below are unused",
            (
                ("host", "", "the hostname of the database"),
                ("port", 5432, "the port for the database"),
                ("dbname", "", "the name of the database"),
                ("user", "", "the name of the user"),
                ("password", "", "the user's database password"),
            ),
            reference=True,
        )
        for key, reference, what in EARLY_OPTIONS:
            namespace.add_option(
                key,
                default="",
                doc=f"{what} (the early releases' name; [{reference.replace('.', '] [[')}]])",
                reference_value_from=reference,
                secret=key == "database_password",
            )
        return namespace

    @classmethod
    def job_section_options(cls) -> Any:
        """The options a job's own ``[[class-Name]]`` section may give for this resource,
        each empty by default (see :func:`crontabber.resources.mixins.with_transactional_resource`)."""
        return _namespace(
            "postgresql:// URL of the job's database; when set, the options below are unused",
            tuple(
                (key, "", f"{what}; empty: [resource] [[postgresql]] {key}")
                for key, what in (
                    ("host", "PostgreSQL host"),
                    ("port", "PostgreSQL port"),
                    ("dbname", "database name"),
                    ("user", "PostgreSQL user"),
                    ("password", "PostgreSQL password"),
                )
            ),
            reference=False,
        )

    def connect(self) -> psycopg2.extensions.connection:
        """A new connection; an error never carries the password. It has the state
        database's connect timeout and TCP keepalives (``POSTGRES_DEFAULTS``) unless
        ``database_url`` gives its own: an unreachable server is an error after 5 s,
        and a connection gone silent one after about 20 s, not a run that hangs."""
        log.debug("connecting to PostgreSQL %s", describe(self.params))
        try:
            return psycopg2.connect(**{**POSTGRES_DEFAULTS, **self.params})
        except psycopg2.Error as exc:
            password = self.params.get("password")
            if password and password in str(exc):
                raise type(exc)(str(exc).replace(password, HIDDEN)) from None
            raise

    def connection(self, name: str | None = None) -> psycopg2.extensions.connection:
        """A new connection (``name`` is accepted for the original's signature)."""
        return self.connect()

    @contextlib.contextmanager
    def __call__(self, name: str | None = None) -> Iterator[psycopg2.extensions.connection]:
        connection = self.connection(name)
        try:
            yield connection
        finally:
            self.close_connection(connection, force=True)

    def close_connection(self, connection: Any, force: bool = False) -> None:
        """Close ``connection``; one that is already gone is no error."""
        with contextlib.suppress(psycopg2.Error):
            connection.close()

    def close(self) -> None:
        """Nothing to do: no connection outlives its ``with`` block."""

    def force_reconnect(self) -> None:
        """Nothing to do: every ``__call__`` connects anew."""

    def in_transaction(self, connection: Any) -> bool:
        status = connection.get_transaction_status()
        return status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection failed and a new attempt may succeed."""
        return is_lost_connection(exc)

    def is_operational_exception(self, exc: BaseException) -> bool:
        """Whether a conditional exception is in fact a lost connection."""
        return is_lost_connection(exc)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self.params)!r})"
