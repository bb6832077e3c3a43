r"""A loopback proxy that reads IMAP and changes what passes: the quirks of other servers and faults.

:class:`ImapQuirkProxy` sits between a client and a real IMAP server (Dovecot, Cyrus) on plain
IMAP. It reads the client's bytes as whole commands (lines and their ``{n}``/``{n+}`` literals) and
the server's as responses (lines, with literals streamed through), so it can hide capabilities and
their traces, alter appended messages, refuse APPENDs, and cut or stall connections at chosen byte
counts.

Example::

    with ImapQuirkProxy(server.host, server.port) as proxy:
        proxy.strip_capabilities = {"UIDPLUS", "MULTIAPPEND"}   # no APPENDUID, one message per APPEND
        proxy.add_trailing_crlf = True                          # as an mbox store does
        proxy.refuse_append(lambda m: b"Subject: bad" in m, times=1)  # refused once, accepted later
        proxy.cut_every(500_000, 2_000_000, seed=7)             # each connection dies after 0.5-2 MB
        ...  # point the client at proxy.host:proxy.port, then assert on proxy.appends, proxy.cuts...

What stripping a capability does (names are case-insensitive; ``NAME`` also strips ``NAME=...``):

- every name: removed from ``* CAPABILITY`` data and ``[CAPABILITY ...]`` codes (greeting,
  LOGIN/AUTHENTICATE answers), from ``* ENABLED`` data, and from the arguments of ``ENABLE``
  (an ENABLE left with nothing is answered by the proxy: ``* ENABLED`` and OK);
- ``UIDPLUS``: ``[APPENDUID ...]`` and ``[COPYUID ...]`` codes are removed from every status
  response (the command's outcome is unchanged); ``UID EXPUNGE`` is answered BAD;
- ``LITERAL+``: a command with a non-synchronizing literal ``{n+}`` is answered BAD (clients
  must wait for ``+``; the proxy gives the ``+`` for every synchronizing literal itself);
- ``MULTIAPPEND``: an APPEND with more than one message is answered BAD, nothing stored;
- ``CONDSTORE`` (also strips ``QRESYNC``, which implies it): SELECT, EXAMINE, FETCH, STORE,
  SEARCH and STATUS (UID forms too) naming CONDSTORE, QRESYNC, MODSEQ, CHANGEDSINCE,
  UNCHANGEDSINCE or HIGHESTMODSEQ outside quoted strings are answered BAD;
- ``SPECIAL-USE`` (also strips ``CREATE-SPECIAL-USE``): the attributes ``\All \Archive \Drafts
  \Flagged \Junk \Sent \Trash`` are removed from ``* LIST``/``* LSUB`` data; a LIST naming
  SPECIAL-USE (selection or return option) and a CREATE with a ``USE`` list are answered BAD.

``STARTTLS`` and ``COMPRESS`` are always stripped and their commands answered BAD: the proxy must
read the stream. A command answered by the proxy is never sent to the server, and its answer
reaches the client after the answers to the commands the client sent before it.

Requirement: the server offers LITERAL+ (Dovecot and Cyrus do), because every client literal
goes upstream as ``{n+}`` once the proxy holds the whole command.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import random
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Literal

from tests.servers.proxy import LoopbackProxy

__all__ = ["APPEND_TIME", "SPECIAL_USE_ATTRIBUTES", "Direction", "ImapQuirkProxy"]

#: ``replace_internaldate`` value: drop the APPEND's date, so the server stamps the time of APPEND.
APPEND_TIME = "append-time"

#: LIST attributes of RFC 6154 removed when SPECIAL-USE is stripped (upper case).
SPECIAL_USE_ATTRIBUTES = frozenset(
    {b"\\ALL", b"\\ARCHIVE", b"\\DRAFTS", b"\\FLAGGED", b"\\JUNK", b"\\SENT", b"\\TRASH"}
)

#: Which bytes a cut counts: both ways, client to server only, or server to client only.
Direction = Literal["both", "to_server", "to_client"]

#: Capabilities the proxy never lets through: after them the stream is no longer plain IMAP.
_ALWAYS_STRIPPED = frozenset({"STARTTLS", "COMPRESS"})

#: Capabilities that go with a stripped one (a server cannot offer them without it).
_IMPLIED = {"CONDSTORE": {"QRESYNC"}, "SPECIAL-USE": {"CREATE-SPECIAL-USE"}}

_CONDSTORE_COMMANDS = frozenset(
    {"SELECT", "EXAMINE", "FETCH", "UID FETCH", "STORE", "UID STORE", "SEARCH", "UID SEARCH", "STATUS"}
)
_CONDSTORE_SYNTAX = re.compile(
    rb"\b(?:CONDSTORE|QRESYNC|MODSEQ|CHANGEDSINCE|UNCHANGEDSINCE|HIGHESTMODSEQ)\b", re.IGNORECASE
)
_SPECIAL_USE_OPTION = re.compile(rb"\bSPECIAL-USE\b", re.IGNORECASE)
_CREATE_USE = re.compile(rb"\(\s*USE\s*\(", re.IGNORECASE)
_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')

_CLIENT_LITERAL = re.compile(rb"\{(\d{1,10})(\+?)\}\r\n\Z")
_SERVER_LITERAL = re.compile(rb"\{(\d{1,10})\}\r\n\Z")
_STATUS_WITH_CODE = re.compile(rb"\S+ (?:OK|NO|BAD|BYE|PREAUTH) \[", re.IGNORECASE)
_CAPABILITY_DATA = re.compile(rb"(\* CAPABILITY)([^\r\n]*)\r\n\Z", re.IGNORECASE)
_ENABLED_DATA = re.compile(rb"(\* ENABLED)([^\r\n]*)\r\n\Z", re.IGNORECASE)
_CAPABILITY_CODE = re.compile(rb"\[(CAPABILITY)((?: [^\]\r\n]*)?)\]", re.IGNORECASE)
_UIDPLUS_CODE = re.compile(rb"\[(?:APPENDUID|COPYUID) [^\]\r\n]*\] ?", re.IGNORECASE)
_LIST_DATA = re.compile(rb"(\* (?:LIST|LSUB) \()([^)]*)(\))", re.IGNORECASE)
_IMAP_DATE = re.compile(rb'"[ 0-9]?\d-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}"')
_BARE_LF = re.compile(rb"(?<!\r)\n")
_MUNGE_8BIT = bytes(range(0x80)) + b"X" * 0x80
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_CHUNK = 64 * 1024
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only
_POLL_SECONDS = 0.05
_CONTINUE = b"+ Ready for literal data\r\n"


@dataclasses.dataclass
class _Refusal:
    """One :meth:`ImapQuirkProxy.refuse_append` rule."""

    predicate: Callable[[bytes], bool]
    remaining: int | None
    answer: bytes


@dataclasses.dataclass
class _Command:
    """A client command as received: ``texts[i]`` precedes ``literals[i]``; one more text ends it.

    Texts carry neither their CRLF nor the literal's ``{n}``/``{n+}`` announcement.
    """

    texts: list[bytes] = dataclasses.field(default_factory=list)
    literals: list[bytearray] = dataclasses.field(default_factory=list)
    nonsync: list[bool] = dataclasses.field(default_factory=list)
    size: int = 0

    def wire(self) -> bytes:
        """The command as sent upstream: every literal non-synchronizing."""
        parts: list[bytes] = []
        for text, literal in zip(self.texts, self.literals, strict=False):
            parts += [text, b"{%d+}\r\n" % len(literal), bytes(literal)]
        parts += [self.texts[-1], b"\r\n"]
        return b"".join(parts)

    def plain_text(self) -> bytes:
        """The texts without their quoted strings, joined (for keyword checks)."""
        return b" ".join(_QUOTED.sub(b'""', text) for text in self.texts)


@dataclasses.dataclass
class _Waiting:
    """A command sent upstream whose tagged answer has not come back yet."""

    tag: bytes
    answered: bool = False


class ImapQuirkProxy(LoopbackProxy):
    r"""Forward IMAP connections to a server, changing them as a quirky server or network would.

    Options are plain attributes, read at each use, so a test may change them at any time:

    Attributes:
        add_trailing_crlf: An appended message not ending in CRLF gets one (its size grows by 2).
        lf_to_crlf: Bare LFs of appended messages become CRLF.
        munge_header_8bit: Bytes >= 0x80 in an appended message's header become ``X`` (Cyrus).
        replace_internaldate: None keeps the APPEND's date; :data:`APPEND_TIME` removes it (the
            server stamps the time of the APPEND); a datetime replaces it or adds one (naive = UTC).
    """

    thread_name = "imap-quirk-proxy"

    def __init__(self, target_host: str, target_port: int) -> None:
        """Listen on a free loopback port; forwarding starts right away, changing nothing.

        Args:
            target_host: The IMAP server (plain IMAP, offering LITERAL+).
            target_port: Its port.
        """
        self.add_trailing_crlf = False
        self.lf_to_crlf = False
        self.munge_header_8bit = False
        self.replace_internaldate: datetime.datetime | Literal["append-time"] | None = None
        self._strip: frozenset[str] = frozenset()
        self._refusals: list[_Refusal] = []
        self._answers: list[tuple[str, bytes]] = []
        self._cut: tuple[int, int, Direction] | None = None
        self._cut_random = random.Random(0)
        self._stall: tuple[int, float] | None = None
        self._commands: collections.Counter[str] = collections.Counter()
        self._appends: list[tuple[int, int]] = []
        self._appended_messages = 0
        self._refused_appends = 0
        self._answered = 0
        self._altered: collections.Counter[str] = collections.Counter()
        self._cut_points: list[tuple[int, int]] = []
        self._stalls = 0
        self._sync_literals = 0
        self._nonsync_literals = 0
        super().__init__(target_host, target_port)

    # ----------------------------------------------------------------- options

    @property
    def strip_capabilities(self) -> frozenset[str]:
        """Capabilities hidden from the client (upper case); see the module docstring for what
        each one's absence implies. Assign any iterable of names to change them."""
        return self._strip

    @strip_capabilities.setter
    def strip_capabilities(self, names: Iterable[str]) -> None:
        self._strip = frozenset(name.upper() for name in names)

    def refuse_append(
        self,
        predicate: Callable[[bytes], bool],
        times: int | None = None,
        answer: bytes = b"NO [CANNOT] Message refused by the quirk proxy",
    ) -> None:
        """Answer ``answer`` to APPENDs carrying a message for which ``predicate`` is true.

        The whole command is refused and nothing of it reaches the server (for a MULTIAPPEND, as
        RFC 3502 wants: no message of it is stored). Rules are tried in the order they were added.

        Args:
            predicate: Called with each message's bytes as the client sent them.
            times: How many APPENDs this rule refuses before letting matching ones through;
                None refuses them forever.
            answer: The tagged answer after the tag, without CRLF.
        """
        with self._lock:
            self._refusals.append(_Refusal(predicate, times, answer))

    def answer_next(self, count: int, command: str, answer: bytes) -> None:
        """Answer the next ``count`` client commands named ``command`` with ``answer`` instead of
        forwarding them (the server never sees them; the connection stays up).

        Unlike :meth:`tests.servers.proxy.FaultProxy.answer_next`, commands with literals are
        recognised too.

        Args:
            count: How many such commands, in addition to those already queued.
            command: The command name, e.g. ``"UID FETCH"`` (matched case-insensitively).
            answer: The tagged answer after the tag, e.g. ``b"NO [THROTTLED] ..."`` (no CRLF).
        """
        with self._lock:
            self._answers.extend([(" ".join(command.upper().split()), answer)] * count)

    def cut_every(self, min_bytes: int, max_bytes: int, seed: int = 0, direction: Direction = "both") -> None:
        """Close each new connection once it has carried a random number of bytes.

        Each connection draws its limit from ``[min_bytes, max_bytes]`` with one RNG seeded
        here (so a run is repeatable); what it forwards up to the limit is delivered, then both
        sides are closed. Connections already open keep the limit they drew.

        Args:
            min_bytes: Smallest limit.
            max_bytes: Largest limit.
            seed: Seed of the RNG.
            direction: Which bytes count: ``"both"`` (read from client plus read from server),
                ``"to_server"`` or ``"to_client"``.
        """
        if not 0 <= min_bytes <= max_bytes:
            raise ValueError(f"cut range [{min_bytes}, {max_bytes}] is not a range of byte counts")
        with self._lock:
            self._cut = (min_bytes, max_bytes, direction)
            self._cut_random = random.Random(seed)

    def cut_after(self, n_bytes: int, direction: Direction = "to_client") -> None:
        """Close each new connection once ``n_bytes`` went in ``direction`` (a fixed cut_every)."""
        self.cut_every(n_bytes, n_bytes, direction=direction)

    def cut_never(self) -> None:
        """New connections are not cut any more."""
        with self._lock:
            self._cut = None

    def stall(self, after_bytes: int, seconds: float) -> None:
        """Once a connection carried ``after_bytes`` (both ways), forward nothing for ``seconds``.

        Each connection stalls once; open ones too if they have not stalled yet. During the
        stall nothing is read from either side (a client leaving is seen when it ends).

        Args:
            after_bytes: Bytes read from client plus server before the stall.
            seconds: Length of the silence.
        """
        with self._lock:
            self._stall = (after_bytes, seconds)

    def stall_never(self) -> None:
        """No connection stalls any more (one stalling now finishes its stall)."""
        with self._lock:
            self._stall = None

    # ----------------------------------------------------------------- counters

    @property
    def commands(self) -> collections.Counter[str]:
        """Client commands seen, by upper-case name (``"APPEND"``, ``"UID FETCH"``...), answered
        by the proxy or not."""
        with self._lock:
            return self._commands.copy()

    @property
    def appends(self) -> list[tuple[int, int]]:
        """Each complete APPEND received: (its bytes as the client sent them, its messages)."""
        with self._lock:
            return list(self._appends)

    @property
    def appended_messages(self) -> int:
        """Messages in the APPENDs forwarded to the server."""
        with self._lock:
            return self._appended_messages

    @property
    def refused_appends(self) -> int:
        """APPENDs refused by a :meth:`refuse_append` rule."""
        with self._lock:
            return self._refused_appends

    @property
    def answered(self) -> int:
        """Commands the proxy answered itself (refusals, BAD for stripped capabilities, ENABLE
        left empty, :meth:`answer_next`)."""
        with self._lock:
            return self._answered

    @property
    def altered(self) -> collections.Counter[str]:
        """Messages changed, by option name (``"add_trailing_crlf"``, ``"lf_to_crlf"``,
        ``"munge_header_8bit"``, ``"replace_internaldate"``)."""
        with self._lock:
            return self._altered.copy()

    @property
    def cut_points(self) -> list[tuple[int, int]]:
        """Each cut's (bytes read from the client, bytes read from the server) on its connection."""
        with self._lock:
            return list(self._cut_points)

    @property
    def stalls(self) -> int:
        """Connections that stalled."""
        with self._lock:
            return self._stalls

    @property
    def sync_literals(self) -> int:
        """Synchronizing literals ``{n}`` received from clients (each answered ``+`` by the proxy)."""
        with self._lock:
            return self._sync_literals

    @property
    def nonsync_literals(self) -> int:
        """Non-synchronizing literals ``{n+}`` received from clients."""
        with self._lock:
            return self._nonsync_literals

    # ----------------------------------------------------------------- what sessions ask

    def _effective_strip(self) -> frozenset[str]:
        """The stripped names with the always-stripped and the implied ones."""
        names = set(self._strip) | _ALWAYS_STRIPPED
        for name, implied in _IMPLIED.items():
            if name in names:
                names |= implied
        return frozenset(names)

    def _draw_cut(self) -> tuple[int, Direction] | None:
        """A new connection's cut: (limit, direction), or None."""
        with self._lock:
            if self._cut is None:
                return None
            low, high, direction = self._cut
            return self._cut_random.randint(low, high), direction

    def _take_answer(self, name: str) -> bytes | None:
        """The queued :meth:`answer_next` answer for a command of this name, if any."""
        with self._lock:
            for n, (command, answer) in enumerate(self._answers):
                if command == name:
                    del self._answers[n]
                    return answer
        return None

    def _refusal(self, messages: list[bytes]) -> bytes | None:
        """The answer of the first refusal rule matching one of the messages, consuming it."""
        with self._lock:
            rules = [rule for rule in self._refusals if rule.remaining != 0]
        for rule in rules:
            if any(rule.predicate(message) for message in messages):
                with self._lock:
                    if rule.remaining == 0:
                        continue
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    self._refused_appends += 1
                return rule.answer
        return None

    def _alter(self, message: bytes) -> tuple[bytes, list[str]]:
        """Apply the message alterations switched on; return the message and what changed."""
        changed: list[str] = []
        if self.lf_to_crlf:
            converted = _BARE_LF.sub(b"\r\n", message)
            if converted != message:
                message = converted
                changed.append("lf_to_crlf")
        if self.munge_header_8bit:
            end = _header_end(message)
            munged = message[:end].translate(_MUNGE_8BIT)
            if munged != message[:end]:
                message = munged + message[end:]
                changed.append("munge_header_8bit")
        if self.add_trailing_crlf and not message.endswith(b"\r\n"):
            message += b"\r\n"
            changed.append("add_trailing_crlf")
        return message, changed

    def _count(self, **amounts: int) -> None:
        """Add to integer counters by attribute name (without the underscore)."""
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, f"_{name}", getattr(self, f"_{name}") + amount)

    def _pump(
        self, client: socket.socket, upstream: socket.socket, selector: selectors.BaseSelector
    ) -> None:
        _Session(self, client, upstream).run(selector)


