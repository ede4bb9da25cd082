"""The lease under faults, with real processes and a real PostgreSQL: a claim that
waits for a lock, a lost outcome write, a signal during the last outcome write, a
job that kills its process or calls sys.exit(), and a connection that dies while
the pool resets it."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import time
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from crontabber import App, cli
from crontabber.run.runner import Runner
from crontabber.store import ClaimStatus, Holder, StateStore, open_store
from crontabber.store import tables as sql
from crontabber.store.lease import LeasePolicy
from crontabber.store.trace import trace, traced_connect

from .clitools import run_crontabber, write_config
from .conftest import at, make_spec
from .pgcluster import PgCluster
from .test_faults import start, state_of, terminate

NOW = at("2026-03-01 12:00")
SECOND = dt.timedelta(seconds=1)

JOBS = """
import os
import sys
import time

from crontabber import App

HERE = os.path.dirname(__file__)


def note(text):
    with open(os.path.join(HERE, "runs.txt"), "a") as f:
        f.write(text + "\\n")


class Slow(App):
    app_name = "slow"

    def run(self):
        note(f"start {self.app_name} {os.getpid()}")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "4")))
        note(f"end {self.app_name} {os.getpid()}")


class Gate(App):
    '''Runs until the file "go" appears.'''

    app_name = "gate"

    def run(self):
        note(f"start {self.app_name} {os.getpid()}")
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(HERE, "go")) and time.monotonic() < deadline:
            time.sleep(0.01)
        note(f"end {self.app_name} {os.getpid()}")


class Killer(App):
    app_name = "killer"

    def run(self):
        note(f"start {self.app_name} {os.getpid()}")
        os._exit(7)


class Healthy(App):
    app_name = "healthy"

    def run(self):
        note(f"start {self.app_name} {os.getpid()}")
        note(f"end {self.app_name} {os.getpid()}")


class ExitsThree(App):
    app_name = "exits-three"

    def run(self):
        sys.exit(3)


class ExitsZero(App):
    app_name = "exits-zero"

    def run(self):
        sys.exit(0)
