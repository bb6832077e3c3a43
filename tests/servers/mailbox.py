"""Fill and inspect the mailboxes of a :class:`~tests.servers.dovecot.DovecotServer` (or, for
the IMAP helpers and :func:`fill`, a :class:`~tests.servers.cyrus.CyrusServer`).

Folders are named by *logical paths*: Unicode, "/" between levels, relative to the personal
namespace prefix, "INBOX" for the inbox (e.g. ``"Archive/2020"``). The same logical path names
the same folder on a "slash" server (IMAP ``Archive/2020``) and on a "dot" server (IMAP
``INBOX.Archive.2020``), so :func:`snapshot` results of both compare equal when their contents do.

Messages are either written straight into the Maildir (:func:`deliver`, :func:`fill`: fast, no
IMAP involved, what a migration source looks like) or read back over IMAP (:func:`snapshot`).
Cyrus has no Maildir to write into: :func:`fill` appends over IMAP there (:func:`append_mails`).
"""

from __future__ import annotations

import contextlib
import datetime
import email.header
import email.utils
import hashlib
import itertools
import os
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imapclient import IMAPClient, imap_utf7

from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import DovecotServer

__all__ = [
    "AnyServer",
    "Mail",
    "Security",
    "Snapshot",
    "client",
    "create_folder",
    "deliver",
    "fill",
    "imap_name",
    "insecure_context",
    "make_message",
    "append_mails",
    "snapshot",
]

#: The servers the IMAP helpers (:func:`client`, :func:`snapshot`, :func:`fill`...) work with.
AnyServer = DovecotServer | CyrusServer

Security = Literal["None", "Ssl", "Tls"]

#: Folder (logical path) -> sorted (sha256 of BODY[], flags except \Recent, INTERNALDATE epoch).
Snapshot = dict[str, list[tuple[str, frozenset[str], int]]]

#: Maildir info letters of the IMAP system flags Dovecot stores in file names (lower-cased keys).
_FLAG_LETTERS = {
    "\\draft": "D",
    "\\flagged": "F",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}

#: Maildir allows 26 keywords per folder, as the letters a..z after the system flags.
_KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"

_EPOCH_2020 = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
_FETCH_BATCH = 200
_unique = itertools.count()


@dataclass(frozen=True)
class Mail:
    r"""One message to write into a Maildir.

    Attributes:
        raw: The RFC 5322 bytes, stored as they are.
        flags: IMAP flags (``\Seen``...) and keywords (``$Forwarded``, ``Work``...).
        internaldate: The IMAP INTERNALDATE (the file's mtime); now when None.
    """

    raw: bytes
    flags: tuple[str, ...] = ()
    internaldate: datetime.datetime | None = None


# --------------------------------------------------------------------------- IMAP sessions


