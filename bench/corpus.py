"""A seeded, realistic benchmark corpus written straight into a source Dovecot's Maildirs.

Each user gets ``messages`` messages over nested folders with non-ASCII names (two of them,
``Archiv`` and ``Listen``, only hold subfolders). Sizes follow a mix typical of real mailboxes:
most messages are 2-20 KB of UTF-8 text, some carry base64 attachments of tens of KB to a few
MB, and the corpus holds two giants of ~30 MiB and 40 MiB (over the engine's default 35 MB
item limit, under the benchmark's 50 MB). Flags are mostly ``\\Seen`` with some ``\\Flagged``,
``\\Answered`` and the keywords ``$Forwarded`` and ``Wichtig``; internal dates spread over
2016-2024. The same seed and scale always give the same message bytes, flags and dates.

Messages are written as Maildir files by :func:`tests.servers.mailbox.fill` (thousands a
second, no IMAP APPEND), then listed back from disk (:func:`scan`) so that the probe can append
the very same bytes without fetching them.
"""

from __future__ import annotations

import base64
import datetime
import email.header
import email.utils
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import imap_utf7

from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import Mail, fill

__all__ = [
    "DEFAULT_SEED",
    "FOLDERS",
    "GIANTS",
    "HIERARCHY_ONLY",
    "Item",
    "UserCorpus",
    "build_message",
    "generate",
    "message_sizes",
    "scan",
]

DEFAULT_SEED = 20240611

#: Folders holding messages (logical paths, parents first) and their share of a user's messages.
FOLDERS: tuple[tuple[str, float], ...] = (
    ("INBOX", 0.34),
    ("Archiv/2019", 0.14),
    ("Archiv/2020", 0.10),
    ("Archiv/2020/Q4", 0.04),
    ("Projekte", 0.06),
    ("Projekte/Überblick", 0.08),
    ("Éléments envoyés", 0.16),
    ("日本語", 0.04),
    ("Listen/dovecot-users", 0.04),
)

#: Folders that exist only as parents of others (``\Noselect`` on the source).
HIERARCHY_ONLY = ("Archiv", "Listen")

#: The two giant messages: (user index, folder, size in bytes). User index 1 falls back to 0.
GIANTS: tuple[tuple[int, str, int], ...] = (
    (0, "INBOX", 40 * 1024 * 1024),
    (1, "Projekte/Überblick", 30 * 1024 * 1024),
)

#: Size classes: (share, smallest, largest) in bytes, sizes log-uniform inside a class.
SIZE_MIX: tuple[tuple[float, int, int], ...] = (
    (0.895, 2 * 1024, 20 * 1024),
    (0.070, 20 * 1024, 200 * 1024),
    (0.030, 200 * 1024, 2 * 1024 * 1024),
    (0.005, 2 * 1024 * 1024, 6 * 1024 * 1024),
)

#: Above this size a message is multipart with a base64 attachment; below, plain text.
_ATTACHMENT_FROM = 24 * 1024

_FIRST_DATE = datetime.datetime(2016, 1, 1, tzinfo=datetime.UTC).timestamp()
_LAST_DATE = datetime.datetime(2024, 12, 31, tzinfo=datetime.UTC).timestamp()

_SENDERS = (
    ("Jürgen Müller", "juergen.mueller@example.de"),
    ("Zoë Dupont", "zoe.dupont@example.fr"),
    ("田中 太郎", "tanaka@example.jp"),
    ("Ana López", "ana.lopez@example.es"),
    ("Peter Smith", "peter.smith@example.com"),
    ("Ørjan Ødegård", "orjan@example.no"),
    ("IT-Service", "noreply@example.org"),
    ("dovecot-users list", "dovecot@example.org"),
)

