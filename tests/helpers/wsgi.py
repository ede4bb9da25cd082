"""One request straight through a WSGI application, as a server would pass it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes
from wsgiref.util import setup_testing_defaults


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> dict[str, object]:
        assert self.headers["Content-Type"] == "application/json", self.body
        return json.loads(self.body)


def call(
    app: Callable[..., Iterable[bytes]],
    path: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    content_type: str = "",
    scheme: str = "http",
    **headers: str,
) -> Reply:
    """One request straight through the WSGI callable, from 127.0.0.1."""
    path, _, query = path.partition("?")
    environ: dict[str, object] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),  # as a server decodes it
        "QUERY_STRING": query,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": scheme,
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    if content_type:
        environ["CONTENT_TYPE"] = content_type
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    setup_testing_defaults(environ)
    answer: dict[str, object] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        answer["status"] = int(status.split(maxsplit=1)[0])
        answer["headers"] = dict(response_headers)

    text = b"".join(app(environ, start_response)).decode("utf-8")
    return Reply(answer["status"], answer["headers"], text)  # type: ignore[arg-type]
