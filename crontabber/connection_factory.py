"""The original crontabber's PostgreSQL connection factory, and the interface of every resource.

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
always closes it, and transient failures are recognised by SQLSTATE and
driver class, never by message text.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions

from .resources import PostgreSQLConnectionFactory, is_transient_postgres_error, optional_int

REFERENCE = "resource.postgresql"


class ConnectionFactory(PostgreSQLConnectionFactory):
    """PostgreSQL connections from a job's ``database`` namespace (the original's class).

    ``host``, ``port``, ``dbname``, ``user`` and ``password`` default to
    ``[resource] [[postgresql]]``; a non-empty ``database_url`` wins over them.
    """

    IntegrityError = psycopg2.IntegrityError
    operational_exceptions: tuple[type[BaseException], ...] = (
        psycopg2.OperationalError,
        psycopg2.InterfaceError,
        socket.timeout,
    )
    conditional_exceptions: tuple[type[BaseException], ...] = (psycopg2.ProgrammingError,)

    def __init__(self, config: Any, local_config: Any = None) -> None:
        self.config = config
        super().__init__(config if local_config is None else local_config)

    @classmethod
    def get_required_config(cls) -> Any:
        """The options configman puts in the resource's namespace, as the original had them."""
        from . import configman_compat

        namespace = configman_compat.load().Namespace()
        namespace.add_option(
            "database_url",
            default="",
            doc="postgresql:// URL of the database; when set, the options below are unused",
            secret=True,
        )
        namespace.add_option(
            "host", default="", doc="the hostname of the database", reference_value_from=REFERENCE
        )
        namespace.add_option(
            "port",
            default=5432,
            doc="the port for the database",
            from_string_converter=optional_int,
            reference_value_from=REFERENCE,
        )
        namespace.add_option(
            "dbname", default="", doc="the name of the database", reference_value_from=REFERENCE
        )
        namespace.add_option(
            "user", default="", doc="the name of the user", reference_value_from=REFERENCE
        )
        namespace.add_option(
            "password",
            default="",
            doc="the user's database password",
            secret=True,
            reference_value_from=REFERENCE,
        )
        return namespace

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

    def is_operational_exception(self, exc: BaseException) -> bool:
        """Whether a conditional exception is in fact a lost connection."""
        return is_transient_postgres_error(exc)
