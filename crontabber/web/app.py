"""The status page as a WSGI application: :func:`create_app` takes plain values.

Pages and the JSON API answer GET (and HEAD) and read through
:class:`~crontabber.web.reader.Reader`, which cannot write. Pages are Jinja2
templates with autoescaping on (job names and error texts are user input);
scripts and styles are files of this package, served from ``/static/``.

With an ``auth_token``, every endpoint but ``/healthz`` wants it, as a bearer
token (``Authorization: Bearer TOKEN``, for Prometheus and scripts) or as the
password of HTTP basic authentication (any user name, for a browser); see
:mod:`crontabber.web.guard`. With it, and only with it, operators act through
POSTs (:mod:`crontabber.web.acting`): the job page's forms and
``/api/jobs/NAME/ACTION``. Any other method, or a POST elsewhere, is 405.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2

from crontabber.jobs.spec import JobSpec
from crontabber.status import outcome, run_dict
from crontabber.store.abc import DEFAULT_MAX_AGE, StateStore
from crontabber.web import acting, metrics, svg
from crontabber.web.guard import Guard
from crontabber.web.http import (
    HTTPError,
    Request,
    Response,
    StartResponse,
    json_response,
    paging,
)
from crontabber.web.reader import Reader, Unavailable, read_only_store
from crontabber.web.views import LATE_AFTER, Status, ago, job_rows, pause_words, summarise

GRAPH_INLINE_MAX = 100  # more jobs than this: the graph has a page of its own
AUDIT_ROWS = 20  # of a job's audit log, and of its notifications, on its page
EVENT_ROWS = 200  # the newest notifications /api/jobs gives, with their jobs
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

log = logging.getLogger("crontabber.web")


def create_app(
    database: str | StateStore,
    specs: Sequence[JobSpec],
    *,
    auth_token: str = "",
    max_ongoing_age: dt.timedelta = DEFAULT_MAX_AGE,
    late_after: dt.timedelta = LATE_AFTER,
    refresh_seconds: float = 10,
    problems: Sequence[str] = (),
    liveness: Callable[[], str | None] | None = None,
) -> StatusApp:
    """The WSGI application of the status page.

    ``database`` is the state database's URL (the application opens a read-only
    store of its own on it, and, for the first action, a writable one that does
    not migrate) or a store to read and act through as it is. ``specs`` are
    the configured jobs; ``problems`` the configuration's problems, shown as
    such. ``liveness``, when given, is asked first by ``/healthz``: a line says
    why the process is not alive (503 with it), None that it is. Nothing touches
    the database until a request does.
    """
    if isinstance(database, str):
        url = database
        store = read_only_store(url)

        def open_writer() -> StateStore:
            return acting.writable_store(url)

    else:
        store = database

        def open_writer() -> StateStore:
            return database

    return StatusApp(
        Reader(store, max_ongoing_age=max_ongoing_age),
        tuple(specs),
        auth_token=auth_token,
        late_after=late_after,
        refresh_seconds=refresh_seconds,
        problems=tuple(problems),
        open_writer=open_writer,
        owns_writer=isinstance(database, str),
        liveness=liveness,
    )


class StatusApp:
    """The WSGI callable. Create it with :func:`create_app`."""

    def __init__(
        self,
        reader: Reader,
        specs: tuple[JobSpec, ...],
        *,
        auth_token: str,
        late_after: dt.timedelta,
        refresh_seconds: float,
        problems: tuple[str, ...],
        open_writer: Callable[[], StateStore] | None = None,
        owns_writer: bool = False,
        liveness: Callable[[], str | None] | None = None,
    ) -> None:
        self.reader = reader
        self.specs = specs
        self.by_name = {spec.app_name: spec for spec in specs}
        self.auth_token = auth_token
        self.guard = Guard(auth_token)
        self.acting = acting.Acting(
            specs, self.guard, open_writer or (lambda: reader.store), owns_store=owns_writer
        )
        self.late_after = late_after
        self.refresh_seconds = refresh_seconds
        self.problems = problems
        self.liveness = liveness
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("crontabber.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(
            Status=Status, ago=ago, outcome=outcome, pause_words=pause_words
        )
        folder = resources.files("crontabber.web").joinpath("static")
        self.static = {
            entry.name: entry.read_bytes()
            for entry in folder.iterdir()
            if entry.name[entry.name.rfind(".") :] in STATIC_TYPES
        }
        self.routes: list[tuple[str, Callable[..., Response]]] = [
            ("/healthz", self.healthz),
            ("/metrics", self.metrics),
            ("/api/jobs", self.api_jobs),
            ("/fragments/status", self.status_fragment),
            ("/graph.svg", self.graph_image),
            ("/graph", self.graph_page),
            ("/", self.index),
        ]

    def close(self) -> None:
        self.acting.close()
        self.reader.close()

    # --- WSGI -----------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPError as exc:
            response = self.error(request, exc.status, exc.message, exc.headers)
        except Unavailable as exc:
            response = self.error(request, "503 Service Unavailable", exc.reason)
        start_response(response.status, response.headers)
        return [] if request.method == "HEAD" else [response.body]

    def dispatch(self, request: Request) -> Response:
        path = request.path
        target = acting.target(path)  # what a POST to this path would do, if anything
        if target is not None and target.api and request.method != "POST":
            raise HTTPError("405 Method Not Allowed", "act with POST", [("Allow", "POST")])
        if request.method not in ("GET", "HEAD", "POST") or (
            request.method == "POST" and target is None
        ):
            allow = "GET, HEAD" if target is None else "GET, HEAD, POST"
            raise HTTPError(
                "405 Method Not Allowed", "this page only reads: use GET", [("Allow", allow)]
            )
        if path != "/healthz" and not self.authorised(request):
            return Response(
                "the status page wants web.auth_token (as a bearer token, or as the "
                "password of basic authentication)\n",
                "text/plain; charset=utf-8",
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="crontabber", charset="UTF-8"')],
            )
        if request.method == "POST":
            assert target is not None
            return self.acting.post(request, target, request.root)
        if path.startswith("/static/"):
            return self.static_file(path.removeprefix("/static/"))
        if path.startswith("/api/jobs/") and path.endswith("/runs"):
            return self.api_runs(request, path[len("/api/jobs/") : -len("/runs")])
        if path.startswith("/jobs/"):
            return self.job_page(request, path.removeprefix("/jobs/"))
        for route, handler in self.routes:
            if path == route:
                return handler(request)
        raise HTTPError("404 Not Found", "no such page")

    def authorised(self, request: Request) -> bool:
        return self.guard.authorised(request.environ)

    def error(
        self, request: Request, status: str, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        if request.path.startswith("/api/"):
            return json_response({"error": message}, status, headers)
        if request.path.startswith(("/metrics", "/healthz", "/fragments/", "/static/")):
            return Response(message + "\n", "text/plain; charset=utf-8", status, headers)
        page = self.render("error.html", request, status=status, message=message)
        return Response(page, status=status, headers=headers)

    def render(self, template: str, request: Request, **context: Any) -> str:
        root = request.root

        def job_href(app_name: str) -> str:
            return f"{root}/jobs/{quote(app_name, safe='')}"

        return self.templates.get_template(template).render(root=root, job_href=job_href, **context)

    # --- pages ------------------------------------------------------------------------

    def status_context(self, request: Request) -> dict[str, Any]:
        snapshot = self.reader.snapshot()
        rows = job_rows(self.specs, snapshot, late_after=self.late_after)
        root = request.root
        graph = None
        if len(rows) <= GRAPH_INLINE_MAX:
            graph = svg.graph_svg(rows, lambda name: f"{root}/jobs/{quote(name, safe='')}")
        return {
            "now": snapshot.now,
            "rows": rows,
            "summary": summarise(rows),
            "graph": graph,
            "problems": self.problems,
        }

    def index(self, request: Request) -> Response:
        context = self.status_context(request)
        return Response(
            self.render(
                "index.html",
                request,
                refresh_seconds=self.refresh_seconds,
                noscript_refresh=max(int(self.refresh_seconds), 30),
                **context,
            )
        )

    def status_fragment(self, request: Request) -> Response:
        return Response(self.render("_status.html", request, **self.status_context(request)))

    def graph_rows(self) -> list[Any]:
        return job_rows(self.specs, self.reader.snapshot(), late_after=self.late_after)

    def graph_page(self, request: Request) -> Response:
        rows = self.graph_rows()
        picture = svg.graph_svg(rows, lambda name: f"{request.root}/jobs/{quote(name, safe='')}")
        return Response(self.render("graph.html", request, graph=picture, rows=rows))

    def graph_image(self, request: Request) -> Response:
        rows = self.graph_rows()
        picture = svg.graph_svg(rows, lambda name: f"{request.root}/jobs/{quote(name, safe='')}")
        return Response(picture, "image/svg+xml; charset=utf-8")

    def job_page(self, request: Request, app_name: str) -> Response:
        spec = self.job(app_name)
        page, per_page = paging(request)
        snapshot = self.reader.snapshot()
        log_page = self.reader.log_page(spec.app_name, offset=(page - 1) * per_page, limit=per_page)
        audit = self.reader.audit_log(spec.app_name, limit=AUDIT_ROWS)
        events = self.reader.notifications(spec.app_name, limit=AUDIT_ROWS)
        (row,) = job_rows([spec], snapshot, late_after=self.late_after)
        csrf_token, headers, said = "", [], None
        if self.guard.acting:
            session_id, headers = self.guard.session(request.environ)
            csrf_token = self.guard.csrf_token(session_id)
            said = self.said(request, session_id)
        body = self.render(
            "job.html",
            request,
            row=row,
            now=snapshot.now,
            runs=log_page.entries,
            total=log_page.total,
            page=page,
            per_page=per_page,
            pages=max(math.ceil(log_page.total / per_page), 1),
            chart=svg.history_svg(log_page.entries),
            audit=audit,
            audit_limit=AUDIT_ROWS,
            events=events,
            acting=self.guard.acting,
            csrf_token=csrf_token,
            said=said,
        )
        return Response(body, headers=headers)

    def said(self, request: Request, session_id: str) -> tuple[str, str] | None:
        """What the form just posted did (its outcome and line), when this page's own
        redirect says so; a link made elsewhere says nothing."""
        query = {name: values[0] for name, values in request.query.items()}
        outcome, message = query.get("outcome", ""), query.get("said", "")
        if outcome in ("done", "refused") and self.guard.signed(
            session_id, outcome, message, query.get("sig", "")
        ):
            return outcome, message
        return None

    def job(self, app_name: str) -> JobSpec:
        try:
            return self.by_name[app_name]
        except KeyError:
            raise HTTPError("404 Not Found", f"no job named {app_name!r} is configured") from None

    def static_file(self, name: str) -> Response:
        if name not in self.static:
            raise HTTPError("404 Not Found", "no such file")
        return Response(
            self.static[name],
            STATIC_TYPES[name[name.rfind(".") :]],
            cache="public, max-age=300",
        )

    # --- machine-readable ---------------------------------------------------------------

    def api_jobs(self, request: Request) -> Response:
        snapshot = self.reader.snapshot()
        events = self.reader.notifications(limit=EVENT_ROWS)
        rows = job_rows(self.specs, snapshot, late_after=self.late_after, events=events)
        return json_response(
            {"now": snapshot.now.isoformat(), "jobs": [row.as_dict() for row in rows]}
        )

    def api_runs(self, request: Request, app_name: str) -> Response:
        spec = self.job(app_name)
        page, per_page = paging(request)
        log_page = self.reader.log_page(spec.app_name, offset=(page - 1) * per_page, limit=per_page)
        return json_response(
            {
                "app_name": spec.app_name,
                "page": page,
                "per_page": per_page,
                "total": log_page.total,
                "runs": [
                    {
                        # run_dict's keys, as --history --json gives them, and the
                        # older ones of this API
                        "log_time": entry.log_time.isoformat(),
                        "success": entry.success.isoformat() if entry.success else None,
                        "failed": entry.failed,
                        "exc_type": entry.exc_type,
                        "exc_value": entry.exc_value,
                        "exc_traceback": entry.exc_traceback,
                        **run_dict(entry),
                    }
                    for entry in log_page.entries
                ],
            }
        )

    def metrics(self, request: Request) -> Response:
        collector = metrics.JobsCollector(
            self.specs, self.reader.snapshot_and_counts, self.reader.notification_counts
        )
        body, content_type = metrics.exposition(collector, request.environ.get("HTTP_ACCEPT", ""))
        return Response(body, content_type)

    def healthz(self, request: Request) -> Response:
        reason = self.liveness() if self.liveness is not None else None
        if reason is not None:  # the process's own word, before the database's
            line = " ".join(reason.split()) or "not alive"
            return Response(line + "\n", "text/plain; charset=utf-8", "503 Service Unavailable")
        try:
            self.reader.check()
        except Unavailable as exc:
            return Response(
                exc.reason + "\n", "text/plain; charset=utf-8", "503 Service Unavailable"
            )
        return Response("ok\n", "text/plain; charset=utf-8")