class _Session:
    """One proxied connection: the command assembler, the response editor, the byte meter."""

    def __init__(self, proxy: ImapQuirkProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        # client -> server
        self.client_buffer = bytearray()
        self.command: _Command | None = None
        self.literal_left = 0
        self.continuations = 0  # server "+" requests whose client line has not come yet
        # server -> client
        self.server_buffer = bytearray()
        self.server_literal_left = 0
        self.response_start = True
        self.response_tag: bytes | None = None
        self.order: collections.deque[_Waiting | bytes] = collections.deque()
        # faults
        self.cut = proxy._draw_cut()
        self.read = {"to_server": 0, "to_client": 0}
        self.stalled = False
        self.stall_seconds = 0.0
        self.held: tuple[socket.socket, bytes] | None = None
        self.continues_owed = 0  # "+" for client literals, sent when no response is half sent

    # ----------------------------------------------------------------- the loop

    def run(self, selector: selectors.BaseSelector) -> None:
        """Move data until both sides ended, a cut, or the proxy stops."""
        self.upstream.settimeout(None)
        peers = {self.client: self.upstream, self.upstream: self.client}
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        stopping = self.proxy._stopping
        while peers and not stopping.is_set():
            for key, _ in selector.select(_POLL_SECONDS):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(_CHUNK)
                if _QUICKACK is not None:
                    # The proxy holds a partial command without answering, so the kernel would
                    # delay its ACK, and a client that wrote the rest of the command separately
                    # (imaplib writes the CRLF alone) waits for that ACK: 40 ms a command.
                    source.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                if not data:
                    selector.unregister(source)
                    del peers[source]
                    self._end_of_stream(source)
                    continue
                event = self._take(source, data)
                if event == "cut":
                    return
                if event == "stall":
                    break
            while self.held is not None:
                if stopping.wait(self.stall_seconds):
                    return
                source, data = self.held
                self.held = None
                if self._take(source, data) == "cut":
                    return

    def _take(self, source: socket.socket, data: bytes) -> str | None:
        """Meter and forward bytes read from ``source``; tell whether a cut or a stall came."""
        direction = "to_server" if source is self.client else "to_client"
        size = len(data)
        event: str | None = None
        if self.cut is not None and self.cut[1] in ("both", direction):
            counted = sum(self.read.values()) if self.cut[1] == "both" else self.read[direction]
            left = max(self.cut[0] - counted, 0)
            if left <= size:
                size, event = left, "cut"
        stall = self.proxy._stall
        if stall is not None and not self.stalled:
            left = max(stall[0] - sum(self.read.values()), 0)
            if left < size or (left == size and event is None):
                size, event = left, "stall"
                self.stall_seconds = stall[1]
        self.read[direction] += size
        if source is self.client:
            self._from_client(data[:size])
        else:
            self._from_server(data[:size])
        if event == "cut":
            with self.proxy._lock:
                self.proxy._cuts += 1
                self.proxy._cut_points.append((self.read["to_server"], self.read["to_client"]))
        elif event == "stall":
            self.stalled = True
            self.held = (source, data[size:])
            self.proxy._count(stalls=1)
        return event

    def _end_of_stream(self, source: socket.socket) -> None:
        """Pass an end of stream on (a half-finished command or response line is dropped)."""
        sink = self.upstream if source is self.client else self.client
        sink.shutdown(socket.SHUT_WR)

    # ----------------------------------------------------------------- client -> server

    def _from_client(self, data: bytes) -> None:
        """Assemble commands from the client's bytes; handle each complete one."""
        buffer = self.client_buffer
        buffer += data
        while True:
            if self.literal_left:
                assert self.command is not None
                take = min(len(buffer), self.literal_left)
                if not take:
                    return
                self.command.literals[-1] += buffer[:take]
                del buffer[:take]
                self.literal_left -= take
                self.command.size += take
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                return
            line = bytes(buffer[: end + 2])
            del buffer[: end + 2]
            if self.command is None and self.continuations:
                # The answer to a server's "+" (AUTHENTICATE data, IDLE's DONE), not a command.
                self.continuations -= 1
                self.upstream.sendall(line)
                continue
            if self.command is None:
                self.command = _Command()
            self.command.size += len(line)
            match = _CLIENT_LITERAL.search(line)
            if match is None:
                self.command.texts.append(line[:-2])
                command, self.command = self.command, None
                self._handle(command)
                continue
            self.command.texts.append(line[: match.start()])
            self.command.literals.append(bytearray())
            nonsync = bool(match.group(2))
            self.command.nonsync.append(nonsync)
            self.literal_left = int(match.group(1))
            if nonsync:
                self.proxy._count(nonsync_literals=1)
            else:
                self.proxy._count(sync_literals=1)
                self.continues_owed += 1
                self._flush_if_between_responses()

    def _handle(self, command: _Command) -> None:
        """Forward a complete command, or answer it in the server's place."""
        tag, name = _tag_and_name(command.texts[0])
        if not name:
            self.upstream.sendall(command.wire())
            return
        with self.proxy._lock:
            self.proxy._commands[name] += 1
        answer = self._answer(command, tag, name)
        if answer is not None:
            self.proxy._count(answered=1)
            self.order.append(tag + b" " + answer + b"\r\n")
            self._flush_if_between_responses()
            return
        if tag:
            self.order.append(_Waiting(tag))
        self.upstream.sendall(command.wire())

    def _answer(self, command: _Command, tag: bytes, name: str) -> bytes | None:
        """The proxy's own answer (after the tag) to a command, or None to forward it.

        May change the command (ENABLE arguments, APPEND messages and dates) before it is sent.
        """
        strip = self.proxy._effective_strip()
        messages = _message_literals(command) if name == "APPEND" else []
        if name == "APPEND":
            with self.proxy._lock:
                self.proxy._appends.append((command.size, len(messages)))
        if name in _ALWAYS_STRIPPED:
            return b"BAD %s is not offered through the quirk proxy" % name.encode()
        answer = self.proxy._take_answer(name)
        if answer is not None:
            return answer
        if "LITERAL+" in strip and any(command.nonsync):
            return b"BAD Non-synchronizing literal, but LITERAL+ is not offered"
        if "UIDPLUS" in strip and name == "UID EXPUNGE":
            return b"BAD Unknown command UID EXPUNGE (no UIDPLUS)"
        if name == "ENABLE" and not command.literals:
            return self._enable(command, strip)
        if "CONDSTORE" in strip and name in _CONDSTORE_COMMANDS:
            if _CONDSTORE_SYNTAX.search(command.plain_text()):
                return b"BAD CONDSTORE is not offered"
        if "SPECIAL-USE" in strip:
            if name in ("LIST", "LSUB") and _SPECIAL_USE_OPTION.search(command.plain_text()):
                return b"BAD SPECIAL-USE is not offered"
            if name == "CREATE" and _CREATE_USE.search(command.plain_text()):
                return b"BAD CREATE-SPECIAL-USE is not offered"
        if name == "APPEND":
            return self._append(command, messages, strip)
        return None

    def _enable(self, command: _Command, strip: frozenset[str]) -> bytes | None:
        """Drop stripped names from ENABLE; answer it when none is left."""
        words = command.texts[0].split()
        kept = [word for word in words[2:] if not _is_stripped(word, strip)]
        if len(kept) == len(words) - 2:
            return None
        if not kept:
            self.order.append(b"* ENABLED\r\n")
            return b"OK Enabled"
        command.texts[0] = b" ".join(words[:2] + kept)
        return None

    def _append(
        self, command: _Command, messages: list[tuple[int, tuple[int, int] | None]], strip: frozenset[str]
    ) -> bytes | None:
        """Refuse an APPEND, or alter its messages and dates before it goes on.

        Args:
            command: The APPEND.
            messages: Its message literals and their dates (:func:`_message_literals`).
            strip: The capabilities hidden from the client.
        """
        if len(messages) > 1 and "MULTIAPPEND" in strip:
            return b"BAD APPEND of several messages, but MULTIAPPEND is not offered"
        refusal = self.proxy._refusal([bytes(command.literals[n]) for n, _ in messages])
        if refusal is not None:
            return refusal
        altered: collections.Counter[str] = collections.Counter()
        replacement = self.proxy.replace_internaldate
        for n, date in messages:
            message, changed = self.proxy._alter(bytes(command.literals[n]))
            command.literals[n] = bytearray(message)
            altered.update(changed)
            if replacement is not None:
                text, changed_date = _replace_date(command.texts[n], date, replacement)
                command.texts[n] = text
                if changed_date:
                    altered["replace_internaldate"] += 1
        with self.proxy._lock:
            self.proxy._altered.update(altered)
            self.proxy._appended_messages += len(messages)
        return None

    # ----------------------------------------------------------------- server -> client

    def _from_server(self, data: bytes) -> None:
        """Edit the server's response lines and stream its literals through to the client."""
        buffer = self.server_buffer
        buffer += data
        out: list[bytes] = []
        while True:
            if self.server_literal_left:
                take = min(len(buffer), self.server_literal_left)
                if not take:
                    break
                out.append(bytes(buffer[:take]))
                del buffer[:take]
                self.server_literal_left -= take
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(buffer[: end + 2])
            del buffer[: end + 2]
            if self.response_start:
                line = self._edit_response(line)
            out.append(line)
            match = _SERVER_LITERAL.search(line)
            if match is not None:
                self.server_literal_left = int(match.group(1))
                self.response_start = False
                continue
            self.response_start = True
            if self.response_tag is not None:
                self._answered(self.response_tag)
                self.response_tag = None
            out.append(self._ready_answers())
        if out:
            self.client.sendall(b"".join(out))

    def _edit_response(self, line: bytes) -> bytes:
        """Hide stripped capabilities and their traces in the first line of a response."""
        if line.startswith(b"+"):
            self.continuations += 1
            return line
        tag = line.split(b" ", 1)[0]
        if tag != b"*":
            self.response_tag = tag
        strip = self.proxy._effective_strip()
        for data in (_CAPABILITY_DATA, _ENABLED_DATA):
            match = data.match(line)
            if match is not None:
                return match.group(1) + _kept_names(match.group(2), strip) + b"\r\n"
        if "SPECIAL-USE" in strip:
            match = _LIST_DATA.match(line)
            if match is not None:
                attributes = [a for a in match.group(2).split() if a.upper() not in SPECIAL_USE_ATTRIBUTES]
                return match.group(1) + b" ".join(attributes) + match.group(3) + line[match.end() :]
        if _STATUS_WITH_CODE.match(line):
            line = _CAPABILITY_CODE.sub(lambda m: b"[" + m.group(1) + _kept_names(m.group(2), strip) + b"]", line)
            if "UIDPLUS" in strip:
                line = _UIDPLUS_CODE.sub(b"", line)
        return line

    # ----------------------------------------------------------------- answers in order

    def _answered(self, tag: bytes) -> None:
        """Mark the oldest forwarded command with this tag as answered by the server."""
        for item in self.order:
            if isinstance(item, _Waiting) and not item.answered and item.tag == tag:
                item.answered = True
                return

    def _ready_answers(self) -> bytes:
        """Take the "+" owed to the client and the proxy's answers whose earlier commands have
        all been answered."""
        ready = [_CONTINUE * self.continues_owed]
        self.continues_owed = 0
        while self.order:
            head = self.order[0]
            if isinstance(head, _Waiting) and not head.answered:
                break
            self.order.popleft()
            if isinstance(head, bytes):
                ready.append(head)
        return b"".join(ready)

    def _flush_if_between_responses(self) -> None:
        """Send ready answers now unless a server response is half sent."""
        if self.response_start and not self.server_literal_left:
            ready = self._ready_answers()
            if ready:
                self.client.sendall(ready)


# --------------------------------------------------------------------------- parsing helpers


def _tag_and_name(text: bytes) -> tuple[bytes, str]:
    """A command's tag and upper-case name (``UID`` joined to the next word); empty if absent."""
    words = text.split(None, 3)
    if len(words) < 2:
        return b"", ""
    name = words[1].upper()
    if name == b"UID" and len(words) > 2:
        name += b" " + words[2].upper()
    return words[0], name.decode("ascii", "replace")


def _is_stripped(word: bytes, strip: frozenset[str]) -> bool:
    """Whether a capability name is hidden (``NAME`` hides ``NAME=anything`` too)."""
    name = word.decode("ascii", "replace").upper()
    return name in strip or name.split("=", 1)[0] in strip


def _kept_names(names: bytes, strip: frozenset[str]) -> bytes:
    """A space-led list of capability names without the hidden ones."""
    return b"".join(b" " + word for word in names.split() if not _is_stripped(word, strip))


def _top_level(text: bytes, depth: int) -> tuple[list[tuple[int, int]], int]:
    """Spans of the items of ``text`` outside parentheses (a parenthesised list is one item),
    starting ``depth`` lists deep; and the depth at its end."""
    items: list[tuple[int, int]] = []
    start = 0
    i = 0
    while i < len(text):
        char = text[i : i + 1]
        if char == b" ":
            i += 1
        elif char == b'"':
            match = _QUOTED.match(text, i)
            end = match.end() if match else len(text)
            if depth == 0:
                items.append((i, end))
            i = end
        elif char == b"(":
            if depth == 0:
                start = i
            depth += 1
            i += 1
        elif char == b")":
            depth = max(depth - 1, 0)
            if depth == 0:
                items.append((start, i + 1))
            i += 1
        else:
            end = i
            while end < len(text) and text[end : end + 1] not in (b" ", b"(", b")", b'"'):
                end += 1
            if depth == 0:
                items.append((i, end))
            i = end
    return items, depth


def _message_literals(command: _Command) -> list[tuple[int, tuple[int, int] | None]]:
    """An APPEND's messages: (literal index, span of its date in the text before it, if any).

    Messages are the literals outside parentheses after the mailbox name (which may be a
    literal too); CATENATE parts and UTF8 ``(~{n})`` forms are not counted as messages.
    """
    messages: list[tuple[int, tuple[int, int] | None]] = []
    depth = 0
    have_mailbox = False
    for n, text in enumerate(command.texts[: len(command.literals)]):
        items, depth_after = _top_level(text, depth)
        if n == 0:
            items = items[2:]  # tag, APPEND
        if items and not have_mailbox:
            have_mailbox = True
            items = items[1:]
        if depth_after == 0:
            if not have_mailbox:
                have_mailbox = True  # this literal is the mailbox name
            else:
                date = items[-1] if items and _IMAP_DATE.fullmatch(text, *items[-1]) else None
                messages.append((n, date))
        depth = depth_after
    return messages


def _replace_date(
    text: bytes, date: tuple[int, int] | None, replacement: datetime.datetime | str
) -> tuple[bytes, bool]:
    """The text before an APPEND message with its date removed or replaced; whether it changed."""
    if not isinstance(replacement, datetime.datetime):
        if date is None:
            return text, False
        start, end = date
        return text[:start] + text[end:].removeprefix(b" "), True
    new = _imap_date(replacement)
    if date is None:
        return text + (b"" if text.endswith(b" ") else b" ") + new + b" ", True
    start, end = date
    return text[:start] + new + text[end:], text[start:end] != new


def _imap_date(value: datetime.datetime) -> bytes:
    """A quoted IMAP date-time (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    offset = value.utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return (
        f'"{value.day:02d}-{_MONTHS[value.month - 1]}-{value.year:04d} '
        f'{value.hour:02d}:{value.minute:02d}:{value.second:02d} {sign}{hours:02d}{minutes:02d}"'
    ).encode("ascii")


def _header_end(message: bytes) -> int:
    """Where a message's header section ends (after its empty line), or its length."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := message.find(sep)) >= 0]
    return min(ends) if ends else len(message)
