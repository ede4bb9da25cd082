"""A deadline on a statement, and libpq's multi-host URLs, read without a database."""

from __future__ import annotations

import socket
import time

import pytest

from crontabber.db.deadline import Deadline
from crontabber.db.url import parse_url


def test_a_deadline_shuts_a_silent_connection_down() -> None:
    """A read that would wait for ever returns once the deadline passes."""
    quiet, other = socket.socketpair()
    with quiet, other:
        started = time.monotonic()
        with Deadline(quiet, 0.2) as deadline:
            data = quiet.recv(10)  # nothing is ever sent: only the deadline ends this
        assert data == b""
        assert deadline.expired
        assert time.monotonic() - started < 5


def test_no_deadline_without_seconds_or_a_socket() -> None:
    quiet, other = socket.socketpair()
    with quiet, other, Deadline(quiet, None) as deadline:
        other.sendall(b"x")
        assert quiet.recv(1) == b"x"
    assert not deadline.expired
    with Deadline(object(), 0.01) as deadline:
        time.sleep(0.05)
    assert not deadline.expired


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (
            "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write",
            {
                "host": "h1,h2",
                "port": "5432,5433",
                "dbname": "db",
                "user": "u",
                "target_session_attrs": "read-write",
            },
        ),
        (
            "postgresql://u@h1,h2:5433/db",
            {"host": "h1,h2", "port": "5432,5433", "dbname": "db", "user": "u"},
        ),
        ("postgresql://u@h1,h2/db", {"host": "h1,h2", "dbname": "db", "user": "u"}),
        (
            "postgresql://u:p%40ss@[::1]:5433/db",
            {"host": "::1", "port": 5433, "dbname": "db", "user": "u", "password": "p@ss"},
        ),
        ("postgresql://h:5432/db", {"host": "h", "port": 5432, "dbname": "db"}),
    ],
)
def test_libpq_multi_host_urls_are_read(url: str, params: dict[str, object]) -> None:
    """Reproduction 6: a multi-host URL was refused ("its port is not a number")."""
    assert parse_url(url).connect_args == params
