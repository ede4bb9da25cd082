"""The subprocess mixin: a job runs a command and gets its exit code and output.

``@with_subprocess`` gives a job ``self.run_process(command, timeout=None,
input=None)``. The command runs in a process group of its own, so a timeout
kills it and everything it started. What it wrote is also added to the job's run
output (:func:`crontabber.run.output.record_output`), after a ``$ command`` line.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any, TypeVar

from crontabber.run.output import record_output

C = TypeVar("C", bound=type)

__all__ = ["ProcessTimeout", "run_process", "with_subprocess"]


class ProcessTimeout(subprocess.TimeoutExpired):
    """``run_process`` killed the command after ``timeout`` seconds.

    ``output`` and ``stderr`` hold, as text, what it wrote before that.
    """


def with_subprocess(cls: C) -> C:
    """Give the job ``self.run_process(command, timeout=None, input=None)``."""
    cls.run_process = run_process
    return cls


def run_process(
    self: Any,
    command: str | Sequence[str],
    timeout: float | None = None,
    input: str | None = None,
) -> tuple[int, str, str]:
    """Run ``command`` and return ``(exit_code, stdout, stderr)``, the output as stripped text.

    A string runs through ``/bin/sh``; a list runs the program directly, each
    item one argument, with no shell expansion. The exit code is negative (-N)
    when signal N ended the process. A program that cannot be started raises
    ``OSError`` (a list) or exits 127 (a string). After ``timeout`` seconds the
    command and every process it started are killed and :class:`ProcessTimeout`
    is raised.
    """
    shell = isinstance(command, str)
    with subprocess.Popen(
        command if shell else list(command),
        shell=shell,
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group, so a timeout kills what it started
    ) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            stdout, stderr = process.communicate()
            record(command, stdout.strip(), stderr.strip())
            raise ProcessTimeout(command, timeout or 0, stdout, stderr) from None
        except BaseException:
            kill_group(process)
            raise
    record(command, stdout.strip(), stderr.strip())
    return process.returncode, stdout.strip(), stderr.strip()


def record(command: str | Sequence[str], stdout: str, stderr: str) -> None:
    """Add ``$ command`` (cut to 200 characters) and what it wrote to the run output."""
    shown = command if isinstance(command, str) else " ".join(str(part) for part in command)
    shown = shown if len(shown) <= 200 else shown[:197] + "..."
    record_output("\n".join(part for part in (f"$ {shown}", stdout, stderr) if part))


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except AttributeError:  # no process groups (Windows)
        process.kill()
