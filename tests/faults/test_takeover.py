"""Fault tolerance with real processes and a real PostgreSQL: crashes, signals,
lost connections, a restarted server, hung jobs."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crontabber import App
from crontabber.db.connect import connect
from crontabber.db.url import parse_url
from crontabber.errors import StateStoreError
from crontabber.run.runner import Result, Runner
from crontabber.store import JobState, open_store
from crontabber.store import tables as sql
from crontabber.store.lease import LeasePolicy, pid_alive
from crontabber.store.trace import trace

from .clitools import crontabber_command, run_crontabber, write_config
from .conftest import at, hold_claim, make_spec
from .pgcluster import PgCluster

NOW = at("2026-03-01 12:00")
SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)

# --- the lease rules ----------------------------------------------------------------


def claimed(**values: object) -> JobState:
    return JobState(app_name="job", **{"ongoing": NOW, "heartbeat": NOW, **values})


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_only_a_claim_on_this_host_whose_process_is_gone_is_named_dead() -> None:
    """The one fact the database cannot check: it gets the token of such a claim."""
    lease = LeasePolicy(host="here")
    pid = dead_pid()
    assert not pid_alive(pid)
    dead = claimed(ongoing_host="here", ongoing_pid=pid, ongoing_token="t1")
    assert lease.dead_local_token(dead) == "t1"
    alive = claimed(ongoing_host="here", ongoing_pid=os.getppid(), ongoing_token="t2")
    assert lease.dead_local_token(alive) is None
    elsewhere = claimed(ongoing_host="there", ongoing_pid=pid, ongoing_token="t3")
    assert lease.dead_local_token(elsewhere) is None
    assert lease.dead_local_token(JobState("job")) is None
    assert lease.dead_local_token(None) is None


def test_the_databases_verdicts_in_words() -> None:
    lease = LeasePolicy(host="here", max_age=dt.timedelta(hours=12))
    state = claimed(ongoing_host="there", ongoing_pid=1)
    assert lease.reason("lease", state, NOW + 91 * SECOND) == (
        "its lease expired: the last heartbeat was 91s ago"
    )
    assert lease.reason("pid", state, NOW) == "its process 1 on this host is gone"
    assert lease.reason("age", state, NOW) == "it is older than 12:00:00"


def test_a_dead_holder_on_this_host_is_recovered_at_once(store) -> None:
    pid = dead_pid()
    hold_claim(store, "sleeper", host="here", pid=pid)  # a live lease, an hour long
    report = Runner([make_spec(Sleeper)], store, lease=LeasePolicy(host="here")).run(now=NOW)
    assert report.with_result(Result.RECOVERED) == ["sleeper"]
    assert f"its process {pid} on this host is gone" in report.jobs[0].reason


def test_a_live_holder_elsewhere_is_left_alone(store) -> None:
    hold_claim(store, "sleeper", host="there", pid=dead_pid())  # not this host: its lease rules
    report = Runner([make_spec(Sleeper)], store, lease=LeasePolicy(host="here")).run(now=NOW)
    assert report.with_result(Result.ONGOING) == ["sleeper"]


# --- in-process: heartbeat, takeover records, outcome writes through trouble --------


class Sleeper(App):
    app_name = "sleeper"
    seconds = 0.0
    seen: list[JobState] = []

    def run(self) -> None:
        time.sleep(self.seconds)


def test_heartbeat_is_refreshed_while_a_job_runs(pg_url: str) -> None:
    store = open_store(pg_url)
    store.ensure_schema()
    seen = []

    class Watched(App):
        app_name = "watched"

        def run(self) -> None:
            time.sleep(0.8)
            seen.append(store.load_states()["watched"])

    lease = LeasePolicy(host="h", heartbeat_interval=0.2 * SECOND)
    Runner([make_spec(Watched)], store, lease=lease).run(now=NOW)
    store.close()
    # renewed in the database's clock, whatever the tick's now
    assert seen[0].heartbeat >= seen[0].ongoing + 0.4 * SECOND
    assert abs(seen[0].lease_expires - seen[0].heartbeat - 0.6 * SECOND) < 0.1 * SECOND


def test_recovering_records_the_abandoned_attempt_and_does_not_run_it(store) -> None:
    ran = []

    class Recorded(App):
        app_name = "recorded"

        def run(self) -> None:
            ran.append(self.app_name)

    hold_claim(store, "recorded", host="crashed-host", pid=999, age=HOUR, lapsed=True)
    report = Runner([make_spec(Recorded)], store, lease=LeasePolicy(host="h")).run(now=NOW)
    assert ran == []
    assert report.with_result(Result.RECOVERED) == ["recorded"]
    with store.engine.connect() as conn:
        logs = conn.execute(sa.select(sql.crontabber_log).order_by(sql.crontabber_log.c.id)).all()
    assert [log.exc_type for log in logs] == ["crontabber.Abandoned"]
    assert "claimed by crashed-host pid 999" in logs[0].exc_value
    assert abs(logs[0].duration - HOUR) < 10 * SECOND  # from the claim to its recovery
    state = store.load_states()["recorded"]
    assert state.error_count == 1 and state.ongoing is None


def test_an_abandoned_claim_counts_as_a_failure(store) -> None:
    class Failing(App):
        app_name = "failing"

        def run(self) -> None:
            raise RuntimeError("again")

    hold_claim(store, "failing", host="crashed-host", pid=999, lapsed=True)
    # no retry delay, and the database's time: the recovered job is due on the next tick
    runner = Runner(
        [make_spec(Failing)], store, lease=LeasePolicy(host="h"), error_retry_time=0 * SECOND
    )
    runner.run()
    assert store.load_states()["failing"].error_count == 1
    assert runner.run().with_result(Result.FAILED) == ["failing"]
    assert store.load_states()["failing"].error_count == 2


def terminate(connection, admin_engine: sa.Engine) -> int:
    """Terminate the server process of a psycopg2 connection and wait until it is gone."""
    pid = connection.get_backend_pid()
    with admin_engine.connect() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        deadline = time.monotonic() + 10
        while admin.exec_driver_sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
        ).scalar():
            assert time.monotonic() < deadline, "the backend did not go"
            time.sleep(0.01)
    return pid


def test_outcome_write_survives_a_terminated_connection(
    pg_url: str, pg_admin_engine: sa.Engine
) -> None:
    store = open_store(pg_url, retry_for=10 * SECOND)
    store.ensure_schema()
    killed = []

    def kill_first_outcome_write(event: str, name: str, connection) -> None:
        if event == "before" and name == "finish" and not killed:
            killed.append(terminate(connection, pg_admin_engine))

    trace(store, kill_first_outcome_write)
    report = Runner([make_spec(Sleeper)], store).run(now=NOW)
    assert killed
    assert report.exit_status == 0
    state = store.load_states()["sleeper"]
    assert state.ongoing is None and state.last_success == NOW
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(sql.crontabber_log)).scalar() == 1
        )
    store.close()


def test_an_outcome_that_cannot_be_written_leaves_the_claim_to_expire(pg_url: str) -> None:
    store = open_store(pg_url, retry_for=1 * SECOND)
    store.ensure_schema()
    cut_off = []

    def refuse_once_cut_off(url):
        if cut_off:
            return connect(parse_url("postgresql://postgres@127.0.0.1:9/none"))
        return connect(url)

    store.connection_factory = refuse_once_cut_off

    class CutOff(App):
        app_name = "cut-off"

        def run(self) -> None:
            cut_off.append(True)
            store.close()  # every connection is gone; new ones cannot be made

    lease = LeasePolicy(host="h", heartbeat_interval=0.1 * SECOND)
    with pytest.raises(StateStoreError, match="its claim will expire and a later run recovers"):
        Runner([make_spec(CutOff)], store, lease=lease).run(now=NOW)
    cut_off.clear()
    left = store.load_states()["cut-off"]
    assert left.ongoing is not None and left.last_run is None  # nothing half-written

    time.sleep(0.5)  # past the 0.3 s lease, which nobody renews any more
    report = Runner([make_spec(CutOff)], store, lease=lease).run(now=NOW + SECOND)
    assert report.with_result(Result.RECOVERED) == ["cut-off"]
    state = store.load_states()["cut-off"]
    assert state.ongoing is None and state.error_count == 1
    store.close()


# --- real processes ---------------------------------------------------------------------

JOBS = """
import os
import time

