"""Admin commands: their data functions on both stores, their output and exit statuses."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from crontabber import App, actions
from crontabber import status as admin
from crontabber.cli import printers
from crontabber.errors import CrontabberError, JobIsOngoing, UnknownJob
from crontabber.run.runner import Runner
from crontabber.store import StateStore

from ..helpers.apps import Extract, Load
from ..helpers.command import run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module
from ..helpers.specs import at, make_spec
from ..helpers.store import hold_claim

NOW = at("2026-03-01 12:00")


class Backfilled(App):
    app_name = "backfilled"
    is_backfill = True

    def run(self, date: dt.datetime) -> None:
        raise OSError("disk full")


SPECS = [make_spec(Load), make_spec(Extract, frequency=dt.timedelta(days=1), time=dt.time(3, 0))]


def test_list_jobs_in_dependency_order_with_state(store: StateStore) -> None:
    Runner(SPECS, store).run(now=NOW)
    listings = admin.list_jobs(SPECS, store.load_states())
    assert [listing.spec.app_name for listing in listings] == ["extract", "load"]
    assert [listing.health for listing in listings] == [admin.Health.OK, admin.Health.FAILING]
    text = printers.listing_text(listings, NOW + dt.timedelta(hours=3))
    assert "extract (tests.helpers.apps.Extract)" in text
    assert "every 1d at 03:00 UTC" in text
    assert "last run:     2026-03-01 12:00:00 UTC (3 hours ago)" in text
    assert "next run:     2026-03-02 03:00:00 UTC (12 hours from now)" in text
    assert "last error:   ValueError: bad row 42" in text
    assert "Traceback (most recent call last)" in text


def test_list_jobs_never_run_and_ongoing(store: StateStore) -> None:
    hold_claim(store, "load", NOW - dt.timedelta(hours=25))
    listings = admin.list_jobs(SPECS, store.load_states())
    assert [listing.health for listing in listings] == [
        admin.Health.NEVER_RUN,
        admin.Health.ONGOING,
    ]
    text = printers.listing_text(listings, NOW)
    assert "last run:     never run" in text
    assert "ongoing:      since 2026-02-28 11:00:00 UTC (a day ago) on worker-7 pid 4321" in text


def test_list_jobs_json(store: StateStore) -> None:
    Runner(SPECS, store).run(now=NOW)
    output = printers.listing_json(admin.list_jobs(SPECS, store.load_states()))
    rows = [json.loads(line) for line in output.splitlines()]
    assert rows[0]["app_name"] == "extract" and rows[0]["time"] == "03:00"
    assert rows[0]["last_run"] == "2026-03-01T12:00:00+00:00"
    assert rows[1]["last_error"]["type"] == "ValueError"
    assert rows[1]["state"] == "failing"


def test_reset_job_by_name_or_class_and_twice(store: StateStore) -> None:
    Runner(SPECS, store).run(now=NOW)
    assert actions.reset_job(store, SPECS, "tests.helpers.apps.Extract", force=False).was_reset
    assert "extract" not in store.load_states()
    again = actions.reset_job(store, SPECS, "extract", force=False)
    assert not again.was_reset and "no state to reset" in again.message


def test_reset_refuses_an_ongoing_job_unless_forced(store: StateStore) -> None:
    hold_claim(store, "extract", NOW)
    with pytest.raises(JobIsOngoing, match="running on worker-7 pid 4321"):
        actions.reset_job(store, SPECS, "extract", force=False)
    assert actions.reset_job(store, SPECS, "extract", force=True).was_reset


def test_unknown_job_name(store: StateStore) -> None:
    with pytest.raises(UnknownJob, match="no job named 'nope'"):
        actions.reset_job(store, SPECS, "nope", force=False)


def test_audit_ghosts(store: StateStore) -> None:
    hold_claim(store, "retired-job", NOW)
    Runner(SPECS, store).run(now=NOW)
    assert admin.audit_ghosts(SPECS, store.load_states()) == ["retired-job"]


def test_nagios_ok_warning_critical(store: StateStore) -> None:
    age = dt.timedelta(hours=12)
    assert admin.nagios(SPECS, store.load_states(), NOW, age) == admin.NagiosVerdict(
        0, "OK - All systems nominal"
    )
    backfill = [make_spec(Backfilled)]
    Runner(backfill, store).run(now=NOW)
    verdict = admin.nagios(backfill, store.load_states(), NOW, age)
    assert verdict.status == 1
    assert (
        verdict.line == "WARNING - backfilled (tests.cli.test_admin.Backfilled): OSError: disk full"
    )
    Runner(backfill, store).run(now=NOW + dt.timedelta(hours=1))
    assert admin.nagios(backfill, store.load_states(), NOW, age).status == 2
    Runner(SPECS, store).run(now=NOW)
    verdict = admin.nagios(SPECS + backfill, store.load_states(), NOW, age)
    assert verdict.status == 2
    assert verdict.line.startswith("CRITICAL - ")
    assert verdict.line.count("; ") == 1
    assert "load (tests.helpers.apps.Load): ValueError: bad row 42" in verdict.line
    assert "backfilled (tests.cli.test_admin.Backfilled): OSError: disk full" in verdict.line
    assert "|" not in verdict.line  # Nagios would read what follows as performance data


def test_nagios_error_values_are_one_short_line_without_pipes(store: StateStore) -> None:
    class Noisy(App):
        app_name = "noisy"

        def run(self) -> None:
            raise ValueError("first line | not perfdata\nsecond line\n" + "x" * 2_000_000)

    Runner([make_spec(Noisy)], store).run(now=NOW)
    verdict = admin.nagios([make_spec(Noisy)], store.load_states(), NOW, dt.timedelta(hours=12))
    assert verdict.status == 2
    assert "\n" not in verdict.line
    assert "|" not in verdict.line  # not even the value's own
    assert "first line / not perfdata second line xxx" in verdict.line
    value = verdict.line.split("ValueError: ")[-1]
    assert len(value) == admin.NAGIOS_VALUE_LIMIT and value.endswith("...")


def test_nagios_critical_for_a_stale_claim(store: StateStore) -> None:
    hold_claim(store, "extract", NOW - dt.timedelta(hours=30))
    verdict = admin.nagios(SPECS, store.load_states(), NOW, dt.timedelta(hours=12))
    assert verdict.status == 2
    assert "claim by worker-7 pid 4321 is older than 12:00:00" in verdict.line


def test_graph_dot_colours_by_state(store: StateStore) -> None:
    Runner(SPECS, store).run(now=NOW)
    dot = admin.graph_dot(SPECS, store.load_states())
    assert dot.startswith("digraph crontabber {")
    assert '"extract" -> "load";' in dot
    assert '"load" [label="load\\nevery 5m\\nfailing", fillcolor=salmon];' in dot
    assert "fillcolor=palegreen" in dot


# --- the command line -------------------------------------------------------

JOBS = (
    Job("Hello", "hello"),
    Job("Broken", "broken", depends_on="hello", run='raise KeyError("missing")'),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "cmdjobs", *JOBS)
    return tmp_path


def cli(project: Path, *args: str, db: str = ""):
    config = write_config(project, "cmdjobs.Hello|5m\ncmdjobs.Broken|1h", database_url=db)
    return run_crontabber(f"--admin.conf={config}", *args, cwd=project)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_commands_end_to_end(project: Path, backend: str, request: pytest.FixtureRequest) -> None:
    db = request.getfixturevalue("pg_url") if backend == "postgres" else ""
    listed = cli(project, "--list-jobs", db=db)
    assert listed.status == 0 and listed.stdout.count("never run") == 4
    assert cli(project, db=db).status == 0
    listed = cli(project, "-l", db=db)
    assert "last error:   KeyError: 'missing'" in listed.stdout
    as_json = cli(project, "--list-jobs", "--json", db=db)
    assert [json.loads(line)["app_name"] for line in as_json.stdout.splitlines()] == [
        "hello",
        "broken",
    ]
    nagios = cli(project, "--nagios", db=db)
    assert nagios.status == 2
    assert nagios.stdout == "CRITICAL - broken (cmdjobs.Broken): KeyError: 'missing'\n"
    graph = cli(project, "--graph", db=db)
    assert graph.status == 0 and '"hello" -> "broken";' in graph.stdout
    reset = cli(project, "-r", "broken", db=db)
    assert (
        reset.status == 0 and reset.stdout == "reset broken: it will run as if it had never run\n"
    )
    reset = cli(project, "--reset-job=broken", db=db)
    assert reset.status == 0 and "no state to reset" in reset.stdout
    unknown = cli(project, "--reset-job=nope", db=db)
    assert unknown.status == 1
    assert unknown.stderr == (
        "crontabber: no job named 'nope' in the configuration (give an app name or module.ClassName)\n"
    )
    assert cli(project, "--nagios", db=db).stdout.startswith("OK - ")
    assert cli(project, "--audit-ghosts", db=db).stdout == ""


def test_job_runs_only_that_job_if_due_and_force_runs_it_now(project: Path) -> None:
    first = cli(project, "--job=hello")
    assert first.status == 0 and "running hello" in first.stderr and "broken" not in first.stderr
    again = cli(project, "--job=cmdjobs.Hello")
    assert again.status == 0 and again.stdout == "hello is not due; use --force to run it now\n"
    forced = cli(project, "--job=hello", "--force")
    assert forced.status == 0 and "running hello" in forced.stderr
    unknown = cli(project, "-j", "nope")
    assert unknown.status == 1 and "no job named 'nope'" in unknown.stderr


def test_job_and_force_refuse_a_backfill_job(tmp_path: Path) -> None:
    series = Job(
        "Series",
        "series",
        decorator="as_backfill_cron_app",
        run_args=", date",
        run='note(date.strftime("%Y-%m-%d"))',
    )
    imports = "from crontabber.mixins import as_backfill_cron_app"
    write_job_module(tmp_path, "seriesjobs", series, imports=imports, notes="dates.txt")
    config = write_config(tmp_path, "seriesjobs.Series|1d")
    for args in (["--job=series"], ["--job=series", "--force"]):
        result = run_crontabber(f"--admin.conf={config}", *args, cwd=tmp_path)
        assert result.status == 1
        assert result.stderr == (
            "crontabber: series is a backfill job: --job and --force do not run it, "
            "as that would break its series of dates; it runs on its schedule\n"
        )
    assert not (tmp_path / "dates.txt").exists()


def test_forced_job_still_respects_the_claim(project: Path, pg_url: str) -> None:
    from crontabber.store import open_store

    assert cli(project, db=pg_url).status == 0
    store = open_store(pg_url)
    hold_claim(store, "hello")
    store.close()
    forced = cli(project, "--job=hello", "--force", db=pg_url)
    assert forced.status == 3
    assert "skipped hello: running on worker-7 pid 4321" in forced.stderr


def test_reset_of_an_ongoing_job_needs_force(project: Path, pg_url: str) -> None:
    from crontabber.store import open_store

    store = open_store(pg_url)
    store.ensure_schema()
    hold_claim(store, "hello")
    store.close()
    refused = cli(project, "--reset-job=hello", db=pg_url)
    assert refused.status == 1
    assert "hello is running on worker-7 pid 4321" in refused.stderr
    assert "use --force" in refused.stderr
    assert cli(project, "--reset-job=hello", "--force", db=pg_url).status == 0


@pytest.mark.postgres
def test_ghosts_can_be_reset_one_by_one_or_removed_all_at_once(project: Path, pg_url: str) -> None:
    from crontabber.store import open_store

    store = open_store(pg_url)
    hold_claim(store, "retired-running")  # a ghost still marked ongoing
    hold_claim(store, "retired-a")
    hold_claim(store, "retired-b")
    store.close()
    assert cli(project, db=pg_url).status == 0  # hello and broken have state too
    assert cli(project, "--audit-ghosts", db=pg_url).stdout == (
        "retired-a\nretired-b\nretired-running\n"
    )
    one = cli(project, "--reset-job=retired-b", "--force", db=pg_url)
    assert one.status == 0 and one.stdout == "reset retired-b: it will run as if it had never run\n"
    removed = cli(project, "--audit-ghosts", "--force", db=pg_url)
    assert removed.status == 0, removed.stderr
    assert removed.stdout == "removed retired-a\nremoved retired-running\n"
    assert cli(project, "--audit-ghosts", db=pg_url).stdout == ""
    listed = cli(project, "--list-jobs", "--json", db=pg_url)
    assert {job["app_name"] for job in map(json.loads, listed.stdout.splitlines())} == {
        "hello",
        "broken",
    }


def test_configtest_exit_status_never_wraps_to_zero(tmp_path: Path) -> None:
    write_job_module(tmp_path, "cmdjobs", *JOBS)
    lines = "\n".join(f"nowhere.Job{n}|5m" for n in range(300))
    config = write_config(tmp_path, lines)
    result = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=tmp_path)
    assert result.status == 125  # 300 misconfigured jobs: "125 or more"
    assert len(result.stdout.splitlines()) == 300


def test_configtest_exit_status_counts_misconfigured_jobs(tmp_path: Path) -> None:
    write_job_module(tmp_path, "cmdjobs", *JOBS)
    good = write_config(tmp_path, "cmdjobs.Hello|5m\ncmdjobs.Broken|1h")
    result = run_crontabber(f"--admin.conf={good}", "--configtest", cwd=tmp_path)
    assert result.status == 0 and result.stdout == "configuration OK: 2 jobs\n"
    one = write_config(tmp_path, "cmdjobs.Hello|5m")
    result = run_crontabber(f"--admin.conf={one}", "--configtest", cwd=tmp_path)
    assert result.status == 0 and result.stdout == "configuration OK: 1 job\n"
    bad = write_config(tmp_path, "cmdjobs.Hello|5q\ncmdjobs.Broken|1h|03:00\nnowhere.Job|5m")
    result = run_crontabber(f"--admin.conf={bad}", "--configtest", cwd=tmp_path)
    assert result.status == 3
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "bad frequency '5q'" in lines[0]
    assert "needs a frequency of at least a day" in lines[1]
    assert "cannot import module 'nowhere'" in lines[2]
    assert not (tmp_path / "crontabber.sqlite").exists()


def test_configtest_reports_cycles_and_unknown_dependencies(tmp_path: Path) -> None:
    write_job_module(
        tmp_path,
        "loops",
        Job("A", "a", depends_on="b"),
        Job("B", "b", depends_on=["a"]),
        Job("C", "c", depends_on="ghost"),
    )
    config = write_config(tmp_path, "loops.A|5m\nloops.B|5m\nloops.C|5m")
    result = run_crontabber(f"--admin.conf={config}", "--configtest", cwd=tmp_path)
    assert result.status == 3
    assert "job 'c' depends on 'ghost', which is not in the jobs list" in result.stdout
    assert "dependency cycle:" in result.stdout


def test_version(tmp_path: Path) -> None:
    for flag in ("--version", "-v"):
        result = run_crontabber(flag, cwd=tmp_path)
        assert result.status == 0
        assert result.stdout.startswith("crontabber ")


def test_two_commands_at_once(project: Path) -> None:
    result = cli(project, "--list-jobs", "--graph")
    assert result.status == 1
    assert result.stderr == "crontabber: choose one command, not --list-jobs and --graph\n"


def test_nagios_unknown_when_the_database_is_unreachable(project: Path) -> None:
    result = cli(project, "--nagios", db="postgresql://u:pw@127.0.0.1:9/x")
    assert result.status == 3
    assert result.stdout.startswith("UNKNOWN - cannot reach the state database")


SECRET_PASSWORD = "correct-horse-battery"
SECRET_DSN_KEY = "0123456789abcdef0123456789abcdef"


def test_secrets_never_appear_in_any_output(project: Path) -> None:
    extra = f"""