"""

HEARTBEAT = "    heartbeat_interval=1\n    heartbeat_stale_intervals=3\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "leasejobs.py").write_text(JOBS)
    return tmp_path


def runs(project: Path, app: str | None = None) -> list[str]:
    """The start/end markers written, of one app or of all."""
    path = project / "runs.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split()[0] for line in lines if app is None or line.split()[1] == app]


def wait_until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def waiting_on_a_lock(admin: sa.Connection, database: str, statement: str) -> bool:
    """Whether a backend of ``database`` runs ``statement...`` and waits for a lock."""
    return bool(
        admin.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s "
            "AND wait_event_type = 'Lock' AND query LIKE %(query)s",
            {"db": database, "query": statement + "%"},
        ).scalar()
    )


@pytest.mark.postgres
def test_a_first_claim_delayed_by_a_lock_is_never_taken_over(
    project: Path, pg_url: str, pg_admin_engine: sa.Engine
) -> None:
    """Reproduction 1: the claim waits 5 s for a row another connection is inserting,
    longer than the 3 s lease window; its lease starts when it is granted."""
    config = write_config(project, "leasejobs.Slow|5m", database_url=pg_url, extra=HEARTBEAT)
    assert run_crontabber(f"--admin.conf={config}", "--list-jobs", cwd=project).status == 0
    database = sa.make_url(pg_url).database
    blocker = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with blocker.connect() as inserting, pg_admin_engine.connect() as admin:
        inserting.exec_driver_sql("INSERT INTO crontabber (app_name) VALUES ('slow')")
        holder = start(config, project, "--crontabber.host_name=host-a")
        wait_until(
            lambda: waiting_on_a_lock(admin, database, "INSERT INTO crontabber"),
            "host-a's claim waits for the lock",
        )
        time.sleep(5)
        inserting.rollback()
    blocker.dispose()
    wait_until(lambda: "start" in runs(project), "the job started")
    statuses = []
    while "end" not in runs(project):
        other = run_crontabber(
            f"--admin.conf={config}", "--crontabber.host_name=host-b", cwd=project
        )
        if "end" not in runs(project):
            statuses.append(other.status)
    _, stderr = holder.communicate(timeout=60)
    assert holder.returncode == 0, stderr
    assert runs(project) == ["start", "end"], "the live run was taken over"
    assert statuses and set(statuses) == {3}, statuses
    assert state_of(pg_url, "slow")["logs"] == [None]


@pytest.mark.postgres
def test_an_outcome_whose_claim_was_taken_over_is_logged_as_superseded(
    pg_url: str, pg_admin_engine: sa.Engine
) -> None:
    """Reproduction 3: the first outcome write dies, the claim is recovered by another
    process before the retry; the retry still logs the outcome, marked superseded."""
    store = open_store(pg_url, retry_for=10 * SECOND)
    store.ensure_schema()
    other = open_store(pg_url)
    admin_engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    interfered = []

    class Finished(App):
        app_name = "finished"

        def run(self) -> None:
            pass

    def take_over_then_cut(event: str, name: str, connection) -> None:
        if event != "before" or name != "finish" or interfered:
            return
        interfered.append(True)
        with admin_engine.connect() as admin:
            admin.exec_driver_sql(
                "UPDATE crontabber SET lease_expires = clock_timestamp() - interval '1 hour', "
                "heartbeat = clock_timestamp() - interval '1 hour 1 second' "
                "WHERE app_name = 'finished'"
            )
        recovered = other.claim(
            "finished",
            depends_on=(),
            seen=other.load_states()["finished"],
            force=True,
            lease=LeasePolicy(host="host-b"),
            holder=Holder("host-b", 2),
            retry_after=dt.timedelta(minutes=5),
        )
        assert recovered.status is ClaimStatus.RECOVERED
        terminate(connection, pg_admin_engine)

    trace(store, take_over_then_cut)
    report = Runner([make_spec(Finished)], store, lease=LeasePolicy(host="host-a")).run(now=NOW)
    assert interfered
    assert report.exit_status == 0
    with store.engine.connect() as conn:
        logs = conn.execute(sa.select(sql.crontabber_log).order_by(sql.crontabber_log.c.id)).all()
    assert [(log.exc_type, log.superseded) for log in logs] == [
        ("crontabber.Abandoned", False),
        (None, True),
    ]
    assert logs[1].success == NOW
    state = store.load_states()["finished"]
    assert state.error_count == 1 and state.ongoing is None  # the recovery's record stands
    store.close()
    other.close()
    admin_engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_signal_while_the_last_outcome_is_written_is_not_lost(
    project: Path, pg_url: str, pg_admin_engine: sa.Engine, signum: int, status: int
) -> None:
    """Reproduction 6: the signal arrives while the outcome write waits for a row lock."""
    config = write_config(project, "leasejobs.Gate|5m", database_url=pg_url)
    process = start(config, project)
    wait_until(lambda: "start" in runs(project), "the job started")
    database = sa.make_url(pg_url).database
    with pg_admin_engine.connect() as admin:
        locker = sa.create_engine(pg_url, poolclass=sa.NullPool)
        with locker.connect() as lock, lock.begin():
            lock.exec_driver_sql("SELECT * FROM crontabber WHERE app_name = 'gate' FOR UPDATE")
            (project / "go").touch()
            wait_until(
                lambda: waiting_on_a_lock(admin, database, "WITH released AS"),
                "the outcome write waits for the lock",
            )
            process.send_signal(signum)
            time.sleep(0.3)
        locker.dispose()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    assert runs(project) == ["start", "end"]
    state = state_of(pg_url, "gate")
    assert state["ongoing"] is None and state["error_count"] == 0  # the job did finish
    assert state["logs"] == [None]


@pytest.mark.postgres
def test_a_job_that_kills_its_process_neither_crash_loops_nor_starves_the_others(
    project: Path, pg_url: str
) -> None:
    """Reproduction 7: the dead run is recovered as a failure, retried after
    error_retry_time; the healthy job runs on the next run."""
    config = write_config(project, "leasejobs.Killer|1m\nleasejobs.Healthy|1m", database_url=pg_url)
    statuses = [run_crontabber(f"--admin.conf={config}", cwd=project) for _ in range(4)]
    assert statuses[0].status == 7  # the job ended the process
    assert [result.status for result in statuses[1:]] == [0, 0, 0]
    assert "recovered killer: the claim by" in statuses[1].stderr
    assert "on this host is gone" in statuses[1].stderr
    assert runs(project, "killer") == ["start"]
    assert runs(project, "healthy") == ["start", "end"]
    killer = state_of(pg_url, "killer")
    assert killer["error_count"] == 1 and killer["ongoing"] is None
    assert killer["last_error"]["type"] == "crontabber.Abandoned"
    assert killer["next_run"] - killer["last_run"] >= dt.timedelta(seconds=300)
    assert killer["logs"] == ["crontabber.Abandoned"]


@pytest.mark.postgres
def test_sys_exit_in_a_job_is_that_jobs_failure(project: Path, pg_url: str) -> None:
    """Reproduction 8: the run goes on; the exit status is the documented one."""
    config = write_config(
        project,
        "leasejobs.ExitsThree|5m\nleasejobs.ExitsZero|5m\nleasejobs.Healthy|5m",
        database_url=pg_url,
    )
    result = run_crontabber(f"--admin.conf={config}", cwd=project)
    assert result.status == 0, result.stderr
    assert runs(project, "healthy") == ["start", "end"]
    for name, code in (("exits-three", 3), ("exits-zero", 0)):
        state = state_of(pg_url, name)
        assert state["error_count"] == 1
        assert state["last_error"]["type"] == "SystemExit"
        assert state["last_error"]["value"] == f"the job called sys.exit({code})"
        assert state["logs"] == ["SystemExit"]
        assert f"{name} failed after" in result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize(
    "command", [[], ["--list-jobs"], ["--nagios"]], ids=["run", "list", "nagios"]
)
def test_a_connection_that_dies_after_a_read_is_not_an_error(  # noqa: PLR0917 (fixtures)
    project: Path,
    pg_url: str,
    pg_admin_engine: sa.Engine,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reproduction 5: the state read's connection is terminated as the read returns.
    The read is done; the dead connection is replaced, and nothing is reported."""
    config = write_config(project, "leasejobs.Healthy|5m", database_url=pg_url)
    assert run_crontabber(f"--admin.conf={config}", "--list-jobs", cwd=project).status == 0
    killed = []

    def kill_after_the_read(event: str, name: str, connection) -> None:
        if event == "after" and name == "read_states" and not killed:
            killed.append(terminate(connection, pg_admin_engine))

    monkeypatch.setattr(
        StateStore, "connection_factory", staticmethod(traced_connect(kill_after_the_read))
    )
    handlers = logging.getLogger().handlers[:]
    try:
        status = cli.main([f"--admin.conf={config}", *command])
    finally:  # the command logs to this test's captured stderr: not to later tests'
        logging.getLogger().handlers[:] = handlers
    out, err = capsys.readouterr()
    assert killed
    assert "Traceback" not in err
    assert status == 0, err
    if command == ["--nagios"]:
        assert out == "OK - All systems nominal\n"


