"""A TCP proxy on 127.0.0.1 that can stop forwarding without closing anything.

``FreezingProxy(target_port)`` forwards every connection to 127.0.0.1:target_port
from a thread. :meth:`freeze` makes it stop reading from every socket, new ones
included: the connections stay open and the kernel still acknowledges what is
sent (as a silent network partition or a hung proxy looks to its clients), but
nothing arrives at either end. :meth:`thaw` forwards what was held, and goes on.
"""

from __future__ import annotations

import selectors
import socket
import threading


class FreezingProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.url_netloc = f"127.0.0.1:{self.port}"
        self._frozen = threading.Event()
        self._stop = threading.Event()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._loop, name="freezing-proxy", daemon=True)
        self._thread.start()

    def freeze(self) -> None:
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [self.listener, *self._peers]:
            sock.close()

    def __enter__(self) -> FreezingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._frozen.is_set():  # read nothing, accept nothing: all waits in the kernel
                self._stop.wait(0.05)
                continue
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self.listener:
                    self._accept()
                else:
                    self._forward(sock)

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        upstream = socket.create_connection(self.target)
        for one, other in ((client, upstream), (upstream, client)):
            one.setblocking(True)
            self._peers[one] = other
            self._selector.register(one, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        other = self._peers.get(sock)
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if data and other is not None:
            try:
                other.sendall(data)
                return
            except OSError:
                pass
        for one in (sock, other):  # closed at one end: close both
            if one is not None and one in self._peers:
                self._selector.unregister(one)
                del self._peers[one]
                one.close()
