"""Poll until something holds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object],
    what: str,
    timeout: float = 30,
    *,
    process: subprocess.Popen | None = None,
    poll: float = 0.02,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds, or as soon as
    ``process`` (when given) has ended."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None:
            assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(poll)
