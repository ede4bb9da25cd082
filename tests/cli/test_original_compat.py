"""Apps and ini files written for the original mozilla/crontabber, run by the real command.

The apps below are written here, in the shapes the original's docs, its test
suite and its largest user (Socorro) used: stored-procedure apps on a
decorated base class with backfill subclasses, a project's own connection
class with its own option names, an app with two resources built with
``functools.partial`` helper mixins, and apps using ``self.config.logger`` and
``self.config.database``. Nothing depends on the wall clock: daily jobs
without HH:MM run at once on a fresh database, and backfill dates are checked
against the ``last_success`` the database recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ..helpers.command import Completed, resource_postgresql, run_crontabber, write_config

pytestmark = pytest.mark.postgres

SECRET = "s3cret-from-the-secrets-section"

# A project's own PostgreSQL connection class, with option names of its own,
# defaults from [resource] [[postgresql]] and the password from [secrets].
DBCONTEXT = """
import contextlib

import psycopg2
from configman import Namespace
from configman.config_manager import RequiredConfig


class ConnectionContext(RequiredConfig):
    required_config = Namespace()
    required_config.add_option(
        "database_hostname", default="localhost", reference_value_from="resource.postgresql"
    )
    required_config.add_option(
        "database_name", default="breakpad", reference_value_from="resource.postgresql"
    )
    required_config.add_option(
        "database_port", default=5432, reference_value_from="resource.postgresql"
    )
    required_config.add_option(
        "database_username", default="breakpad_rw", reference_value_from="resource.postgresql"
    )
    required_config.add_option(
        "database_password", default="", secret=True, reference_value_from="secrets.postgresql"
    )
    operational_exceptions = (psycopg2.OperationalError, psycopg2.InterfaceError)
    conditional_exceptions = (psycopg2.ProgrammingError,)

    def __init__(self, config, local_config=None):
        self.config = config
        local = config if local_config is None else local_config
        self.dsn = (
            "host=%(database_hostname)s dbname=%(database_name)s port=%(database_port)s "
            "user=%(database_username)s password=%(database_password)s" % local
        )

    def connection(self, name=None):
        return psycopg2.connect(self.dsn, application_name="dbcontext")

    @contextlib.contextmanager
    def __call__(self, name=None):
        connection = self.connection(name)
        try:
            yield connection
        finally:
            self.close_connection(connection)

    def close_connection(self, connection, force=False):
        connection.close()

    def force_reconnect(self):
        pass

    def is_operational_exception(self, exc):
        return False
"""

# Stored-procedure apps: the resources on a base class, backfill subclasses.
SPROCS = """
from crontabber.base import BaseCronApp
from crontabber.mixins import (
    as_backfill_cron_app,
    with_postgres_transactions,
    with_single_postgres_transaction,
)


@with_postgres_transactions()
@with_single_postgres_transaction()
class StoredProcedureApp(BaseCronApp):
    app_version = "1.0"
    app_description = "calls one stored procedure in one transaction"
    proc_name = None

    def run(self, connection):
        cursor = connection.cursor()
        cursor.callproc(self.proc_name)


class ProductVersionsApp(StoredProcedureApp):
    app_name = "product-versions"
    proc_name = "refresh_product_versions"


@as_backfill_cron_app
class SignaturesApp(StoredProcedureApp):
    app_name = "signatures"
    proc_name = "refresh_signatures"

    def run(self, connection, date):
        cursor = connection.cursor()
        cursor.callproc(self.proc_name, [date])


@as_backfill_cron_app
class CrashTotalsApp(StoredProcedureApp):
    app_name = "crash-totals"
    proc_name = "refresh_crash_totals"
    depends_on = ("product-versions", "signatures")

    def run(self, connection, date):
        cursor = connection.cursor()
        cursor.callproc(self.proc_name, [date])
