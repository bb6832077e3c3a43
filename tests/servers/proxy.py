"""A TCP forwarder on loopback that injects network faults between a client and a server.

:class:`LoopbackProxy` accepts and ends connections; :class:`FaultProxy` moves bytes (cuts,
refusing greetings, answering whole-line commands); ``tests/servers/imap_proxy.py`` reads IMAP.

Example::

    with FaultProxy(server.host, server.port) as proxy:
        proxy.cut_after_bytes = 10_000         # every connection dies after 10 kB downstream
        proxy.greet_next(2, BYE_TOO_MANY)      # the next two connections are refused
        proxy.answer_next(1, "UID FETCH", b"NO [THROTTLED] Slow down")  # the proxy answers one command
        ...  # point the client at proxy.host:proxy.port
"""

from __future__ import annotations

import abc
import contextlib
import re
import selectors
import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["BYE_TOO_MANY", "FaultProxy", "LoopbackProxy"]

#: Greeting of a server that refuses a connection because the user has too many.
BYE_TOO_MANY = b"* BYE [UNAVAILABLE] Too many simultaneous connections\r\n"

_CHUNK = 64 * 1024
_POLL_SECONDS = 0.05
_JOIN_SECONDS = 10.0


class LoopbackProxy(abc.ABC):
    """Accept TCP connections on loopback and hand each one, with its own connection to a
    target, to :meth:`_pump` in a thread of its own.

    The base of :class:`FaultProxy` (bytes) and :class:`tests.servers.imap_proxy.ImapQuirkProxy`
    (IMAP commands): both share the listener, the queued greetings, the counters of connections
    and cuts, and :meth:`stop`, which closes everything and waits for every thread.

    Attributes:
        host: ``"127.0.0.1"``.
        port: The proxy's port (free, picked by the kernel).
        target: ``(host, port)`` connections are forwarded to.
    """

    host = "127.0.0.1"

    #: Prefix of the proxy's thread names.
    thread_name = "loopback-proxy"

    def __init__(self, target_host: str, target_port: int) -> None:
        """Listen on a free loopback port; forwarding starts right away.

        Args:
            target_host: Where connections are forwarded to.
            target_port: Target port.
        """
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._greetings: list[bytes] = []
        self._accepted = 0
        self._greeted = 0
        self._cuts = 0
        self._live: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._listener = socket.create_server((self.host, 0))
        self.port = int(self._listener.getsockname()[1])
        # Daemon threads: a proxy a failing test never stopped cannot keep the test run from
        # ending (stop() still joins every thread).
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"{self.thread_name}-accept", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- shared faults and counters

    def greet_next(self, count: int, line: bytes = BYE_TOO_MANY) -> None:
        """Answer the next ``count`` new connections with ``line`` and close them.

        Args:
            count: How many connections, in addition to those already queued.
            line: The bytes sent (e.g. an IMAP ``* BYE`` greeting ending in CRLF).
        """
        with self._lock:
            self._greetings.extend([line] * count)

    @property
    def connections(self) -> int:
        """Connections accepted so far, greeted ones included."""
        with self._lock:
            return self._accepted

    @property
    def greeted(self) -> int:
        """Connections answered by the proxy itself (:meth:`greet_next`)."""
        with self._lock:
            return self._greeted

    @property
    def cuts(self) -> int:
        """Connections the proxy closed on purpose (a byte limit was reached)."""
        with self._lock:
            return self._cuts

    @property
    def active(self) -> int:
        """Connections being forwarded right now."""
        with self._lock:
            return len(self._live) // 2

    def _count_cut(self) -> None:
        """Count one connection closed on purpose."""
        with self._lock:
            self._cuts += 1

    # ----------------------------------------------------------------- life cycle

    def stop(self) -> None:
        """Close the listener and every connection, and wait for all threads to end.

        Raises:
            RuntimeError: A thread did not end in time (a bug in the proxy).
        """
        self._stopping.set()
        self._acceptor.join(_JOIN_SECONDS)
        with self._lock:
            for sock in self._live:
                _shutdown(sock)
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_SECONDS)
        self._listener.close()
        alive = [t.name for t in [self._acceptor, *threads] if t.is_alive()]
        if alive:
            raise RuntimeError(f"{self.thread_name} threads did not stop: {alive}")

    def _accept_loop(self) -> None:
        """Accept connections until stopped (the listener is polled, so stop() is prompt)."""
        self._listener.settimeout(_POLL_SECONDS)
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._accepted += 1
                number = self._accepted
                greeting = self._greetings.pop(0) if self._greetings else None
                if greeting is not None:
                    self._greeted += 1
            if greeting is not None:
                _say_and_close(client, greeting)
                continue
            thread = threading.Thread(
                target=self._serve, args=(client,), name=f"{self.thread_name}-{number}", daemon=True
            )
            with self._lock:
                self._threads = {t for t in self._threads if t.is_alive()}
                self._threads.add(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        """Forward one connection both ways until either side closes or a fault cuts it."""
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            # Forward small writes at once: with Nagle's algorithm, a second small write waits
            # for the peer's delayed ACK (40 ms a round trip on Linux).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with client, upstream, selectors.DefaultSelector() as selector:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._live |= {client, upstream}
            try:
                self._pump(client, upstream, selector)
            except OSError:
                pass  # a reset or a shutdown from stop(): the connection is over either way
            finally:
                with self._lock:
                    self._live -= {client, upstream}

    @abc.abstractmethod
    def _pump(
        self, client: socket.socket, upstream: socket.socket, selector: selectors.BaseSelector
    ) -> None:
        """Forward one connection until it ends or is cut (each kind of proxy says how)."""


class FaultProxy(LoopbackProxy):
    """Forward TCP connections from ``host:port`` to a target, with faults on demand.

    One thread accepts; each connection gets one thread that moves at most 64 KiB at a time in
    either direction, so memory and threads are bounded by the live connections. All of them
    end in :meth:`stop`.

    Attributes:
        cut_after_bytes: When set, every connection (live ones too) is closed as soon as that
            many bytes went from server to client over it; None forwards everything.
    """

    thread_name = "fault-proxy"

    def __init__(self, target_host: str, target_port: int) -> None:
        """Listen on a free loopback port; forwarding starts right away.

        Args:
            target_host: Where connections are forwarded to.
            target_port: Target port.
        """
        self.cut_after_bytes: int | None = None
        self._answers: list[tuple[re.Pattern[bytes], bytes]] = []
        self._answered = 0
        super().__init__(target_host, target_port)

    def answer_next(self, count: int, command: str, answer: bytes) -> None:
        """Answer the next ``count`` client commands named ``command`` with ``answer`` instead of
        forwarding them (the server never sees them; the connection stays up).

        Only commands that arrive as one whole line are recognised, which is how IMAP clients
        send commands without literals (``FETCH``, ``SELECT``, ``STATUS``, ...).

        Args:
            count: How many such commands, in addition to those already queued.
            command: The command name, e.g. ``"UID FETCH"`` (matched case-insensitively).
            answer: The tagged answer after the tag, e.g. ``b"NO [THROTTLED] ..."`` (no CRLF).
        """
        pattern = re.compile(rb"^(\S+) " + re.escape(command.encode()) + rb" [^\r\n]*\r\n\Z", re.IGNORECASE)
        with self._lock:
            self._answers.extend([(pattern, answer)] * count)

    @property
    def answered(self) -> int:
        """Commands answered by the proxy itself (:meth:`answer_next`)."""
        with self._lock:
            return self._answered

    def _pump(
        self, client: socket.socket, upstream: socket.socket, selector: selectors.BaseSelector
    ) -> None:
        """Move bytes until end of stream on both sides, or a cut."""
        upstream.settimeout(None)
        peers = {client: upstream, upstream: client}
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        downstream_bytes = 0
        while peers:
            for key, _ in selector.select(_POLL_SECONDS):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(_CHUNK)
                sink = peers[source]
                if not data:
                    # Half-close: pass the end of stream on, keep the other direction open.
                    selector.unregister(source)
                    del peers[source]
                    sink.shutdown(socket.SHUT_WR)
                    continue
                if source is client:
                    answer = self._answer(data)
                    if answer is not None:
                        client.sendall(answer)
                    else:
                        sink.sendall(data)
                    continue
                limit = self.cut_after_bytes  # read once: another thread may change it
                if limit is not None:
                    data = data[: max(limit - downstream_bytes, 0)]
                downstream_bytes += len(data)
                sink.sendall(data)
                if limit is not None and downstream_bytes >= limit:
                    self._count_cut()
                    return
            if self._stopping.is_set():
                return

    def _answer(self, data: bytes) -> bytes | None:
        """The proxy's own answer to a client command queued by :meth:`answer_next`, if any."""
        with self._lock:
            if not self._answers:
                return None
            pattern, answer = self._answers[0]
            match = pattern.match(data)
            if match is None:
                return None
            self._answers.pop(0)
            self._answered += 1
        return match.group(1) + b" " + answer + b"\r\n"


def _say_and_close(sock: socket.socket, line: bytes) -> None:
    """Send a line on a fresh connection, then close it without reading anything."""
    with sock, contextlib.suppress(OSError):
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)


def _shutdown(sock: socket.socket) -> None:
    """Shut a socket down both ways (wakes the thread using it); ignore one already gone."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
