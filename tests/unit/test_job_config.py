"""What a job sees as ``self.config``: the original's configman object, built at the edge."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from configman import Namespace

from crontabber import App
from crontabber.config.configman_edge import read_config
from crontabber.config.settings import settings_from
from crontabber.errors import ConfigError
from crontabber.mixins import using_postgres, with_single_postgres_transaction


@using_postgres()
@with_single_postgres_transaction()
class DatabaseApp(App):
    app_name = "database-app"

    def run(self, connection: Any) -> None:
        pass


class OwnDatabaseApp(DatabaseApp):
    app_name = "own-database-app"


class SubsectionApp(DatabaseApp):
    app_name = "subsection-app"


class Base(App):
    required_config = Namespace()
    required_config.add_option("colour", default="grey")
    required_config.add_option("size", default="small")


class Derived(Base):
    app_name = "derived"
    required_config = Namespace()
    required_config.add_option("size", default="large")
    required_config.add_option("shape", default="round")

    def run(self) -> None:
        pass


def load(tmp_path: Path, text: str) -> Any:
    conf = tmp_path / "crontabber.ini"
    conf.write_text(text)
    settings = settings_from(read_config([f"--admin.conf={conf}"]))
    return settings, {spec.app_name: spec.config for spec in settings.specs}


def test_resource_options_come_from_the_job_then_its_namespace_then_resource_postgresql(
    tmp_path: Path,
) -> None:
    settings, configs = load(
        tmp_path,
        f"""
[crontabber]
jobs = '''
{__name__}.DatabaseApp|1h
{__name__}.OwnDatabaseApp|1h
{__name__}.SubsectionApp|1h
'''
  [[class-OwnDatabaseApp]]
    dbname = from-the-job
    [[[database]]]
      dbname = from-the-subsection
  [[class-SubsectionApp]]
    [[[database]]]
      dbname = from-the-subsection
      database_transaction_executor_class = crontabber.transaction_executor.TransactionExecutorWithLimitedBackoff
      backoff_delays = 1, 2
[resource]
  [[postgresql]]
    host = db.example.com
    dbname = shared
""",
    )
    assert settings.problems == () and settings.warnings == ()
    assert configs["database-app"].database.dbname == "shared"
    assert configs["database-app"].database.host == "db.example.com"
    assert configs["own-database-app"].database.dbname == "from-the-job"
    assert configs["subsection-app"].database.dbname == "from-the-subsection"
    app = SubsectionApp(configs["subsection-app"], None)
    assert app.database_connection_factory.params["dbname"] == "from-the-subsection"
    executor = app.database_transaction_executor
    assert type(executor).__name__ == "TransactionExecutorWithLimitedBackoff"
    assert list(executor.delays()) == [1, 2]  # configobj made the unquoted value a list


def test_every_section_acquires_logger_and_the_names_above_it(tmp_path: Path) -> None:
    _, configs = load(
        tmp_path,
        f"""
[crontabber]
jobs = {__name__}.DatabaseApp|1h
error_retry_time = 42
""",
    )
    config = configs["database-app"]
    assert isinstance(config.logger, logging.Logger)
    assert config.database.logger is config.logger
    assert config.error_retry_time == 42
    assert config.resource.postgresql.port == 5432


def test_options_of_every_base_class_are_merged(tmp_path: Path) -> None:
    assert set(Derived.get_required_config()) == {"colour", "size", "shape"}
    assert Derived.get_required_config().size.default == "large"
    _, configs = load(
        tmp_path,
        f"""
[crontabber]
jobs = {__name__}.Derived|1h
  [[class-Derived]]
    colour = blue
""",
    )
    assert (configs["derived"].colour, configs["derived"].size) == ("blue", "large")


def test_secrets_and_unknown_options(tmp_path: Path) -> None:
    settings, _ = load(
        tmp_path,
        f"""
[crontabber]
jobs = {__name__}.Derived|1h
  [[class-Derived]]
    colur = blue
  [[class-NotListedApp]]
    anything = goes
[secrets]
  [[sentry]]
    dsn = https://key@sentry.example.com/1
""",
    )
    assert settings.sentry_dsn == "https://key@sentry.example.com/1"
    assert settings.problems == ()
    assert settings.warnings == (
        "unknown option 'crontabber.class-Derived.colur' in the configuration: ignored "
        "(--admin.strict makes it an error)",
    )


class ForeignConnection:
    """A deployment's own connection class, naming its database in options of its own."""

    def __init__(self, config: Any, local_config: Any = None) -> None:
        self.config = config


def test_a_foreign_connection_class_without_a_state_database_is_refused(
    tmp_path: Path,
) -> None:
    """It was a warning, and the state went to a SQLite file of each host's own, so every
    host ran every job (issue 21, reproduction 8): now it is one line, and nothing runs."""
    with pytest.raises(ConfigError) as refused:
        load(
            tmp_path,
            f"""
[crontabber]
jobs = {__name__}.DatabaseApp|1h
[resource]
  [[postgresql]]
    database_class = {__name__}.ForeignConnection
""",
        )
    message = str(refused.value)
    assert "names PostgreSQL (resource.postgresql.database_class)" in message
    assert "set crontabber.database_url" in message
    assert not (tmp_path / "crontabber.sqlite").exists()
