"""Where an idle and a busy tick spend their time, from pyinstrument profiles of the command.

Each profile is one run of the command in a child process (``worker.py
profile``), imports included. Its time is split three ways: by kind of work
(imports, waiting on the database, and the Python of each package); by the
innermost crontabber function on the stack, which names the line of
crontabber that caused a library's or an import's cost; and by function. The
full call trees go to ``benchmarks/profiles/``.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common import (
    HERE,
    NOOP_MODULE_HEAD,
    WORKER,
    Stores,
    check,
    make_all_due,
    run_timed,
    seed_states,
    workspace,
)

PROFILE_DIR = HERE / "profiles"
# The drivers' C calls (connect, commit, fetch, ...): their self time is the round trip and
# the server's work, or SQLite's.
DATABASE_CALLS = ("commit", "execute", "connect", "rollback", "fetch")
# pyinstrument does not see psycopg2's and sqlite3's execute as frames of their own: their
# time is the self time of the store's one-line wrappers around them, counted as the call.
DRIVER_WRAPPERS = {
    "store_postgresql.py": ("_execute", "_beat"),
    "store_sqlite.py": ("_execute", "_writing", "_log", "_revision", "_beat", "_record_date"),
}


@dataclass
class Profile:
    name: str
    seconds: float
    by_kind: list[tuple[str, float]]  # (kind of work, seconds of self time), biggest first
    crontabber: list[tuple[str, float]]  # (innermost crontabber function, seconds under it)
    leaves: list[tuple[str, float]]  # (any function, self seconds), biggest first
    tree_file: str


def _package(file_path: str | None) -> str:
    if not file_path or file_path.startswith("<"):
        return "builtins"
    path = Path(file_path)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "crontabber" in parts:
        return "crontabber"
    if path.resolve() == WORKER:
        return "benchmark worker"
    return "python stdlib"


def _kind(frame, in_import: bool) -> str:
    if in_import:
        return "imports (module bodies, finding and loading)"
    package = _package(frame.file_path)
    builtin_call = frame.file_path == "<built-in>" and any(
        word in frame.function for word in DATABASE_CALLS
    )
    wrapper = frame.function in DRIVER_WRAPPERS.get(Path(frame.file_path or "").name, ())
    if builtin_call or (package == "crontabber" and wrapper):
        return "database driver calls (round trips, server work, commit fsync wait)"
    return f"Python in {package}"


def _label(frame) -> str:
    name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    return f"{name} ({Path(frame.file_path or '').name}:{frame.line_no})"


def summarize(session, name: str, tree_file: str) -> Profile:
    """Split a profile's time by kind of work, by innermost crontabber function, by function."""
    root = session.root_frame()
    by_kind: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    leaves: Counter[str] = Counter()

    def walk(frame, in_import: bool, owner: str) -> None:
        if frame.is_synthetic:
            return
        file_path = frame.file_path or ""
        in_import = in_import or "importlib._bootstrap" in file_path
        if _package(file_path) == "crontabber":
            owner = _label(frame)
        own = frame.total_self_time
        by_kind[_kind(frame, in_import)] += own
        by_owner[owner] += own
        leaves[_label(frame)] += own
        for child in frame.children:
            walk(child, in_import, owner)

    walk(root, False, "(outside crontabber)")
    return Profile(
        name=name,
        seconds=root.time,
        by_kind=by_kind.most_common(),
        crontabber=by_owner.most_common(15),
        leaves=leaves.most_common(12),
        tree_file=tree_file,
    )


def _profile_run(ws, config: Path, name: str, results_dir: Path) -> Profile:
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session_file = ws.dir / f"{name}.pyisession"
    args = [f"--admin.conf={config}", "--logging.level=WARNING"]
    check(
        run_timed(
            [sys.executable, str(WORKER), "profile", str(session_file), "--", *args], cwd=ws.dir
        )
    )
    session = Session.load(session_file)
    results_dir.mkdir(exist_ok=True)
    tree_file = results_dir / f"{name}.txt"
    renderer = ConsoleRenderer(unicode=True, color=False, show_all=False, short_mode=False)
    tree_file.write_text(renderer.render(session))
    return summarize(session, name, str(tree_file.relative_to(HERE)))


def measure(
    stores: Stores, kind: str, *, idle_sizes: list[int], busy_size: int, log=print
) -> list[Profile]:
    """Profiles of idle ticks of each of ``idle_sizes`` no-op jobs and of a busy tick of ``busy_size``."""
    PROFILE_DIR.mkdir(exist_ok=True)
    for old in PROFILE_DIR.glob("*.txt"):  # the directory holds the trees of the latest run only
        old.unlink()
    found = []
    for jobs in sorted({*idle_sizes, busy_size}):
        url = stores.new(kind)
        try:
            with workspace("benchjobs", NOOP_MODULE_HEAD, "Noop", jobs) as ws:
                seed_states(url, ws.app_names(), due=False)
                config = ws.write_config(url)
                check(run_timed(ws.command(config), cwd=ws.dir))  # warm-up
                if jobs in idle_sizes:
                    found.append(_profile_run(ws, config, f"idle-{kind}-{jobs}", PROFILE_DIR))
                if jobs == busy_size:
                    make_all_due(url)
                    found.append(_profile_run(ws, config, f"busy-{kind}-{jobs}", PROFILE_DIR))
        finally:
            stores.drop(url)
    for profile in found:
        top = ", ".join(f"{what} {seconds:.2f}s" for what, seconds in profile.by_kind[:3])
        log(f"  {profile.name:<28} {profile.seconds:6.2f} s: {top}")
    return found