from crontabber import App
from crontabber.mixins import with_subprocess

HERE = os.path.dirname(__file__)


def note(text):
    with open(os.path.join(HERE, "runs.txt"), "a") as f:
        f.write(text + "\\n")


class Slow(App):
    app_name = "slow"

    def run(self):
        note(f"start {os.getpid()}")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "4")))
        note(f"end {os.getpid()}")


class HungPython(App):
    app_name = "hung-python"
    max_runtime = 1

    def run(self):
        time.sleep(60)


@with_subprocess
class HungCommand(App):
    app_name = "hung-command"
    max_runtime = 1

    def run(self):
        # a length no other process on the machine sleeps, for the check below
        self.run_process(["sleep", "59.713"])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "faultjobs.py").write_text(JOBS)
    return tmp_path


def runs(project: Path) -> list[str]:
    path = project / "runs.txt"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def start(config: Path, project: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*crontabber_command(), f"--admin.conf={config}", *args],
        cwd=project,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_start(project: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while "start" not in runs(project):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)


def state_of(url: str, name: str) -> dict:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        row = conn.execute(sa.select(sql.crontabber).where(sql.crontabber.c.app_name == name)).one()
        logs = (
            conn.execute(
                sa.select(sql.crontabber_log.c.exc_type).where(
                    sql.crontabber_log.c.app_name == name
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return {**row._mapping, "logs": logs}


HEARTBEAT = "    heartbeat_interval=1\n    heartbeat_stale_intervals=3\n"


@pytest.mark.postgres
def test_killed_holder_elsewhere_is_taken_over_only_after_the_stale_window(
    project: Path, pg_url: str
) -> None:
    # a 6 s stale window: wide enough that the early run below ends inside it even on a
    # busy machine, while the late run starts after it
    extra = "    heartbeat_interval=1\n    heartbeat_stale_intervals=6\n"
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=extra)
    victim = start(config, project, "--crontabber.host_name=host-a", env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    killed_at = time.monotonic()
    early = run_crontabber(f"--admin.conf={config}", "--crontabber.host_name=host-b", cwd=project)
    assert time.monotonic() - killed_at < 5, "too slow to test the window"
    assert early.status == 3, early.stderr
    time.sleep(max(0.0, 6.5 - (time.monotonic() - killed_at)))
    late = run_crontabber(
        f"--admin.conf={config}",
        "--crontabber.host_name=host-b",
        cwd=project,
        env={"SLOW_SECONDS": "0"},
    )
    assert late.status == 0, late.stderr
    assert "recovered slow: the claim by host-a" in late.stderr
    assert "its lease expired: the last heartbeat was" in late.stderr
    assert runs(project) == ["start"]  # retried after error_retry_time, not at once
    state = state_of(pg_url, "slow")
    assert state["ongoing"] is None and state["error_count"] == 1
    assert state["logs"] == ["crontabber.Abandoned"]


@pytest.mark.postgres
def test_dead_holder_on_this_host_is_reclaimed_immediately(project: Path, pg_url: str) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    victim = start(config, project, env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    result = run_crontabber(f"--admin.conf={config}", cwd=project, env={"SLOW_SECONDS": "0"})
    assert result.status == 0, result.stderr
    assert f"its process {victim.pid} on this host is gone" in result.stderr
    assert runs(project) == ["start"]
    assert state_of(pg_url, "slow")["error_count"] == 1


@pytest.mark.postgres
def test_a_live_holder_with_a_fresh_heartbeat_is_never_taken_over(
    project: Path, pg_url: str
) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    holder = start(config, project, "--crontabber.host_name=host-a", env={"SLOW_SECONDS": "5"})
    wait_for_start(project)
    statuses = []
    # For 5 s, longer than the 3 s stale window. Only runs that ended while the job was
    # still running count: once the holder has recorded "end" its claim is released and
    # the job is simply not due, whether or not the holder process has exited yet.
    while "end" not in runs(project):
        result = run_crontabber(
            f"--admin.conf={config}", "--crontabber.host_name=host-b", cwd=project
        )
        if "end" not in runs(project):
            statuses.append(result.status)
    holder.communicate()
    assert holder.returncode == 0
    assert statuses and set(statuses) == {3}
    assert runs(project) == ["start", "end"]


@pytest.mark.postgres
def test_sigterm_records_the_job_as_failed_and_releases_it(project: Path, pg_url: str) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url)
    process = start(config, project, env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - began < 5
    assert process.returncode == 143
    assert stderr.endswith("crontabber: terminated by SIGTERM\n")
    state = state_of(pg_url, "slow")
    assert state["ongoing"] is None
    assert state["error_count"] == 1
    assert state["last_error"]["type"] == "crontabber.interrupts.Terminated"
    assert state["logs"] == ["crontabber.interrupts.Terminated"]


@pytest.mark.postgres
def test_sigint_records_the_job_as_failed(project: Path, pg_url: str) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url)
    process = start(config, project, env={"SLOW_SECONDS": "60"})
    wait_for_start(project)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback (most recent call last)" not in stderr.split("failed after")[-1]
    assert state_of(pg_url, "slow")["ongoing"] is None


@pytest.mark.postgres
def test_max_runtime_bounds_hung_jobs(project: Path, pg_url: str) -> None:
    config = write_config(
        project, "faultjobs.HungPython|5m\nfaultjobs.HungCommand|5m", database_url=pg_url
    )
    began = time.monotonic()
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert time.monotonic() - began < 15
    assert result.status == 0, result.stderr
    for name in ("hung-python", "hung-command"):
        state = state_of(pg_url, name)
        assert state["ongoing"] is None
        assert state["last_error"]["type"] == "crontabber.interrupts.MaxRuntimeExceeded"
    sleeps = subprocess.run(
        ["pgrep", "-f", "^sleep 59.713$"], capture_output=True, text=True, check=False
    )
    assert sleeps.stdout == "", "the hung command was not killed"


@pytest.mark.postgres
def test_connections_killed_during_a_job(
    project: Path, pg_url: str, pg_admin_engine: sa.Engine
) -> None:
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    process = start(config, project, env={"SLOW_SECONDS": "3"})
    wait_for_start(project)
    database = sa.make_url(pg_url).database
    with pg_admin_engine.connect() as admin:
        killed = admin.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ).scalar()
    assert killed >= 1
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    state = state_of(pg_url, "slow")
    assert state["ongoing"] is None and state["error_count"] == 0
    assert runs(project) == ["start", "end"]


# --- a PostgreSQL server the test can restart (tests/pgcluster.py) -------------------


@pytest.mark.postgres
def test_postgresql_restarted_during_a_run(project: Path, private_cluster: PgCluster) -> None:
    url = private_cluster.url
    config = write_config(project, "faultjobs.Slow|5m", database_url=url, extra=HEARTBEAT)
    process = start(config, project, env={"SLOW_SECONDS": "2"})
    wait_for_start(project)
    private_cluster.restart()
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    state = state_of(url, "slow")
    assert state["ongoing"] is None and state["error_count"] == 0 and state["logs"] == [None]
    again = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert again.status == 0 and runs(project) == ["start", "end"]  # not due: not run twice


@pytest.mark.postgres
def test_max_runtime_from_the_ini_file(project: Path, pg_url: str) -> None:
    extra = "    [[class-Slow]]\n        max_runtime=1\n"
    config = write_config(project, "faultjobs.Slow|5m", database_url=pg_url, extra=extra)
    began = time.monotonic()
    result = run_crontabber(f"--admin.conf={config}", cwd=project, env={"SLOW_SECONDS": "60"})
    assert time.monotonic() - began < 15
    assert result.status == 0, result.stderr
    state = state_of(pg_url, "slow")
    assert state["last_error"]["type"] == "crontabber.interrupts.MaxRuntimeExceeded"
    assert runs(project) == ["start"]
