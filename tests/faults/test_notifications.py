"""Notifications with real hosts and a real receiver on 127.0.0.1: three hosts ticking a
failing job send one ``failed``, one ``recovered``; a late job and a stuck one are said
once; a receiver that is down gets every event once it is back; a host killed while it
delivers leaves its event to another; no secret of the webhook URL is ever printed."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..helpers.command import run_crontabber, start_crontabber, start_daemon, write_config
from ..helpers.jobs import Job, noted, write_job_module
from ..helpers.receiver import Receiver, mailbox, receiver
from ..helpers.waiting import wait_until

SECRET = "T0000SECRET/B0000/XXXXtoken"
JOBS = (
    Job(
        "Flaky",
        "flaky",
        run="""
            note("flaky")
            if not os.path.exists(os.path.join(HERE, "fixed")):
                raise RuntimeError("the disk is full")
        """,
    ),
    Job(
        "Often",
        "often",
        run='note("often", time.time())',
    ),
    Job(
        "Long",
        "long",
        run="""
            note("long")
            time.sleep(float(os.environ.get("LONG_SECONDS", "8")))
        """,
    ),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job_module(tmp_path, "notejobs", *JOBS)
    return tmp_path


def config_for(project: Path, pg_url: str, hook: Receiver, jobs: str, **notify: object) -> Path:
    values = {
        "webhook_url": f"{hook.url}/services/{SECRET}",
        "late_after": 1,
        "timeout": 1,
        **notify,
    }
    extra = "    error_retry_time=1\n[notify]\n" + "".join(
        f"    {key}={value}\n" for key, value in values.items()
    )
    return write_config(project, jobs, database_url=pg_url, extra=extra)


def crontabber(config: Path, project: Path, *args: str) -> tuple[int, str]:
    done = run_crontabber(f"--admin.conf={config}", *args, cwd=project)
    return done.status, done.stderr


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.communicate(timeout=60)


def test_three_hosts_send_one_failed_and_one_recovered(project: Path, pg_url: str) -> None:
    with receiver() as hook, mailbox() as inbox:
        mail = {
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.port,
            "smtp_starttls": "False",
            "email_from": "crontabber@example.com",
            "email_to": "ops@example.com",
        }
        config = config_for(project, pg_url, hook, "notejobs.Flaky|1h", **mail)
        crontabber(config, project, "--migrate")
        hosts = [start_daemon(config, project, f"host-{n}") for n in range(3)]
        try:
            wait_until(lambda: len(noted(project)) >= 4, "four failures", timeout=30)
            wait_until(lambda: hook.events("failed"), "the failed event", timeout=15)
            (project / "fixed").write_text("")
            wait_until(lambda: hook.events("recovered"), "the recovered event", timeout=30)
            wait_until(lambda: inbox.subjects("recovered"), "the recovered mail", timeout=15)
            time.sleep(2)  # every host ticks a few more times
        finally:
            stop(*hosts)
        [failed] = hook.events("failed")
        [recovered] = hook.events("recovered")
        assert len(inbox.subjects("flaky failed on host-")) == 1, inbox.messages
        assert len(inbox.subjects("flaky recovered")) == 1, inbox.messages
    assert failed["app_name"] == "flaky" and "RuntimeError: the disk is full" in failed["error"]
    assert failed["text"].startswith("crontabber: flaky failed on host-")
    assert recovered["id"] != failed["id"]
    assert {"id", "event", "app_name", "host", "when", "error", "text"} <= set(failed)


def test_a_late_job_and_a_stuck_one_are_said_once(project: Path, pg_url: str) -> None:
    with receiver() as hook:
        config = config_for(
            project, pg_url, hook, "notejobs.Often|2s\nnotejobs.Long|1h", stuck_after=1
        )
        crontabber(config, project, "--migrate")
        assert crontabber(config, project, "--job=often")[0] == 0
        time.sleep(3.5)  # no host ticks: often is due for 1.5 s, late_after is 1 s
        host_a = start_crontabber(config, project, "--crontabber.host_name=host-a")
        try:
            wait_until(lambda: "long" in noted(project), "the long run started", process=host_a)
            time.sleep(1.5)  # it runs past stuck_after
            for name in ("host-b", "host-c"):
                assert crontabber(config, project, f"--crontabber.host_name={name}")[0] == 3
            wait_until(lambda: hook.events("stuck"), "the stuck event", timeout=10)
        finally:
            host_a.communicate(timeout=60)
        [late] = hook.events("late")
        [stuck] = hook.events("stuck")
    assert late["app_name"] == "often" and stuck["app_name"] == "long"
    assert "is stuck" in stuck["text"] and "host-a" in stuck["text"]


def test_a_receiver_that_is_down_gets_every_event_once_it_is_back(
    project: Path, pg_url: str
) -> None:
    with receiver() as hook:
        hook.status = 503
        config = config_for(project, pg_url, hook, "notejobs.Flaky|1h")
        crontabber(config, project, "--migrate")
        status, stderr = crontabber(config, project)
        assert status == 0
        assert "was not delivered: " in stderr and "503" in stderr
        assert SECRET not in stderr and "XXXXtoken" not in stderr
        hook.status = 200
        time.sleep(5.5)  # the first retry waits 5 s
        crontabber(config, project, "--crontabber.host_name=another")
        [failed] = hook.events("failed")
    assert failed["app_name"] == "flaky"


def test_a_host_killed_while_it_delivers_leaves_the_event_to_another(
    project: Path, pg_url: str
) -> None:
    with receiver() as hook:
        hook.hang.set()  # the first delivery never gets an answer
        config = config_for(project, pg_url, hook, "notejobs.Flaky|1h")
        crontabber(config, project, "--migrate")
        host_a = start_crontabber(config, project, "--crontabber.host_name=host-a")
        wait_until(lambda: hook.paths, "host-a sends", timeout=30, process=host_a)
        host_a.send_signal(signal.SIGKILL)
        host_a.communicate(timeout=30)
        hook.hang.clear()
        began = time.monotonic()
        while not hook.events("failed"):  # the lease (3 x timeout + 5 s) passes
            assert time.monotonic() - began < 30, "no other host delivered it"
            crontabber(config, project, "--crontabber.host_name=host-b")
            time.sleep(0.5)
        [failed] = hook.events("failed")
    assert failed["app_name"] == "flaky"


def test_the_webhook_urls_secret_is_never_printed(project: Path, pg_url: str) -> None:
    with receiver() as hook:
        hook.status = 404
        config = config_for(project, pg_url, hook, "notejobs.Flaky|1h")
        outputs = []
        for args in ((), ("--list-jobs", "--json"), ("--help",), ("--admin.print_conf=ini",)):
            done = run_crontabber(
                f"--admin.conf={config}", "--logging.level=DEBUG", *args, cwd=project
            )
            outputs.append(done.stdout + done.stderr)
        assert "given up" in outputs[0]
    for output in outputs:
        assert SECRET not in output and "XXXXtoken" not in output, output


def test_the_status_page_delivers_pending_events_too(project: Path, pg_url: str) -> None:
    from crontabber.store import open_store

    from ..helpers.specs import at

    with receiver() as hook:
        config = config_for(project, pg_url, hook, "notejobs.Flaky|1h")
        crontabber(config, project, "--migrate")
        store = open_store(pg_url)
        try:
            store.record_event(
                "flaky",
                "late",
                at("2026-12-06 03:00"),
                sinks=("webhook",),
                host="gone",
                text="crontabber: flaky is late",
            )
        finally:
            store.close()
        page = start_crontabber(config, project, "--serve", "--web.port=0")
        try:
            wait_until(
                lambda: hook.events("late"), "the page delivered it", timeout=20, process=page
            )
        finally:
            stop(page)
        [late] = hook.events("late")
    assert late["host"] == "gone" and late["text"] == "crontabber: flaky is late"
