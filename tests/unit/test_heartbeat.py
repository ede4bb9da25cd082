"""The heartbeat says when a lease is lost: taken over, not renewed in time, or a pause."""

from __future__ import annotations

import datetime as dt
import logging
import socket

import psycopg2
import pytest

from crontabber.store.lease import Heartbeat

from ..helpers.waiting import wait_until


class FakeHolder:
    def __init__(self, token: str = "t") -> None:
        self.token = token


def test_a_lease_is_lost_when_a_beat_finds_the_claim_gone() -> None:
    lost: list[tuple[str, str]] = []
    with Heartbeat(
        lambda _name, _holder: False,
        dt.timedelta(milliseconds=5),
        window=dt.timedelta(seconds=60),
        on_lost=lambda name, _holder, reason: lost.append((name, reason)),
    ) as heartbeat:
        holder = FakeHolder()
        with heartbeat.holding("job", holder):
            wait_until(lambda: lost, "the lease is lost", 10)
    assert lost == [("job", "the claim was taken over by another process")]
    assert heartbeat.lost(holder) == "the claim was taken over by another process"


def test_a_lease_is_lost_when_beats_keep_failing_past_the_renew_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]  # the heartbeat's clock: 20 ms a beat, however the thread is scheduled

    def failing(_name: str, _holder: object) -> bool:
        now[0] += 0.02
        raise psycopg2.OperationalError("server closed the connection unexpectedly")

    lost: list[str] = []
    with (
        caplog.at_level(logging.WARNING, logger="crontabber"),
        Heartbeat(
            failing,
            dt.timedelta(milliseconds=5),
            window=dt.timedelta(milliseconds=150),
            on_lost=lambda _name, _holder, reason: lost.append(reason),
            clock=lambda: now[0],
        ) as heartbeat,
        heartbeat.holding("job", FakeHolder()),
    ):
        wait_until(lambda: lost, "the lease is lost", 10)
    assert lost[0].startswith("it could not be renewed for ")
    failures = [r for r in caplog.records if "heartbeat of job failed" in r.getMessage()]
    assert len(failures) == 1  # said once, not once an interval


def test_a_lease_is_lost_when_the_process_wakes_from_a_pause_longer_than_the_lease() -> None:
    """A paused process (SIGSTOP, a frozen VM) sees the monotonic clock jump: it stops
    without another beat, since the lease lapsed meanwhile."""
    now = [0.0]
    beats: list[float] = []
    lost: list[str] = []

    def beat(_name: str, _holder: object) -> bool:
        beats.append(now[0])
        return True

    with (
        Heartbeat(
            beat,
            dt.timedelta(milliseconds=5),
            window=dt.timedelta(seconds=3),
            on_lost=lambda _name, _holder, reason: lost.append(reason),
            clock=lambda: now[0],
        ) as heartbeat,
        heartbeat.holding("job", FakeHolder()),
    ):
        wait_until(lambda: len(beats) >= 2, "two beats", 10)
        now[0] += 8.0  # the pause
        wait_until(lambda: lost, "the lease is lost", 10)
    assert lost == ["this process was paused for 8.0s, longer than its 3s lease"]
    assert all(when < 8.0 for when in beats)  # no beat after the pause: too late


def test_a_beat_that_finds_its_own_outcome_written_is_no_loss() -> None:
    """Reproduction 7, unit: the run's own outcome released the claim while a beat was in
    flight; that beat's False is no news (the outcome's write says if it was taken over)."""
    lost: list[str] = []
    beats: list[bool] = []
    holder = FakeHolder()

    def beat(_name: str, _holder: object) -> bool:
        beats.append(True)
        return False  # as after the outcome released the claim

    with (
        Heartbeat(
            beat,
            dt.timedelta(milliseconds=5),
            window=dt.timedelta(seconds=60),
            on_lost=lambda _name, _holder, reason: lost.append(reason),
        ) as heartbeat,
        heartbeat.holding("job", holder),
    ):
        heartbeat.finishing(holder)
        wait_until(lambda: len(beats) >= 3, "three beats", 10)
    assert lost == []
    assert heartbeat.lost(holder) is None


def test_time_the_server_is_down_for_everyone_does_not_cost_the_lease() -> None:
    """As the lease rule does not count a restart's downtime, nor does the holder: beats
    that fail because the server is down (for every host) keep the lease."""

    now = [0.0]  # the heartbeat's clock: 20 ms a beat, however the thread is scheduled

    def restarting(_name: str, _holder: object) -> bool:
        now[0] += 0.02
        raise psycopg2.OperationalError("the database system is starting up")

    lost: list[str] = []
    beats: list[BaseException] = []
    with (
        Heartbeat(
            restarting,
            dt.timedelta(milliseconds=5),
            window=dt.timedelta(milliseconds=60),
            on_lost=lambda _name, _holder, reason: lost.append(reason),
            server_down=lambda exc, _within: beats.append(exc) or True,
            clock=lambda: now[0],
        ) as heartbeat,
        heartbeat.holding("job", FakeHolder()),
    ):
        wait_until(lambda: len(beats) >= 30, "30 failed beats", 10)  # 0.6 s: far past it
    assert lost == []


def test_a_server_that_refuses_connections_is_down_a_silent_one_is_not() -> None:
    from crontabber.db.url import parse_url
    from crontabber.store.session import Session

    with socket.socket() as bound:  # a port nothing listens on: refused at once
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        refused = Session(parse_url(f"postgresql://u@127.0.0.1:{port}/db"))
        lost = psycopg2.OperationalError("server closed the connection unexpectedly")
        assert refused.server_is_down(lost)
    with socket.create_server(("127.0.0.1", 0)) as listening:  # accepts, never answers
        port = listening.getsockname()[1]
        silent = Session(parse_url(f"postgresql://u@127.0.0.1:{port}/db"))
        assert not silent.server_is_down(lost)
        # several hosts: down for everyone only when none of them can be reached
        several = Session(parse_url(f"postgresql://u@127.0.0.1:{port},127.0.0.2:{port}/db"))
        assert not several.server_is_down(lost)  # one is silent: the lease counts on
    assert not silent.server_is_down(ValueError("a bug"))
    with socket.socket() as one, socket.socket() as other:  # both refuse
        one.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        ports = f"{one.getsockname()[1]},{other.getsockname()[1]}"
        both = Session(parse_url(f"postgresql://u@127.0.0.1,127.0.0.1/db?port={ports}"))
        assert both.server_is_down(lost)


def test_a_refused_port_is_seen_even_with_no_time_left() -> None:
    """At the renew deadline the heartbeat has no time to give the probe; a port that
    refuses answers at once, so the restart is still seen as down for everyone."""
    from crontabber.db.url import parse_url
    from crontabber.store.session import Session

    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        refused = Session(parse_url(f"postgresql://u@127.0.0.1:{port}/db"))
        lost = psycopg2.OperationalError("server closed the connection unexpectedly")
        assert refused.server_is_down(lost, 0.0)
