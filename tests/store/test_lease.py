"""The lease, in process, on real databases: its rules, dead and lapsed claims
recovered, the heartbeat, and outcome writes through lost connections."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
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
from crontabber.store import ClaimStatus, Holder, JobState, open_store
from crontabber.store import tables as sql
from crontabber.store.lease import LeasePolicy, pid_alive
from crontabber.store.trace import trace

from ..helpers.specs import at, make_spec
from ..helpers.store import hold_claim, terminate

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
            admin.exec_driver_sql(  # and the server's timeline began before that
                "UPDATE crontabber_timeline SET since = since - interval '2 hours'"
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
def test_a_timeline_not_yet_seen_counts_from_now_and_a_run_records_it(pg_store, pg_url) -> None:
    """After a promotion the server's timeline is new: until a crontabber has seen it,
    no lease lapses (the failover may have just ended); a run records when it first
    saw it, and the status page, which writes nothing, does not."""
    from crontabber.web.reader import read_only_store

    hold_claim(pg_store, "held", lapsed=True)
    assert "held" in pg_store.read_snapshot().abandoned
    with pg_store.engine.begin() as conn:  # as on a standby just promoted
        conn.exec_driver_sql("DELETE FROM crontabber_timeline")

    def recorded() -> list:
        with pg_store.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT since FROM crontabber_timeline").all()

    page = read_only_store(pg_url)
    try:
        assert "held" not in page.read_snapshot().abandoned
    finally:
        page.close()
    assert recorded() == []
    snapshot = pg_store.read_snapshot()
    assert "held" not in snapshot.abandoned
    [(since,)] = recorded()
    assert abs(since - snapshot.now) < SECOND
    assert "held" not in pg_store.read_snapshot().abandoned  # a window (1 s) from then
    time.sleep(1.2)
    assert "held" in pg_store.read_snapshot().abandoned


def test_a_claim_that_cannot_be_made_does_not_say_a_claim_will_expire(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.sqlite'}"
    store = open_store(url, retry_for=dt.timedelta(seconds=0.5))
    store.ensure_schema()
    holder = sqlite3.connect(tmp_path / "busy.sqlite", isolation_level=None, timeout=0.1)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the file
        began = time.monotonic()
        with pytest.raises(StateStoreError) as raised:
            store.claim(
                "job",
                depends_on=(),
                seen=None,
                force=True,
                lease=LeasePolicy(host="h"),
                holder=Holder("h", 1),
                retry_after=dt.timedelta(minutes=5),
            )
        # It waited as long as state_retry_seconds says (0.5 s here), not SQLite's minute.
        assert time.monotonic() - began < 10
        assert str(raised.value).startswith("claiming job failed: ")
        assert "claim will expire" not in str(raised.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
