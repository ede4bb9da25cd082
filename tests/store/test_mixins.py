"""The resource mixins against a real PostgreSQL, and real child processes."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
import traceback
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg2
import pytest
import sqlalchemy as sa

from crontabber import App
from crontabber.config.configman_edge import read_config
from crontabber.config.settings import settings_from
from crontabber.db.retry import is_lost_connection
from crontabber.mixins import (
    ProcessTimeout,
    as_backfill_cron_app,
    as_single_postgres_transaction,
    using_postgres,
    with_postgres_connection_as_argument,
    with_single_transaction,
    with_subprocess,
    with_transactional_resource,
)
from crontabber.resources.connection_factory import ConnectionFactory, params_from_url
from crontabber.resources.transaction_executor import TransactionExecutor
from crontabber.run.runner import Result, Runner
from crontabber.store import open_store

from ..helpers.specs import make_spec
from ..helpers.waiting import wait_until

SECRET = "pw-that-must-stay-hidden"


# -- jobs --------------------------------------------------------------------


@as_single_postgres_transaction()
class InsertApp(App):
    """Inserts a row; raises after inserting when ``fail`` is set; may kill its connection."""

    app_name = "insert"

    def run(self, connection: Any) -> None:
        self.connections = [*getattr(self, "connections", []), connection]
        if getattr(self, "kill", 0) >= len(self.connections):
            terminate(self.admin, backend_pid(connection))
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO items (name) VALUES (%s)", (self.app_name,))
        if getattr(self, "fail", False):
            raise ValueError("failed after inserting")


@with_postgres_connection_as_argument()
class ConnectionApp(App):
    """Inserts without committing: closing the connection must roll it back."""

    app_name = "connection"

    def run(self, connection: Any) -> None:
        self.connections = [connection]
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO items (name) VALUES (%s)", (self.app_name,))
        if getattr(self, "fail", False):
            raise ValueError("failed after inserting")


@as_single_postgres_transaction()
class WhereAmIApp(App):
    """Reports where its connection went; configured by tests/ini files."""

    app_name = "where-am-i"

    def run(self, connection: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), current_user")
            self.where = cursor.fetchone()


class WhereAmIOverriddenApp(WhereAmIApp):
    app_name = "where-am-i-overridden"


@with_subprocess
class ProcessApp(App):
    app_name = "process"

    def run(self) -> None:
        pass


# -- helpers and fixtures ------------------------------------------------------


def backend_pid(connection: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(admin: Any, pid: int) -> None:
    """Kill a backend from another connection, and wait until it is gone."""
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: pid not in other_backends(admin), f"backend {pid} is gone", timeout=10)


def other_backends(admin: Any) -> list[int]:
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def rows(admin: Any) -> list[str]:
    with admin.cursor() as cursor:
        cursor.execute("SELECT name FROM items ORDER BY name")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def admin(pg_url: str) -> Iterator[Any]:
    connection = psycopg2.connect(**params_from_url(pg_url))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE items (name text NOT NULL)")
    yield connection
    connection.close()


def make_app(app_class: type, pg_url: str, admin: Any, **attributes: Any) -> Any:
    config = SimpleNamespace(
        database_url=pg_url, database_max_retries=2, database_backoff_seconds=0.0
    )
    app = app_class(config, None)
    app.admin = admin
    for key, value in attributes.items():
        setattr(app, key, value)
    return app


# -- transactions ----------------------------------------------------------------


def test_single_transaction_commits_when_run_returns(pg_url: str, admin: Any) -> None:
    make_app(InsertApp, pg_url, admin).run()
    assert rows(admin) == ["insert"]


def test_single_transaction_rolls_back_when_run_raises(pg_url: str, admin: Any) -> None:
    with pytest.raises(ValueError, match="failed after inserting"):
        make_app(InsertApp, pg_url, admin, fail=True).run()
    assert rows(admin) == []


def test_terminated_connection_is_retried_on_a_new_one(
    pg_url: str, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(InsertApp, pg_url, admin, kill=1)
    with caplog.at_level(logging.WARNING, logger="crontabber"):
        app.run()
    assert len(app.connections) == 2
    assert rows(admin) == ["insert"]
    assert "retry 1 of 2" in caplog.text


def test_retries_stop_at_the_limit(pg_url: str, admin: Any) -> None:
    app = make_app(InsertApp, pg_url, admin, kill=99)
    with pytest.raises(psycopg2.OperationalError) as raised:
        app.run()
    assert is_lost_connection(raised.value)
    assert len(app.connections) == 3  # the first attempt and two retries
    assert rows(admin) == []


@pytest.mark.parametrize(
    ("query", "timeout"), [("", "5"), ("?connect_timeout=30", "30")], ids=["default", "url"]
)
def test_a_jobs_connection_has_a_connect_timeout_and_keepalives(
    pg_url: str, query: str, timeout: str
) -> None:
    """As the state database's: a job is not left hanging on an unreachable or silent
    server (its lease would stop it, later); the job's database_url may say otherwise."""
    connection = ConnectionFactory(SimpleNamespace(database_url=pg_url + query)).connect()
    try:
        dsn = connection.get_dsn_parameters()
    finally:
        connection.close()
    assert dsn["connect_timeout"] == timeout
    assert (dsn["keepalives"], dsn["keepalives_idle"], dsn["keepalives_count"]) == ("1", "10", "3")


