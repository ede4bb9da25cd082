"""The claim: one transaction that locks, re-checks and writes, on both stores."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crontabber.errors import StateStoreError
from crontabber.store import ClaimStatus, Holder, JobState, Outcome, StateStore, open_store
from crontabber.store import tables as sql
from crontabber.store.lease import LeasePolicy

from ..helpers.specs import at
from ..helpers.store import hold_claim

NOW = at("2026-03-01 12:00")
HOUR = dt.timedelta(hours=1)


def claim(
    store: StateStore,
    name: str = "job",
    *,
    now=NOW,
    max_age=12 * HOUR,
    holder=None,
    due: bool | None = None,
):
    """Claim ``name`` as the runner would at ``now``: as it was found due then, or
    forced (``due=True``)."""
    seen = store.load_states().get(name)
    if due is None and seen is not None and seen.next_run is not None and seen.next_run > now:
        return store.claim(  # not due at now: claim as seen before someone ran it
            name,
            depends_on=("dep",),
            seen=JobState(name),
            force=False,
            lease=LeasePolicy(host="test-host", heartbeat_interval=HOUR, stale_intervals=100),
            holder=holder or Holder("host-a", 111),
            retry_after=dt.timedelta(minutes=5),
        )
    return store.claim(
        name,
        depends_on=("dep",),
        seen=seen,
        force=bool(due),
        lease=LeasePolicy(
            host="test-host", heartbeat_interval=HOUR, stale_intervals=100, max_age=max_age
        ),
        holder=holder or Holder("host-a", 111),
        retry_after=dt.timedelta(minutes=5),
    )


def finish(store: StateStore, holder: Holder, *, error=None, next_run=NOW + HOUR):
    return store.finish(
        "job",
        holder,
        Outcome(NOW, NOW + dt.timedelta(seconds=2), dt.timedelta(seconds=2), next_run, error),
    )


def test_first_claim_creates_the_row_and_marks_it_ongoing(store: StateStore) -> None:
    before = store.read_snapshot().now
    result = claim(store)
    after = store.read_snapshot().now
    assert result.status is ClaimStatus.CLAIMED
    state = store.load_states()["job"]
    # in the database's clock: claimed and leased for the window from its now
    assert before <= state.ongoing <= after
    assert before <= state.heartbeat <= after
    assert abs(state.lease_expires - state.heartbeat - 100 * HOUR) < dt.timedelta(seconds=1)
    assert (state.ongoing_host, state.ongoing_pid) == ("host-a", 111)
    assert state.depends_on == ("dep",)


def test_second_claim_sees_the_job_ongoing(store: StateStore) -> None:
    assert claim(store).status is ClaimStatus.CLAIMED
    second = claim(store, holder=Holder("host-b", 222))
    assert second.status is ClaimStatus.ONGOING
    assert second.state.ongoing_host == "host-a"


def test_success_records_state_releases_claim_and_logs(store: StateStore) -> None:
    first = claim(store)
    state = finish(store, first.holder)
    assert state.ongoing is None and state.ongoing_token is None
    assert state.last_success == NOW and state.last_run == NOW and state.first_run == NOW
    assert state.next_run == NOW + HOUR
    assert state.error_count == 0 and not state.last_error
    with store.engine.connect() as conn:
        logs = conn.execute(sa.select(sql.crontabber_log)).all()
    assert len(logs) == 1
    assert logs[0].success == NOW and logs[0].exc_type is None
    assert logs[0].duration == dt.timedelta(seconds=2)


def test_failure_counts_errors_and_keeps_last_success(store: StateStore) -> None:
    finish(store, claim(store).holder)
    error = {"type": "ValueError", "value": "boom", "traceback": "Traceback..."}
    later = NOW + 2 * HOUR
    state = finish(store, claim(store, now=later).holder, error=error)
    assert state.error_count == 1 and state.last_error == error
    assert state.last_success == NOW
    state = finish(store, claim(store, now=later + HOUR).holder, error=error)
    assert state.error_count == 2


def test_not_due_after_someone_else_ran_it(store: StateStore) -> None:
    seen = store.load_states().get("job")
    finish(store, claim(store).holder, next_run=NOW + HOUR)
    late = store.claim(
        "job",
        depends_on=(),
        seen=seen,
        force=False,
        lease=LeasePolicy(host="h"),
        holder=Holder("host-b", 2),
        retry_after=dt.timedelta(minutes=5),
    )
    assert late.status is ClaimStatus.NOT_DUE


def test_abandoned_claim_age_counts_whole_days(store: StateStore) -> None:
    """A 25-hour-old claim is 25 hours old (not 1 hour, as timedelta.seconds says)."""
    hold_claim(store, "job", age=25 * HOUR)
    recovered = claim(store, max_age=24 * HOUR, holder=Holder("b", 2))
    assert recovered.status is ClaimStatus.RECOVERED
    assert recovered.abandoned == "it is older than 1 day, 0:00:00"


def test_young_claim_is_not_taken_over(store: StateStore) -> None:
    hold_claim(store, "job", age=23 * HOUR)
    assert claim(store, max_age=24 * HOUR, holder=Holder("b", 2)).status is ClaimStatus.ONGOING


def logs(store: StateStore) -> list:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sql.crontabber_log).order_by(sql.crontabber_log.c.id)).all()


def test_a_lapsed_lease_is_recovered_as_a_failure_retried_later(store: StateStore) -> None:
    hold_claim(store, "job", host="crashed-host", pid=999, lapsed=True)
    before = store.read_snapshot().now
    recovered = claim(store, holder=Holder("b", 2))
    assert recovered.status is ClaimStatus.RECOVERED
    assert recovered.abandoned.startswith("its lease expired: the last heartbeat was 36")
    state = store.load_states()["job"]
    assert state == recovered.recorded
    assert state.ongoing is None and state.ongoing_token is None and state.lease_expires is None
    assert state.error_count == 1
    assert state.last_error["type"] == "crontabber.Abandoned"
    assert "claimed by crashed-host pid 999" in state.last_error["value"]
    # retried like any failure: error_retry_time after the database's now
    assert dt.timedelta(minutes=5) <= state.next_run - before < dt.timedelta(minutes=5, seconds=5)
    [row] = logs(store)
    assert row.exc_type == "crontabber.Abandoned" and not row.superseded


def test_finish_of_a_taken_over_claim_does_not_release_the_new_one(store: StateStore) -> None:
    old = hold_claim(store, "job", host="host-a", pid=111, lapsed=True)
    assert claim(store, holder=Holder("b", 2)).status is ClaimStatus.RECOVERED
    new = claim(store, due=True, holder=Holder("b", 2))
    assert new.status is ClaimStatus.CLAIMED
    assert finish(store, old) is None
    assert store.load_states()["job"].ongoing_host == "b"
    # the superseded outcome is logged all the same, and marked
    assert [(row.exc_type, row.superseded) for row in logs(store)] == [
        ("crontabber.Abandoned", False),
        (None, True),
    ]


def test_an_outcome_written_twice_is_logged_once(store: StateStore) -> None:
    """A retry after an attempt that committed unseen reports that attempt's result."""
    holder = claim(store).holder
    first = finish(store, holder)
    assert first.ongoing is None
    assert finish(store, holder) == first
    assert len(logs(store)) == 1


