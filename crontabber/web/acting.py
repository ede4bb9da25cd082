"""Acting from the status page and its API: pause, resume, run now, cancel and reset.

Two ways in, one way through :mod:`crontabber.actions` (which writes each
action with its audit row in one transaction):

- ``POST /api/jobs/NAME/ACTION`` (ACTION: pause, resume, run-now, cancel, reset)
  with a JSON body ``{"reason": ..., "until": ...}`` (``until`` for pause only;
  both optional). It answers ``{"message": "<one line>"}`` (200), or ``{"error":
  "<one line>"}`` with 400 (a bad reason, until or body), 404 (no such job), 409
  (the job is not in a state for it: reset of a running job, resume of one not
  paused...), 413 (a body over :data:`MAX_BODY`) or 503 (no database).
- ``POST /jobs/NAME``, the job page's forms (``application/x-www-form-urlencoded``:
  ``action``, ``reason``, ``until``, ``confirm``, ``csrf_token``). It answers
  303, back to the job page, which shows the one-line result (see
  :mod:`crontabber.web.guard` for how it is carried).

Nobody acts without ``web.auth_token`` (403); with it, a POST wants the token
(401 otherwise) and, unless the token came as a bearer token, the CSRF token of
the page's session (403 otherwise). Writes go through a store of their own:
the page's reader cannot write. Each is recorded with who asked: the client's
address and how it gave the token.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from crontabber import actions
from crontabber.errors import CrontabberError, JobIsOngoing, StateStoreError, UnknownJob
from crontabber.jobs.spec import JobSpec
from crontabber.record import record
from crontabber.store import open_store
from crontabber.store.abc import StateStore
from crontabber.web.guard import CSRF_FIELD, CSRF_HEADER, Credential, Guard
from crontabber.web.http import HTTPError, Request, Response, json_response
from crontabber.web.reader import Unavailable

MAX_BODY = 16 * 1024  # bytes of a request body
WRITE_RETRY = dt.timedelta(seconds=5)  # an action is retried through trouble this long
MAX_FIELDS = 20
FORM_TYPE = "application/x-www-form-urlencoded"
ACTIONS = ("pause", "resume", "run-now", "cancel", "reset")
NO_TOKEN = (
    "acting on jobs needs web.auth_token: without it the page only reads, and every POST is refused"
)
BAD_CSRF = "missing or bad CSRF token (reload the page and try again)"

log = logging.getLogger("crontabber.web")


@record
class Target:
    """What a POST asks for: an action of the API (``action`` given) or a page's form."""

    app_name: str
    action: str | None  # None: the form's ``action`` field says
    api: bool


def target(path: str) -> Target | None:
    """The action ``path`` names, if it is one a POST may be sent to."""
    if path.startswith("/api/jobs/"):
        name, _, action = path.removeprefix("/api/jobs/").rpartition("/")
        return Target(name, action, api=True) if name and action in ACTIONS else None
    if path.startswith("/jobs/") and len(path) > len("/jobs/"):
        return Target(path.removeprefix("/jobs/"), None, api=False)
    return None


def is_api_action(path: str) -> bool:
    found = target(path)
    return found is not None and found.api


def actor(environ: Mapping[str, Any], credential: Credential) -> str:
    """Who acts, for the audit log: ``USER@ADDRESS (web, page session)`` for a
    browser's form (the basic-auth user name, when one was given), ``ADDRESS (web,
    bearer token)`` for a script. The address is the client's (``REMOTE_ADDR``:
    behind a proxy, the proxy's)."""
    address = environ.get("REMOTE_ADDR") or "unknown address"
    who = f"{credential.user}@{address}" if credential.user else address
    how = "bearer token" if credential.scheme == "bearer" else "page session"
    return f"{who} (web, {how})"


def writable_store(url: str) -> StateStore:
    """The store actions write through: it never migrates (an out-of-date schema is
    503, as for the page's reads) and never creates a SQLite file that is not there."""
    store = open_store(url, retry_for=WRITE_RETRY, auto_migrate=False)
    if store.url.dialect == "sqlite" and not os.path.exists(store.url.connect_args["database"]):
        store.close()
        raise Unavailable("the state database does not exist (crontabber --migrate makes it)")
    return store