"""

# A second resource next to PostgreSQL, through helper mixins made with partial.
QUEUEING = '''
import contextlib
import functools
import json
import os

from configman import Namespace
from configman.config_manager import RequiredConfig

from crontabber.base import BaseCronApp
from crontabber.mixins import (
    with_postgres_transactions,
    with_single_transaction,
    with_transactional_resource,
)


class SpoolConnection:
    """Messages for a spool directory, written only when committed."""

    def __init__(self, directory):
        self.directory = directory
        self.pending = []

    def publish(self, message):
        self.pending.append(message)

    def commit(self):
        for message in self.pending:
            number = len(os.listdir(self.directory))
            with open(os.path.join(self.directory, f"{number:04d}.json"), "w") as f:
                json.dump(message, f)
        self.pending = []

    def rollback(self):
        self.pending = []


class SpoolContext(RequiredConfig):
    required_config = Namespace()
    required_config.add_option("spool_directory", default="spool", doc="where messages go")
    operational_exceptions = (OSError,)
    conditional_exceptions = ()

    def __init__(self, config, local_config=None):
        self.directory = config.spool_directory

    @contextlib.contextmanager
    def __call__(self, name=None):
        yield SpoolConnection(self.directory)

    def close_connection(self, connection, force=False):
        pass

    def force_reconnect(self):
        pass

    def is_operational_exception(self, exc):
        return False


with_spool_transactions = functools.partial(
    with_transactional_resource, "queueing.SpoolContext", "queuing"
)
with_single_spool_transaction = functools.partial(with_single_transaction, "queuing")


@with_postgres_transactions()
@with_spool_transactions()
@with_single_spool_transaction()
class ReprocessApp(BaseCronApp):
    app_name = "reprocess"
    depends_on = "crash-totals"

    def run(self, queue):
        days = self.database_transaction_executor(self.totalled_days)
        for (day,) in days:
            queue.publish({"reprocess": day.isoformat()})
        self.config.logger.info("queued %d days for reprocessing", len(days))

    def totalled_days(self, connection):
        cursor = connection.cursor()
        cursor.execute("SELECT day FROM proc_calls WHERE proc = 'refresh_crash_totals'")
        return cursor.fetchall()
'''

REPORTING = """
from crontabber.base import BaseCronApp
from crontabber.mixins import with_postgres_transactions


@with_postgres_transactions()
class WhereApp(BaseCronApp):
    app_name = "where"

    def run(self):
        database = self.config.database
        self.config.logger.info(
            "where: %s on %s via %s",
            database.database_name,
            database.database_hostname,
            database.database_class.__name__,
        )
"""

PROCEDURES = """
CREATE TABLE proc_calls (
    seq serial PRIMARY KEY,
    proc text NOT NULL,
    day timestamptz,
    via text NOT NULL DEFAULT current_setting('application_name')
);
CREATE FUNCTION refresh_product_versions() RETURNS void LANGUAGE sql AS
    $$ INSERT INTO proc_calls (proc) VALUES ('refresh_product_versions') $$;
CREATE FUNCTION refresh_signatures(day timestamptz) RETURNS void LANGUAGE sql AS
    $$ INSERT INTO proc_calls (proc, day) VALUES ('refresh_signatures', day) $$;
CREATE FUNCTION refresh_crash_totals(day timestamptz) RETURNS void LANGUAGE sql AS
    $$ INSERT INTO proc_calls (proc, day) VALUES ('refresh_crash_totals', day) $$;
"""


def sql(pg_url: str, statement: str, *params: Any) -> list[tuple]:
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            result = (
                conn.exec_driver_sql(statement, params)
                if params
                else conn.exec_driver_sql(statement)
            )
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def ran_order(result: Completed) -> list[str]:
    """App names in the order the run says it ran them (successes only)."""
    return [
        line.split(" ran ", 1)[1].split(" in ", 1)[0]
        for line in result.stderr.splitlines()
        if " ran " in line
    ]


def states(pg_url: str) -> dict[str, tuple[int, Any]]:
    rows = sql(pg_url, "SELECT app_name, error_count, last_error FROM crontabber")
    return {name: (count, error) for name, count, error in rows}


INFINITE_BACKOFF = "crontabber.transaction_executor.TransactionExecutorWithInfiniteBackoff"


def connection_context(url: sa.URL) -> dict[str, object]:
    """The options of DBCONTEXT's ConnectionContext naming the database at ``url``."""
    return {
        "database_class": "dbcontext.ConnectionContext",
        "database_hostname": url.host,
        "database_port": url.port,
        "database_name": url.database,
        "database_username": url.username,
    }


