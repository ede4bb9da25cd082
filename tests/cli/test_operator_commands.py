"""The operators' commands as a user runs them: --pause, --resume, --run-now, --cancel,
--history and --audit-log, on SQLite and PostgreSQL; each says what it did in one line,
and bad input gets one line and exit 1 with nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..helpers.command import Completed, run_crontabber, write_config
from ..helpers.jobs import Job, write_job_module

JOBS = (
    Job(
        "Chatty",
        "chatty",
        run="""
            import logging
            print("printed by chatty")
            logging.getLogger("chatty").info("logged by chatty")
            os.system("echo from a child process; echo child error >&2")
            note("chatty")
        """,
    ),
    Job(
        "Loud",
        "loud",
        decorator="with_subprocess",
        run="""
            print("A" * 3000)
            self.run_process(["sh", "-c", "echo subprocess said hello"])
            print("the end of loud")
        """,
    ),
    Job("After", "after", depends_on="chatty", run='note("after")'),
)


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> tuple[Path, Path]:
    write_job_module(
        tmp_path, "opsjobs", *JOBS, imports="from crontabber.mixins import with_subprocess"
    )
    config = write_config(
        tmp_path,
        "opsjobs.Chatty|1d\nopsjobs.Loud|1d\nopsjobs.After|1d",
        extra="    run_output_kb=2\n",
        database_url=db_url,
    )
    return tmp_path, config


def crontabber(project: tuple[Path, Path], *args: str) -> Completed:
    directory, config = project
    return run_crontabber(f"--admin.conf={config}", *args, cwd=directory)


def test_pause_holds_a_job_and_its_dependents_until_resumed(project: tuple[Path, Path]) -> None:
    done = crontabber(project, "--pause=chatty", "--reason=disk full", "--until=2h")
    assert done.status == 0, done.stderr
    assert done.stdout.startswith("paused chatty until ") and done.stdout.endswith(
        " UTC (disk full)\n"
    )
    run = crontabber(project, "--logging.level=INFO")
    assert run.status == 0, run.stderr
    assert "skipped chatty: paused until" in run.stderr
    assert "skipped after: dependency 'chatty' is paused" in run.stderr
    listed = [
        json.loads(line)
        for line in crontabber(project, "--list-jobs", "--json").stdout.splitlines()
    ]
    paused = {job["app_name"]: job["paused"] for job in listed}
    assert paused["chatty"]["reason"] == "disk full" and paused["chatty"]["until"]
    assert paused["loud"] is None
    text = crontabber(project, "--list-jobs").stdout
    assert "pause reason: disk full" in text
    forced = crontabber(project, "--job=chatty", "--force")
    assert forced.status == 1 and "not run (--resume it first)" in forced.stdout
    assert crontabber(project, "--resume=chatty").stdout == "resumed chatty\n"
    again = crontabber(project, "--resume=chatty")
    assert (again.status, again.stderr) == (1, "crontabber: chatty is not paused\n")
    assert crontabber(project).status == 0
    assert (project[0] / "runs.txt").read_text().split() == ["chatty", "after"]


def test_run_now_runs_once_at_the_next_tick(project: tuple[Path, Path]) -> None:
    assert crontabber(project).status == 0
    asked = crontabber(project, "--run-now=chatty", "--reason=rerun for the report")
    assert asked.status == 0, asked.stderr
    assert asked.stdout == "asked for a run of chatty: the next host to tick runs it\n"
    assert crontabber(project).status == 0
    assert crontabber(project).status == 0
    assert (project[0] / "runs.txt").read_text().split() == ["chatty", "after", "chatty"]
    history = [
        json.loads(line)
        for line in crontabber(project, "--history=chatty", "--json").stdout.splitlines()
    ]
    assert [run["trigger"] for run in history] == ["run-now", "schedule"]


def test_history_shows_what_a_run_printed_and_logged(project: tuple[Path, Path]) -> None:
    assert crontabber(project).status == 0
    [run] = [
        json.loads(line)
        for line in crontabber(project, "--history=chatty", "--json").stdout.splitlines()
    ]
    assert run["outcome"] == "succeeded" and run["host"] and run["pid"] > 0
    for words in ("printed by chatty", "INFO chatty: logged by chatty", "from a child process"):
        assert words in run["output"]
    assert "child error" in run["output"]
    text = crontabber(project, "--history=chatty").stdout
    assert "succeeded  schedule  on " in text and "| printed by chatty" in text


def test_a_runs_output_is_capped_keeping_its_start_and_end(project: tuple[Path, Path]) -> None:
    assert crontabber(project).status == 0
    [run] = [
        json.loads(line)
        for line in crontabber(project, "--history=loud", "--json").stdout.splitlines()
    ]
    output = run["output"]
    assert output.startswith("AAAA") and output.rstrip().endswith("the end of loud")
    assert "bytes left out ...]" in output
    assert "subprocess said hello" in output  # what the subprocess mixin captured
    assert len(output.encode()) < 2 * 1024 + 100


def test_every_action_is_in_the_audit_log_with_its_actor(project: tuple[Path, Path]) -> None:
    assert crontabber(project).status == 0
    for args in (
        ("--pause=loud", "--reason=why not"),
        ("--resume=loud",),
        ("--run-now=chatty",),
        ("--reset-job=after", "--reason=start over"),
    ):
        assert crontabber(project, *args).status == 0
    entries = [
        json.loads(line)
        for line in crontabber(project, "--audit-log", "--json").stdout.splitlines()
    ]
    assert [(e["action"], e["app_name"], e["reason"]) for e in reversed(entries)] == [
        ("pause", "loud", "why not"),
        ("resume", "loud", None),
        ("run-now", "chatty", None),
        ("reset", "after", "start over"),
    ]
    assert all(e["actor"].endswith(" (command line)") and "@" in e["actor"] for e in entries)
    text = crontabber(project, "--audit-log").stdout
    assert " pause        loud  by " in text and ": why not" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pause=nope",), "no job named 'nope' in the configuration"),
        (("--pause=ghost",), "ghost is a ghost (in the state table, not in this configuration)"),
        (("--pause=chatty", "--until=2020-01-01T00:00Z"), "is not after the database's now"),
        (("--pause=chatty", "--until=tomorrowish"), "is neither a time"),
        (("--pause=chatty", "--reason=" + "x" * 1001), "the reason is 1001 characters long"),
        (("--run-now=nope",), "no job named 'nope'"),
        (("--cancel=chatty",), "chatty is not running: nothing to cancel"),
        (("--until=2h",), "--until goes with --pause"),
        (("--reason=x",), "--reason goes with"),
        (("--history=nope",), "no job named 'nope'"),
    ],
)
def test_bad_input_gets_one_line_and_exit_1(
    project: tuple[Path, Path], args: tuple[str, ...], message: str
) -> None:
    directory, config = project
    # A ghost: state from a configuration that had it.
    ghost = write_config(directory, "opsjobs.Chatty|1d", database_url=_url_of(config))
    write_job_module(directory, "ghostjobs", Job("Ghost", "ghost"))
    ghost.write_text(ghost.read_text().replace("opsjobs.Chatty|1d", "ghostjobs.Ghost|1d"))
    assert run_crontabber(f"--admin.conf={ghost}", cwd=directory).status == 0
    config = write_config(
        directory,
        "opsjobs.Chatty|1d\nopsjobs.Loud|1d\nopsjobs.After|1d",
        database_url=_url_of(ghost),
    )
    done = run_crontabber(f"--admin.conf={config}", *args, cwd=directory)
    assert done.status == 1, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    log = run_crontabber(f"--admin.conf={config}", "--audit-log", cwd=directory)
    assert log.stdout == "the audit log is empty\n"


def _url_of(config: Path) -> str:
    for line in config.read_text().splitlines():
        if line.strip().startswith("database_url="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("no database_url")


def test_refusals_say_why_in_one_line_and_exit_1(project: tuple[Path, Path]) -> None:
    assert crontabber(project).status == 0
    assert crontabber(project, "--pause=chatty").status == 0
    paused = crontabber(project, "--run-now=chatty")
    assert (paused.status, paused.stderr) == (
        1,
        "crontabber: chatty is paused: resume it first\n",
    )
    # An empty name asks for no command: --json then has none to go with.
    named = crontabber(project, "--history=", "--json")
    assert (named.status, named.stderr) == (
        1,
        "crontabber: --json goes with --list-jobs, --history or --audit-log\n",
    )
