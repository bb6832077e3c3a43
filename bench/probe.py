"""The raw limit probe: what the two servers allow, measured with a minimal IMAP client.

No library, no parsing beyond finding literals and the tagged answer, no state: the figures
are what any client could reach on this machine, the ceiling ``mailshift sync`` is held to.

* **FETCH** (source): per user one connection; every folder is EXAMINEd, its UIDs and sizes
  read with one ``UID FETCH 1:* (RFC822.SIZE)``, then the bodies are fetched with
  ``UID FETCH <set> BODY.PEEK[]`` in the engine's chunks (at most
  :data:`engine.defaults.APPEND_CHUNK_BYTES` bytes or :data:`engine.defaults.APPEND_CHUNK_MESSAGES`
  messages; a bigger message alone). Bodies are read into memory and dropped.
* **MULTIAPPEND** (target): per user one connection to a scratch user of the target; the very
  bodies of the corpus, read from the source Maildir files (not fetched), are appended with
  their flags and internal dates, one ``APPEND`` with several literals (LITERAL+) per chunk,
  chunked as above, so one chunk is one transaction (one fsync) as in the engine.
* **COPY** (both, for reference): per user one connection to each server; flags and dates
  from one ``UID FETCH 1:* (RFC822.SIZE FLAGS INTERNALDATE)`` per folder, then one thread
  fetches chunk n+1 while the other appends chunk n: the pipeline a copying client needs, with
  nothing else. On a small machine it is slower than the smaller of the two rates above,
  because both servers and the client then compete for the same CPUs.

Users run in separate processes (:class:`Workers`), ``parallel`` at a time. A phase's rate is
its total messages and bytes over its wall time, from the first connection to the last logout.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import re
import resource
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from engine import defaults

__all__ = [
    "AppendJob",
    "CopyJob",
    "FetchJob",
    "PhaseResult",
    "ProbeError",
    "RawImap",
    "UserResult",
    "Workers",
    "append_user",
    "other_cpu",
    "chunked",
    "copy_user",
    "fetch_user",
]

T = TypeVar("T")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class ProbeError(RuntimeError):
    """The server refused a probe command (the probe is then not a valid limit)."""


class RawImap:
    """One IMAP connection spoken by hand: send a command, skip to its tagged answer."""

    def __init__(self, host: str, port: int, security: str = "None", timeout: float = 600.0) -> None:
        """Connect (implicit TLS for ``Ssl``, STARTTLS for ``Tls``) and read the greeting."""
        self._tag = 0
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if security == "Ssl":
            sock = context.wrap_socket(sock, server_hostname=host)
        self._sock = sock
        self._file = sock.makefile("rb", buffering=1024 * 1024)
        self.readline()
        if security == "Tls":
            self.command(b"STARTTLS")
            self._sock = context.wrap_socket(self._sock, server_hostname=host)
            self._file = self._sock.makefile("rb", buffering=1024 * 1024)
        self.capabilities = b" ".join(self.command(b"CAPABILITY")).upper().split()

    def readline(self) -> bytes:
        line = self._file.readline()
        if not line:
            raise ProbeError("the server closed the connection")
        return line

    def _next_tag(self) -> bytes:
        self._tag += 1
        return b"P%d" % self._tag

    def _answer(self, tag: bytes, on_literal: Callable[[bytes], None] | None = None) -> list[bytes]:
        """Read until the tagged answer; literals go to ``on_literal``; return the untagged lines."""
        lines: list[bytes] = []
        while True:
            line = self.readline()
            while True:
                match = _LITERAL.search(line)
                if not match:
                    break
                data = self._file.read(int(match.group(1)))
                if on_literal is not None:
                    on_literal(data)
                line = line[: match.start()] + b"{}" + self.readline()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise ProbeError(line.decode("utf-8", "replace").strip())
                return lines
            lines.append(line)

    def command(self, text: bytes, on_literal: Callable[[bytes], None] | None = None) -> list[bytes]:
        """Send one command line; return the untagged lines of its answer (OK only)."""
        tag = self._next_tag()
        self._sock.sendall(tag + b" " + text + b"\r\n")
        return self._answer(tag, on_literal)

    def login(self, user: str, password: str) -> None:
        self.command(b"LOGIN " + quote(user) + b" " + quote(password))
        self.capabilities = b" ".join(self.command(b"CAPABILITY")).upper().split()

    def append(self, mailbox: bytes, messages: Sequence[tuple[bytes, Sequence[str], int | bytes]]) -> None:
        """One (MULTI)APPEND of (body, flags, internal date) messages: one transaction.

        The internal date is epoch seconds or, as FETCH gives it, the date-time text.
        """
        literal_plus = b"LITERAL+" in self.capabilities
        tag = self._next_tag()
        pieces: list[bytes] = [tag + b" APPEND " + mailbox]
        for body, flags, when in messages:
            date = when if isinstance(when, bytes) else internaldate(when)
            pieces.append(
                b" (" + " ".join(flags).encode() + b") \"" + date + b"\" "
                + (b"{%d+}\r\n" % len(body) if literal_plus else b"{%d}\r\n" % len(body))
            )
            if not literal_plus:
                self._sock.sendall(b"".join(pieces))
                pieces = []
                if not self.readline().startswith(b"+"):
                    raise ProbeError("the server refused the literal")
            pieces.append(body)
        pieces.append(b"\r\n")
        for piece in pieces:
            self._sock.sendall(piece)
        self._answer(tag)

    def close(self) -> None:
        try:
            self.command(b"LOGOUT")
        except (OSError, ProbeError):
            pass
        try:
            self._sock.close()
        except OSError:
            pass


def quote(text: str) -> bytes:
    """An IMAP quoted string."""
    return b'"' + text.encode("utf-8").replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def internaldate(epoch: int) -> bytes:
    """The APPEND date-time of epoch seconds, in UTC."""
    t = time.gmtime(epoch)
    return b"%02d-%s-%04d %02d:%02d:%02d +0000" % (
        t.tm_mday, _MONTHS[t.tm_mon - 1].encode(), t.tm_year, t.tm_hour, t.tm_min, t.tm_sec
    )


def uid_set(uids: Sequence[int]) -> bytes:
    """A compact UID set (``1:5,9``) of ascending UIDs."""
    parts: list[str] = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts).encode()


def chunked(
    items: Sequence[T],
    size: Callable[[T], int],
    chunk_bytes: int = defaults.APPEND_CHUNK_BYTES,
    chunk_messages: int = defaults.APPEND_CHUNK_MESSAGES,
) -> Iterator[list[T]]:
    """Split items as the engine does: a chunk closes before it would pass either bound."""
    chunk: list[T] = []
    nbytes = 0
    for item in items:
        n = size(item)
        if chunk and (nbytes + n > chunk_bytes or len(chunk) >= chunk_messages):
            yield chunk
            chunk, nbytes = [], 0
        chunk.append(item)
        nbytes += n
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- the two phases


@dataclass(frozen=True)
class FetchJob:
    """Fetch every message of one source user; mailboxes are IMAP names (modified UTF-7)."""

    host: str
    port: int
    security: str
    user: str
    password: str
    mailboxes: tuple[str, ...]


@dataclass(frozen=True)
class AppendJob:
    """Append a user's corpus files to a scratch user: (mailbox, [(path, flags, date)])."""

    host: str
    port: int
    security: str
    user: str
    password: str
    folders: tuple[tuple[str, tuple[tuple[str, tuple[str, ...], int], ...]], ...]