_SUBJECTS = (
    "Quartalsbericht {n}",
    "Re: Überblick Projekt {w}",
    "Réunion du {d} – ordre du jour",
    "会議の議事録 第{n}回",
    "Invoice #{n}",
    "Fwd: Fotos vom Ausflug",
    "Re: Re: {w} – Rückfragen",
    "[dovecot] index corruption after upgrade ({n})",
    "Änderung der Öffnungszeiten",
    "Ihre Bestellung {n} wurde versandt",
)

_WORDS = (
    "der die das und ist nicht mit für auf Überblick Prüfung Größe Straße Äpfel Öl "
    "le la les et est pas avec pour élément déjà très où ça garçon "
    "the and is not with for project report meeting budget deadline review "
    "会議 資料 確認 予定 お願いします よろしく 報告 "
    "Projekt Termin Bericht Rechnung Angebot Lieferung Kunde Vertrag"
).split()

_ATTACHMENT_NAMES = ("Bericht", "Präsentation", "scan", "Rechnung", "photos", "資料", "contrat")


@dataclass(frozen=True)
class Item:
    """One message file of the corpus, as found on disk.

    Attributes:
        folder: Logical folder path (``"INBOX"``, ``"Archiv/2019"``...).
        path: The Maildir file.
        size: Bytes.
        flags: IMAP flags and keywords.
        internaldate: INTERNALDATE as epoch seconds (the file's mtime).
    """

    folder: str
    path: str
    size: int
    flags: tuple[str, ...]
    internaldate: int


@dataclass
class UserCorpus:
    """The messages of one source user."""

    user: str
    password: str
    items: list[Item] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return len(self.items)

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.items)

    def folders(self) -> list[str]:
        """The folders holding messages, in corpus order."""
        return list(dict.fromkeys(item.folder for item in self.items))


# --------------------------------------------------------------------------- sizes and layout


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(low * (high / low) ** rng.random())


