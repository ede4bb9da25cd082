"""Job modules a test writes beside its ini file, all from one template.

A test lists its classes as :class:`Job`; :func:`write_job_module` writes them
under the module :data:`TEMPLATE`, which imports ``os``, ``sys``, ``time`` and
``App``, defines ``HERE`` (the module's directory) and ``note(*words)``, which
appends the words as one line to a file beside the module (``runs.txt`` unless
the test names another). :func:`noted` reads that file back::

    write_job_module(
        project,
        "myjobs",
        Job("Hello", "hello", run='note("hello")'),
        Job("Failing", "failing", depends_on="hello", run='raise RuntimeError("it broke")'),
    )
    assert noted(project) == ["hello"]
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from .waiting import wait_until

TEMPLATE = '''\
"""Jobs written by a test (tests/helpers/jobs.py)."""

import os
import sys
import time

from crontabber import App
{imports}
HERE = os.path.dirname(os.path.abspath(__file__))
NOTES = os.path.join(HERE, {notes!r})


def crontabber_pid():
    """The crontabber process running this job (the parent of a run's own process)."""
    return os.getppid() if os.getsid(0) == os.getpid() else os.getpid()


def note(*words):
    """Append the words, as one line, to NOTES: what the test reads back."""
    with open(NOTES, "a") as f:
        f.write(" ".join(str(word) for word in words) + "\\n")
{classes}'''


def _indented(text: str) -> list[str]:
    return [f"    {line}" if line else "" for line in textwrap.dedent(text).strip().splitlines()]


@dataclass(frozen=True)
class Job:
    """One class of a job module: ``class NAME(BASE)`` (``base=""``: no base class).

    ``app_name`` None: none (a base class, or a job without one); ``depends_on``
    None: none; ``attributes``: more lines of the class body (attributes, methods);
    ``run``: the body of ``run(self ARGS)`` (``run_args``, e.g. ``", date"``), or None
    to inherit it; ``decorator``: what goes after ``@`` above the class.
    """

    name: str
    app_name: str | None = None
    run: str | None = "pass"
    depends_on: str | tuple[str, ...] | list[str] | None = None
    base: str = "App"
    attributes: str = ""
    decorator: str = ""
    run_args: str = ""

    def source(self) -> str:
        head = [f"@{self.decorator}"] if self.decorator else []
        head.append(f"class {self.name}({self.base}):" if self.base else f"class {self.name}:")
        body = []
        if self.app_name is not None:
            body.append(f"    app_name = {self.app_name!r}")
        if self.depends_on is not None:
            body.append(f"    depends_on = {self.depends_on!r}")
        if self.attributes:
            body += _indented(self.attributes)
        if self.run is not None:
            body += [*([""] if body else []), f"    def run(self{self.run_args}):"]
            body += [f"    {line}" if line else "" for line in _indented(self.run)]
        return "\n".join(head + (body or ["    pass"])) + "\n"


def job_module_source(*jobs: Job, imports: str = "", notes: str = "runs.txt") -> str:
    """The text of a module holding ``jobs``; ``imports``: more import lines."""
    return TEMPLATE.format(
        imports=textwrap.dedent(imports).strip() + "\n" if imports else "",
        notes=notes,
        classes="".join(f"\n\n{job.source()}" for job in jobs),
    )


def write_job_module(
    directory: Path, module: str, *jobs: Job, imports: str = "", notes: str = "runs.txt"
) -> Path:
    """Write ``directory/module.py`` holding ``jobs`` (see :func:`job_module_source`)."""
    path = directory / f"{module}.py"
    path.write_text(job_module_source(*jobs, imports=imports, notes=notes))
    return path


def noted(directory: Path, notes: str = "runs.txt") -> list[str]:
    """The lines the jobs of a module in ``directory`` noted, oldest first ([] if none)."""
    path = directory / notes
    return path.read_text().splitlines() if path.exists() else []


# The jobs of the fault tests (tests/faults): each running job notes "start APP PID"
# and, unless it dies first, "end APP PID".
FAULT_JOBS = (
    Job(
        "Slow",
        "slow",
        run="""
            note("start", self.app_name, crontabber_pid())
            time.sleep(float(os.environ.get("SLOW_SECONDS", "4")))
            note("end", self.app_name, crontabber_pid())
        """,
    ),
    Job(
        "Gate",
        "gate",
        attributes="# runs until the file 'go' appears beside this module",
        run="""
            note("start", self.app_name, crontabber_pid())
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(HERE, "go")) and time.monotonic() < deadline:
                time.sleep(0.01)
            note("end", self.app_name, crontabber_pid())
        """,
    ),
    # Kills crontabber itself (its own run's process would be a failure, not a dead holder).
    Job(
        "Killer",
        "killer",
        run='note("start", self.app_name, crontabber_pid())\nos.kill(crontabber_pid(), 9)',
    ),
    Job(
        "Healthy",
        "healthy",
        run="""
            note("start", self.app_name, crontabber_pid())
            note("end", self.app_name, crontabber_pid())
        """,
    ),
    Job("ExitsThree", "exits-three", run="sys.exit(3)"),
    Job("ExitsZero", "exits-zero", run="sys.exit(0)"),
    Job("HungPython", "hung-python", attributes="max_runtime = 1", run="time.sleep(60)"),
    Job(
        "HungCommand",
        "hung-command",
        decorator="with_subprocess",
        attributes="max_runtime = 1",
        run="""
            # a length no other process on the machine sleeps, for the test to look for
            self.run_process(["sleep", "59.713"])
        """,
    ),
)


def write_fault_jobs(directory: Path) -> Path:
    """The module ``faultjobs`` of :data:`FAULT_JOBS` in ``directory``."""
    return write_job_module(
        directory, "faultjobs", *FAULT_JOBS, imports="from crontabber.mixins import with_subprocess"
    )


def fault_runs(directory: Path, app: str | None = None) -> list[str]:
    """The start and end marks the fault jobs noted, of one app or of all."""
    lines = [line.split() for line in noted(directory)]
    return [words[0] for words in lines if app is None or words[1] == app]


def wait_for_start(directory: Path, timeout: float = 30) -> None:
    """Wait until a fault job in ``directory`` has noted its start."""
    wait_until(lambda: "start" in fault_runs(directory), "the job started", timeout)
