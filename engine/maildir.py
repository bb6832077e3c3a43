"""The embedded default target: a Maildir++ tree in the layout Dovecot reads.

The INBOX is the root folder; a folder ``A.B`` is the directory ``.A.B`` (names in modified
UTF-7, "." as the hierarchy separator, Dovecot's default ``maildir:~/Maildir``). Flags live in
the file name (``:2,DFRST`` plus keyword letters from ``dovecot-keywords``) and the internal
date is the file's modification time. Each message is written to ``tmp/`` and renamed into
``cur/`` under a name derived from its key, so after a crash the key tells whether it arrived.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from imapclient import imap_utf7

from engine.errors import FolderError, ItemRejected
from engine.folders import Namespace, RemoteFolder
from engine.imap import OutgoingMessage, answered_now
from engine.store import Pending

__all__ = ["MaildirTarget"]

_SYSTEM_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
_KEYWORD_SLOTS = 26
_KEYWORDS_FILE = "dovecot-keywords"


def _decode_dirname(name: str) -> str:
    return str(imap_utf7.decode(name.encode("ascii", "replace")))


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
            tmp = self.path / f"{_KEYWORDS_FILE}.mailshift-tmp"
            tmp.write_text("".join(f"{i} {w}\n" for i, w in enumerate(self.keywords)), "utf-8")
            os.replace(tmp, self.path / _KEYWORDS_FILE)
        return "".join(sorted(letters))

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
            (path / sub).mkdir(parents=True, exist_ok=True)

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

    def create_folder(self, name: str) -> None:
        path = self._path(name)
        self._make(path)
        (path / "maildirfolder").touch()
        self._subscribe(name)

    def _subscribe(self, name: str) -> None:
        subs = self.root / "subscriptions"
        names = subs.read_text("utf-8").splitlines() if subs.exists() else []
        if name not in names:
            with subs.open("a", encoding="utf-8") as fh:
                fh.write(name + "\n")

    def open_folder(self, name: str) -> frozenset[str] | None:
        self._folder(name)
        return None

    def append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> list[str | None]:
        # Files are written here and now: nothing can land after this process dies.
        target = self._folder(folder)
        refs: list[str | None] = []
        for message in messages:
            if b"\x00" in message.body:
                raise ItemRejected("the message contains NUL bytes, which a Maildir served over IMAP cannot deliver")
            tmp = target.path / "tmp" / message.key
            with open(tmp, "wb") as fh:
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

    def resolve(self, folder: str, pending: Sequence[Pending], after_ref: int) -> dict[str, str | None]:
        present = self._folder(folder).files()
        return {p.key: p.key for p in pending if p.key in present}

    def set_flags(self, folder: str, ref: str, flags: frozenset[str]) -> None:
        target = self._folder(folder)
        path = target.files().get(ref)
        if path is None or not path.exists():
            return  # removed on the target meanwhile: nothing to flag
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
