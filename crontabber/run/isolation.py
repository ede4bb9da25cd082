"""Each run in a process of its own: forked from crontabber, in a session of its own.

:class:`RunProcess` forks the crontabber process (so the job's modules and its
configuration are already imported: no new interpreter) and runs the job in the
child, which calls ``setsid()``: the run and everything it starts form a process
group and a session of their own. The child is a *subreaper* (Linux), so a process
the job starts that leaves its group is still found among the child's descendants.
The child talks to crontabber over a socket pair (a backfill job's dates, each
recorded by crontabber before the next one runs; the run's result, its error
described); what it prints and logs comes by :mod:`crontabber.run.relay`.

crontabber stays the parent: it keeps the lease, sends the heartbeat, and reads
signals, ``max_runtime``, a cancel and a lost lease as before. When any of those
stops the run, it sends SIGTERM to the run's group (the job sees
:class:`~crontabber.errors.Terminated`, so its ``finally`` blocks run), waits up to
:data:`KILL_GRACE` seconds for its result, then SIGKILLs the group and whatever of
the run is left. A child always ends its descendants before it exits; one that
ends without a result (``os._exit``, a signal, the OOM killer) is recorded as
that run's failure, in one line, as is a fork the job made that returned into
crontabber. When crontabber itself dies, the child is sent SIGTERM (Linux's
parent-death signal) and ends its descendants.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import mmap
import os
import pickle
import select
import signal
import socket
import struct
import time
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

from crontabber.errors import LeaseLost, RunProcessEnded, Terminated

TYPE_CHECKING = False  # typing is for type checkers
if TYPE_CHECKING:
    from crontabber.run.relay import Relay

log = logging.getLogger("crontabber")

KILL_GRACE = 2.0  # seconds a stopped run has to end (and say what it printed) before SIGKILL
LEASE_LOOK = 0.1  # seconds between looks at the lease: crontabber shares it, the child heeds it
KILL_MARGIN = 0.2  # seconds before its lease lapses that a run still going is killed
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
PARENT_ENV = "CRONTABBER_PARENT_PID"  # set for a worker daemon: it ends with its parent
_HEADER = struct.Struct("!I")
_LEASE = struct.Struct("dd")  # renew deadline, lapse (time.monotonic())
_libc: Any = None
_subreaper = False  # whether this process adopts what its runs leave behind


def prctl(option: int, value: int) -> bool:
    """Linux's ``prctl(option, value)``; whether it took (False elsewhere)."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.prctl  # noqa: B018 - raises AttributeError where there is none
        except (OSError, AttributeError):
            _libc = False
    return bool(_libc) and _libc.prctl(option, value, 0, 0, 0) == 0


def become_subreaper() -> bool:
    """Make this process adopt its descendants whose parents end (Linux): so what a
    run's processes leave behind is this process's to end, not PID 1's."""
    global _subreaper
    if not _subreaper:
        _subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1)
    return _subreaper


def end_with_parent() -> None:
    """In a worker daemon (:data:`PARENT_ENV` set): be sent SIGTERM when the daemon that
    started it ends (Linux), or stop now if it already has."""
    expected = os.environ.pop(PARENT_ENV, "")
    if expected.isdigit():
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != int(expected):
            os.kill(os.getpid(), signal.SIGTERM)