def insecure_context() -> ssl.SSLContext:
    """Return a TLS client context that accepts any certificate (test servers are self-signed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client(
    server: AnyServer,
    user: str,
    password: str | None = None,
    *,
    security: Security = "None",
    timeout: float = 30.0,
) -> IMAPClient:
    """Open a logged-in IMAP session (the caller logs out, e.g. with ``with``).

    Args:
        server: The server.
        user: Login name (``user*master`` logins work too, with the master password).
        password: The password; the one given to ``add_user`` when None.
        security: ``"None"`` (plain port), ``"Tls"`` (STARTTLS) or ``"Ssl"`` (implicit TLS);
            certificates are not verified.
        timeout: Socket timeout in seconds.

    Returns:
        An authenticated :class:`imapclient.IMAPClient`.
    """
    if password is None:
        if user not in server.users:
            raise KeyError(f"no password known for {user!r}: pass one")
        password = server.users[user]
    if security == "Ssl":
        imap = IMAPClient(
            server.host, server.ssl_port, ssl=True, ssl_context=insecure_context(), timeout=timeout
        )
    elif security in ("None", "Tls"):
        imap = IMAPClient(server.host, server.port, ssl=False, timeout=timeout)
    else:
        raise ValueError(f"unknown security {security!r}: use 'None', 'Ssl' or 'Tls'")
    try:
        if security == "Tls":
            imap.starttls(insecure_context())
        imap.login(user, password)
    except BaseException:
        # A failed TLS handshake has closed the socket already; shutdown() then fails too.
        with contextlib.suppress(OSError):
            imap.shutdown()
        raise
    return imap


def imap_name(server: AnyServer, folder: str) -> str:
    """Translate a logical folder path into the server's IMAP mailbox name.

    Args:
        server: The server (its layout decides separator and prefix).
        folder: Logical path, e.g. ``"Archive/2020"`` or ``"INBOX"``.

    Returns:
        The IMAP name, e.g. ``"INBOX.Archive.2020"`` on a "dot" server.
    """
    parts = _parts(server, folder)
    if not parts:
        return "INBOX"
    return server.prefix + server.separator.join(parts)


def create_folder(server: AnyServer, user: str, folder: str) -> None:
    """Create a folder over IMAP (so Dovecot applies its own rules) and subscribe to it.

    Args:
        server: The server.
        user: A user added with ``add_user``.
        folder: Logical path of the new folder.
    """
    with client(server, user) as imap:
        name = imap_name(server, folder)
        imap.create_folder(name)
        imap.subscribe_folder(name)


def snapshot(server: AnyServer, user: str, password: str | None = None) -> Snapshot:
    r"""Read every selectable folder of a mailbox over IMAP, without changing any flag.

    Args:
        server: The server.
        user: Login name.
        password: The password; the one given to ``add_user`` when None.

    Returns:
        Logical folder path -> sorted list of (sha256 hex of BODY[], flags without ``\Recent``,
        INTERNALDATE in epoch seconds). Equal snapshots mean equal mailbox contents.
    """
    result: Snapshot = {}
    with client(server, user, password) as imap:
        imap.normalise_times = False
        for attributes, delimiter, name in imap.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(attributes):
                continue
            imap.select_folder(name, readonly=True)
            uids = imap.search("ALL")
            messages: list[tuple[str, frozenset[str], int]] = []
            for first in range(0, len(uids), _FETCH_BATCH):
                batch = uids[first : first + _FETCH_BATCH]
                fetched = imap.fetch(batch, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
                for data in fetched.values():
                    flags = frozenset(
                        flag.decode("utf-8", "replace")
                        for flag in data[b"FLAGS"]
                        if flag.lower() != b"\\recent"
                    )
                    digest = hashlib.sha256(data[b"BODY[]"]).hexdigest()
                    messages.append((digest, flags, int(data[b"INTERNALDATE"].timestamp())))
            imap.unselect_folder()
            result[_logical(server, name, delimiter)] = sorted(messages, key=_sort_key)
    return result


def _sort_key(item: tuple[str, frozenset[str], int]) -> tuple[str, list[str], int]:
    return item[0], sorted(item[1]), item[2]


def _logical(server: AnyServer, name: str, delimiter: bytes | None) -> str:
    """Turn an IMAP mailbox name listed by the server into a logical path."""
    if name.upper() == "INBOX":
        return "INBOX"
    if server.prefix and name.startswith(server.prefix):
        name = name[len(server.prefix) :]
    separator = delimiter.decode() if delimiter else server.separator
    return "/".join(name.split(separator))


# --------------------------------------------------------------------------- messages


def make_message(
    i: int,
    *,
    size: int = 2048,
    subject: str | None = None,
    folder: str = "INBOX",
    with_message_id: bool = True,
    extra_headers: Mapping[str, str] | None = None,
) -> bytes:
    """Build a deterministic RFC 5322 message with CRLF line endings.

    The same arguments always give the same bytes; different ``i`` or ``folder`` give different
    bodies (and Message-IDs).

    Args:
        i: Message number; seeds the date, Message-ID and body.
        size: Total size in bytes, met exactly unless the header alone is larger.
        subject: Subject (Unicode allowed); ``"Message <i> in <folder>"`` when None.
        folder: Logical folder the message is meant for; seeds the content.
        with_message_id: Whether to include a Message-ID header.
        extra_headers: More header fields, written in order after the standard ones.

    Returns:
        The message bytes.
    """
    seed = f"{folder}\0{i}"
    token = hashlib.sha256(seed.encode()).hexdigest()[:16]
    date = _EPOCH_2020 + datetime.timedelta(minutes=i)
    fields = [
        ("From", "Sender Example <sender@example.com>"),
        ("To", "Recipient Example <recipient@example.com>"),
        ("Subject", subject if subject is not None else f"Message {i} in {folder}"),
        ("Date", email.utils.format_datetime(date)),
    ]
    if with_message_id:
        fields.append(("Message-ID", f"<{i}.{token}@mailshift.test>"))
    fields += [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=us-ascii")]
    fields += list((extra_headers or {}).items())
    header = b"".join(
        f"{name}: {_header_value(value)}\r\n".encode("ascii") for name, value in fields
    )
    head = header + b"\r\n"
    return head + _body(seed, max(size - len(head), 0))


def _header_value(value: str) -> str:
    """Encode a non-ASCII header value as RFC 2047 words."""
    if value.isascii():
        return value
    return email.header.Header(value, "utf-8").encode()


def _body(seed: str, size: int) -> bytes:
    """Make ``size`` bytes of deterministic text lines (78 characters + CRLF) from a seed."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    lines: list[bytes] = []
    total = 0
    for n in itertools.count():
        if total >= size:
            break
        turn = n % len(digest)
        line = f"{n:06d} {digest[turn:]}{digest[:turn]}{digest[:7]}\r\n".encode()
        lines.append(line)
        total += len(line)
    body = b"".join(lines)[:size]
    # Never end on a lone CR: a cut between CR and LF would leave a bare CR.
    return body[:-1] + b"." if body.endswith(b"\r") else body


