"""The state database failing under a run, with real processes: connections killed
during a job or right after a read, a PostgreSQL server restarted during a run or
down for longer than a lease, and driver errors that escape as one line."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from crontabber import cli
from crontabber.cli import entry
from crontabber.store import ClaimStatus, Holder, StateStore, open_store
from crontabber.store.lease import LeasePolicy
from crontabber.store.trace import traced_connect

from ..helpers.command import HEARTBEAT, run_crontabber, write_config
from ..helpers.command import start_crontabber as start
from ..helpers.jobs import fault_runs as runs
from ..helpers.jobs import wait_for_start, write_fault_jobs
from ..helpers.pgcluster import PgCluster
from ..helpers.store import state_of, terminate


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory like a user's: the fault jobs (tests/helpers/jobs.py) beside its config."""
    return write_fault_jobs(tmp_path).parent


SECOND = dt.timedelta(seconds=1)


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
    config = write_config(project, "faultjobs.Healthy|5m", database_url=pg_url)
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
    assert entry._database_error_line(error) == (
        "the state database failed: server closed the connection unexpectedly"
    )
    import sqlite3

    assert entry._database_error_line(sqlite3.OperationalError("disk I/O error")) == (
        "the state database failed: disk I/O error"
    )
    assert entry._database_error_line(ValueError("a bug")) is None


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
