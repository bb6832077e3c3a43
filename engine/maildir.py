"""The embedded default target: a Maildir++ tree in the layout Dovecot reads.

The INBOX is the root folder; a folder ``A.B`` is the directory ``.A.B`` (names in modified
UTF-7, "." as the hierarchy separator, Dovecot's default ``maildir:~/Maildir``). Flags live in
the file name (``:2,DFRST`` plus keyword letters from ``dovecot-keywords``) and the internal
date is the file's modification time. Each message is written to ``tmp/`` and renamed into
``cur/`` under a name derived from its key, so after a crash the key tells whether it arrived.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from imapclient import imap_utf7

from engine.errors import FolderError, ItemRejected
from engine.folders import Namespace, RemoteFolder
from engine.imap import OutgoingMessage, answered_now
from engine.messages import body_digest, identity_digests
from engine.private import PRIVATE_FILE_MODE, private_file, private_folder
from engine.targets import Opened, Stored

__all__ = ["MaildirTarget"]

_SYSTEM_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
_KEYWORD_SLOTS = 26
_KEYWORDS_FILE = "dovecot-keywords"
#: Bytes read at a time from the start of a message file to find its header fields, and the
#: most read (a header section longer than that is cut there).
_HEADER_READ_BYTES = 16 * 1024
_HEADER_MAX_BYTES = 256 * 1024


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _header_section(fh: BinaryIO) -> bytes:
    """The start of a message file up to the end of its header section (or the read limit)."""
    head = b""
    while len(head) < _HEADER_MAX_BYTES:
        more = fh.read(_HEADER_READ_BYTES)
        head += more
        if not more or _BLANK_LINE.search(head, max(len(head) - len(more) - 4, 0)):
            break
    return head


_temporary_names = itertools.count()


def _unique_name(stem: str) -> str:
    """A temporary file name no other writer uses: the stem, then time, process, thread, counter and host.

    The Maildir convention: two processes (or two threads of one) writing the same message into
    one folder each write their own file in ``tmp/`` before renaming it to its final name.
    """
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    return (f"{stem}.{time.time_ns() // 1000}.P{os.getpid()}T{threading.get_ident()}Q{next(_temporary_names)}"
            f".{host}.mailshift-tmp")


def _decode_dirname(name: str) -> str:
    return str(imap_utf7.decode(name.encode("ascii", "replace")))


#: Dovecot's subscriptions file: a version line, an empty line, then one folder a line with its
#: levels (modified UTF-7, without the namespace prefix) separated by tabs.
_SUBSCRIPTIONS_FILE = "subscriptions"
_SUBSCRIPTIONS_HEADER = "V\t2"
#: Dovecot's tab-escaping (str_tabescape) of the characters a line cannot hold.
_TAB_ESCAPES = {"\x01": "\x011", "\t": "\x01t", "\r": "\x01r", "\n": "\x01n"}


def _tab_escape(text: str) -> str:
    return "".join(_TAB_ESCAPES.get(char, char) for char in text)


def _tab_unescape(text: str) -> str:
    out, chars = [], iter(text)
    unescaped = {escaped[1]: char for char, escaped in _TAB_ESCAPES.items()}
    for char in chars:
        out.append(unescaped.get(next(chars, ""), "") if char == "\x01" else char)
    return "".join(out)


class _Folder:
    """One Maildir folder directory and its keyword table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[str, Path] | None = None
        self.keywords: list[str] = []
        kw = path / _KEYWORDS_FILE
        if kw.exists():
            slots: dict[int, str] = {}
            for line in kw.read_text("utf-8", "replace").splitlines():
                index, _, word = line.partition(" ")
                if index.isdigit() and word:
                    slots[int(index)] = word
            self.keywords = [slots[i] for i in sorted(slots)]

    def letters(self, flags: frozenset[str]) -> str:
        """The info letters for ``flags``, growing the keyword table as needed."""
        letters = {_SYSTEM_LETTERS[f] for f in flags if f in _SYSTEM_LETTERS}
        added = False
        for flag in sorted(f for f in flags if not f.startswith("\\")):
            if flag not in self.keywords:
                if len(self.keywords) >= _KEYWORD_SLOTS:
                    continue  # Maildir has 26 keyword letters per folder; the rest cannot be stored
                self.keywords.append(flag)
                added = True
            letters.add(chr(ord("a") + self.keywords.index(flag)))
        if added:
            tmp = self.path / _unique_name(_KEYWORDS_FILE)
            private_file(tmp).write_text("".join(f"{i} {w}\n" for i, w in enumerate(self.keywords)), "utf-8")
            os.replace(tmp, self.path / _KEYWORDS_FILE)
        return "".join(sorted(letters))

    def flags(self, filename: str) -> frozenset[str]:
        """The flags a message file's name carries (system flags and known keyword letters)."""
        info = filename.split(":2,", 1)[1] if ":2," in filename else ""
        system = {letter: flag for flag, letter in _SYSTEM_LETTERS.items()}
        out = {system[c] for c in info if c in system}
        out |= {self.keywords[ord(c) - ord("a")] for c in info if "a" <= c <= "z" and ord(c) - ord("a") < len(self.keywords)}
        return frozenset(out)

    def files(self) -> dict[str, Path]:
        """Message files of the folder by key (the name before ``,S=`` or ``:2,``), read once."""
        if self._files is None:
            self._files = {}
            for sub in ("cur", "new"):
                with os.scandir(self.path / sub) as entries:
                    for entry in entries:
                        self._files[entry.name.split(",", 1)[0].split(":", 1)[0]] = Path(entry.path)
        return self._files