# --------------------------------------------------------------------------- Maildir writing


def deliver(
    server: DovecotServer,
    user: str,
    folder: str,
    raw: bytes,
    flags: Iterable[str] = (),
    internaldate: datetime.datetime | None = None,
) -> Path:
    r"""Write one message straight into a user's Maildir, as a migration source would hold it.

    The folder is created on disk when missing (not subscribed); Dovecot indexes the message at
    the next access.

    Args:
        server: The server.
        user: A user added with ``add_user``.
        folder: Logical folder path, e.g. ``"INBOX"`` or ``"Archive/2020"``.
        raw: The message bytes, stored unchanged.
        flags: System flags and keywords; ``\Recent`` cannot be set.
        internaldate: The INTERNALDATE (file mtime); now when None.

    Returns:
        The path of the new message file.
    """
    writer = _FolderWriter(server, user, folder)
    path = writer.add(Mail(raw, tuple(flags), internaldate))
    writer.close()
    return path


def fill(
    server: AnyServer,
    user: str,
    spec: Mapping[str, int | Iterable[bytes | Mail]],
    *,
    size: int = 2048,
) -> dict[str, int]:
    r"""Fill a mailbox fast (thousands of messages a second) by writing Maildir files.

    Folders missing from the mailbox are first created and subscribed over IMAP (one session).
    On a :class:`CyrusServer` the messages are appended over IMAP instead (:func:`append_mails`).
    A count ``n`` stands for :func:`make_message` ``(0..n-1, size=size, folder=folder)`` with
    varied flags (every 2nd ``\Seen``, 7th ``\Flagged``, 11th ``\Answered``) and internal
    dates one hour apart from 2020-01-01 UTC; bytes get no flags and the current time.

    Args:
        server: The server.
        user: A user added with ``add_user``.
        spec: Logical folder path -> message count, or messages (bytes or :class:`Mail`).
        size: Size of generated messages, in bytes.

    Returns:
        Logical folder path -> number of messages written.
    """
    if isinstance(server, CyrusServer):
        return append_mails(server, user, spec, size=size)
    if server.layout == "mbox":  # mbox files are Dovecot's to write
        return append_mails(server, user, spec, size=size)
    with client(server, user) as imap:
        existing = {name for _, _, name in imap.list_folders()}
        for folder in spec:
            name = imap_name(server, folder)
            if name != "INBOX" and name not in existing:
                imap.create_folder(name)
                imap.subscribe_folder(name)
    written: dict[str, int] = {}
    for folder, content in spec.items():
        mails = _generated(folder, content, size) if isinstance(content, int) else content
        writer = _FolderWriter(server, user, folder)
        count = 0
        for mail in mails:
            writer.add(mail if isinstance(mail, Mail) else Mail(mail))
            count += 1
        writer.close()
        written[folder] = count
    return written


def append_mails(
    server: AnyServer,
    user: str,
    spec: Mapping[str, int | Iterable[bytes | Mail]],
    *,
    size: int = 2048,
) -> dict[str, int]:
    r"""Fill a mailbox over IMAP: create (and subscribe) missing folders, APPEND each message.

    The messages are what :func:`fill` takes, with their flags and internal dates; the server
    stores them as it does any APPEND (Cyrus turns 8-bit header bytes into ``X`` by default).

    Args:
        server: The server.
        user: A user added with ``add_user``.
        spec: Logical folder path -> message count, or messages (bytes or :class:`Mail`).
        size: Size of generated messages, in bytes.

    Returns:
        Logical folder path -> number of messages appended.
    """
    written: dict[str, int] = {}
    with client(server, user) as imap:
        existing = {name for _, _, name in imap.list_folders()}
        for folder, content in spec.items():
            name = imap_name(server, folder)
            if name != "INBOX" and name not in existing:
                imap.create_folder(name)
                imap.subscribe_folder(name)
                # Cyrus creates missing parents as real folders.
                existing = {listed for _, _, listed in imap.list_folders()}
            mails = _generated(folder, content, size) if isinstance(content, int) else content
            count = 0
            for item in mails:
                mail = item if isinstance(item, Mail) else Mail(item)
                imap.append(name, mail.raw, flags=mail.flags, msg_time=mail.internaldate)
                count += 1
            written[folder] = count
    return written


