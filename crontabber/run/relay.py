"""What a run in a process of its own prints and logs, relayed to crontabber without a thread.

The run's descriptors 1 and 2 are pipes that crontabber reads in the loop that
waits for the run (:class:`Relay`), writing each chunk to its own descriptor (the
console sees what it saw before) and keeping it, capped, in a
:class:`~crontabber.run.output.RunOutput`. The run's log records at INFO and above
come down a third pipe, formatted, and are kept, not shown (its own handlers show
what they showed before): :class:`SentOutput`; each waits until crontabber has read
what was printed before it, so the kept output is in the order it was written. A thread in each run's process, two
per run, used to read them; this costs none.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time

from crontabber.run.output import RunOutput, _flush_std
from crontabber.run.tee import unread_bytes

TYPE_CHECKING = False  # typing is for type checkers
if TYPE_CHECKING:
    from collections.abc import Iterable

DRAIN_SECONDS = 1.0  # after a run: what its processes wrote last, unless one still holds a pipe
ORDER_WAIT = 0.1  # seconds a record waits for crontabber to read what was printed before it


class Relay:
    """crontabber's side: three pipes (stdout, stderr, records), read into ``output``."""

    def __init__(self, output: RunOutput) -> None:
        self.output = output.collect()
        self._pipes = [os.pipe() for _ in range(3)]
        self._consoles = {self._pipes[0][0]: 1, self._pipes[1][0]: 2}  # records: none
        self.order = [read for read, _ in self._pipes]
        self.open: set[int] = set()

    def write_ends(self) -> tuple[int, int, int]:
        """In the run's process: its ends (the read ends are closed there)."""
        for read, _ in self._pipes:
            os.close(read)
        out, err, records = (write for _, write in self._pipes)
        return out, err, records

    def forked(self) -> None:
        """In crontabber, once the run's process is started: only it writes now."""
        for read, write in self._pipes:
            os.close(write)
            os.set_blocking(read, False)
            self.open.add(read)

    def read(self, ready: Iterable[int]) -> None:
        """Everything waiting in the ``ready`` pipes, stdout and stderr before the records
        (a record is written after what was printed before it): shown and kept; a pipe
        at its end is closed."""
        for fd in sorted(self.open.intersection(ready), key=self.order.index):
            while (chunk := self._chunk(fd)) is not None:
                if not chunk:
                    self.open.discard(fd)
                    os.close(fd)
                    break
                console = self._consoles.get(fd)
                if console is not None:
                    with contextlib.suppress(OSError):  # the console went away: keep it
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(console, view) :]
                self.output.add(chunk)

    @staticmethod
    def _chunk(fd: int) -> bytes | None:
        """The next chunk (b"": end of file), or None when nothing is waiting."""
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """After the run: read what is left until every pipe ends (or ``seconds``, when a
        process the run left holds one), then close them."""
        ends = time.monotonic() + seconds
        waiting = select.poll()
        for fd in self.open:
            waiting.register(fd, select.POLLIN)
        while self.open and (left := ends - time.monotonic()) > 0:
            self.read(fd for fd, _ in waiting.poll(left * 1000))
        self.close()

    def abandon(self) -> None:
        """No run was started: every end is closed."""
        for read, write in self._pipes:
            for fd in (read, write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def close(self) -> None:
        for fd in self.open:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.open.clear()


class SentOutput(RunOutput):
    """The run's side: descriptors 1 and 2 pointed at crontabber's pipes, log records at
    INFO and above written, formatted, down the third; nothing kept here."""

    def __init__(self, pipes: tuple[int, int, int]) -> None:
        super().__init__(0, fds=True)
        self._pipes = pipes

    def _capture_fds(self) -> None:
        self._saved, self._streams, self._consoles = {}, [], {}
        _flush_std()
        for fd, pipe in zip((1, 2), self._pipes[:2], strict=True):
            try:
                self._saved[fd] = os.dup(fd)  # the console, for log handlers
            except OSError:
                continue
            os.dup2(pipe, fd)
            encoding = getattr(sys.stdout if fd == 1 else sys.stderr, "encoding", None)
            self._consoles[fd] = open(  # noqa: SIM115 - for log handlers; closed on exit
                self._saved[fd], "w", encoding=encoding, errors="backslashreplace", closefd=False
            )
        self._handlers_to_consoles()

    def _release_fds(self) -> None:
        for fd, saved in self._unhook().items():
            os.dup2(saved, fd)  # crontabber's pipes are the run's until it ends
            os.close(saved)

    def _add(self, data: bytes) -> None:
        """A record (or what the subprocess mixin read), in its place: crontabber reads the
        three pipes apart, so this waits (briefly) until it has read what was printed
        before, and then this."""
        _flush_std()
        _until_read(self._pipes[:2])
        view = memoryview(data)
        with contextlib.suppress(OSError):  # crontabber is gone: nobody keeps it
            while view:
                view = view[os.write(self._pipes[2], view) :]
        _until_read(self._pipes[2:])  # and before what is printed after it


def _until_read(fds: tuple[int, ...]) -> None:
    """Wait until crontabber has read what waits in the pipes of ``fds``, at most
    ORDER_WAIT (a crontabber that is frozen does not stop the job)."""
    ends = time.monotonic() + ORDER_WAIT
    while any(unread_bytes(fd) for fd in fds) and time.monotonic() < ends:
        time.sleep(0.0005)