def test_a_driver_error_that_escapes_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Any database driver error, wrapped or not, is one line with the documented status."""
    error = psycopg2.OperationalError("server closed the connection unexpectedly\n\tmore")
    assert cli._database_error_line(error) == (
        "the state database failed: server closed the connection unexpectedly"
    )
    import sqlite3

    assert cli._database_error_line(sqlite3.OperationalError("disk I/O error")) == (
        "the state database failed: disk I/O error"
    )
    assert cli._database_error_line(ValueError("a bug")) is None


@pytest.mark.postgres
def test_time_the_server_was_down_does_not_count_against_a_lease(
    private_cluster: PgCluster,
) -> None:
    """A lease lapses no sooner than one full window after the server came back."""
    url = private_cluster.url
    holder_store, other_store = open_store(url), open_store(url)
    holder_store.ensure_schema()
    window = LeasePolicy(host="a", heartbeat_interval=4 * SECOND, stale_intervals=1)

    def claim(store, who: str):
        return store.claim(
            "job",
            depends_on=(),
            seen=store.load_states().get("job"),
            force=True,
            lease=window,
            holder=Holder(who, 1),
            retry_after=dt.timedelta(minutes=5),
        )

    assert claim(holder_store, "a").status is ClaimStatus.CLAIMED
    private_cluster.stop()
    time.sleep(6)  # longer than the 4 s window: nobody could renew the lease
    private_cluster.start()
    came_back = time.monotonic()
    assert claim(other_store, "b").status is ClaimStatus.ONGOING
    assert time.monotonic() - came_back < 3, "too slow to test the window"
    time.sleep(max(0.0, 4.5 - (time.monotonic() - came_back)))
    recovered = claim(other_store, "b")
    assert recovered.status is ClaimStatus.RECOVERED
    assert recovered.abandoned.startswith("its lease expired")
    holder_store.close()
    other_store.close()