@dataclass(frozen=True)
class CopyJob:
    """Copy one user from the source to a scratch user of the target: (source, target mailbox)."""

    source_host: str
    source_port: int
    target_host: str
    target_port: int
    security: str
    user: str
    password: str
    target_user: str
    target_password: str
    folders: tuple[tuple[str, str], ...]


@dataclass
class UserResult:
    """One user's part of a phase."""

    user: str
    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class PhaseResult:
    """A whole phase: totals over the wall time of all users."""

    name: str
    parallel: int
    wall_seconds: float
    users: list[UserResult] = field(default_factory=list)
    #: CPU seconds of the servers (and of the whole machine) during the phase, when measured.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return sum(u.messages for u in self.users)

    @property
    def bytes(self) -> int:
        return sum(u.bytes for u in self.users)

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.wall_seconds if self.wall_seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "parallel": self.parallel,
            "wall_seconds": round(self.wall_seconds, 3),
            "messages": self.messages,
            "bytes": self.bytes,
            "messages_per_second": round(self.messages_per_second, 1),
            "mb_per_second": round(self.mb_per_second, 2),
            "client_cpu_seconds": round(sum(u.cpu_seconds for u in self.users), 2),
            **self.cpu,
            **other_cpu(self.cpu, sum(u.cpu_seconds for u in self.users)),
            "users": [vars(u) | {"seconds": round(u.seconds, 3), "cpu_seconds": round(u.cpu_seconds, 3)} for u in self.users],
        }