class MaildirTarget:
    """A local Maildir++ tree as the target of a sync."""

    def __init__(self, root: str | Path, *, fsync: bool = True) -> None:
        """Open (creating when absent) the Maildir at ``root``.

        Args:
            root: The Maildir directory (the INBOX lives in its cur/new/tmp).
            fsync: Flush each message to disk before recording it as copied.
        """
        self.root = Path(root)
        self.fsync = fsync
        self.description = f"Maildir {self.root}"
        self._folders: dict[str, _Folder] = {}
        self._make(self.root)

    @staticmethod
    def _make(path: Path) -> None:
        for sub in ("cur", "new", "tmp"):
            private_folder(path / sub)

    def _path(self, name: str) -> Path:
        if name.upper() == "INBOX":
            return self.root
        encoded = imap_utf7.encode(name).decode("ascii")
        if "/" in encoded or encoded in (".", "..") or encoded.startswith("."):
            raise FolderError(name, "this name cannot be stored in a Maildir++ tree")
        return self.root / f".{encoded}"

    def _folder(self, name: str) -> _Folder:
        folder = self._folders.get(name)
        if folder is None:
            path = self._path(name)
            if not (path / "cur").is_dir():
                raise FolderError(name, "no such folder in the target Maildir")
            folder = self._folders[name] = _Folder(path)
        return folder

    def namespace(self) -> Namespace:
        return Namespace(prefix="", delimiter=".")

    def list_folders(self) -> list[RemoteFolder]:
        out = [RemoteFolder(name="INBOX", delimiter=".", flags=frozenset())]
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.name.startswith(".") and entry.name not in (".", "..") and os.path.isdir(os.path.join(entry.path, "cur")):
                out.append(RemoteFolder(name=_decode_dirname(entry.name[1:]), delimiter=".", flags=frozenset()))
        return out

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        # A Maildir++ tree has no place for special-use attributes (Dovecot's come from its
        # configuration), so ``special_use`` is not kept. Dovecot refuses control characters
        # in new names, and so does this target.
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
            raise FolderError(name, "control characters are not allowed in a folder name")
        path = self._path(name)
        self._make(path)
        (path / "maildirfolder").touch()

    def subscriptions(self) -> set[str]:
        """The folders listed in the tree's ``subscriptions`` file (Dovecot's version 2
        format, or one Unicode name a line as older Mailshift versions wrote it)."""
        try:
            lines = (self.root / _SUBSCRIPTIONS_FILE).read_text("utf-8").split("\n")
        except FileNotFoundError:
            return set()
        if lines[0] != _SUBSCRIPTIONS_HEADER:
            return {line for line in lines if line}
        body = lines[lines.index("", 1) + 1 :] if "" in lines[1:] else []
        return {
            ".".join(_decode_dirname(_tab_unescape(level)) for level in line.split("\t")) for line in body if line
        }

    def subscribe(self, name: str, subscribed: bool) -> None:
        names = self.subscriptions()
        if (name in names) == subscribed:
            return
        names = names | {name} if subscribed else names - {name}
        entries = sorted(
            "\t".join(_tab_escape(imap_utf7.encode(level).decode("ascii")) for level in folder.split("."))
            for folder in names
        )
        path = self.root / _SUBSCRIPTIONS_FILE
        tmp = path.with_name(_unique_name(_SUBSCRIPTIONS_FILE))
        private_file(tmp).write_text(f"{_SUBSCRIPTIONS_HEADER}\n\n" + "".join(f"{entry}\n" for entry in entries), "utf-8")
        os.replace(tmp, path)

    def open_folder(self, name: str) -> Opened:
        folder = self._folder(name)
        return Opened(None, None, len(folder.files()))

    def append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> list[str | None]:
        # Files are written here and now: nothing can land after this process dies.
        target = self._folder(folder)
        refs: list[str | None] = []
        for message in messages:
            if b"\x00" in message.body:
                raise ItemRejected("the message contains NUL bytes, which a Maildir served over IMAP cannot deliver")
            tmp = target.path / "tmp" / _unique_name(message.key)
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE), "wb") as fh:
                fh.write(message.body)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            stamp = message.internaldate.timestamp()
            os.utime(tmp, (stamp, stamp))
            name = f"{message.key},S={len(message.body)}:2,{target.letters(message.flags)}"
            os.rename(tmp, target.path / "cur" / name)
            target.files()[message.key] = target.path / "cur" / name
            refs.append(message.key)
        return refs

    def start_append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> Callable[[], list[str | None]]:
        # Local files: appended here and now, the outcome given later.
        return answered_now(lambda: self.append(folder, messages, on_sent=on_sent))

    def index(self, folder: str, after: str | None = None) -> list[Stored]:
        # Keys are not ordered: every message, whatever ``after``.
        return self.stored(folder, list(self._folder(folder).files()))

    def stored(self, folder: str, refs: Sequence[str], *, headers: Collection[str] = ()) -> list[Stored]:
        # The header block is read anyway: a local file costs the same either way.
        target = self._folder(folder)
        files = target.files()
        out: list[Stored] = []
        for ref in refs:
            path = files.get(ref)
            if path is None:
                continue
            try:
                with open(path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    mtime = os.fstat(fh.fileno()).st_mtime
                    head = _header_section(fh)
            except FileNotFoundError:
                continue  # removed by the server meanwhile (expunged, or moved to cur/)
            block = _BLANK_LINE.split(head, maxsplit=1)[0]
            identity, exact = identity_digests(block)
            when = datetime.fromtimestamp(mtime, timezone.utc)
            out.append(Stored(ref, identity, exact, size, when, target.flags(path.name)))
        return out

    def digests(self, folder: str, refs: Sequence[str]) -> dict[str, str]:
        files = self._folder(folder).files()
        out: dict[str, str] = {}
        for ref in refs:
            path = files.get(ref)
            if path is not None and path.exists():
                out[ref] = body_digest(path.read_bytes())
        return out

    def is_empty(self, folder: str) -> bool:
        return not self._folder(folder).files()

    def set_flags(self, folder: str, changes: Sequence[tuple[str, frozenset[str]]]) -> None:
        target = self._folder(folder)
        for ref, flags in changes:
            path = target.files().get(ref)
            if path is None or not path.exists():
                continue  # removed on the target meanwhile: nothing to flag
            base = path.name.split(":2,", 1)[0]
            new = target.path / "cur" / f"{base}:2,{target.letters(flags)}"
            if new != path:
                os.rename(path, new)
                target.files()[ref] = new

    def delete(self, folder: str, refs: Sequence[str]) -> None:
        files = self._folder(folder).files()
        for ref in refs:
            path = files.pop(ref, None)
            if path is not None:
                path.unlink(missing_ok=True)

    def max_item_size(self) -> int | None:
        return None

    def close(self) -> None:
        self._folders.clear()