def message_sizes(user_index: int, messages: int, users: int, seed: int) -> dict[str, list[int]]:
    """Decide how many messages each folder of a user holds and the target size of each.

    Args:
        user_index: 0-based user number (the giants go to users 0 and 1).
        messages: Messages of this user.
        users: Users in the corpus (with one user, both giants go to it).
        seed: Corpus seed.

    Returns:
        Logical folder -> sizes in bytes, in the order the messages are written.
    """
    rng = random.Random(f"{seed}:{user_index}:plan")
    counts = {folder: int(share * messages) for folder, share in FOLDERS}
    counts["INBOX"] += messages - sum(counts.values())
    plan: dict[str, list[int]] = {}
    for folder, count in counts.items():
        sizes = []
        for _ in range(count):
            pick = rng.random()
            for share, low, high in SIZE_MIX:
                if pick < share:
                    sizes.append(_log_uniform(rng, low, high))
                    break
                pick -= share
            else:
                sizes.append(_log_uniform(rng, *SIZE_MIX[0][1:]))
        plan[folder] = sizes
    for owner, folder, size in GIANTS:
        if min(owner, users - 1) == user_index and plan.get(folder):
            plan[folder][len(plan[folder]) // 2] = size
    return plan


# --------------------------------------------------------------------------- message bytes


class _TextPool:
    """A block of UTF-8 text lines; bodies are slices of it starting at a line boundary."""

    def __init__(self, seed: int, size: int = 512 * 1024) -> None:
        rng = random.Random(f"{seed}:text")
        lines: list[bytes] = []
        total = 0
        while total < size:
            words: list[str] = []
            length = 0
            target = rng.randint(20, 74)
            while length < target:
                word = rng.choice(_WORDS)
                words.append(word)
                length += len(word) + 1
            line = (" ".join(words)).encode("utf-8") + b"\r\n"
            if rng.random() < 0.12:
                line += b"\r\n"
            lines.append(line)
            total += len(line)
        self.blob = b"".join(lines)
        self.double = self.blob + self.blob
        self.starts = [0]
        for line in lines[:-1]:
            self.starts.append(self.starts[-1] + len(line))

    def text(self, rng: random.Random, size: int) -> bytes:
        """About ``size`` bytes of whole lines (at most one line more), never empty."""
        size = max(min(size, len(self.blob)), 1)
        start = self.starts[rng.randrange(len(self.starts))]
        end = self.double.find(b"\r\n", start + size - 2)
        return self.double[start : end + 2]


_pools: dict[int, _TextPool] = {}


def _pool(seed: int) -> _TextPool:
    if seed not in _pools:
        _pools[seed] = _TextPool(seed)
    return _pools[seed]


def _encode(value: str) -> str:
    return value if value.isascii() else email.header.Header(value, "utf-8").encode()


def build_message(
    seed: int,
    user: str,
    folder: str,
    index: int,
    size: int,
    internaldate: float,
) -> tuple[bytes, tuple[str, ...]]:
    """Build one message of about ``size`` bytes (CRLF lines) and its flags.

    Args:
        seed: Corpus seed.
        user: The mailbox owner (the recipient, or the sender in the sent folder).
        folder: Logical folder.
        index: Position in the folder.
        size: Wanted size in bytes (met within a line or two).
        internaldate: The message's INTERNALDATE, epoch seconds.

    Returns:
        The message bytes and its flags.
    """
    rng = random.Random(f"{seed}:{user}:{folder}:{index}")
    pool = _pool(seed)
    sent = folder == "Éléments envoyés"
    name, address = _SENDERS[rng.randrange(len(_SENDERS))]
    me = (user, f"{user}@example.org")
    sender, recipient = (me, (name, address)) if sent else ((name, address), me)
    n = rng.randint(1, 9999)
    subject = _SUBJECTS[rng.randrange(len(_SUBJECTS))].format(
        n=n, w=rng.choice(_WORDS), d=datetime.datetime.fromtimestamp(internaldate, datetime.UTC).date().isoformat()
    )
    tz = datetime.timezone(datetime.timedelta(hours=rng.choice((-5, 0, 1, 2, 9))))
    sent_at = datetime.datetime.fromtimestamp(internaldate - rng.randint(1, 900), tz)
    token = f"{rng.getrandbits(64):016x}"
    fields = [
        ("Return-Path", f"<{sender[1]}>"),
        (
            "Received",
            f"from mx{rng.randint(1, 4)}.example.net (mx.example.net [192.0.2.{rng.randint(1, 254)}])\r\n"
            f"\tby mail.example.org with ESMTPS id {token[:12]};\r\n"
            f"\t{email.utils.format_datetime(sent_at)}",
        ),
        ("From", email.utils.formataddr(sender, "utf-8")),
        ("To", email.utils.formataddr(recipient, "utf-8")),
        ("Subject", _encode(subject)),
        ("Date", email.utils.format_datetime(sent_at)),
    ]
    if rng.random() >= 0.01:  # about 1 % lack a Message-ID (drafts, some sent items)
        fields.append(("Message-ID", f"<{token}.{index}@{sender[1].split('@')[1]}>"))
    fields.append(("MIME-Version", "1.0"))
    attach = size > _ATTACHMENT_FROM
    boundary = f"=_ms_{token}"
    if attach:
        fields.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))
    else:
        fields += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]
    head = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8") + b"\r\n"
    left = max(size - len(head), 64)
    if not attach:
        body = pool.text(rng, left)
    else:
        text = pool.text(rng, rng.randint(300, 2500))
        filename = f"{rng.choice(_ATTACHMENT_NAMES)}-{n}.pdf"
        part_head = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode() + text + (
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream; name=\"{_encode(filename)}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename=\"{_encode(filename)}\"\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        encoded_size = max(left - len(part_head) - len(tail), 78)
        raw = rng.randbytes(encoded_size // 78 * 57 + 57)
        body = part_head + base64.encodebytes(raw).replace(b"\n", b"\r\n").rstrip(b"\r\n") + tail
    flags: list[str] = []
    pick = rng.random()
    if sent or pick < 0.88:
        flags.append("\\Seen")
        if not sent and rng.random() < 0.12:
            flags.append("\\Answered")
    if rng.random() < 0.04:
        flags.append("\\Flagged")
    if rng.random() < 0.03:
        flags.append("$Forwarded")
    if rng.random() < 0.015:
        flags.append("Wichtig")
    return head + body, tuple(flags)


def _dates(seed: int, user: str, folder: str, count: int) -> list[float]:
    rng = random.Random(f"{seed}:{user}:{folder}:dates")
    return sorted(rng.uniform(_FIRST_DATE, _LAST_DATE) for _ in range(count))


def _mails(seed: int, user: str, folder: str, sizes: list[int]) -> Iterator[Mail]:
    dates = _dates(seed, user, folder, len(sizes))
    utc = datetime.UTC
    for index, (size, when) in enumerate(zip(sizes, dates)):
        raw, flags = build_message(seed, user, folder, index, size, when)
        yield Mail(raw, flags, datetime.datetime.fromtimestamp(int(when), utc))


# --------------------------------------------------------------------------- writing and reading


def generate(
    server: DovecotServer,
    user: str,
    password: str,
    user_index: int,
    messages: int,
    users: int,
    seed: int = DEFAULT_SEED,
) -> UserCorpus:
    """Add a user to the source server and write its corpus into its Maildir.

    Args:
        server: The (running) source server.
        user: New user name.
        password: Its password.
        user_index: 0-based position of the user in the corpus.
        messages: Messages to write.
        users: Users in the corpus (decides who gets the giants).
        seed: Corpus seed.

    Returns:
        The user's corpus as found on disk.
    """
    server.add_user(user, password)
    plan = message_sizes(user_index, messages, users, seed)
    fill(server, user, {folder: _mails(seed, user, folder, sizes) for folder, sizes in plan.items()})
    return UserCorpus(user, password, scan(server, user))


def _keywords(folder_dir: Path) -> dict[str, str]:
    """Keyword letter -> keyword, from the folder's dovecot-keywords table."""
    out: dict[str, str] = {}
    try:
        text = (folder_dir / "dovecot-keywords").read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        number, _, keyword = line.partition(" ")
        if number.isdigit() and keyword:
            out[chr(ord("a") + int(number))] = keyword
    return out


_LETTER_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}


def _folder_dirs(server: DovecotServer, user: str) -> Iterator[tuple[str, Path]]:
    """(logical folder, directory) of every Maildir folder of a user."""
    root = server.maildir(user)
    yield "INBOX", root
    if server.layout == "dot":
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name.startswith(".") and entry.name not in (".", "..") and (Path(entry.path) / "cur").is_dir():
                parts = entry.name[1:].split(".")
                yield "/".join(imap_utf7.decode(p.encode()) for p in parts), Path(entry.path)
        return
    for top, dirs, _files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("cur", "new", "tmp"))
        here = Path(top)
        if here != root and (here / "cur").is_dir():
            names = here.relative_to(root).parts
            yield "/".join(imap_utf7.decode(p.encode()) for p in names), here


def scan(server: DovecotServer, user: str) -> list[Item]:
    """List a user's message files with their flags and dates, folder by folder.

    Args:
        server: The server.
        user: The user.

    Returns:
        The messages in folder order, each folder's by internal date.
    """
    items: list[Item] = []
    for folder, directory in _folder_dirs(server, user):
        keywords = _keywords(directory)
        found: list[Item] = []
        for sub in ("cur", "new"):
            for entry in os.scandir(directory / sub):
                info = entry.name.rpartition(":2,")[2] if ":2," in entry.name else ""
                flags = tuple(
                    _LETTER_FLAGS[c] if c in _LETTER_FLAGS else keywords[c]
                    for c in info
                    if c in _LETTER_FLAGS or c in keywords
                )
                stat = entry.stat()
                found.append(Item(folder, entry.path, stat.st_size, flags, int(stat.st_mtime)))
        found.sort(key=lambda item: (item.internaldate, item.path))
        items += found
    return items
