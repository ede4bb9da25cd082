"""What the tests share: helpers, never tests (fixtures are in ``tests/conftest.py``).

- ``command``: run the ``crontabber`` command in a scratch directory (or in the
  background, or under ``-X importtime``), write its ini file.
- ``jobs``: write a job module from one template; read back what its jobs noted; the
  fault tests' jobs.
- ``specs``: instants (``at``) and job specs made from classes, for in-process runs.
- ``apps``: a small pipeline of in-process job classes the admin and page tests share.
- ``store``: claims held by someone else, a job's row and log, terminated connections.
- ``waiting``: poll until something holds.
- ``missing``: skip for what the machine lacks, or fail under CI=true.
- ``pgcluster``: a private PostgreSQL cluster a test may stop and start.
- ``wallclock``: a wrong wall clock for a subprocess (an LD_PRELOAD shim).
- ``scripts/``: ``barrier_run.py`` and ``hammer_worker.py``, which the fault tests run
  by path (``script(name)``), as programs, not modules: nothing else is beside them on
  their ``sys.path[0]``.
"""

from __future__ import annotations

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def script(name: str) -> str:
    """The path of a script in ``scripts/``, to run as ``python PATH ARGS``."""
    path = SCRIPTS / name
    assert path.is_file(), path
    return str(path)