def _generated(folder: str, count: int, size: int) -> Iterable[Mail]:
    """Yield the generated messages :func:`fill` documents for a count."""
    for i in range(count):
        flags = [
            flag
            for flag, every in (("\\Seen", 2), ("\\Flagged", 7), ("\\Answered", 11))
            if i % every == 0
        ]
        yield Mail(
            make_message(i, size=size, folder=folder),
            tuple(flags),
            _EPOCH_2020 + datetime.timedelta(hours=i),
        )


def _parts(server: AnyServer, folder: str) -> list[str]:
    """Split a logical path into its levels ([] for INBOX), checking the layout allows them."""
    if folder.upper() == "INBOX":
        return []
    parts = folder.split("/")
    if parts[0].upper() == "INBOX":
        raise ValueError(f"{folder!r}: folders below INBOX are not supported by these helpers")
    for part in parts:
        if part in ("", ".", "..") or "\0" in part or (server.layout == "dot" and "." in part):
            raise ValueError(f"{folder!r}: level {part!r} is invalid on a {server.layout} server")
    return parts


def _folder_path(server: DovecotServer, user: str, folder: str) -> Path:
    """Locate a folder on disk as Dovecot does (modified UTF-7 names)."""
    encoded = [imap_utf7.encode(part).decode("ascii") for part in _parts(server, folder)]
    root = server.maildir(user)
    if not encoded:
        return root
    if server.layout == "dot":
        return root / ("." + ".".join(encoded))
    return root.joinpath(*encoded)


class _FolderWriter:
    """Writes message files into one Maildir folder, then its keyword table."""

    def __init__(self, server: DovecotServer, user: str, folder: str) -> None:
        if user not in server.users:
            raise KeyError(f"unknown user {user!r}: add it with server.add_user first")
        self._server = server
        self._path = _folder_path(server, user, folder)
        server.make_dirs(self._path / "cur", self._path / "new", self._path / "tmp")
        if server.layout == "dot" and self._path != server.maildir(user):
            marker = self._path / "maildirfolder"
            if not marker.exists():
                marker.touch(mode=0o600)
                server.give(marker)
        self._keywords = self._read_keywords()
        self._keywords_changed = False

    def add(self, mail: Mail) -> Path:
        """Write one message into cur/ with its flags in the name and its date as mtime."""
        letters = []
        for flag in mail.flags:
            if flag.startswith("\\"):
                if flag.lower() not in _FLAG_LETTERS:
                    raise ValueError(f"flag {flag!r} cannot be stored in a Maildir")
                letters.append(_FLAG_LETTERS[flag.lower()])
            else:
                letters.append(self._keyword_letter(flag))
        stamp = time.time()
        unique = (
            f"{int(stamp)}.M{int(stamp % 1 * 1e6)}P{os.getpid()}Q{next(_unique)}"
            f".mailshift,S={len(mail.raw)}"
        )
        tmp = self._path / "tmp" / unique
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as stream:
            stream.write(mail.raw)
        self._server.give(tmp)
        mtime = mail.internaldate.timestamp() if mail.internaldate else stamp
        os.utime(tmp, (mtime, mtime))
        final = self._path / "cur" / f"{unique}:2,{''.join(sorted(set(letters)))}"
        os.rename(tmp, final)
        return final

    def close(self) -> None:
        """Write the keyword table if new keywords were used."""
        if not self._keywords_changed:
            return
        path = self._path / "dovecot-keywords"
        tmp = path.with_name(f"dovecot-keywords.{os.getpid()}.tmp")
        tmp.write_text("".join(f"{n} {kw}\n" for kw, n in self._keywords.items()))
        self._server.give(tmp)
        os.replace(tmp, path)

    def _read_keywords(self) -> dict[str, int]:
        """Load the folder's keyword table (keyword -> index), as Dovecot left it."""
        keywords: dict[str, int] = {}
        try:
            text = (self._path / "dovecot-keywords").read_text()
        except FileNotFoundError:
            return keywords
        for line in text.splitlines():
            number, _, keyword = line.partition(" ")
            if number.isdigit() and keyword:
                keywords[keyword] = int(number)
        return keywords

    def _keyword_letter(self, keyword: str) -> str:
        """Return the letter of a keyword, adding it to the table when new."""
        if keyword not in self._keywords:
            if not keyword.isascii() or any(c in keyword for c in ' (){%*"\\]') or not keyword:
                raise ValueError(f"{keyword!r} is not a valid IMAP keyword")
            free = sorted(set(range(len(_KEYWORD_LETTERS))) - set(self._keywords.values()))
            if not free:
                raise ValueError(f"{self._path}: a Maildir folder holds at most 26 keywords")
            self._keywords[keyword] = free[0]
            self._keywords_changed = True
        return _KEYWORD_LETTERS[self._keywords[keyword]]
