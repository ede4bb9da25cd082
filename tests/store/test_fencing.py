"""Never twice where it is deployed, in the store: fencing, one connection per process,
deadlines on connections, and only true alarms (issue 21's reproductions 2, 3, 5, 7)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import psycopg2
import pytest

from crontabber import App, LeaseLost
from crontabber.db.connect import connect
from crontabber.db.url import parse_url
from crontabber.run.runner import Runner
from crontabber.store import ClaimStatus, Holder, Outcome, StateStore, open_store
from crontabber.store.fencing import JobClaim
from crontabber.store.lease import LeasePolicy
from crontabber.store.trace import Recorder

from ..helpers.specs import at, make_spec


def test_every_claim_of_a_job_takes_the_next_fence_number(store: StateStore) -> None:
    """Reproduction 2: a job had no fencing token; the claim's row now carries one."""
    fences = []
    for _ in range(3):
        holder = Holder("here", 1)
        claim = store.claim(
            "fenced",
            depends_on=(),
            seen=store.load_states().get("fenced"),
            force=True,
            lease=LeasePolicy(host="here"),
            holder=holder,
            retry_after=dt.timedelta(minutes=5),
        )
        assert claim.status is ClaimStatus.CLAIMED
        assert claim.state.ongoing_token == holder.token  # the row as the claim left it
        fences.append(claim.state.fence)
        store.finish(
            "fenced",
            holder,
            Outcome(
                started=at("2026-03-01 12:00"),
                finished=at("2026-03-01 12:00"),
                duration=dt.timedelta(0),
                next_run=at("2026-03-01 12:05"),
            ),
        )
    assert fences == [1, 2, 3]
    assert store.load_states()["fenced"].fence == 3


def test_a_job_sees_its_claim_and_its_row_as_claimed(store: StateStore) -> None:
    seen: list[tuple[Any, Any]] = []

    class Seeing(App):
        app_name = "seeing"

        def run(self) -> None:
            seen.append((self.claim, self.job_information))

    runner = Runner([make_spec(Seeing)], store)
    runner.run(only="seeing", force=True)
    runner.run(only="seeing", force=True)
    (first, first_row), (second, second_row) = seen
    assert (first.app_name, first.fence, second.fence) == ("seeing", 1, 2)
    assert first.token != second.token
    assert first_row.ongoing_token == first.token and second_row.ongoing_token == second.token
    assert first_row.ongoing_host == first.host == runner.holder.host
    assert first_row.fence == 1


def test_a_guarded_transaction_keeps_a_takeover_out_until_it_ends(
    pg_store: StateStore, pg_url: str
) -> None:
    """The guard locks the row FOR KEY SHARE: a takeover's FOR UPDATE NOWAIT fails
    while the job's transaction is open; the holder's own heartbeat does not wait."""
    guarded: list[int] = []

    class Guarded(App):
        app_name = "guarded"

        def run(self) -> None:
            job = psycopg2.connect(**parse_url(pg_url).connect_args)
            other = psycopg2.connect(**parse_url(pg_url).connect_args)
            other.autocommit = True
            try:
                guarded.append(self.claim.guard(job))
                with other.cursor() as cursor:
                    with pytest.raises(psycopg2.errors.LockNotAvailable):
                        cursor.execute(
                            "SELECT 1 FROM crontabber WHERE app_name = 'guarded' FOR UPDATE NOWAIT"
                        )
                    cursor.execute(  # what the heartbeat sends: not blocked
                        "SET LOCAL lock_timeout = '1s'; UPDATE crontabber SET heartbeat = now()"
                        " WHERE app_name = 'guarded'"
                    )
                job.commit()  # the guard ends with the job's transaction
                with other.cursor() as cursor:
                    cursor.execute(
                        "SELECT 1 FROM crontabber WHERE app_name = 'guarded' FOR UPDATE NOWAIT"
                    )
            finally:
                job.close()
                other.close()

    report = Runner([make_spec(Guarded)], pg_store).run(only="guarded", force=True)
    assert [job.result.name for job in report.jobs] == ["SUCCEEDED"]
    assert guarded == [1]


def test_a_guard_raises_lease_lost_once_the_claim_is_gone(store: StateStore) -> None:
    dialect = store.url.dialect
    holder = Holder("here", 1)
    store.claim(
        "gone",
        depends_on=(),
        seen=None,
        force=True,
        lease=LeasePolicy(host="here"),
        holder=holder,
        retry_after=dt.timedelta(minutes=5),
    )
    claim = JobClaim("gone", holder.token, 1, at("2026-03-01 12:00"), "here")
    connection = connect(store.url)
    try:
        if dialect == "postgresql":
            connection.autocommit = False
        assert claim.guard(connection) == 1
        connection.rollback() if dialect == "postgresql" else None
        store.reset("gone", force=True)  # as a takeover or an operator would
        with pytest.raises(LeaseLost, match="gone: its lease was lost"):
            claim.guard(connection)
    finally:
        connection.close()


def test_a_process_holds_one_connection_heartbeats_included(store: StateStore) -> None:
    """Reproduction 5: a process held two connections once it had run a job (its
    heartbeat opened a second). Now the beats share the run's one connection."""

    class Busy(App):
        app_name = "busy"

        def run(self) -> None:
            time.sleep(0.2)  # about 20 heartbeats

    recorder = Recorder()
    store.close()
    store.connection_factory = recorder.connect
    lease = LeasePolicy(
        host="here", heartbeat_interval=dt.timedelta(milliseconds=10), stale_intervals=1000
    )
    runner = Runner([make_spec(Busy)], store, lease=lease)
    for _ in range(3):
        runner.run(only="busy", force=True)
    assert recorder.statements.count("beat") >= 10  # the heartbeat did beat
    assert recorder.connections == 1


def test_a_run_that_ends_while_a_heartbeat_is_in_flight_is_no_alarm(
    pg_store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Reproduction 7: a heartbeat that found the claim released by the run's own
    outcome said it was taken over. 200 runs, heartbeats as often as the runs end."""

    class Beating(App):
        app_name = "beating"

        def run(self) -> None:
            time.sleep(0.003)

    lease = LeasePolicy(
        host="here", heartbeat_interval=dt.timedelta(milliseconds=2), stale_intervals=5000
    )
    runner = Runner([make_spec(Beating)], pg_store, lease=lease)
    with caplog.at_level(logging.WARNING, logger="crontabber"):
        for _ in range(200):
            runner.run(only="beating", force=True)
    assert [r.getMessage() for r in caplog.records if "taken over" in r.getMessage()] == []
    assert pg_store.load_states()["beating"].error_count == 0


def test_state_connections_get_a_connect_timeout_and_keepalives(pg_store: StateStore) -> None:
    pg_store.load_states()
    params = pg_store._connection.get_dsn_parameters()  # what libpq was given
    assert params["connect_timeout"] == "5"
    assert params["keepalives"] == "1"


def test_a_connect_timeout_in_the_url_wins(pg_url: str) -> None:
    store = open_store(f"{pg_url}?connect_timeout=2")
    try:
        store.load_states()
        assert store._connection.get_dsn_parameters()["connect_timeout"] == "2"
    finally:
        store.close()
