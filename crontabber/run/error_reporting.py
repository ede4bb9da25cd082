"""Job failures to Sentry, through sentry-sdk. Sentry's trouble never breaks a run."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from crontabber.jobs.spec import JobSpec

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("crontabber")

FLUSH_SECONDS = 5.0


def _transport_class() -> type:
    from sentry_sdk.transport import HttpTransport

    class RecordingTransport(HttpTransport):
        """Sentry's HTTP transport, noting whether Sentry accepted what was sent."""

        accepted = 0
        dropped: list[str]

        def __init__(self, options: dict[str, Any]) -> None:
            super().__init__(options)
            self.dropped = []

        def _handle_response(self, response: Any, envelope: Any) -> None:
            super()._handle_response(response, envelope)
            if 200 <= response.status < 300:
                self.accepted += 1

        def on_dropped_event(self, reason: str) -> None:
            if reason not in self.dropped:  # said once per reason, not once per event
                log.warning(
                    "a failure report could not be sent to Sentry (%s); reports are lost "
                    "while it cannot take them",
                    reason,
                )
            self.dropped.append(reason)

    return RecordingTransport


def _init(dsn: str) -> Any:
    import sentry_sdk

    return sentry_sdk.init(
        dsn=dsn,
        transport=_transport_class(),
        default_integrations=False,
        auto_enabling_integrations=False,
        send_default_pii=False,
        # Frame variables would carry connection strings and passwords (a job's
        # dsn, its resource's keyword arguments): events hold the traceback only.
        include_local_variables=False,
    )


def failure_reporter(dsn: str) -> Callable[[JobSpec, BaseException], None] | None:
    """A callback that sends a job's exception to Sentry, or None without a DSN.

    sentry-sdk is imported, and the DSN checked, only when the first failure is
    reported: a run in which nothing fails does not pay for it. A DSN Sentry
    cannot use is logged then (without the DSN) and reporting is off.
    """
    if not dsn:
        return None
    usable: list[bool] = []  # empty until the first failure

    def report(spec: JobSpec, exc: BaseException) -> None:
        if not usable:
            try:
                _init(dsn)
                usable.append(True)
            except ImportError:
                log.warning(
                    "Sentry reporting is off: sentry-sdk is not installed "
                    "(pip install 'crontabber-ng[sentry]')"
                )
                usable.append(False)
            except Exception as error:
                log.warning(
                    "Sentry reporting is off: the DSN is not usable (%s)", type(error).__name__
                )
                usable.append(False)
        if not usable[0]:
            return
        import sentry_sdk

        try:
            with sentry_sdk.new_scope() as scope:
                scope.set_tag("app_name", spec.app_name)
                scope.set_tag("class", spec.class_path)
                sentry_sdk.capture_exception(exc)
        except Exception as error:
            log.warning("could not report %s's failure to Sentry: %s", spec.app_name, error)

    return report


def flush() -> None:
    """Wait (briefly) for reports still being sent (none: sentry-sdk was never loaded)."""
    if "sentry_sdk" not in sys.modules:
        return
    try:
        import sentry_sdk

        sentry_sdk.flush(timeout=FLUSH_SECONDS)
    except Exception as exc:
        log.warning("could not send reports to Sentry: %s", exc)


def send_test_event(dsn: str) -> tuple[bool, str]:
    """Send one test event; whether Sentry accepted it, and a line saying so."""
    if not dsn:
        return False, "no Sentry DSN configured (set [sentry] dsn=)"
    try:
        _init(dsn)
    except ImportError:
        return False, "sentry-sdk is not installed: pip install 'crontabber-ng[sentry]'"
    except Exception as exc:
        return False, f"the Sentry DSN is not usable ({type(exc).__name__})"
    import sentry_sdk

    sentry_sdk.capture_message("crontabber --sentrytest: a test event")
    sentry_sdk.flush(timeout=FLUSH_SECONDS)
    transport = sentry_sdk.get_client().transport
    if transport is not None and transport.accepted:
        return True, "Sentry accepted the test event"
    reasons = (
        ", ".join(transport.dropped) if transport is not None and transport.dropped else "no answer"
    )
    return False, f"Sentry did not accept the test event ({reasons})"