def socorro_ini(url: sa.URL, spool: Path) -> str:
    # Written as an original deployment wrote it: crontabber's own state and the
    # jobs' connection class both named under [resource] [[postgresql]], the
    # password in [secrets], and options this crontabber does not have.
    return (
        textwrap.dedent(
            f"""\
        [crontabber]
            jobs='''
                sprocs.CrashTotalsApp|1d
                reporting.WhereApp|1d
                queueing.ReprocessApp|1d
                sprocs.SignaturesApp|1d
                sprocs.ProductVersionsApp|1d
            '''
            [[class-ReprocessApp]]
                [[[queuing]]]
                    spool_directory={spool}
        """
        )
        + resource_postgresql(
            url,
            **connection_context(url),
            database_transaction_executor_class=INFINITE_BACKOFF,
            transaction_executor_class="crontabber.transaction_executor.TransactionExecutor",
        )
        + textwrap.dedent(
            f"""\
        [secrets]
            [[postgresql]]
                database_password={SECRET}
        [logging]
            stderr_error_logging_level=10
        """
        )
    )


@pytest.fixture
def socorro_like(tmp_path: Path, pg_url: str) -> Path:
    for name, text in (
        ("dbcontext", DBCONTEXT),
        ("sprocs", SPROCS),
        ("queueing", QUEUEING),
        ("reporting", REPORTING),
    ):
        (tmp_path / f"{name}.py").write_text(text)
    spool = tmp_path / "spool"
    spool.mkdir()
    sql(pg_url, PROCEDURES)
    config = tmp_path / "crontabber.ini"
    config.write_text(socorro_ini(sa.make_url(pg_url), spool))
    return config


def test_socorro_shaped_apps_and_ini_run_unchanged(
    socorro_like: Path, tmp_path: Path, pg_url: str
) -> None:
    result = run_crontabber(f"--admin.conf={socorro_like}", cwd=tmp_path)
    assert result.status == 0, result.stderr
    order = ran_order(result)
    assert sorted(order) == [
        "crash-totals",
        "product-versions",
        "reprocess",
        "signatures",
        "where",
    ]
    assert order.index("crash-totals") > max(
        order.index("product-versions"), order.index("signatures")
    )
    assert order.index("reprocess") > order.index("crash-totals")
    assert {name: count for name, (count, _) in states(pg_url).items()} == dict.fromkeys(order, 0)
    # The connection class named in the ini made every connection of the jobs.
    calls = sql(pg_url, "SELECT proc, via FROM proc_calls ORDER BY seq")
    assert {via for _, via in calls} == {"dbcontext"}
    assert [proc for proc, _ in calls][-1] == "refresh_crash_totals"
    # self.config.logger and self.config.database.<option>, in an app.
    url = sa.make_url(pg_url)
    assert f"where: {url.database} on {url.host} via ConnectionContext" in result.stderr
    # The second resource committed one message per totalled day.
    assert len(list((tmp_path / "spool").iterdir())) == 1
    assert "queued 1 days for reprocessing" in result.stderr
    # Options the original knew and this crontabber does not: named, and the run went on.
    for name in (
        "resource.postgresql.transaction_executor_class",
        "logging.stderr_error_logging_level",
    ):
        assert f"unknown option {name!r}" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_backfill_dates_follow_last_success(
    socorro_like: Path, tmp_path: Path, pg_url: str
) -> None:
    first = run_crontabber(f"--admin.conf={socorro_like}", cwd=tmp_path)
    assert first.status == 0, first.stderr
    (last_success,) = sql(
        pg_url, "SELECT last_success FROM crontabber WHERE app_name = 'signatures'"
    )[0]
    # Three days missed by both backfill apps, as after an outage.
    sql(
        pg_url,
        "UPDATE crontabber SET last_success = last_success - interval '3 days',"
        " next_run = now() - interval '1 minute'"
        " WHERE app_name IN ('signatures', 'crash-totals')",
    )
    sql(pg_url, "DELETE FROM proc_calls")

    second = run_crontabber(f"--admin.conf={socorro_like}", cwd=tmp_path)
    assert second.status == 0, second.stderr
    assert ran_order(second) == ["signatures", "crash-totals"]
    days = [
        day
        for (day,) in sql(
            pg_url, "SELECT day FROM proc_calls WHERE proc = 'refresh_signatures' ORDER BY seq"
        )
    ]
    one_day = dt.timedelta(days=1)
    assert days == [last_success - 2 * one_day, last_success - one_day, last_success]
    totals = sql(pg_url, "SELECT count(*) FROM proc_calls WHERE proc = 'refresh_crash_totals'")
    assert totals == [(3,)]
    assert sql(pg_url, "SELECT last_success FROM crontabber WHERE app_name = 'signatures'") == [
        (last_success,)
    ]