def test_a_superseded_outcome_written_twice_is_logged_once(store: StateStore) -> None:
    old = hold_claim(store, "job", host="host-a", pid=111, lapsed=True)
    claim(store, holder=Holder("b", 2))
    assert finish(store, old) is None
    assert finish(store, old) is None
    assert [row.superseded for row in logs(store)] == [False, True]


def test_a_heartbeat_renews_the_lease_in_the_database_clock(store: StateStore) -> None:
    holder = claim(store).holder
    leased = store.load_states()["job"].lease_expires
    assert store.heartbeat("job", holder, 200 * HOUR)
    state = store.load_states()["job"]
    assert state.lease_expires - leased > 99 * HOUR
    assert not store.heartbeat("job", Holder("someone-else", 5), HOUR)


def test_times_read_back_as_aware_utc(store: StateStore) -> None:
    finish(store, claim(store).holder)
    state = store.load_states()["job"]
    assert state.next_run.tzinfo is not None
    assert state.next_run.utcoffset() == dt.timedelta(0)


@pytest.mark.postgres
def test_row_lock_held_elsewhere_is_a_lost_race(pg_store: StateStore) -> None:
    finish(pg_store, claim(pg_store).holder)
    with pg_store.engine.connect() as other, other.begin():
        other.exec_driver_sql("SELECT * FROM crontabber WHERE app_name = 'job' FOR UPDATE")
        result = claim(pg_store, now=NOW + 2 * HOUR)
    assert result.status is ClaimStatus.LOCKED
    assert pg_store.load_states()["job"].ongoing is None


@pytest.mark.postgres
def test_unreachable_database_is_a_one_line_error() -> None:
    store = open_store("postgresql://someone:s3cret@127.0.0.1:9/nothing")
    with pytest.raises(StateStoreError) as info:
        store.load_states()
    message = str(info.value)
    assert "cannot reach the state database" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_a_new_sqlite_state_file_is_readable_by_its_owner_only(tmp_path) -> None:
    """Its rows hold error values and tracebacks."""
    path = tmp_path / "state.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.load_states()  # creates and migrates it
    store.close()
    for made in tmp_path.iterdir():
        assert made.stat().st_mode & 0o777 == 0o600, made.name


def test_unsupported_database_url() -> None:
    with pytest.raises(StateStoreError, match="unsupported database 'mysql'"):
        open_store("mysql://localhost/x")


def test_ensure_schema_is_idempotent(store: StateStore) -> None:
    store.ensure_schema()
    store.ensure_schema()
    assert store.load_states() == {}
