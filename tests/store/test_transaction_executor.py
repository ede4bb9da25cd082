"""The original's transaction executors and connection factory, under their original names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg2
import pytest
import sqlalchemy as sa

from crontabber.connection_factory import ConnectionFactory
from crontabber.transaction_executor import (
    TransactionExecutor,
    TransactionExecutorWithInfiniteBackoff,
    TransactionExecutorWithLimitedBackoff,
    string_to_list_of_ints,
)


class Lost(Exception):
    """An operational exception of the fake resource."""


class Maybe(Exception):
    """A conditional exception of the fake resource."""

    def __init__(self, operational: bool) -> None:
        super().__init__("maybe")
        self.operational = operational


class FakeConnection:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def commit(self) -> None:
        self.log.append("commit")

    def rollback(self) -> None:
        self.log.append("rollback")


class FakeFactory:
    """A resource written for the original: no ``is_transient``, only its exception tuples."""

    operational_exceptions = (Lost,)
    conditional_exceptions = (Maybe,)

    def __init__(self) -> None:
        self.log: list[str] = []

    @contextlib.contextmanager
    def __call__(self, name: str | None = None) -> Iterator[FakeConnection]:
        self.log.append("open")
        try:
            yield FakeConnection(self.log)
        finally:
            self.log.append("close")

    def force_reconnect(self) -> None:
        self.log.append("reconnect")

    def is_operational_exception(self, exc: BaseException) -> bool:
        return bool(getattr(exc, "operational", False))


def failing(times: int, error: BaseException) -> Any:
    calls: list[Any] = []

    def function(connection: Any, value: str) -> str:
        calls.append(connection)
        if len(calls) <= times:
            raise error
        return value

    function.calls = calls  # type: ignore[attr-defined]
    return function


def test_commits_on_return_and_rolls_back_on_error() -> None:
    factory = FakeFactory()
    quits: list[int] = []
    executor = TransactionExecutor(
        SimpleNamespace(), factory, lambda: quits.append(1), sleep=lambda _: None
    )
    assert executor(failing(0, Lost()), "done") == "done"
    assert factory.log == ["open", "commit", "close"]
    factory.log.clear()
    with pytest.raises(ValueError):
        executor(failing(1, ValueError("not a connection problem")), "x")
    assert factory.log == ["open", "rollback", "close"]
    assert quits == [1, 1]  # the quit check runs before every attempt


def test_retries_use_the_resource_name_options_and_reconnect() -> None:
    factory = FakeFactory()
    pauses: list[float] = []
    config = SimpleNamespace(queuing_max_retries=2, queuing_backoff_seconds=0.5)
    executor = TransactionExecutor(config, factory, resource_name="queuing", sleep=pauses.append)
    function = failing(2, Lost())
    assert executor(function, "ok") == "ok"
    assert pauses == [0.5, 1.0]
    assert factory.log.count("reconnect") == 2
    with pytest.raises(Lost):
        executor(failing(3, Lost()), "never")


@pytest.mark.parametrize(("operational", "attempts"), [(True, 2), (False, 1)])
def test_conditional_exceptions_are_retried_only_when_operational(
    operational: bool, attempts: int
) -> None:
    function = failing(1, Maybe(operational))
    executor = TransactionExecutor(SimpleNamespace(), FakeFactory(), sleep=lambda _: None)
    if operational:
        assert executor(function, "ok") == "ok"
    else:
        with pytest.raises(Maybe):
            executor(function, "ok")
    assert len(function.calls) == attempts


def test_limited_backoff_waits_each_delay_once_then_gives_up() -> None:
    slept: list[float] = []
    config = SimpleNamespace(backoff_delays=[1, 2], wait_log_interval=0)
    executor = TransactionExecutorWithLimitedBackoff(config, FakeFactory(), sleep=slept.append)
    function = failing(99, Lost())
    with pytest.raises(Lost):
        executor(function, "never")
    assert len(function.calls) == 3
    assert slept == [1.0, 1.0, 1.0]  # a second at a time: 1, then 2


def test_infinite_backoff_repeats_the_last_delay_until_it_works() -> None:
    slept: list[float] = []
    config = SimpleNamespace(backoff_delays=[1, 2], wait_log_interval=1)
    executor = TransactionExecutorWithInfiniteBackoff(config, FakeFactory(), sleep=slept.append)
    assert executor(failing(5, Lost()), "at last") == "at last"
    assert sum(slept) == 1 + 2 + 2 + 2 + 2


def test_backoff_options_as_the_original_declared_them() -> None:
    options = TransactionExecutorWithInfiniteBackoff.get_required_config()
    assert set(options) == {"backoff_delays", "wait_log_interval"}
    assert string_to_list_of_ints(options.backoff_delays.default) == [10, 30, 60, 120, 300]
    assert string_to_list_of_ints("'1, 2', 3") == [1, 2, 3]
    assert TransactionExecutor.required_config is None


@pytest.mark.postgres
def test_connection_factory_is_the_original_interface(pg_url: str) -> None:
    url = sa.make_url(pg_url)
    local = SimpleNamespace(
        host=url.host, port=url.port, dbname=url.database, user=url.username, password=""
    )
    whole = SimpleNamespace(logger=None)
    factory = ConnectionFactory(whole, local)
    assert factory.config is whole
    with factory() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone() == (url.database,)
        cursor.execute("BEGIN")
        assert factory.in_transaction(connection)
    assert connection.closed
    factory.close_connection(connection, force=True)  # already closed: no error
    factory.force_reconnect()
    factory.close()
    with factory() as connection, pytest.raises(psycopg2.errors.UndefinedTable) as raised:
        connection.cursor().execute("SELECT * FROM no_such_table")
    assert not factory.is_operational_exception(raised.value)
    assert issubclass(factory.IntegrityError, psycopg2.Error)
    assert set(ConnectionFactory.get_required_config()) == {
        "database_url",
        "host",
        "port",
        "dbname",
        "user",
        "password",
        # the early releases' names for the same values (issue 21, reproduction 8)
        "database_hostname",
        "database_port",
        "database_name",
        "database_username",
        "database_password",
    }


@pytest.mark.postgres
def test_a_terminated_connection_is_operational(pg_url: str) -> None:
    factory = ConnectionFactory(SimpleNamespace(database_url=pg_url.replace("+psycopg2", "")))
    admin = psycopg2.connect(**factory.params)
    admin.autocommit = True
    try:
        with factory() as connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with admin.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(psycopg2.OperationalError) as raised:
                connection.cursor().execute("SELECT 1")
    finally:
        admin.close()
    assert factory.is_operational_exception(raised.value)
    assert isinstance(raised.value, ConnectionFactory.operational_exceptions)