def other_cpu(cpu: dict[str, float], client: float) -> dict[str, float]:
    """CPU seconds the machine spent on anything but the client and the servers measured."""
    if "machine_busy_cpu_seconds" not in cpu:
        return {}
    ours = client + sum(v for k, v in cpu.items() if k.endswith("_dovecot_cpu_seconds"))
    return {"other_cpu_seconds": round(max(cpu["machine_busy_cpu_seconds"] - ours, 0.0), 2)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fetch_user(job: FetchJob) -> UserResult:
    """FETCH BODY.PEEK[] of every message of one user, chunk by chunk."""
    started, cpu = time.monotonic(), _cpu()
    result = UserResult(job.user)
    imap = RawImap(job.host, job.port, job.security)
    try:
        imap.login(job.user, job.password)
        for mailbox in job.mailboxes:
            imap.command(b"EXAMINE " + quote(mailbox))
            sizes: list[tuple[int, int]] = []
            for line in imap.command(b"UID FETCH 1:* (RFC822.SIZE)"):
                uid, size = _UID.search(line), _SIZE.search(line)
                if uid and size:
                    sizes.append((int(uid.group(1)), int(size.group(1))))
            sizes.sort()
            got: list[int] = []
            for chunk in chunked(sizes, lambda pair: pair[1]):
                imap.command(
                    b"UID FETCH " + uid_set([uid for uid, _ in chunk]) + b" BODY.PEEK[]",
                    lambda data: got.append(len(data)),
                )
            if len(got) != len(sizes):
                raise ProbeError(f"{job.user} {mailbox}: {len(got)} bodies fetched of {len(sizes)}")
            result.messages += len(got)
            result.bytes += sum(got)
    finally:
        imap.close()
    result.seconds, result.cpu_seconds = time.monotonic() - started, _cpu() - cpu
    return result


def append_user(job: AppendJob) -> UserResult:
    """Create the user's folders, then MULTIAPPEND its corpus into them chunk by chunk."""
    started, cpu = time.monotonic(), _cpu()
    result = UserResult(job.user)
    imap = RawImap(job.host, job.port, job.security)
    try:
        imap.login(job.user, job.password)
        for mailbox, files in job.folders:
            if mailbox.upper() != "INBOX":
                try:
                    imap.command(b"CREATE " + quote(mailbox))
                except ProbeError as exc:
                    if "ALREADYEXISTS" not in str(exc).upper():
                        raise
            sized = [(path, flags, when, _file_size(path)) for path, flags, when in files]
            for chunk in chunked(sized, lambda entry: entry[3]):
                batch = []
                for path, flags, when, _ in chunk:
                    with open(path, "rb") as stream:
                        batch.append((stream.read(), flags, when))
                imap.append(quote(mailbox), batch)
                result.messages += len(batch)
                result.bytes += sum(len(body) for body, _, _ in batch)
    finally:
        imap.close()
    result.seconds, result.cpu_seconds = time.monotonic() - started, _cpu() - cpu
    return result


_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')


def copy_user(job: CopyJob) -> UserResult:
    """FETCH and MULTIAPPEND at once, as a copy must: one thread fetches chunk n+1 while the
    other appends chunk n (at most two chunks held), one connection to each server.

    Flags and internal dates come from one ``UID FETCH 1:* (RFC822.SIZE FLAGS INTERNALDATE)``
    per folder (``\\Recent`` dropped); bodies from ``UID FETCH <set> BODY.PEEK[]`` chunks.
    """
    started, cpu = time.monotonic(), _cpu()
    result = UserResult(job.user)
    source = RawImap(job.source_host, job.source_port, job.security)
    target = RawImap(job.target_host, job.target_port, job.security)
    try:
        source.login(job.user, job.password)
        target.login(job.target_user, job.target_password)
        for source_box, target_box in job.folders:
            if target_box.upper() != "INBOX":
                try:
                    target.command(b"CREATE " + quote(target_box))
                except ProbeError as exc:
                    if "ALREADYEXISTS" not in str(exc).upper():
                        raise
            source.command(b"EXAMINE " + quote(source_box))
            listing: list[tuple[int, int, list[str], bytes]] = []
            for line in source.command(b"UID FETCH 1:* (RFC822.SIZE FLAGS INTERNALDATE)"):
                uid, size, flags, date = _UID.search(line), _SIZE.search(line), _FLAGS.search(line), _DATE.search(line)
                if uid and size and flags is not None and date:
                    kept = [f for f in flags.group(1).decode().split() if f.lower() != "\\recent"]
                    listing.append((int(uid.group(1)), int(size.group(1)), kept, date.group(1)))
            listing.sort()
            chunks: queue.Queue[list[tuple[bytes, list[str], bytes]] | BaseException | None] = queue.Queue(maxsize=1)

            def fetch(entries: list[tuple[int, int, list[str], bytes]] = listing) -> None:
                try:
                    for chunk in chunked(entries, lambda entry: entry[1]):
                        bodies: list[bytes] = []
                        source.command(b"UID FETCH " + uid_set([e[0] for e in chunk]) + b" BODY.PEEK[]", bodies.append)
                        if len(bodies) != len(chunk):
                            raise ProbeError(f"{job.user} {source_box}: {len(bodies)} bodies of {len(chunk)}")
                        chunks.put([(body, e[2], e[3]) for body, e in zip(bodies, chunk)])
                    chunks.put(None)
                except BaseException as exc:  # noqa: BLE001 - handed to the appending thread
                    chunks.put(exc)

            fetcher = threading.Thread(target=fetch, daemon=True)
            fetcher.start()
            while True:
                item = chunks.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                target.append(quote(target_box), item)
                result.messages += len(item)
                result.bytes += sum(len(body) for body, _, _ in item)
            fetcher.join()
    finally:
        source.close()
        target.close()
    result.seconds, result.cpu_seconds = time.monotonic() - started, _cpu() - cpu
    return result


def _file_size(path: str) -> int:
    return os.stat(path).st_size


def _worker_init() -> None:
    """In a probe process: die on SIGTERM (the pool's way to stop it), leave Ctrl-C to the parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Workers:
    """A fixed pool of ``parallel`` probe processes, one user at a time each.

    Make it before the caller starts any thread: its processes are forked once, here, and never
    again (forking a process that runs threads can copy a lock that is held forever). Starting
    processes is then outside the timed phases, too.
    """

    def __init__(self, parallel: int) -> None:
        self.parallel = max(1, parallel)
        self._pool = multiprocessing.get_context("fork").Pool(self.parallel, initializer=_worker_init)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def run(self, name: str, worker: Callable[[T], UserResult], jobs: Sequence[T]) -> PhaseResult:
        """Run one job per user, ``parallel`` at a time, and time the whole phase.

        Raises:
            ProbeError: A user's probe failed.
        """
        started = time.monotonic()
        users = list(self._pool.imap_unordered(worker, jobs, chunksize=1))
        wall = time.monotonic() - started
        users.sort(key=lambda u: u.user)
        return PhaseResult(name, self.parallel, wall, users)
