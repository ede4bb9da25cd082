"""What a tick tells: the events it sees, recorded once, and the deliveries it makes.

A :class:`Notifier` rides along with a runner. The host that ran a job records
what its run means: ``failed`` (the first failure of a streak, and again when the
job is still failing ``repeat_after`` later), ``recovered`` (a success after a
failure), ``auto_paused`` (its policy paused it). Any host that ticks judges, in
the database's clock, whether a job is ``late`` (due for more than
``late_after`` and not started: about its missed next run) or ``stuck``
(running past its ``max_runtime`` or ``stuck_after``: about its claim's start).
Each event is keyed by job, kind and the instant it is about, so every host
that sees it records it once. At the end of each tick the host delivers pending
events, any host's, within a time budget; a failed delivery is one log line,
tried again later with a growing pause, never a failed run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from crontabber.errors import CrontabberError

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from crontabber.jobs.spec import JobSpec
    from crontabber.notify.send import NotifySettings
    from crontabber.store.abc import StateStore
    from crontabber.store.outbox import Notification
    from crontabber.store.records import JobState, Snapshot

log = logging.getLogger("crontabber")

DELIVER_BATCH = 1  # notifications claimed at a time: each under a lease of its own
FIRST_RETRY = 5.0  # seconds before the first retry of a delivery; doubles, at most:
LAST_RETRY = 3600.0


class Notifier:
    """Records and delivers one host's notifications (see the module docstring)."""

    def __init__(
        self,
        store: StateStore,
        settings: NotifySettings,
        *,
        host: str,
        deliver_for: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.host = host
        self.deliver_for = deliver_for
        self._clock = clock
        self._seen: set[tuple[str, str, dt.datetime]] = set()  # recorded by this process
        # How long a claimed notification is this host's: past that (its sender died,
        # or hangs) another host sends it. Longer than a delivery may take.
        self.lease = dt.timedelta(seconds=3 * settings.timeout + 5)

    # --- events -------------------------------------------------------------------------

    def watch(self, snapshot: Snapshot, specs: Sequence[JobSpec]) -> None:
        """Record the jobs the states show late or stuck, judged at the read's time."""
        late_after = dt.timedelta(seconds=self.settings.late_after)
        for spec in specs:
            state = snapshot.states.get(spec.app_name)
            if state is None or spec.app_name in snapshot.paused:
                continue
            if state.ongoing is not None:
                limit = self._stuck_after(spec)
                if limit is not None and snapshot.now - state.ongoing > limit:
                    self._record(spec.app_name, "stuck", state.ongoing, self._stuck_text(state))
            elif state.next_run is not None and snapshot.now - state.next_run > late_after:
                self._record(spec.app_name, "late", state.next_run)

    def finished(
        self,
        spec: JobSpec,
        before: JobState,
        after: JobState | None,
        started: dt.datetime,
        error: dict[str, str] | None,
        *,
        cancelled: bool,
        paused: bool,
    ) -> None:
        """Record what a run this host made means, and ping the job's URL."""
        failure = None if error is None else f"{error.get('type')}: {error.get('value')}"
        if error is None:
            if before.error_count:
                self._record(spec.app_name, "recovered", started)
        elif not cancelled and after is not None:
            first = after.error_count <= 1
            quiet = None if first else dt.timedelta(seconds=self.settings.repeat_after)
            self._record(spec.app_name, "failed", started, failure, quiet=quiet)
        if paused:
            failures = after.error_count if after is not None else 0
            self._record(spec.app_name, "auto_paused", started, failure, failures=failures)
        url = spec.policy.ping_url
        if url:
            self._ping(url, "" if error is None else "/fail", spec.app_name)

    def started(self, spec: JobSpec) -> None:
        """A run of ``spec`` starts: its ping URL's ``/start``."""
        if spec.policy.ping_url:
            self._ping(spec.policy.ping_url, "/start", spec.app_name)

    def tick_done(self) -> None:
        """The end of a tick: deliver what is pending, then ping ``tick_ping_url``."""
        if self.settings.sinks:
            self.deliver()
        if self.settings.tick_ping_url:
            self._ping(self.settings.tick_ping_url, "", "the tick")

    # --- delivery -----------------------------------------------------------------------

    def deliver(self) -> int:
        """Deliver pending notifications, any host's, for at most ``deliver_for``
        seconds; how many were sent."""
        from crontabber.notify import send

        sent, until = 0, self._clock() + self.deliver_for
        while self._clock() < until:
            try:
                batch = self.store.claim_notifications(batch=DELIVER_BATCH, lease=self.lease)
            except CrontabberError as exc:
                log.warning("notify: cannot claim notifications: %s", exc)
                return sent
            if not batch:
                return sent
            for notification in batch:
                sent += self._deliver_one(send, notification)
        return sent

    def _deliver_one(self, send: object, notification: Notification) -> int:
        payload = {
            "id": notification.id,
            "event": notification.kind,
            "app_name": notification.app_name,
            "host": notification.host,
            "when": notification.about.isoformat(),
            "error": notification.error,
            "text": notification.text,
        }
        try:
            if notification.sink == "webhook":
                payload["text"] = send.webhook_text(notification.text)  # type: ignore[attr-defined]
                send.send_webhook(  # type: ignore[attr-defined]
                    self.settings.webhook_url, payload, timeout=self.settings.timeout
                )
            else:
                send.send_email(self.settings, payload)  # type: ignore[attr-defined]
        except Exception as exc:  # a DeliveryError, or anything a sender did not foresee
            retry = bool(getattr(exc, "retry", True))
            message = str(exc) if isinstance(exc, send.DeliveryError) else type(exc).__name__  # type: ignore[attr-defined]
            wait = min(FIRST_RETRY * 2 ** max(notification.attempts - 1, 0), LAST_RETRY)
            log.warning(
                "notify: the %s %s of %s was not delivered: %s; %s",
                notification.sink,
                notification.kind,
                notification.app_name,
                message,
                f"trying again in {wait:.0f}s" if retry else "given up",
            )
            self._done(notification, "pending" if retry else "failed", message, wait)
            return 0
        self._done(notification, "sent", None, 0.0)
        return 1

    def _done(
        self, notification: Notification, status: str, error: str | None, wait: float
    ) -> None:
        try:
            self.store.notification_done(
                notification.id, status=status, error=error, retry_after=dt.timedelta(seconds=wait)
            )
        except CrontabberError as exc:  # its lease runs out; another host tries it again
            log.warning("notify: cannot record a delivery: %s", exc)

    # --- helpers ------------------------------------------------------------------------

    def _record(
        self,
        app_name: str,
        kind: str,
        about: dt.datetime,
        error: str | None = None,
        *,
        quiet: dt.timedelta | None = None,
        failures: int = 0,
    ) -> None:
        sinks = self.settings.sinks
        key = (app_name, kind, about)
        if kind not in self.settings.events or not sinks or key in self._seen:
            return
        from crontabber.notify.send import payload_text

        when = f"{about.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
        text = payload_text(kind, app_name, self.host, when, error, failures=failures)
        try:
            recorded = self.store.record_event(
                app_name,
                kind,
                about,
                sinks=sinks,
                host=self.host,
                text=text,
                error=error,
                quiet=quiet,
            )
        except CrontabberError as exc:
            log.warning("notify: cannot record the %s event of %s: %s", kind, app_name, exc)
            return
        self._seen.add(key)
        if recorded:
            log.info("notify: recorded %s of %s (%s)", kind, app_name, when)

    def _stuck_after(self, spec: JobSpec) -> dt.timedelta | None:
        limits = [value for value in (spec.max_runtime, self.settings.stuck_after) if value]
        return dt.timedelta(seconds=min(limits)) if limits else None

    @staticmethod
    def _stuck_text(state: JobState) -> str:
        return f"running on {state.ongoing_host} pid {state.ongoing_pid}"

    def _ping(self, url: str, suffix: str, what: str) -> None:
        from crontabber.notify.send import ping

        problem = ping(url, suffix, timeout=min(self.settings.timeout, 5.0))
        if problem is not None:
            log.warning("notify: the ping of %s failed: %s", what, problem)