def test_a_silent_server_is_an_error_not_a_hang() -> None:
    """A port that takes the connection and never answers (the kernel's backlog)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://nobody@127.0.0.1:{port}/nothing?connect_timeout=1"
        with pytest.raises(psycopg2.OperationalError) as raised:
            ConnectionFactory(SimpleNamespace(database_url=url)).connect()
    assert "timeout expired" in str(raised.value)


def test_backoff_doubles_between_retries(pg_url: str, admin: Any) -> None:
    pauses: list[float] = []
    factory = ConnectionFactory(SimpleNamespace(database_url=pg_url))
    executor = TransactionExecutor(
        SimpleNamespace(database_max_retries=3, database_backoff_seconds=0.5),
        factory,
        sleep=pauses.append,
    )

    def always_killed(connection: Any) -> None:
        terminate(admin, backend_pid(connection))
        backend_pid(connection)

    with pytest.raises(psycopg2.OperationalError):
        executor(always_killed)
    assert pauses == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT * FROM no_such_table", psycopg2.errors.UndefinedTable),
        # an OperationalError too, but SQLSTATE 57014 is not a connection failure
        ("SET LOCAL statement_timeout = 50; SELECT pg_sleep(5)", psycopg2.errors.QueryCanceled),
    ],
)
def test_other_errors_are_not_retried(pg_url: str, admin: Any, sql: str, error: type) -> None:
    attempts: list[Any] = []
    factory = ConnectionFactory(SimpleNamespace(database_url=pg_url))

    def bad_sql(connection: Any) -> None:
        attempts.append(connection)
        with connection.cursor() as cursor:
            cursor.execute(sql)

    with pytest.raises(error):
        TransactionExecutor(SimpleNamespace(database_backoff_seconds=0), factory)(bad_sql)
    assert len(attempts) == 1


@pytest.mark.parametrize("app_class", [InsertApp, ConnectionApp])
@pytest.mark.parametrize("fail", [False, True])
def test_connections_are_closed_after_run(
    pg_url: str, admin: Any, app_class: type, fail: bool
) -> None:
    app = make_app(app_class, pg_url, admin, fail=fail)
    if fail:
        with pytest.raises(ValueError):
            app.run()
    else:
        app.run()
    assert all(connection.closed for connection in app.connections)
    wait_until(lambda: other_backends(admin) == [], "every connection is closed", timeout=10)


def test_connection_as_argument_leaves_commits_to_run(pg_url: str, admin: Any) -> None:
    make_app(ConnectionApp, pg_url, admin).run()
    assert rows(admin) == []  # run did not commit, and closing rolled back


def test_runner_runs_an_adapted_job(pg_url: str, admin: Any, sqlite_url: str) -> None:
    config = SimpleNamespace(database_url=pg_url)
    store = open_store(sqlite_url)
    store.ensure_schema()
    try:
        report = Runner([make_spec(InsertApp, config=config)], store).run()
    finally:
        store.close()
    assert report.with_result(Result.SUCCEEDED) == ["insert"]
    assert rows(admin) == ["insert"]


# -- configuration ---------------------------------------------------------------


def test_options_come_from_resource_postgresql_and_are_overridable_per_app(
    pg_url: str, admin: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = sa.make_url(pg_url)
    conf = tmp_path / "crontabber.ini"
    conf.write_text(
        f"""
