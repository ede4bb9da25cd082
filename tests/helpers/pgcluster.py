"""A throwaway PostgreSQL cluster that a test may stop, start and restart at will.

``PgCluster.create()`` runs initdb in a new temporary directory (owned by the
``postgres`` user, which runs the server binaries through ``runuser``); the
server listens on 127.0.0.1 only, on a free port, with its unix socket in that
directory and ``trust`` authentication, tuned to start and stop fast (no
fsync: the data is thrown away, and a stopped server still loses no commit).
``cleanup()`` stops it at once and removes the directory. ``standby_of(primary)``
makes a streaming replica of a running cluster, which ``promote()`` promotes. The
``private_cluster`` fixture (tests/conftest.py) yields a started cluster and always
cleans up. Without the binaries, ``runuser`` or root (``missing_requirement``), the
fixture skips with the reason, or fails under CI=true.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

StopMode = Literal["smart", "fast", "immediate"]
TIMEOUT = 60  # seconds for any one pg_ctl or initdb call


def server_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin that has pg_ctl, or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    versions = sorted(found, key=lambda path: float(Path(path).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def missing_requirement() -> str | None:
    """Why a private cluster cannot be made here, or None when it can."""
    if server_bin_dir() is None:
        return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "needs root and runuser to run PostgreSQL's server binaries as postgres"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "needs a postgres user to run PostgreSQL's server binaries"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """One private cluster; see the module docstring."""

    def __init__(self, bin_dir: Path, base: Path) -> None:
        self.bin_dir = bin_dir
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.port = free_port()
        self.running = False
        self.settings: dict[
            str, str
        ] = {}  # more server settings (-c NAME=VALUE), from the next start

    @classmethod
    def create(cls) -> PgCluster:
        """A new, initialised, stopped cluster (call :meth:`cleanup` when done)."""
        return cls._made("crontabber-pg-", "initdb", "-A", "trust", "-U", "postgres", "-N")

    @classmethod
    def standby_of(cls, primary: PgCluster) -> PgCluster:
        """A new, stopped streaming replica of the running ``primary``: a base backup
        taken with ``pg_basebackup -R``, which writes its ``primary_conninfo``."""
        return cls._made(
            "crontabber-pg-standby-",
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-R", "-X", "stream", "-c", "fast"),
        )

    @classmethod
    def _made(cls, prefix: str, program: str, *args: str) -> PgCluster:
        """A cluster in a new directory whose data directory ``program args -D DATA`` makes."""
        bin_dir = server_bin_dir()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries")
        base = Path(tempfile.mkdtemp(prefix=prefix))
        shutil.chown(base, "postgres")
        cluster = cls(bin_dir, base)
        try:
            cluster._run(program, *args, "-D", str(cluster.data))
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    def promote(self) -> None:
        """Promote this standby and wait until it takes writes (a new timeline)."""
        self._pg_ctl("-t", "30", "promote")

    @property
    def libpq_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections.

        If the port was taken meanwhile by someone else, the first start moves
        to another free port (twice at most).
        """
        for attempt in range(3):
            try:
                self._pg_ctl("-o", self._options(), "-l", str(self.log), "-t", "30", "start")
                break
            except RuntimeError:
                if attempt == 2 or "could not bind" not in self._log_tail():
                    raise
                self.port = free_port()
        self.running = True

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server (``immediate``: as if it crashed) and wait until it is gone."""
        self._pg_ctl("-m", mode, "-t", "30", "stop")
        self.running = False

    def restart(self, mode: StopMode = "fast") -> None:
        self.stop(mode)
        self.start()

    def cleanup(self) -> None:
        """Stop the server at once, whatever its state, and remove the directory."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=TIMEOUT,
                check=False,
            )
        self.running = False
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            # fsync=off loses nothing when only the server stops, even "immediate"ly;
            # synchronous_commit=off would lose acknowledged commits then.
            "-c fsync=off -c shared_buffers=16MB"
            + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", *args)

    def _as_postgres(self, program: str, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", str(self.bin_dir / program), *args]

    def _run(self, program: str, *args: str) -> None:
        # Output to a file, never a pipe: a server started by pg_ctl inherits it and
        # would hold a pipe open.
        with tempfile.TemporaryFile() as output:
            done = subprocess.run(
                self._as_postgres(program, *args),
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                output.seek(0)
                said = output.read().decode(errors="replace").strip()
                raise RuntimeError(
                    f"{program} {' '.join(args)} exited {done.returncode}: {said}\n"
                    f"server log:\n{self._log_tail()}"
                )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
