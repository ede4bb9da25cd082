"""A failover to a real streaming replica: the primary dies, the standby is promoted, and
the time in between counts against no lease, in the database's lease rule or in the
holder's own, as a restart's downtime does not.

Each test makes a private primary and a streaming replica of it (``pg_basebackup -R``),
reached through one libpq multi-host URL with ``target_session_attrs=read-write``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from crontabber.store import ClaimStatus, Holder, StateStore, open_store
from crontabber.store.lease import LeasePolicy

from ..helpers.command import HEARTBEAT, run_crontabber, write_config
from ..helpers.command import start_crontabber as start
from ..helpers.jobs import fault_runs as runs
from ..helpers.jobs import wait_for_start, write_fault_jobs
from ..helpers.pgcluster import PgCluster
from ..helpers.waiting import wait_until

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def replica(private_cluster: PgCluster) -> Iterator[PgCluster]:
    """A running streaming replica of ``private_cluster``, removed after the test."""
    standby = PgCluster.standby_of(private_cluster)
    try:
        standby.start()
        yield standby
    finally:
        standby.cleanup()


def failover_url(primary: PgCluster, standby: PgCluster) -> str:
    return (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
        "?target_session_attrs=read-write"
    )


def caught_up(primary: PgCluster, standby: PgCluster) -> bool:
    """Whether the standby has replayed everything the primary has written."""
    with psycopg2.connect(primary.libpq_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        (written,) = cursor.fetchone()
    connection.close()
    with psycopg2.connect(standby.libpq_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (written,))
        (replayed,) = cursor.fetchone()
    connection.close()
    return bool(replayed)


def claim(store: StateStore, host: str, window: dt.timedelta) -> ClaimStatus:
    return store.claim(
        "held",
        depends_on=(),
        seen=store.load_states().get("held"),
        force=True,
        lease=LeasePolicy(host=host, heartbeat_interval=window / 2, stale_intervals=2),
        holder=Holder(host, 1),
        retry_after=dt.timedelta(minutes=5),
    ).status


@pytest.mark.postgres
def test_a_promotion_does_not_count_against_a_lease(
    private_cluster: PgCluster, replica: PgCluster
) -> None:
    """The database's rule: a claim whose lease had a 2 s window when the primary died
    is live after a 4 s failover, and lapses a window after the promotion if no one
    renews it. The promoted standby was started before the claim was made, so its
    ``pg_postmaster_start_time()`` alone would have let another host take it over."""
    window = 2 * SECOND
    url = failover_url(private_cluster, replica)
    holder, other = open_store(url), open_store(url)
    try:
        holder.ensure_schema()
        assert claim(holder, "host-a", window) is ClaimStatus.CLAIMED
        wait_until(lambda: caught_up(private_cluster, replica), "the standby caught up")
        private_cluster.stop("immediate")
        time.sleep(2 * window.total_seconds())  # a failover longer than the lease
        replica.promote()
        promoted = time.monotonic()

        snapshot = other.read_snapshot()
        assert "held" in snapshot.states and snapshot.states["held"].ongoing is not None
        assert "held" not in snapshot.abandoned
        assert claim(other, "host-b", window) is ClaimStatus.ONGOING  # not taken over

        # unrenewed, it lapses a window after the promotion, not sooner
        wait_until(lambda: "held" in other.read_snapshot().abandoned, "the lease lapsed", 30)
        assert time.monotonic() - promoted >= window.total_seconds()
        assert claim(other, "host-b", window) is ClaimStatus.RECOVERED
    finally:
        holder.close()
        other.close()


@pytest.mark.postgres
def test_a_holder_keeps_its_job_through_a_failover(
    tmp_path: Path, private_cluster: PgCluster, replica: PgCluster
) -> None:
    """Real processes: host A runs a 12 s job under a 3 s lease (1 s heartbeats x 3)
    when the primary dies; the failover takes 4 s. No host can write meanwhile, so A
    keeps its lease and renews it on the promoted standby; host B, running right
    after the promotion and again later, finds the job held and does not run it.
    The job runs once, to its end, and its outcome is recorded."""
    project = write_fault_jobs(tmp_path).parent
    url = failover_url(private_cluster, replica)
    config = write_config(project, "faultjobs.Slow|5m", database_url=url, extra=HEARTBEAT)
    holder = start(config, project, "--crontabber.host_name=host-a", env={"SLOW_SECONDS": "12"})
    wait_for_start(project)
    wait_until(lambda: caught_up(private_cluster, replica), "the standby caught up")
    private_cluster.stop("immediate")
    time.sleep(4)  # longer than the lease: on its own, the holder's deadline has passed
    replica.promote()

    for _ in range(3):
        other = run_crontabber(
            f"--admin.conf={config}", "--crontabber.host_name=host-b", cwd=project
        )
        assert other.status == 3, other.stderr  # 3: skipped, held elsewhere
        assert "skipped slow: running on host-a" in other.stderr
        time.sleep(1.5)
    _, stderr = holder.communicate(timeout=60)
    assert holder.returncode == 0, stderr
    assert "LeaseLost" not in stderr and "lease is lost" not in stderr
    assert runs(project) == ["start", "end"]  # once, to its end: B never ran it
    store = open_store(url)
    try:
        state = store.load_states()["slow"]
    finally:
        store.close()
    assert state.ongoing is None and state.error_count == 0 and state.last_success is not None
