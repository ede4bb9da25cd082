"""What a job writes while it runs, kept up to a cap for its run record: :class:`RunOutput`.

The runner wraps the job in ``with RunOutput(limit_bytes, fds=True) as output`` and stores
``output.text()``. Three sources feed one capped buffer, through one lock:

- with ``fds=True``, descriptors 1 and 2: each is pointed at a pipe of the process's
  :mod:`~crontabber.run.tee`, whose one thread copies every chunk into the buffer and to
  the original descriptor (the console sees what it saw before), so prints, C code and
  child processes are all kept. One such capture at a time: descriptors belong to the
  process;
- log records at INFO and above that reach the root logger, as ``LEVEL logger: message``
  (and the traceback); with ``fds=False`` (a capture in one thread among others) only the
  records of the thread that entered, and no descriptor is touched;
- :func:`record_output`, for code that reads a child's output itself (the subprocess mixin).

A root level above INFO is lowered to INFO for the capture, and every other handler gets a
filter that drops what the old level stopped, so each shows what it showed before (where no
logger has a handler, one stands in for Python's last resort for the capture). A root
``StreamHandler`` on descriptor 1 or 2 writes to the original while fds are captured, so a
logged line is kept once, as a record. Memory is bounded: the head (half the cap) and the
tail, trimmed past twice its share. Leaving never hangs: what was written before it is
taken (``tee.DRAIN_SECONDS`` at most); a background child's later output goes to the
console only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading

__all__ = ["RunOutput", "record_output"]

LEFT_OUT = "\n[... {} bytes left out ...]\n"

_active: list[RunOutput] = []  # entered captures, innermost last
_active_lock = threading.Lock()  # guards _active and the root level


def record_output(text: str) -> None:
    """Add ``text`` (and a newline when it has none) to the innermost active capture
    that keeps this thread's output; do nothing when there is none."""
    ident = threading.get_ident()
    with _active_lock:
        target = next((output for output in reversed(_active) if output._keeps(ident)), None)
    if target is not None:
        target._add((text if text.endswith("\n") else text + "\n").encode("utf-8", "replace"))


