"""Start-up budget: commands that need no database import no database library.

Each test runs the real command in a fresh interpreter with ``-X importtime``,
which names every module imported, and looks for the heavy ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers.command import import_order, imported_packages, run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module

DATABASE_LIBRARIES = ("sqlalchemy", "psycopg2", "alembic")


@pytest.mark.parametrize("args", [("--version",), ("-v",), ("--help",)])
def test_version_and_help_import_no_database_library(tmp_path: Path, args: tuple[str]) -> None:
    packages = imported_packages(*args, cwd=tmp_path)
    assert "crontabber" in packages  # the check really saw the command's imports
    assert packages.isdisjoint(DATABASE_LIBRARIES), sorted(packages & set(DATABASE_LIBRARIES))


NOT_IN_A_TICK = ("sqlalchemy", "alembic", "sentry_sdk")

JOBS = (
    Job("Fine", "fine"),
    Job("Failing", "failing", run='raise RuntimeError("reported, but with no DSN not to Sentry")'),
)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_tick_imports_neither_sqlalchemy_nor_alembic_nor_sentry(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """Due jobs, a failing one included, and then an idle tick, on a current schema."""
    write_job_module(tmp_path, "tickjobs", *JOBS)
    url = request.getfixturevalue("pg_url") if store == "postgres" else ""
    config = write_config(tmp_path, "tickjobs.Fine|5m\ntickjobs.Failing|5m", database_url=url)
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    for tick in ("due", "idle"):
        packages = imported_packages(f"--admin.conf={config}", cwd=tmp_path)
        driver = "psycopg2" if store == "postgres" else "sqlite3"
        assert driver in packages, tick  # it did open the state database
        assert packages.isdisjoint(NOT_IN_A_TICK), (tick, sorted(packages & set(NOT_IN_A_TICK)))


def test_a_tick_with_a_sentry_dsn_imports_sentry_only_for_a_failure(tmp_path: Path) -> None:
    write_job_module(tmp_path, "tickjobs", *JOBS)
    dsn = "[sentry]\n    dsn=https://key@127.0.0.1:9/1\n"
    config = write_config(tmp_path, "tickjobs.Fine|5m", extra=dsn)
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    assert "sentry_sdk" not in imported_packages(f"--admin.conf={config}", cwd=tmp_path)


# What an idle tick of jobs without options of their own leaves out: configman reads
# nothing (crontabber.config.plain reads the file), and the records are made without
# dataclasses and inspect, the types without typing, UTC without zoneinfo.
NOT_IN_AN_IDLE_TICK = (
    *NOT_IN_A_TICK,
    "configman",
    "configobj",
    "dataclasses",
    "inspect",
    "typing",
    "zoneinfo",
    "cronsim",
    "sqlite3",
)


def test_an_idle_tick_imports_only_what_it_needs(tmp_path: Path, pg_url: str) -> None:
    write_job_module(tmp_path, "tickjobs", *JOBS)
    config = write_config(tmp_path, "tickjobs.Fine|1d", database_url=pg_url)
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    assert run_crontabber(f"--admin.conf={config}", cwd=tmp_path).status == 0  # it ran
    packages = imported_packages(f"--admin.conf={config}", cwd=tmp_path)
    assert {"crontabber", "psycopg2"} <= packages  # it read the states
    assert packages.isdisjoint(NOT_IN_AN_IDLE_TICK), sorted(packages & set(NOT_IN_AN_IDLE_TICK))


def test_a_job_with_options_of_its_own_is_read_through_configman(tmp_path: Path) -> None:
    with_options = Job(
        "WithOptions",
        "with-options",
        attributes="required_config = Namespace()\nrequired_config.add_option('count', default=1)",
    )
    write_job_module(tmp_path, "optjobs", with_options, imports="from configman import Namespace")
    config = write_config(tmp_path, "optjobs.WithOptions|1d")
    assert run_crontabber(f"--admin.conf={config}", cwd=tmp_path).status == 0
    packages = imported_packages(f"--admin.conf={config}", cwd=tmp_path)
    assert "configman" in packages  # its options need configman, as before


def documented_tick_modules() -> set[str]:
    """The modules the package docstring's ``tick-modules`` block names."""
    import crontabber

    block = (crontabber.__doc__ or "").split(".. tick-modules", 1)[1]
    names: set[str] = set()
    for entry in block.replace("\n", " ").split(","):
        for word in entry.split():
            if word.startswith("crontabber"):
                names.add(word)
            elif word.startswith("."):
                names.add("crontabber" + word)
    return names


def test_the_package_docstring_names_every_module_an_idle_tick_imports(
    tmp_path: Path, pg_url: str
) -> None:
    write_job_module(tmp_path, "tickjobs", *JOBS)
    config = write_config(tmp_path, "tickjobs.Fine|1d", database_url=pg_url)
    assert run_crontabber(f"--admin.conf={config}", "--migrate", cwd=tmp_path).status == 0
    assert run_crontabber(f"--admin.conf={config}", cwd=tmp_path).status == 0  # it ran
    modules = {
        name
        for name in import_order(f"--admin.conf={config}", cwd=tmp_path, whole_names=True)
        if name.split(".")[0] == "crontabber"
    }
    assert "crontabber.store.postgresql" in modules  # it did read the states
    assert modules == documented_tick_modules()
