"""The outbox of notifications (crontabber/store/outbox.py) on SQLite and PostgreSQL: an
event is recorded once however many hosts see it, a pending one is claimed by one host
at a time, and one whose sender died is claimed again once its lease has passed."""

from __future__ import annotations

import datetime as dt
import time

from crontabber.store import StateStore, open_store

from ..helpers.specs import at

ABOUT = at("2026-12-06 03:00")
LEASE = dt.timedelta(seconds=60)


def record(
    store: StateStore, kind: str = "failed", about: dt.datetime = ABOUT, **extra: object
) -> int:
    return store.record_event(
        "nightly",
        kind,
        about,
        sinks=extra.pop("sinks", ("webhook",)),  # type: ignore[arg-type]
        host="host-a",
        text=f"nightly {kind}",
        **extra,  # type: ignore[arg-type]
    )


def test_an_event_is_recorded_once_per_destination(store: StateStore) -> None:
    assert record(store, sinks=("webhook", "email")) == 2
    assert record(store, sinks=("webhook", "email")) == 0  # another host saw it too
    assert record(store, "recovered") == 1
    assert record(store, about=ABOUT + dt.timedelta(days=1)) == 1
    kinds = sorted((n.kind, n.sink) for n in store.read_notifications())
    assert kinds == [
        ("failed", "email"),
        ("failed", "webhook"),
        ("failed", "webhook"),
        ("recovered", "webhook"),
    ]
    assert store.count_notifications() == {("failed", "pending"): 3, ("recovered", "pending"): 1}


def test_a_reminder_is_quiet_within_its_interval(store: StateStore) -> None:
    assert record(store) == 1
    later = ABOUT + dt.timedelta(minutes=5)
    assert record(store, about=later, quiet=dt.timedelta(hours=1)) == 0
    time.sleep(0.05)
    assert (
        record(store, about=later + dt.timedelta(minutes=5), quiet=dt.timedelta(seconds=0.01)) == 1
    )


def test_a_claim_leases_its_notifications_and_a_dead_senders_are_claimed_again(
    store: StateStore,
) -> None:
    for day in range(3):
        record(store, about=ABOUT + dt.timedelta(days=day))
    first = store.claim_notifications(batch=2, lease=dt.timedelta(seconds=0.3))
    second = store.claim_notifications(batch=10, lease=LEASE)
    assert len(first) == 2 and len(second) == 1
    assert not {n.id for n in first} & {n.id for n in second}
    assert store.claim_notifications(batch=10, lease=LEASE) == []
    time.sleep(0.4)  # the first sender died: its lease passes
    again = store.claim_notifications(batch=10, lease=LEASE)
    assert sorted(n.id for n in again) == sorted(n.id for n in first)
    assert all(n.attempts == 2 for n in again)


def test_a_deliverys_outcome_decides_what_comes_next(store: StateStore) -> None:
    for day in range(3):
        record(store, about=ABOUT + dt.timedelta(days=day))
    sent, retried, failed = store.claim_notifications(batch=3, lease=LEASE)
    store.notification_done(sent.id, status="sent")
    store.notification_done(
        retried.id, status="pending", error="HTTP 503", retry_after=dt.timedelta(seconds=0.3)
    )
    store.notification_done(failed.id, status="failed", error="HTTP 404")
    assert store.claim_notifications(batch=10, lease=LEASE) == []
    time.sleep(0.4)
    [again] = store.claim_notifications(batch=10, lease=LEASE)
    assert again.id == retried.id
    by_id = {n.id: n for n in store.read_notifications()}
    assert by_id[sent.id].status == "sent" and by_id[sent.id].sent is not None
    assert by_id[failed.id].status == "failed" and by_id[failed.id].delivery_error == "HTTP 404"


def test_two_hosts_claiming_at_once_never_share_a_notification(pg_url: str) -> None:
    hosts = [open_store(pg_url) for _ in range(2)]
    try:
        hosts[0].ensure_schema()
        for day in range(20):
            record(hosts[0], about=ABOUT + dt.timedelta(days=day))
        claimed: list[list[int]] = [[], []]
        while True:
            got = [host.claim_notifications(batch=3, lease=LEASE) for host in hosts]
            if not any(got):
                break
            for index, batch in enumerate(got):
                claimed[index] += [n.id for n in batch]
        assert not set(claimed[0]) & set(claimed[1])
        assert len(claimed[0]) + len(claimed[1]) == 20
    finally:
        for host in hosts:
            host.close()
