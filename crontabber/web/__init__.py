"""The status page: HTML for operators, JSON, and Prometheus metrics; with
``web.auth_token``, operators also pause, resume, run, cancel and reset jobs through it
(:mod:`crontabber.web.acting`).

``create_app(database_url, specs)`` is a WSGI application usable without the
CLI; ``serve(database_url, specs, host=..., port=...)`` serves it with waitress
until SIGTERM or SIGINT (``crontabber --serve``); ``start_server(app, host,
port)`` serves it in a thread.
"""

from __future__ import annotations

from crontabber.web.app import StatusApp, create_app
from crontabber.web.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    RunningServer,
    WebConfigError,
    check_bind,
    serve,
    start_server,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "RunningServer",
    "StatusApp",
    "WebConfigError",
    "check_bind",
    "create_app",
    "serve",
    "start_server",
]
