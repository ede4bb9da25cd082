"""A daemon does not read every row every tick (crontabber/run/reading.py): between its
full reads it reads the rows that may be due, by the index on next_run."""

from __future__ import annotations

import datetime as dt

import pytest

from crontabber import App
from crontabber.run.reading import DueReads
from crontabber.run.runner import Result, Runner
from crontabber.store import StateStore, open_store
from crontabber.store.lease import LeasePolicy
from crontabber.store.records import Holder
from crontabber.store.trace import Recorder

from ..helpers.specs import make_spec

HOUR = dt.timedelta(hours=1)
ran: list[str] = []


class Hourly(App):
    app_name = "hourly"

    def run(self) -> None:
        ran.append(self.app_name)


class Other(App):
    app_name = "other"

    def run(self) -> None:
        ran.append(self.app_name)


class Later(App):
    app_name = "later"
    depends_on = ("hourly",)

    def run(self) -> None:
        ran.append(self.app_name)


@pytest.fixture(autouse=True)
def _clean() -> None:
    ran.clear()


class Clock:
    """The daemon's monotonic clock, moved by the test: ``poll()`` is a poll later."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def poll(self) -> None:
        self.now += 1.5  # past the 1 s poll of daemon_runner


def daemon_runner(
    store: StateStore, *classes: type[App], host: str = "a", clock: Clock | None = None
) -> Runner:
    runner = Runner(
        [make_spec(cls, frequency=HOUR) for cls in classes],
        store,
        holder=Holder(host, 1),
        lease=LeasePolicy(host=host),
    )
    runner.reads = DueReads(dt.timedelta(seconds=1), full_every=3600, clock=clock or Clock())
    return runner


def set_next_run(store: StateStore, name: str, when: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE crontabber SET next_run = {when} WHERE app_name = '{name}'")


@pytest.mark.postgres
def test_between_full_reads_a_tick_reads_the_due_rows_only(pg_store: StateStore) -> None:
    runner = daemon_runner(pg_store, Hourly, Other, Later)
    runner.run()  # the first tick reads every row, and runs all three
    assert sorted(ran) == ["hourly", "later", "other"]
    ran.clear()
    set_next_run(pg_store, "other", "clock_timestamp() - interval '1 second'")
    recorder = Recorder()
    pg_store.close()
    pg_store.connection_factory = recorder.connect
    due = pg_store.read_due_snapshot(
        dt.timedelta(hours=1), ahead=dt.timedelta(seconds=1), app_names=[]
    )
    assert set(due.states) == {"other"}  # the others are due in an hour
    report = runner.run()
    assert ran == ["other"]
    assert report.with_result(Result.SUCCEEDED) == ["other"]
    # "hourly" is named: "later" depends on it
    assert recorder.statements[1:] == ["read_due_states", "claim_next", "finish"]


@pytest.mark.postgres
def test_a_row_another_host_changed_is_put_right_by_the_claim(pg_url: str) -> None:
    """The kept row says "due"; another host has run the job meanwhile (its next run
    is past the read's horizon, so the due read does not return it): the claim finds
    it changed, does not run it, and the kept row is brought up to date."""
    store, other = open_store(pg_url), open_store(pg_url)
    clock = Clock()
    try:
        store.ensure_schema()
        runner = daemon_runner(store, Hourly, Other, clock=clock)
        runner.run()
        ran.clear()
        set_next_run(store, "hourly", "clock_timestamp() - interval '1 second'")
        clock.poll()
        runner.run()  # due read: "hourly" is due, and runs
        assert ran == ["hourly"]
        ran.clear()
        set_next_run(store, "other", "clock_timestamp() - interval '1 second'")
        due_state = other.load_states()["other"]
        # host b runs "other" now
        Runner(
            [make_spec(Other, frequency=HOUR)],
            other,
            holder=Holder("b", 2),
            lease=LeasePolicy(host="b"),
        ).run()
        assert ran == ["other"]
        ran.clear()
        # host a still keeps "other" as due (it read it that way before b ran it)
        runner.reads._states["other"] = due_state  # type: ignore[index]
        report = runner.run()
        assert ran == []
        assert report.jobs == ()
        assert runner.reads._states["other"].next_run > due_state.next_run  # type: ignore[index]
    finally:
        store.close()
        other.close()


@pytest.mark.postgres
def test_the_due_read_uses_the_next_run_index(pg_store: StateStore) -> None:
    """A cost guard: with thousands of rows and one due, the read is an index scan."""
    with pg_store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO crontabber (app_name, next_run, error_count) "
            "SELECT 'job' || i, clock_timestamp() + interval '1 hour', 0 "
            "FROM generate_series(1, 5000) AS i"
        )
        conn.exec_driver_sql("UPDATE crontabber SET next_run = now() WHERE app_name = 'job7'")
        conn.exec_driver_sql("ANALYZE crontabber")
    from crontabber.db.connect import connect
    from crontabber.store.queries import queries

    connection = connect(pg_store.url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN " + queries("postgresql")["read_due_states"],
                {
                    "dead_token": None,
                    "max_age_seconds": 3600,
                    "ahead_seconds": 1,
                    "app_names": ["job9"],
                },
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.close()
    assert "crontabber_next_run_idx" in plan, plan
    assert "Seq Scan on crontabber " not in plan, plan


class Watching:
    """A notifier that notes the snapshots it is shown."""

    def __init__(self) -> None:
        self.watched: list[bool] = []  # each snapshot's ``kept``

    def watch(self, snapshot: object, specs: object) -> None:
        self.watched.append(snapshot.kept)  # type: ignore[attr-defined]

    def started(self, spec: object) -> None:
        pass

    def finished(self, *args: object, **kwargs: object) -> None:
        pass

    def tick_done(self) -> None:
        pass


@pytest.mark.postgres
def test_a_tick_within_a_poll_claims_from_the_kept_rows_without_reading(
    pg_store: StateStore,
) -> None:
    """A daemon woken for a job falling due, a moment after its last read, claims at
    once: one statement for the claim, none to read (no job depends on another)."""
    clock = Clock()
    runner = daemon_runner(pg_store, Hourly, Other, clock=clock)
    watching = Watching()
    runner.notifier = watching  # type: ignore[assignment]
    runner.run()  # the first tick reads every row, and runs both
    ran.clear()
    set_next_run(pg_store, "other", "clock_timestamp() + interval '300 milliseconds'")
    clock.poll()
    report = runner.run()  # due read: "other" is due by the next poll, not yet
    assert ran == [] and report.next_due is not None
    recorder = Recorder()
    pg_store.close()
    pg_store.connection_factory = recorder.connect
    clock.now += 0.5  # woken for "other", half a poll after the read
    report = runner.run()
    assert ran == ["other"]
    assert report.with_result(Result.SUCCEEDED) == ["other"]
    assert recorder.statements == ["claim_next", "finish"]
    assert watching.watched == [False, False]  # late or stuck: judged on reads only
    clock.poll()
    runner.run()  # a poll after the last read: it reads again
    assert recorder.statements[2:] == ["read_due_states"]


@pytest.mark.postgres
def test_where_a_job_depends_on_another_every_tick_reads(pg_store: StateStore) -> None:
    clock = Clock()
    runner = daemon_runner(pg_store, Hourly, Later, clock=clock)
    runner.run()
    assert ran == ["hourly", "later"]
    recorder = Recorder()
    pg_store.close()
    pg_store.connection_factory = recorder.connect
    clock.now += 0.1
    runner.run()
    assert recorder.statements == ["read_due_states"]


@pytest.mark.postgres
def test_after_an_operators_action_the_next_tick_reads_every_row(pg_store: StateStore) -> None:
    """The daemon forgets its rows when an action wakes it (crontabber.run.daemon): a
    job made due by --run-now is read at once, whatever the last read's age."""
    clock = Clock()
    runner = daemon_runner(pg_store, Hourly, Other, clock=clock)
    runner.run()
    ran.clear()
    pg_store.run_now("other", depends_on=(), actor="test")  # type: ignore[attr-defined]
    assert runner.reads is not None
    runner.reads.forget()
    clock.now += 0.1
    runner.run()
    assert ran == ["other"]


@pytest.mark.postgres
def test_a_pause_that_ends_by_itself_is_read_as_ended_within_a_poll(
    pg_store: StateStore,
) -> None:
    """The kept rows say paused until a moment that has come: the tick reads, and the
    job runs when its pause ends, not a poll later."""
    clock = Clock()
    runner = daemon_runner(pg_store, Hourly, Other, clock=clock)
    runner.run()
    ran.clear()
    set_next_run(pg_store, "other", "clock_timestamp() - interval '1 second'")
    pg_store.pause("other", actor="test", until_seconds=0.2)  # type: ignore[attr-defined]
    clock.poll()
    runner.run()  # read: "other" is due, and paused
    assert ran == []
    with pg_store.engine.begin() as conn:  # the pause has ended, in the database's clock
        conn.exec_driver_sql(
            "UPDATE crontabber_pause SET until = clock_timestamp() - interval '1 second'"
        )
    recorder = Recorder()
    pg_store.close()
    pg_store.connection_factory = recorder.connect
    clock.now += 0.5  # within a poll of the read, past the pause's end
    runner.run()
    assert ran == ["other"]
    assert recorder.statements[0] == "read_due_states"
