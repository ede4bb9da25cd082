"""The runner's notifier (crontabber/notify/watch.py) on SQLite and PostgreSQL, with a
real receiver on 127.0.0.1: which runs make which events, a streak's reminder after
repeat_after, an auto-pause, and a job's pings."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from crontabber import App
from crontabber.jobs.policy import JobPolicy
from crontabber.jobs.spec import JobSpec
from crontabber.notify.send import NotifySettings
from crontabber.notify.watch import Notifier
from crontabber.record import replace
from crontabber.run.runner import Runner
from crontabber.store import StateStore
from crontabber.store.lease import LeasePolicy
from crontabber.store.records import Holder

from ..helpers.receiver import Receiver, receiver
from ..helpers.specs import make_spec


class Flaky(App):
    app_name = "flaky"
    failing = True

    def run(self) -> None:
        if Flaky.failing:
            raise RuntimeError("the disk is full")


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


class Mentions(App):
    app_name = "mentions"

    def run(self) -> None:
        raise RuntimeError("<!channel> look <http://example.invalid/x|here> & fix")


def runner(
    store: StateStore, hook: Receiver, policy: JobPolicy, app: type[App] = Flaky, **settings: object
) -> Runner:
    spec: JobSpec = replace(make_spec(app), policy=policy)
    notify = NotifySettings(webhook_url=f"{hook.url}/hook", timeout=2.0, **settings)  # type: ignore[arg-type]
    return Runner(
        [spec],
        store,
        lease=LeasePolicy(host="here"),
        holder=Holder.this_process("here"),
        notifier=Notifier(store, notify, host="here"),
    )


def again(store: StateStore) -> None:
    store.run_now("flaky", depends_on=(), actor="tester")


def test_a_streak_says_failed_once_then_again_after_repeat_after_then_recovered(
    store: StateStore, hook: Receiver
) -> None:
    Flaky.failing = True
    tick = runner(store, hook, JobPolicy(), repeat_after=0.5)
    tick.run()
    again(store)
    tick.run()  # still failing, within repeat_after: nothing new
    assert [e["event"] for e in hook.events()] == ["failed"]
    time.sleep(0.6)
    again(store)
    tick.run()
    assert [e["event"] for e in hook.events()] == ["failed", "failed"]
    Flaky.failing = False
    again(store)
    tick.run()
    again(store)
    tick.run()  # a second success is no news
    assert [e["event"] for e in hook.events()] == ["failed", "failed", "recovered"]
    [first, second, recovered] = hook.events()
    assert len({first["id"], second["id"], recovered["id"]}) == 3
    assert first["error"] == "RuntimeError: the disk is full" and recovered["error"] is None


def test_an_auto_pause_is_said(store: StateStore, hook: Receiver) -> None:
    Flaky.failing = True
    tick = runner(
        store, hook, JobPolicy(max_consecutive_failures=2), events=frozenset({"auto_paused"})
    )
    tick.run()
    again(store)
    tick.run()
    [paused] = hook.events()
    assert paused["event"] == "auto_paused" and "paused" in paused["text"]
    assert paused["error"] == "RuntimeError: the disk is full"


def test_a_webhooks_text_shows_an_error_as_written_not_as_slacks_markup(
    store: StateStore, hook: Receiver
) -> None:
    """Slack (and Mattermost, reading Slack's format) takes <...> for mentions and links
    and & for an entity: the text says them as entities, which they show as written."""
    runner(store, hook, JobPolicy(), app=Mentions).run()
    [failed] = hook.events()
    assert failed["error"] == "RuntimeError: <!channel> look <http://example.invalid/x|here> & fix"
    assert failed["text"].endswith(
        ": RuntimeError: &lt;!channel&gt; look &lt;http://example.invalid/x|here&gt; &amp; fix"
    )
    assert "<" not in failed["text"] and ">" not in failed["text"]


def test_a_jobs_ping_url_hears_start_and_the_end(store: StateStore, hook: Receiver) -> None:
    Flaky.failing = True
    tick = runner(store, hook, JobPolicy(ping_url=f"{hook.url}/ping/abc"), events=frozenset())
    tick.run()
    Flaky.failing = False
    again(store)
    tick.run()
    assert hook.paths == ["/ping/abc/start", "/ping/abc/fail", "/ping/abc/start", "/ping/abc"]


def test_the_tick_ping_is_called_after_every_tick(store: StateStore, hook: Receiver) -> None:
    Flaky.failing = False
    tick = runner(
        store, hook, JobPolicy(), events=frozenset(), tick_ping_url=f"{hook.url}/tick/abc"
    )
    tick.run()
    tick.run()  # nothing due: a tick all the same
    assert hook.paths == ["/tick/abc", "/tick/abc"]
