"""The HTTP side of the status page: requests, responses and their headers, in plain WSGI.

:class:`Request` reads what the application needs of a WSGI environ (the path,
decoded once, and checked query numbers); :class:`Response` carries a body
with the security headers every answer has; :class:`HTTPError` is an answer
other than 200 raised from a handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PAGE_SIZE, MAX_PAGE_SIZE = 50, 500

SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]


StartResponse = Callable[..., Any]


class HTTPError(Exception):
    """An answer other than 200 OK: its status line, a one-line message, and any
    headers it needs (``Allow`` for a 405)."""

    def __init__(self, status: str, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


class Response:
    """A body, its type and status, and the headers every answer carries."""

    def __init__(
        self,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        status: str = "200 OK",
        headers: Sequence[tuple[str, str]] = (),
        cache: str = "no-store",
    ) -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.status = status
        self.headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", cache),
            *SECURITY_HEADERS,
            *headers,
        ]


class Request:
    """What the application reads of a WSGI request."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.root = wsgi_text(environ.get("SCRIPT_NAME", "")).rstrip("/")
        self.path = request_path(environ, self.root)
        self.query = parse_qs(environ.get("QUERY_STRING", ""))

    def number(self, name: str, default: int, *, low: int, high: int) -> int:
        values = self.query.get(name)
        if not values:
            return default
        try:
            value = int(values[0])
        except ValueError:
            raise HTTPError("400 Bad Request", f"{name} must be a whole number") from None
        if not low <= value <= high:
            raise HTTPError("400 Bad Request", f"{name} must be from {low} to {high}")
        return value


def request_path(environ: dict[str, Any], root: str) -> str:
    """The path below the application's root, decoded once as UTF-8.

    Read from the request line when the server gives it (``REQUEST_URI``):
    servers leave ``%2F`` encoded in ``PATH_INFO``, or not, as they please, and
    a job's name may hold a ``/``.
    """
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        path = unquote(urlsplit(wsgi_text(raw)).path)
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
    else:
        path = wsgi_text(environ.get("PATH_INFO", ""))
    return path or "/"


def wsgi_text(value: str) -> str:
    """A WSGI "native string" (bytes as latin-1) as the UTF-8 text it encodes."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def paging(request: Request) -> tuple[int, int]:
    per_page = request.number("per_page", PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    return request.number("page", 1, low=1, high=10**9), per_page


def json_response(
    data: object, status: str = "200 OK", headers: Sequence[tuple[str, str]] = ()
) -> Response:
    return Response(
        json.dumps(data, sort_keys=True, indent=1) + "\n",
        "application/json",
        status,
        headers,
    )
