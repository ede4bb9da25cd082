"""The copy of descriptors 1 and 2 that a capture in crontabber's own process points them at.

A run kept in crontabber's process (``isolate_runs = false``, or the library's
``Runner``) has descriptors 1 and 2 pointed at pipes while it runs, so what it,
its C code and its child processes write is kept (:class:`~crontabber.run.output.RunOutput`).
Something must read those pipes while the job runs, or a job that writes more
than a pipe holds would block. That reader used to be two threads and two pipes
made for each run and joined after it: a few hundred microseconds a run, most of
what a no-op job cost. Here one thread and two pipes serve every run of the
process, made at its first capture: a run costs a few ``dup2`` calls.

The thread copies each chunk to the console (the descriptor as it was before the
capture) and, while a capture is open, into it. When the capture ends, the
descriptors are pointed back, and what is still in the pipes is taken before the
capture is closed: a write that returned before the end is kept, and shown before
what crontabber writes next. What a child the
job left running writes afterwards reaches the console only; :data:`DRAIN_SECONDS`
bounds the wait when such a child keeps writing.
"""

from __future__ import annotations

import os
import select
import threading
import time

TYPE_CHECKING = False  # typing is for type checkers
if TYPE_CHECKING:
    from typing import Protocol

    class Sink(Protocol):
        def add(self, data: bytes) -> None: ...


DRAIN_SECONDS = 1.0  # the longest a capture's end waits for its pipes to be read empty
CHUNK = 65536

_tee: Tee | None = None
_tee_lock = threading.Lock()


def tee() -> Tee:
    """This process's tee, started at its first use (again in a forked child: the
    parent's thread is not there)."""
    global _tee
    with _tee_lock:
        if _tee is None or _tee.pid != os.getpid():
            _tee = Tee()
        return _tee


class Tee:
    """Two pipes and the thread that reads them: ``begin`` points descriptors at them,
    ``end`` points them back and waits until what was written is read."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._pipes: dict[int, tuple[int, int]] = {}  # 1, 2: (read end, write end)
        self._consoles: dict[int, int] = {}  # 1, 2: a copy of the descriptor's original
        self._sink: Sink | None = None  # the open capture
        self._reading = False  # a chunk being read, not yet in the capture
        self._writing = -1  # the console a chunk is being copied to, outside the lock
        self._retired: list[int] = []  # consoles replaced while one was being written
        self._changed = threading.Condition()  # guards the above
        for fd in (1, 2):
            self._pipes[fd] = os.pipe()  # close-on-exec: a child holds only its 1 and 2
        thread = threading.Thread(target=self._copy, name="crontabber-tee", daemon=True)
        thread.start()

    def begin(self, sink: Sink, originals: dict[int, int]) -> None:
        """Keep what is written to each descriptor of ``originals`` (descriptor: a copy
        of what it was) in ``sink``, and copy it to the original."""
        with self._changed:
            for fd, original in originals.items():
                console = self._consoles.get(fd)
                if console is None or not _same_file(console, original):
                    if console is not None and console >= 0:
                        self._retire(console)
                    self._consoles[fd] = os.dup(original)
            self._sink = sink
        for fd in originals:
            os.dup2(self._pipes[fd][1], fd)

    def end(self, originals: dict[int, int]) -> None:
        """Point each descriptor back at its original (closing the copy), take what
        is left in the pipes, and close the capture."""
        for fd, original in originals.items():
            os.dup2(original, fd)
            os.close(original)
        deadline = time.monotonic() + DRAIN_SECONDS
        with self._changed:
            while self._reading or self._writing >= 0 or self._unread():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.05))
            self._sink = None

    def _unread(self) -> int:
        return sum(unread_bytes(read_end) for read_end, _ in self._pipes.values())

    def _retire(self, console: int) -> None:
        if console == self._writing:
            self._retired.append(console)  # closed once the thread is done with it
        else:
            os.close(console)

    def _copy(self) -> None:
        """The thread: each chunk into the open capture, then to its console, for ever.
        A console that blocks holds up this thread, never a capture's end for longer
        than DRAIN_SECONDS, and never what the capture keeps."""
        poller = select.poll()
        source = {}
        for fd, (read_end, _) in self._pipes.items():
            poller.register(read_end, select.POLLIN)
            source[read_end] = fd
        while True:
            for read_end, _ in poller.poll():
                with self._changed:
                    self._reading = True
                chunk = os.read(read_end, CHUNK)
                with self._changed:
                    if self._sink is not None:
                        self._sink.add(chunk)
                    self._reading = False
                    self._writing = console = self._consoles.get(source[read_end], -1)
                    self._changed.notify_all()
                went_away = not _write_all(console, chunk)
                with self._changed:
                    self._writing = -1
                    self._changed.notify_all()
                    if went_away and self._consoles.get(source[read_end]) == console:
                        self._consoles[source[read_end]] = -1  # go on keeping
                        self._retired.append(console)
                    for retired in self._retired:
                        os.close(retired)
                    self._retired.clear()


def _write_all(console: int, chunk: bytes) -> bool:
    """Write ``chunk`` to ``console`` (nothing when it is -1); False when it went away."""
    view = memoryview(chunk)
    while view and console >= 0:
        try:
            view = view[os.write(console, view) :]
        except OSError:
            return False
    return True


def unread_bytes(fd: int) -> int:
    """How many bytes wait in the pipe of ``fd`` (either end) to be read (Linux)."""
    import fcntl
    import struct
    import termios

    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _same_file(one: int, other: int) -> bool:
    try:
        a, b = os.fstat(one), os.fstat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