class Acting:
    """Carries out the POSTs of one application, on a writable store opened when first
    needed."""

    def __init__(
        self,
        specs: tuple[JobSpec, ...],
        guard: Guard,
        open_store: Callable[[], StateStore],
        *,
        owns_store: bool,
    ) -> None:
        self.specs = specs
        self.guard = guard
        self._open_store = open_store
        self._owns_store = owns_store
        self._store: StateStore | None = None
        self._lock = threading.Lock()

    def store(self) -> StateStore:
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None and self._owns_store:
                self._store.close()
            self._store = None

    def post(self, request: Request, found: Target, root: str) -> Response:
        """Answer an authorised POST to ``found``."""
        if not self.guard.acting:
            raise HTTPError("403 Forbidden", NO_TOKEN)
        credential = self.guard.credential(request.environ)
        assert credential is not None  # the application checked the token
        body = read_body(request.environ)
        if found.api:
            fields = json_fields(body)
            in_body = fields.pop(CSRF_FIELD, None)
            csrf = request.environ.get(CSRF_HEADER) or in_body or ""
        else:
            fields = form_fields(request.environ, body)
            csrf = fields.pop(CSRF_FIELD, "")
        if credential.browser_sends_it_unasked and not self.guard.csrf_ok(request.environ, csrf):
            raise HTTPError("403 Forbidden", BAD_CSRF)
        who = actor(request.environ, credential)
        if found.api:
            assert found.action is not None
            try:
                message = self.act(found.action, found.app_name, who, fields)
            except CrontabberError as exc:
                return json_response({"error": str(exc)}, error_status(exc))
            return json_response({"message": message})
        return self.form(request, found.app_name, who, fields, root)

    def form(
        self, request: Request, app_name: str, who: str, fields: dict[str, str], root: str
    ) -> Response:
        """Do what a job page's form asks; 303 back to the page with the result."""
        if not any(spec.app_name == app_name for spec in self.specs):
            raise HTTPError("404 Not Found", f"no job named {app_name!r} is configured")
        action = fields.pop("action", "")
        if action not in ACTIONS:
            raise HTTPError("400 Bad Request", f"no action {action!r}: one of {', '.join(ACTIONS)}")
        confirmed = fields.pop("confirm", "") == "yes"
        if action != "pause":
            fields.pop("until", None)  # the forms of the other actions have none
        outcome = "refused"
        if not confirmed:
            message = f"not done: tick the box to confirm that you mean to {action} {app_name}"
        else:
            try:
                message = self.act(action, app_name, who, fields)
                outcome = "done"
            except UnknownJob as exc:
                raise HTTPError("404 Not Found", str(exc)) from None
            except CrontabberError as exc:
                message = str(exc)
        location = f"{root}/jobs/{quote(app_name, safe='')}"
        session_id = self.guard.session_id(request.environ)
        if session_id is not None:
            signature = self.guard.sign(session_id, outcome, message)
            query = {"outcome": outcome, "said": message, "sig": signature}
            location += "?" + urlencode(query, quote_via=quote)
        return Response(
            f"{message}\n", "text/plain; charset=utf-8", "303 See Other", [("Location", location)]
        )

    def act(self, action: str, name: str, who: str, fields: Mapping[str, str | None]) -> str:
        """Do ``action`` to the job ``name``; the one line it says. Raises the action's
        CrontabberError, or Unavailable when the database cannot be written."""
        unknown = set(fields) - ({"reason", "until"} if action == "pause" else {"reason"})
        if unknown:
            raise CrontabberError(
                f"{action} takes {'reason and until' if action == 'pause' else 'a reason'}, "
                f"not {', '.join(sorted(unknown))}"
            )
        reason, until = fields.get("reason"), fields.get("until")
        store = self.store()
        try:
            if action == "pause":
                done = actions.pause_job(
                    store, self.specs, name, actor=who, reason=reason, until=until or None
                )
            elif action == "resume":
                done = actions.resume_job(store, self.specs, name, actor=who, reason=reason)
            elif action == "run-now":
                done = actions.run_now(store, self.specs, name, actor=who, reason=reason)
            elif action == "cancel":
                done = actions.cancel_run(store, self.specs, name, actor=who, reason=reason)
            else:
                done = actions.reset_job(
                    store, self.specs, name, force=False, actor=who, reason=reason
                )
        except StateStoreError as exc:
            log.warning("status page: could not %s %s: %s", action, name, exc)
            raise Unavailable(
                "the state database could not be written (the server's log says more)"
            ) from None
        log.info("status page: %s (%s)", done.message, who)
        return done.message


def error_status(error: CrontabberError) -> str:
    if isinstance(error, UnknownJob):
        return "404 Not Found"
    if isinstance(error, (actions.ActionRefused, JobIsOngoing)):
        return "409 Conflict"
    return "400 Bad Request"


def read_body(environ: Mapping[str, Any]) -> bytes:
    """The request's body, at most MAX_BODY bytes (413 for more)."""
    too_big = HTTPError("413 Content Too Large", f"the body is over {MAX_BODY} bytes")
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise HTTPError("400 Bad Request", "a bad Content-Length") from None
        if length > MAX_BODY:
            raise too_big
        return stream.read(length) if length > 0 else b""
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked":
        return b""
    body = stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise too_big
    return body


def json_fields(body: bytes) -> dict[str, Any]:
    """The API's body: a JSON object of strings (or nulls); empty is ``{}``."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise HTTPError(
            "400 Bad Request", 'the body must be a JSON object: {"reason": ..., "until": ...}'
        )
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise HTTPError("400 Bad Request", f"{key} must be a string")
    return data


def form_fields(environ: Mapping[str, Any], body: bytes) -> dict[str, str]:
    """A form's fields (the first value of each)."""
    content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise HTTPError("415 Unsupported Media Type", f"send the form as {FORM_TYPE}")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise HTTPError("400 Bad Request", "the form could not be read") from None
    return {name: values[0] for name, values in parsed.items()}
