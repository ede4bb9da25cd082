"""A wrong wall clock for a subprocess: an LD_PRELOAD shim (``wallclock_shim.c``).

The shim shifts what ``clock_gettime(CLOCK_REALTIME)``, ``gettimeofday`` and
``time`` return, and nothing else: the monotonic clock, and so every timed wait
of Python's (``time.sleep``, ``Event.wait``, lock timeouts), keeps real time.
Debian's faketime hangs Python 3.11's timed waits, hence this one.

Use the ``wallclock`` fixture (tests/conftest.py)::

    result = run_crontabber(..., env=wallclock.shifted_env(-120))   # 2 minutes slow
    result = run_crontabber(..., env=wallclock.fixed_env(at("2026-03-28 12:00")))

``fixed_env`` starts the wall clock at that instant when the process starts; it then
advances in real time, and the process's children share it. The shim is built once
per session with ``cc``; without a compiler ``build`` skips with the reason, or
fails under CI=true.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .missing import skip_or_fail

SOURCE = Path(__file__).with_name("wallclock_shim.c")
OFFSET = "CRONTABBER_TEST_WALL_OFFSET"
AT = "CRONTABBER_TEST_WALL_AT"


@dataclass(frozen=True)
class Wallclock:
    library: Path

    def _env(self, **values: str) -> dict[str, str]:
        # Only this library is preloaded (two shims would add up their shifts), and both
        # variables are always set, so values in the parent's environment cannot leak in
        # (the shim treats an empty one as unset).
        return {"LD_PRELOAD": str(self.library), OFFSET: "", AT: "", **values}

    def shifted_env(self, seconds: float) -> dict[str, str]:
        """Environment entries for a process whose wall clock is ``seconds`` ahead
        (negative: behind) of the real one."""
        return self._env(**{OFFSET: repr(float(seconds))})

    def fixed_env(self, when: dt.datetime) -> dict[str, str]:
        """Environment entries for a process whose wall clock reads ``when`` as it
        starts, then runs on in real time."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"fixed_env needs an aware datetime, not {when!r}")
        return self._env(**{AT: repr(when.timestamp())})


def build(directory: Path) -> Path:
    """Compile the shim into ``directory``; skips (fails under CI=true) without ``cc``."""
    if shutil.which("cc") is None:
        skip_or_fail(
            "no C compiler (cc) to build the wall clock shim tests/helpers/wallclock_shim.c"
        )
    library = directory / "wallclock.so"
    done = subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"building the wall clock shim failed:\n{done.stdout}{done.stderr}")
    return library
