"""A real PgBouncer in transaction pooling mode, started by a test on a port of its own.

Debian's ``pgbouncer`` (``.ci/run`` installs it). It runs as ``postgres`` (it
refuses root), listens on 127.0.0.1 only, trusts every user and pools into one
server connection per database, so that whatever one client leaves on a server
connection the next one meets.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .missing import skip_or_fail
from .pgcluster import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the pooler's."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


@contextlib.contextmanager
def pgbouncer(server_url: str, pool_size: int = 1, ignore: str = "") -> Iterator[int]:
    """A PgBouncer in front of ``server_url``'s server, ``pool_size`` server connections
    per database, ignoring the startup parameters ``ignore`` names (its
    ``ignore_startup_parameters``); yields its port."""
    if not os.path.exists(PGBOUNCER):
        skip_or_fail("no pgbouncer for the pooler tests (.ci/run installs Debian's pgbouncer)")
    server = urlsplit(server_url)
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="crontabber-pgbouncer-"))
    directory.chmod(0o777)
    user = server.username or "postgres"
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.hostname or '127.0.0.1'} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'users.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 200\n"
        f"ignore_startup_parameters = {ignore}\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
        f"pidfile = {directory / 'pgbouncer.pid'}\n"
    )
    for path in directory.iterdir():
        path.chmod(0o644)
    command = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"pgbouncer did not start: {process.stderr.read()!r}"
                    ) from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(directory, ignore_errors=True)