[resource]
    [[postgresql]]
        password={SECRET_PASSWORD}
[sentry]
    dsn=http://{SECRET_DSN_KEY}@127.0.0.1:9/1
"""
    config = write_config(
        project,
        "cmdjobs.Hello|5m\ncmdjobs.Broken|1h",
        extra=extra,
        database_url=f"postgresql://someone:{SECRET_PASSWORD}@127.0.0.1:9/db",
    )
    dumped = project / "dumped.ini"
    outputs = []
    for args in (
        [],
        ["--list-jobs"],
        ["--nagios"],
        ["--graph"],
        ["--configtest"],
        ["--audit-ghosts"],
        ["--reset-job=hello"],
        ["--job=hello"],
        ["--sentrytest"],
        ["--admin.print_conf=ini"],
        [f"--admin.dump_conf={dumped}"],
        ["--help"],
    ):
        result = run_crontabber(f"--admin.conf={config}", *args, cwd=project)
        outputs.append(result.stdout + result.stderr)
    outputs.append(dumped.read_text())
    everything = "\n".join(outputs)
    assert "crontabber.database_url" in everything  # print_conf did print the options
    assert SECRET_PASSWORD not in everything
    assert SECRET_DSN_KEY not in everything
    assert "Traceback" not in everything


def test_unknown_job_is_an_error_not_a_traceback(store: StateStore) -> None:
    with pytest.raises(CrontabberError):
        admin.find_job(SPECS, "missing")
