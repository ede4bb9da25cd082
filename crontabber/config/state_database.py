"""Which database holds the jobs' state, read from the configuration, never guessed.

In order: ``crontabber.database_url``; else ``[resource] [[postgresql]]``'s
``host``, ``port``, ``dbname``, ``user`` and ``password``, each empty one taken
from the names crontabber's early releases and their largest user gave them
(``database_hostname``, ``database_name``, ``database_port`` there, and
``database_username`` and ``database_password`` in ``[secrets] [[postgresql]]``);
else, when the configuration names PostgreSQL in no form at all, a SQLite file
beside the config file. A configuration that names PostgreSQL in a form that
gives no database (a password alone, a connection class of the deployment's
own) is refused in one line: a private SQLite file per host would run every
job once per host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from crontabber.config.options import comma_joined
from crontabber.errors import ConfigError

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

STATE_FILE_NAME = "crontabber.sqlite"
DEFAULT_PORT = 5432
CONNECTION_KEYS = ("host", "port", "dbname", "user", "password")
# The early releases' names, by the file's dotted key: what each stands for.
EARLY_NAMES = {
    "resource.postgresql.database_hostname": "host",
    "resource.postgresql.database_port": "port",
    "resource.postgresql.database_name": "dbname",
    "resource.postgresql.database_username": "user",
    "resource.postgresql.database_password": "password",
    "secrets.postgresql.database_username": "user",
    "secrets.postgresql.database_password": "password",
    "secrets.postgresql.user": "user",
    "secrets.postgresql.password": "password",
}


def database_url(config: Any, conf_path: str | None, given: Mapping[str, str] = {}) -> str:
    """The state database's URL. ``given``: the ``[resource] [[postgresql]]`` and
    ``[secrets] [[postgresql]]`` keys the config file sets, by dotted name, as text
    (those crontabber has no option of its own for are read from there)."""
    directory = os.path.dirname(os.path.abspath(conf_path)) if conf_path else os.getcwd()
    url = comma_joined(config.crontabber.database_url or "")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url.removeprefix("sqlite:///")
        if path and not path.startswith(":memory:") and not path.startswith("file:"):
            return "sqlite:///" + os.path.join(directory, path)
    if url:
        return url
    values = postgres_values(config, given)
    if values.get("host") or values.get("dbname") or values.get("user"):
        return postgres_url(values)
    named = set(given)  # read from the file; without it (the plain reader), from the values
    if not named and values.get("password"):
        named.add("resource.postgresql.password")
    if not named and values.get("port") not in (None, "", DEFAULT_PORT):
        named.add("resource.postgresql.port")
    if named:
        raise ConfigError(
            f"the configuration names PostgreSQL ({', '.join(sorted(named))}) but no "
            "database crontabber can read: set crontabber.database_url, or host and dbname "
            "in [resource] [[postgresql]] (the state is never kept in a SQLite file of "
            "one host's own instead)"
        )
    return "sqlite:///" + os.path.join(directory, STATE_FILE_NAME)


def postgres_values(config: Any, given: Mapping[str, str]) -> dict[str, Any]:
    """``[resource] [[postgresql]]``'s connection values, each empty one (and the default
    port) taken from the early names the file gives."""
    section = config.resource.postgresql
    values: dict[str, Any] = {key: section.get(key) for key in CONNECTION_KEYS}
    values["host"] = comma_joined(values["host"] or "")
    for name, key in EARLY_NAMES.items():
        early = given.get(name)
        if early and (not values.get(key) or (key == "port" and values[key] == DEFAULT_PORT)):
            values[key] = int(early) if key == "port" and str(early).isdigit() else early
    return values


def postgres_url(values: Mapping[str, Any]) -> str:
    """``postgresql://user:password@host:port/dbname``, each part quoted, empty ones left out."""
    from urllib.parse import quote  # here: --help and --version need no URL

    user = quote(str(values.get("user") or ""), safe="")
    password = quote(str(values.get("password") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = str(values.get("host") or "")
    port = f":{values['port']}" if values.get("port") and host else ""
    dbname = quote(str(values.get("dbname") or ""), safe="")
    return f"postgresql://{credentials}{host}{port}/{dbname}"