# Apps in the shape of the original's own test suite: plain jobs in a chain,
# PostgreSQL through the default connection factory, a failing one, a
# subprocess and a backfill job, all logging through self.config.logger.
SUITE = """
from configman import Namespace

from crontabber.base import BaseCronApp
from crontabber.mixins import (
    as_backfill_cron_app,
    using_postgres,
    with_postgres_connection_as_argument,
    with_subprocess,
)


class _Job(BaseCronApp):
    def run(self):
        self.config.logger.info("Ran %s" % self.__class__.__name__)


class BasicJob(_Job):
    app_name = "basic-job"


class FooJob(_Job):
    app_name = "foo"
    depends_on = "basic-job"


class BarJob(_Job):
    app_name = "bar"
    depends_on = ("foo",)


@using_postgres()
@with_postgres_connection_as_argument()
class PostgresSampleJob(_Job):
    app_name = "sample-pg-job"
    depends_on = ("bar",)

    def run(self, connection):
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE test_cron_victim (id serial, time timestamptz)")
        cursor.execute("INSERT INTO test_cron_victim (time) VALUES (now())")
        connection.commit()
        database = self.config.database
        self.config.logger.info(
            "Ran %s on %s as %s", self.__class__.__name__, database.dbname, database.user
        )


@using_postgres()
@with_postgres_connection_as_argument()
class BrokenPostgresSampleJob(_Job):
    app_name = "broken-pg-job"

    def run(self, connection):
        connection.cursor().execute("SELECT * FROM no_such_table")


class AfterBrokenJob(_Job):
    app_name = "after-broken"
    depends_on = "broken-pg-job"


@using_postgres()
@with_postgres_connection_as_argument()
class ElsewhereJob(_Job):
    app_name = "elsewhere"

    def run(self, connection):
        cursor = connection.cursor()
        cursor.execute("SELECT current_setting('application_name')")
        self.config.logger.info(
            "elsewhere: %s in %s", cursor.fetchone()[0], self.config.database.database_name
        )


@with_subprocess
class EchoJob(_Job):
    app_name = "echo"

    def run(self):
        exit_code, out, err = self.run_process(["echo", "said", "so"])
        self.config.logger.info("echo exited %s and %s", exit_code, out)


@as_backfill_cron_app
class BackfillJob(BaseCronApp):
    app_name = "backfill-job"
    required_config = Namespace()
    required_config.add_option("colour", default="grey")

    def run(self, date):
        self.config.logger.info("backfill-job in %s for %s", self.config.colour, date.isoformat())
"""


def suite_ini(url: sa.URL, extra: str = "") -> str:
    return (
        textwrap.dedent(
            """\
        [crontabber]
            jobs='''
                suite.PostgresSampleJob|1d
                suite.BarJob|1d
                suite.FooJob|1d
                suite.BasicJob|1d
                suite.BrokenPostgresSampleJob|1d
                suite.AfterBrokenJob|1d
                suite.ElsewhereJob|1d
                suite.EchoJob|1d
                suite.BackfillJob|1d
            '''
            [[class-BasicJob]]
                shade=blue
            [[class-BackfillJob]]
                colour=red
            [[class-ElsewhereJob]]
                [[[database]]]
        """
        )
        + "".join(f"            {key}={value}\n" for key, value in connection_context(url).items())
        + resource_postgresql(url, password=SECRET)
        + textwrap.dedent(extra)
    )


@pytest.fixture
def suite(tmp_path: Path, pg_url: str) -> Path:
    (tmp_path / "suite.py").write_text(SUITE)
    (tmp_path / "dbcontext.py").write_text(DBCONTEXT)
    config = tmp_path / "crontabber.ini"
    config.write_text(suite_ini(sa.make_url(pg_url)))
    return config