def children(pid: int | str = "self") -> list[int]:
    """The children of ``pid`` (Linux's /proc; none elsewhere)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(child) for child in f.read().split())
    return found


def end_descendants(pid: int | str = "self") -> int:
    """SIGKILL every descendant of ``pid``, deepest last seen first; how many."""
    ended = 0
    for _ in range(10):  # those whose parents end are adopted: look again
        tree, todo = [], children(pid)
        while todo:
            child = todo.pop()
            tree.append(child)
            todo.extend(children(child))
        if not tree:
            break
        for child in reversed(tree):
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        ended += len(tree)
        for child in children(pid):  # ours to reap (the others are their parents')
            with contextlib.suppress(OSError):
                os.waitpid(child, 0)
    return ended


def end_strays() -> int:
    """End this process's children that are in another session: what a run left
    behind and this process (a subreaper) adopted. Its own workers share its session."""
    if not _subreaper:
        return 0
    session, strays = os.getsid(0), []
    for child in children():
        with contextlib.suppress(OSError):
            if os.getsid(child) != session:
                strays.append(child)
    for child in strays:
        with contextlib.suppress(OSError):
            os.killpg(child, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(child, 0)
    if strays:
        log.warning("ended %d process(es) a run left behind", len(strays))
    return len(strays)


class Channel:
    """Length-prefixed pickles over one end of a socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pipes: tuple[int, int, int] | None = None  # the run's output pipes (relay)

    def send(self, message: object) -> None:
        data = pickle.dumps(message)
        self.sock.sendall(_HEADER.pack(len(data)) + data)

    def receive(self) -> Any:
        """The next message; None at end of file."""
        header = self._exactly(_HEADER.size)
        if header is None:
            return None
        data = self._exactly(_HEADER.unpack(header)[0])
        return None if data is None else pickle.loads(data)

    def _exactly(self, size: int) -> bytes | None:
        chunks, left = [], size
        while left:
            chunk = self.sock.recv(min(left, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


Work = Callable[[Channel], object]


class RunProcess:
    """One run in a child process. ``start()``, then ``converse()`` (interruptible: a
    signal handler that raises ends it), then ``end(stop=...)``; ``result`` is the
    child's ``(value, error, output)``, or None when it ended without one."""

    def __init__(
        self,
        work: Work,
        on_request: Callable[[Any], object],
        lease: Callable[[], tuple[float, float] | None] | None = None,
        relay: Relay | None = None,
    ) -> None:
        self.relay = relay  # the run's output, read here (None: the run keeps its own)
        self.work = work
        self.on_request = on_request  # answers a child's ("ask", ...) message
        self.lease = lease  # the claim's (renew deadline, lapse), kept in self._shared
        self.result: tuple[object, dict[str, str] | None, str] | None = None
        self.forked: list[int] = []  # processes the job forked that returned into crontabber
        self.pid = 0
        self._channel: Channel | None = None
        self._shared = mmap.mmap(-1, _LEASE.size)  # shared with the child: its lease

    def _share_lease(self) -> bool:
        held = self.lease() if self.lease is not None else None
        if held is not None:
            self._shared[:] = _LEASE.pack(*held)
        return held is not None

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        parent = os.getpid()
        leased = self._share_lease()
        try:
            self._fork(ours, theirs, parent, leased)
        except BaseException:
            ours.close()
            theirs.close()
            self._shared.close()
            if self.relay is not None:
                self.relay.abandon()
            raise

    def _fork(self, ours: socket.socket, theirs: socket.socket, parent: int, leased: bool) -> None:
        with warnings.catch_warnings():  # 3.12+: forking with threads; the child uses none
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            # The child's collections leave crontabber's objects (and their pages) alone.
            # Frozen here, not before the fork: frozen in crontabber, what a run left young
            # would move to the oldest generation at every run, and its cycles stay.
            gc.freeze()
            ours.close()
            channel = Channel(theirs)
            channel.pipes = self.relay.write_ends() if self.relay is not None else None
            _child(channel, parent, self.work, self._shared if leased else None)
        theirs.close()
        if self.relay is not None:
            self.relay.forked()
        self.pid, self._channel = pid, Channel(ours)

    def converse(self, until: float | None = None) -> None:
        """Answer the child until it has said its result, or ended (or ``until``, a
        ``time.monotonic()``); meanwhile, tell it of each renewal of its lease."""
        assert self._channel is not None
        waiting, sock = select.poll(), self._channel.sock.fileno()
        for fd in (sock, *(self.relay.open if self.relay is not None else ())):
            waiting.register(fd, select.POLLIN)
        shared = time.monotonic()
        while until is None or time.monotonic() < until:
            ready = [fd for fd, _ in waiting.poll(LEASE_LOOK * 1000)]
            if time.monotonic() - shared >= LEASE_LOOK or not ready:
                shared = time.monotonic()
                self._share_lease()
            if self.relay is not None:
                self.relay.read(ready)  # before a result: it was written after them
                for fd in set(ready) - self.relay.open - {sock}:
                    waiting.unregister(fd)
            if sock not in ready:
                continue
            message = self._channel.receive()
            if message is None:
                return
            kind, body = message
            if kind == "ask":
                self._channel.send(self.on_request(body))
            elif kind == "forked":
                self.forked.append(body)
            elif kind == "result":
                self.result = body

    def end(self, *, stop: bool) -> RunProcessEnded | None:
        """Wait for the child (``stop``: SIGTERM its group first, SIGKILL after
        KILL_GRACE), end what is left of the run; what went wrong, if anything."""
        assert self._channel is not None
        if stop:
            _signal_group(self.pid, signal.SIGTERM)
            self._channel.sock.settimeout(KILL_GRACE)
            with contextlib.suppress(Exception):  # a frame cut by the stop reads as garbage
                self.converse(until=time.monotonic() + KILL_GRACE)
            _signal_group(self.pid, signal.SIGKILL)
        self._channel.sock.close()
        status = _wait(self.pid)
        self._shared.close()
        _signal_group(self.pid, signal.SIGKILL)  # what the run left in its group
        if self.relay is not None:
            self.relay.drain()
        if self.forked:
            return RunProcessEnded(
                f"the job forked, and process {self.forked[0]} returned into crontabber: "
                "it was ended (a forked process must end with os._exit)"
            )
        if self.result is not None or stop:
            return None
        return RunProcessEnded(f"the run's process {_ended_how(status)} before the job returned")


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signum)


def _wait(pid: int) -> int:
    try:
        return os.waitpid(pid, 0)[1]  # PEP 475: retried through signals that do not raise
    except ChildProcessError:
        return 0


def _ended_how(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
        hint = " (the OOM killer, or kill -9?)" if signum == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"exited with status {code} (os._exit?)"


def _terminated(signum: int, _frame: object) -> None:
    signal.signal(signum, signal.SIG_IGN)  # once: the job's finally blocks run undisturbed
    raise Terminated(f"terminated by {signal.Signals(signum).name}")


class _LeaseWatch:
    """The child's hold on its lease, through SIGALRM (no thread: a run costs none).

    A one-shot timer is armed for when the job must stop, halfway from the renew
    deadline crontabber last shared to the lapse (a renewal sent before its deadline
    may still be answered, and counts); when it fires, the deadlines are read again,
    and if none was renewed the job is interrupted with LeaseLost, and the timer armed
    for just before the lapse, when the run and all it started are killed. So a run
    never outlives a lease its parent, frozen or cut off, could not renew: another
    host may take the claim then. (A job stuck in C code that holds the interpreter
    hears it when it returns.)"""

    def __init__(self, shared: mmap.mmap) -> None:
        self.shared = shared
        self.fired = False

    def start(self) -> None:
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.siginterrupt(signal.SIGALRM, False)  # the job's system calls go on
        self._arm(time.monotonic())

    def _arm(self, now: float) -> None:
        renew_by, lapses = _LEASE.unpack(self.shared[:])
        when = lapses - KILL_MARGIN if self.fired else renew_by + (lapses - renew_by) / 2
        signal.setitimer(signal.ITIMER_REAL, max(when - now, 0.01))

    def _on_alarm(self, _signum: int, _frame: object) -> None:
        renew_by, lapses = _LEASE.unpack(self.shared[:])
        now = time.monotonic()
        if now >= lapses - KILL_MARGIN:
            end_descendants()
            os.killpg(0, signal.SIGKILL)
        if not self.fired and now >= renew_by + (lapses - renew_by) / 2:
            self.fired = True
            self._arm(now)
            raise LeaseLost(
                "it was not renewed in time (crontabber stopped, frozen or cut off), "
                "so the run stopped itself"
            )
        self._arm(now)


def _child(channel: Channel, parent: int, work: Work, shared: mmap.mmap | None) -> NoReturn:
    """The child's life: a session of its own, the work, its result, and nothing left."""
    me, code = os.getpid(), 0
    try:
        os.setsid()
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGALRM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # crontabber says when to stop
        signal.signal(signal.SIGTERM, _terminated)
        if os.getppid() != parent:  # crontabber died before the line above
            os._exit(143)
        if shared is not None:
            _LeaseWatch(shared).start()
        result = work(channel)
        if os.getpid() != me:
            _returned_fork(channel)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGALRM})
        end_descendants()
        channel.send(("result", result))
    except BaseException:
        if os.getpid() != me:
            _returned_fork(channel)
        code = 70
    os._exit(code)


def _returned_fork(channel: Channel) -> NoReturn:
    with contextlib.suppress(BaseException):
        channel.send(("forked", os.getpid()))
    os._exit(70)