class RunOutput:
    """A context manager that keeps, up to ``limit_bytes``, what is written inside it."""

    def __init__(self, limit_bytes: int = 64 * 1024, *, fds: bool = False) -> None:
        if limit_bytes < 0:
            raise ValueError(f"limit_bytes must be 0 or more, not {limit_bytes}")
        self.fds = fds
        self._head_size, self._tail_size = limit_bytes // 2, limit_bytes - limit_bytes // 2
        self._head, self._tail, self._total = bytearray(), bytearray(), 0
        self._lock = threading.Lock()  # guards the buffer and _capturing
        self._capturing, self._thread = False, threading.get_ident()
        self._keeper: _Keeper | None = None  # while capturing (it and this refer to each other)
        self._stand_in: logging.Handler | None = None  # for Python's last resort
        self._saved: dict[int, int] = {}  # captured descriptor: a copy of the original
        self._streams: list[tuple[logging.StreamHandler, object]] = []  # handler, its stream
        self._consoles: dict[int, io.TextIOWrapper] = {}  # on the originals, by fd

    def text(self) -> str:
        """What was kept: all of it, or its head, a ``[... N bytes left out ...]`` line and
        its tail; decoded as UTF-8, a character cut at a boundary replaced."""
        with self._lock:
            tail = self._tail[len(self._tail) - self._tail_size :]
            left_out = self._total - len(self._head) - len(tail)
            if not left_out or not tail:  # everything, or nothing (limit_bytes=0)
                return (self._head + tail).decode("utf-8", "replace")
            head = self._head.decode("utf-8", "replace")
            return head + LEFT_OUT.format(left_out) + tail.decode("utf-8", "replace")

    def collect(self) -> RunOutput:
        """Keep what :meth:`add` is given, capturing nothing here: a run in a process of
        its own sends it (:mod:`crontabber.run.relay`)."""
        with self._lock:
            self._capturing = True
        return self

    def add(self, data: bytes) -> None:
        self._add(data)

    def __enter__(self) -> RunOutput:
        with _active_lock:
            if self in _active or (self.fds and any(output.fds for output in _active)):
                raise RuntimeError("already capturing: this output, or file descriptors 1 and 2")
            _active.append(self)
            self._capturing, self._thread = True, threading.get_ident()
            if not _handlers() and logging.lastResort is not None:  # the keeper hides it
                self._stand_in = logging.StreamHandler(sys.stderr)
                self._stand_in.setLevel(logging.lastResort.level)
                logging.getLogger().addHandler(self._stand_in)
            _lower_root_level()
        try:
            if self.fds:
                self._capture_fds()
            self._keeper = _Keeper(self)
            logging.getLogger().addHandler(self._keeper)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.fds:
                self._release_fds()
        finally:
            if self._keeper is not None:
                logging.getLogger().removeHandler(self._keeper)
                self._keeper = None  # no cycle is left for the collector to find
            if self._stand_in is not None:
                logging.getLogger().removeHandler(self._stand_in)
            with _active_lock:
                if self in _active:
                    _active.remove(self)
                    _restore_root_level()
            with self._lock:
                self._capturing = False

    def _keeps(self, ident: int | None) -> bool:
        return self.fds or ident is None or ident == self._thread

    def _add(self, data: bytes) -> None:
        with self._lock:
            if not self._capturing:
                return
            self._total += len(data)
            room = max(0, self._head_size - len(self._head))
            self._head += data[:room]
            self._tail += data[room:]
            if len(self._tail) > 2 * self._tail_size:
                del self._tail[: len(self._tail) - self._tail_size]

    def _capture_fds(self) -> None:
        from crontabber.run.tee import tee  # here: a run in a process of its own needs none

        self._saved, self._streams, self._consoles = {}, [], {}
        _flush_std()
        for fd in (1, 2):
            try:
                self._saved[fd] = os.dup(fd)  # from here on, __exit__ restores fd from it
            except OSError:  # not open: nothing to show or keep
                continue
            encoding = getattr(sys.stdout if fd == 1 else sys.stderr, "encoding", None)
            self._consoles[fd] = open(  # noqa: SIM115 - for log handlers; closed on exit
                self._saved[fd], "w", encoding=encoding, errors="backslashreplace", closefd=False
            )
        tee().begin(self, self._saved)
        self._handlers_to_consoles()

    def _handlers_to_consoles(self) -> None:
        """Point each root ``StreamHandler`` on a captured descriptor at its console: a
        logged line is kept once, as a record."""
        for handler in list(logging.getLogger().handlers):
            with contextlib.suppress(AttributeError, OSError, ValueError):  # no descriptor
                stream = handler.stream  # type: ignore[attr-defined]
                fd = stream.fileno()
                if fd in self._consoles and not isinstance(handler, logging.FileHandler):
                    handler.setStream(self._consoles[fd])  # type: ignore[attr-defined]
                    self._streams.append((handler, stream))

    def _release_fds(self) -> None:
        from crontabber.run.tee import tee

        tee().end(self._unhook())  # the descriptors back, what was written before taken
        with self._lock:
            self._capturing = False

    def _unhook(self) -> dict[int, int]:
        """Log handlers back on their streams; the saved descriptors (to put back)."""
        _flush_std()
        for handler, stream in reversed(self._streams):
            handler.setStream(stream)
        for console in self._consoles.values():
            console.close()  # closefd=False: its descriptor is closed with the saved one
        saved, self._saved = self._saved, {}
        return saved


class _Keeper(logging.Handler):
    """The root handler that keeps records at INFO and above in one capture."""

    def __init__(self, output: RunOutput) -> None:
        super().__init__(logging.INFO)
        self.output = output
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.output._keeps(record.thread):
            self.output._add((self.format(record) + "\n").encode("utf-8", "replace"))


_users, _old_level, _filtered = 0, logging.NOTSET, []  # the root level, while lowered


def _lower_root_level() -> None:
    """Lower a root level above INFO to INFO while any capture is active, and make every
    other handler show only what the old level let through."""
    global _users, _old_level, _filtered
    _users += 1
    root = logging.getLogger()
    if _users == 1 and root.level > logging.INFO:
        _old_level, _filtered = root.level, _handlers()
        for handler in _filtered:
            handler.addFilter(_passed_before)
        root.setLevel(logging.INFO)


def _restore_root_level() -> None:
    global _users, _old_level, _filtered
    _users -= 1
    if _users == 0 and _old_level != logging.NOTSET:
        for handler in _filtered:
            handler.removeFilter(_passed_before)
        if logging.getLogger().level == logging.INFO:  # unless the job set one of its own
            logging.getLogger().setLevel(_old_level)
        _old_level, _filtered = logging.NOTSET, []


def _passed_before(record: logging.LogRecord) -> bool:
    """Whether ``record`` would have passed its logger's level before it was lowered."""
    logger = logging.root.manager.loggerDict.get(record.name)
    while isinstance(logger, logging.Logger) and not logger.level:
        logger = logger.parent  # the first level set on the way up decides
    return record.levelno >= _old_level or (logger is not None and logger is not logging.root)


def _handlers() -> list[logging.Handler]:
    """Every logger's handlers but the captures' own, once each."""
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    found = (h for logger in loggers for h in getattr(logger, "handlers", ()))  # PlaceHolder: ()
    return list(dict.fromkeys(h for h in found if not isinstance(h, _Keeper)))


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # None, or closed
            stream.flush()