def test_apps_shaped_like_the_original_test_suite(suite: Path, tmp_path: Path, pg_url: str) -> None:
    result = run_crontabber(f"--admin.conf={suite}", cwd=tmp_path)
    assert result.status == 0, result.stderr
    said = [line.split(" Ran ", 1)[1] for line in result.stderr.splitlines() if " Ran " in line]
    url = sa.make_url(pg_url)
    assert said == [
        "BasicJob",
        "FooJob",
        "BarJob",
        f"PostgresSampleJob on {url.database} as {url.username}",
    ]
    assert sql(pg_url, "SELECT count(*) FROM test_cron_victim") == [(1,)]
    assert f"elsewhere: dbcontext in {url.database}" in result.stderr
    assert "echo exited 0 and said so" in result.stderr
    assert "backfill-job in red for " in result.stderr

    recorded = states(pg_url)
    assert "after-broken" not in recorded  # its dependency failed: skipped
    count, last_error = recorded["broken-pg-job"]
    error = last_error if isinstance(last_error, dict) else json.loads(last_error)
    assert count == 1
    assert error["type"] == "psycopg2.errors.UndefinedTable"
    # Only the job's own error: no chained TypeError from the mixins' plumbing.
    assert "no_such_table" in error["traceback"]
    assert "missing a required argument" not in error["traceback"]
    assert "During handling of the above exception" not in error["traceback"]
    assert {name: count for name, (count, _) in recorded.items() if name != "broken-pg-job"} == {
        "basic-job": 0,
        "foo": 0,
        "bar": 0,
        "sample-pg-job": 0,
        "elsewhere": 0,
        "echo": 0,
        "backfill-job": 0,
    }
    assert "unknown option 'crontabber.class-BasicJob.shade'" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_configtest_lists_unknown_options_as_problems(suite: Path, tmp_path: Path) -> None:
    result = run_crontabber(f"--admin.conf={suite}", "--configtest", cwd=tmp_path)
    assert (
        result.stdout == "unknown option 'crontabber.class-BasicJob.shade' in the configuration\n"
    )
    assert result.status == 1


def test_admin_strict_stops_before_any_job(suite: Path, tmp_path: Path, pg_url: str) -> None:
    result = run_crontabber(f"--admin.conf={suite}", "--admin.strict", cwd=tmp_path)
    assert result.status == 1
    assert result.stderr == (
        "crontabber: unknown option 'crontabber.class-BasicJob.shade' in the configuration"
        " (--admin.strict)\n"
    )
    tables = sql(pg_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'test_cron_victim'")
    assert tables == [(0,)]


def test_print_conf_shows_the_original_namespaces_and_hides_secrets(
    suite: Path, tmp_path: Path
) -> None:
    result = run_crontabber(f"--admin.conf={suite}", "--admin.print_conf=ini", cwd=tmp_path)
    assert result.status == 0, result.stderr
    for line in (
        "database_class=crontabber.connection_factory.ConnectionFactory",
        "database_transaction_executor_class=crontabber.transaction_executor.TransactionExecutor",
        "database_class=dbcontext.ConnectionContext",
    ):
        assert line in result.stdout
    assert "[[[database]]]" in result.stdout
    assert SECRET not in result.stdout + result.stderr


# -- an app in the shape of the original's README ------------------------------------

ORIGINAL_STYLE = """
from configman import Namespace

from crontabber.base import BaseCronApp
from crontabber.mixins import (
    as_backfill_cron_app,
    with_postgres_transactions,
    with_single_postgres_transaction,
)


@with_postgres_transactions()
@with_single_postgres_transaction()
@as_backfill_cron_app
class UpdateADUsApp(BaseCronApp):
    app_name = "update-adus"
    app_description = "fills one row per day"
    required_config = Namespace()
    required_config.add_option("table", default="adus", doc="where the rows go")

    def run(self, connection, date):
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE IF NOT EXISTS " + self.config.table + " (day date UNIQUE)")
        cursor.execute("INSERT INTO " + self.config.table + " (day) VALUES (%s)", (date.date(),))


class ReportApp(BaseCronApp):
    app_name = "report"
    depends_on = ("update-adus",)

    def run(self):
        self.database_transaction_executor(self._count)

    def _count(self, connection):
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM daily_adus")
        assert cursor.fetchone()[0] >= 1
ReportApp = with_postgres_transactions()(ReportApp)
"""


def test_original_style_apps_run_unchanged(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "socorro_jobs.py").write_text(ORIGINAL_STYLE)
    extra = "    [[class-UpdateADUsApp]]\n        table=daily_adus\n" + resource_postgresql(pg_url)
    config = write_config(
        tmp_path, "socorro_jobs.UpdateADUsApp|1d|00:00\nsocorro_jobs.ReportApp|1d", extra=extra
    )
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert "ran update-adus" in result.stderr and "ran report" in result.stderr
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM daily_adus").scalar() == 1
        states = dict(conn.exec_driver_sql("SELECT app_name, error_count FROM crontabber").all())
    engine.dispose()
    assert states == {"update-adus": 0, "report": 0}