[crontabber]
jobs = '''
{__name__}.WhereAmIApp|1h
{__name__}.WhereAmIOverriddenApp|1h
'''
  [[class-WhereAmIOverriddenApp]]
  dbname = postgres
  database_max_retries = 5
  database_backoff_seconds = 0.25
[resource]
  [[postgresql]]
  host = {url.host}
  port = {url.port}
  dbname = {url.database}
  user = {url.username}
  password = {SECRET}
"""
    )
    raw = read_config([f"--admin.conf={conf}"])
    settings = settings_from(raw)
    assert settings.problems == ()
    apps = {spec.app_name: spec.app_class(spec.config, None) for spec in settings.specs}
    with caplog.at_level(logging.DEBUG, logger="crontabber"):
        for app in apps.values():
            app.run()
    assert apps["where-am-i"].where == (url.database, url.username)
    assert apps["where-am-i-overridden"].where == ("postgres", url.username)
    overridden = apps["where-am-i-overridden"].database_transaction_executor
    assert (overridden.max_retries, overridden.backoff_seconds) == (5, 0.25)
    default = apps["where-am-i"].database_transaction_executor
    assert (default.max_retries, default.backoff_seconds) == (3, 1.0)
    assert apps["where-am-i"].database_connection_factory.params["password"] == SECRET
    assert "connecting to PostgreSQL" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in repr(apps["where-am-i"].database_connection_factory)


def test_password_stays_out_of_errors() -> None:
    config = SimpleNamespace(
        host="127.0.0.1", port=1, user="nobody", password=SECRET, database_max_retries=0
    )
    app = WhereAmIApp(config, None)
    with pytest.raises(psycopg2.OperationalError) as raised:
        app.run()
    assert SECRET not in "".join(traceback.format_exception(raised.value))
    bad_url = SimpleNamespace(database_url=f"postgresql://u:{SECRET}@host:port/db")
    with pytest.raises(ValueError) as raised:
        WhereAmIApp(bad_url, None).run()
    assert SECRET not in "".join(traceback.format_exception(raised.value))


def test_decorating_copies_the_base_class_options() -> None:
    from configman import Namespace

    class Base(App):
        app_name = "base"
        required_config = Namespace()
        required_config.add_option("greeting", default="hello")

    @with_transactional_resource("crontabber.connection_factory.ConnectionFactory", "warehouse")
    class Job(Base):
        app_name = "job"

    assert list(Base.required_config) == ["greeting"]
    assert Job.required_config is not Base.required_config
    assert Job.required_config.greeting is not Base.required_config.greeting
    assert {"greeting", "dbname", "warehouse_max_retries", "warehouse_backoff_seconds"} <= set(
        Job.required_config
    )
    assert callable(Job(SimpleNamespace(), None).warehouse_connection_factory)


def test_subclasses_of_an_adapted_job_get_their_connection(pg_url: str, admin: Any) -> None:
    class Child(InsertApp):
        app_name = "child"

        def run(self, connection: Any) -> None:
            super().run(connection)  # called with its connection: runs as written
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO items (name) VALUES ('child-extra')")

    make_app(Child, pg_url, admin).run()
    assert rows(admin) == ["child", "child-extra"]


def test_an_adapted_base_without_run_adapts_its_subclasses(pg_url: str, admin: Any) -> None:
    @with_postgres_connection_as_argument()
    class Base(App):
        pass

    class Job(Base):
        app_name = "job"

        def run(self, connection: Any) -> None:
            self.connection = connection
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO items (name) VALUES ('job')")
            connection.commit()

    app = make_app(Job, pg_url, admin)
    app.run()
    assert rows(admin) == ["job"]
    assert app.connection.closed


def test_an_adapter_without_its_resource_says_so() -> None:
    @with_single_transaction("warehouse")
    class Lonely(App):
        app_name = "lonely"

        def run(self, connection: Any) -> None:
            pass

    with pytest.raises(TypeError, match="with_transactional_resource"):
        Lonely(SimpleNamespace(), None).run()


def test_backfill_mark() -> None:
    @as_backfill_cron_app
    @using_postgres()
    class Backfill(App):
        app_name = "backfill"

        def run(self, date: dt.date) -> None:
            pass

    assert Backfill.is_backfill is True
    assert make_spec(Backfill).is_backfill
    assert not make_spec(InsertApp).is_backfill


# -- subprocesses ------------------------------------------------------------------


def test_run_process_returns_exit_code_and_output() -> None:
    app = ProcessApp(None, None)
    assert app.run_process(["sh", "-c", "echo out; echo err >&2; exit 3"]) == (3, "out", "err")
    assert app.run_process(["cat"], input="fed in\n") == (0, "fed in", "")


def test_a_string_runs_in_a_shell_and_a_list_does_not() -> None:
    app = ProcessApp(None, None)
    assert app.run_process("echo one; echo $((1 + 1)) | tr a-z A-Z")[1] == "one\n2"
    assert app.run_process(["echo", "one;", "$((1 + 1))", "|"])[1] == "one; $((1 + 1)) |"
    assert app.run_process("no-such-program-here")[0] == 127
    with pytest.raises(FileNotFoundError):
        app.run_process(["no-such-program-here"])


@pytest.mark.parametrize("command", ["echo started; sleep 30; echo never", ["sleep", "30"]])
def test_a_timeout_kills_the_process_and_everything_it_started(command: Any) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeout) as raised:
        ProcessApp(None, None).run_process(command, timeout=0.5)
    assert time.monotonic() - started < 10
    assert raised.value.timeout == 0.5
    if isinstance(command, str):
        assert raised.value.output == "started\n"


# -- the examples ------------------------------------------------------------------


def test_the_example_jobs_run(pg_url: str, admin: Any, tmp_path: Any, sqlite_url: str) -> None:
    conf = tmp_path / "crontabber.ini"
    conf.write_text(
        f"""
[crontabber]
jobs = '''
example_apps.postgres_job.HeartbeatApp|5m
example_apps.postgres_job.PruneHeartbeatsApp|1d
example_apps.subprocess_job.DiskUsageApp|1h
'''
  [[class-PruneHeartbeatsApp]]
  keep_days = 0
  [[class-DiskUsageApp]]
  path = {tmp_path}
[resource]
  [[postgresql]]
  host = 127.0.0.1
  port = {sa.make_url(pg_url).port}
  dbname = {sa.make_url(pg_url).database}
  user = postgres
"""
    )
    settings = settings_from(read_config([f"--admin.conf={conf}"]))
    store = open_store(sqlite_url)
    store.ensure_schema()
    try:
        report = Runner(settings.specs, store).run()
    finally:
        store.close()
    assert sorted(report.with_result(Result.SUCCEEDED)) == [
        "disk-usage",
        "heartbeat",
        "prune-heartbeats",
    ]
    with admin.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM example_heartbeat")
        assert cursor.fetchone() == (0,)  # inserted, then pruned with keep_days = 0
