"""Where copied mail goes: the target interface and its IMAP implementation.

The sync talks to a :class:`Target` only. Each message it appends carries a ``key`` that
names it in the uncertain window, so that after a crash the target can tell which of the
messages in flight actually arrived (:meth:`Target.resolve`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from engine.errors import ItemRejected
from engine.folders import Namespace, RemoteFolder
from engine.imap import ImapEndpoint, ImapSession, OutgoingMessage, answered_now
from engine.matching import Candidate, match
from engine.messages import MessageMeta, body_digest

__all__ = ["ImapTarget", "Opened", "Stored", "Target"]


@dataclass(frozen=True)
class Opened:
    """What opening a target folder tells."""

    #: Keywords the folder stores, or None when it accepts any.
    keywords: frozenset[str] | None
    #: The folder's UIDVALIDITY, or None where the target has none (a Maildir tree): a change
    #: means the folder was replaced and its recorded copies cannot be trusted.
    uidvalidity: int | None
    #: Messages in the folder now.
    exists: int


@dataclass(frozen=True)
class Stored:
    """A message as the target stores it."""

    ref: str
    #: :func:`engine.messages.identity_digests`' two digests of its header fields.
    identity: str
    header_digest: str
    size: int
    internaldate: datetime | None
    flags: frozenset[str]

    def candidate(self) -> Candidate:
        """This message for :func:`engine.matching.match`."""
        when = int(self.internaldate.timestamp()) if self.internaldate is not None else None
        return Candidate(self.ref, self.identity, self.size, when)


class Target(Protocol):
    """A mailbox store the sync can append to."""

    #: Where the copies go, for logs and reports (never a password).
    description: str

    def namespace(self) -> Namespace:
        """The target's personal namespace."""

    def list_folders(self) -> list[RemoteFolder]:
        """Existing folders."""

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        """Create a folder, unsubscribed; an existing one is not an error.

        The server makes missing parents where it can (RFC 3501 CREATE). ``special_use`` is an
        RFC 6154 attribute (``\\Sent``) the folder is created with where the target can say
        it (CREATE-SPECIAL-USE); a target that cannot ignores it.

        Raises:
            engine.errors.CommandRefused, engine.errors.FolderError: The target refused the name.
        """

    def subscriptions(self) -> set[str]:
        """The names of the subscribed folders."""

    def subscribe(self, name: str, subscribed: bool) -> None:
        """Subscribe a folder (``subscribed`` True) or unsubscribe it."""

    def open_folder(self, name: str) -> Opened:
        """Make ``name`` the current folder and tell what it is."""

    def append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> list[str | None]:
        """Append messages in one transaction; return a reference for each (None if unknown).

        ``on_sent`` is called just before the last bytes of the transaction go out, i.e. once a
        crash could leave a transaction that the server still commits.

        Raises:
            engine.errors.ItemRejected: The target refused the messages.
        """

    def start_append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> Callable[[], list[str | None]]:
        """Send an append as :meth:`append` does; return what waits for its outcome.

        The sync records the previous chunk and prepares the next one while the server stores
        this one. A target that cannot answer later appends here and now: the returned callable
        then only gives the outcome. The callable returns what :meth:`append` returns, or raises
        ItemRejected.
        """

    def index(self, folder: str, after: str | None = None) -> list[Stored]:
        """The messages of a folder (only those after the reference ``after`` where the target's
        references are ordered, as IMAP UIDs are)."""

    def stored(self, folder: str, refs: Sequence[str], *, headers: Collection[str] = ()) -> list[Stored]:
        """Size and internal date of the messages of these references as the target stores them
        (absent ones are left out); the header digests too for the references in ``headers``
        (reading header fields costs a server more than sizes and dates)."""

    def digests(self, folder: str, refs: Sequence[str]) -> dict[str, str]:
        """:func:`engine.messages.body_digest` of messages by reference (unreadable ones absent)."""

    def is_empty(self, folder: str) -> bool:
        """Whether a folder holds no message."""

    def set_flags(self, folder: str, changes: Sequence[tuple[str, frozenset[str]]]) -> None:
        """Replace the flags of copied messages: ``(reference, flags)`` pairs."""

    def delete(self, folder: str, refs: Sequence[str]) -> None:
        """Remove copied messages (used only when deletions are carried over)."""

    def max_item_size(self) -> int | None:
        """The largest message the target accepts, in bytes, if it says."""

    def close(self) -> None:
        """Release connections."""


class ImapTarget:
    """An IMAP server reached with admin (or the user's own) credentials."""

    def __init__(self, endpoint: ImapEndpoint) -> None:
        self.endpoint = endpoint
        self.description = f"IMAP {endpoint.display}"
        self.session = ImapSession(endpoint, condstore=False)
        self._folder: str | None = None

    def namespace(self) -> Namespace:
        return self.session.namespace()

    def list_folders(self) -> list[RemoteFolder]:
        return self.session.list_folders()

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        self.session.create_folder(name, special_use)

    def subscriptions(self) -> set[str]:
        return self.session.list_subscribed()

    def subscribe(self, name: str, subscribed: bool) -> None:
        self.session.subscribe(name, subscribed)

    def open_folder(self, name: str) -> Opened:
        status = self.session.select(name, readonly=False)
        # Appending to the selected folder makes the server update this session's view after
        # every transaction; leave it until a flag change needs it selected again.
        self._folder = None if self.session.unselect() else name
        return Opened(status.keywords_allowed, status.uidvalidity, status.exists)

    def _ensure(self, folder: str, *, fresh: bool = False) -> None:
        """Select ``folder`` (read-write) for reading, a flag change or a deletion; ``fresh``
        selects it again so that the session sees the messages appended since."""
        if fresh or self._folder != folder:
            self.session.select(folder, readonly=False)
            self._folder = folder

    def append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> list[str | None]:
        return self.start_append(folder, messages, on_sent=on_sent)()

    def start_append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> Callable[[], list[str | None]]:
        if "UIDPLUS" in self.session.capabilities:
            answer = self.session.start_append(folder, messages, on_sent=on_sent)
            return lambda: [str(u) if u is not None else None for u in answer()]
        return answered_now(lambda: self._append_without_uidplus(folder, messages, on_sent))

    def _append_without_uidplus(
        self, folder: str, messages: Sequence[OutgoingMessage], on_sent: Callable[[], None] | None
    ) -> list[str | None]:
        """Append where the server gives no APPENDUID: the new UIDs are found by content among
        the messages above the folder's UIDNEXT of just before (see :mod:`engine.matching`)."""
        uidnext = self.session.select(folder, readonly=False).uidnext
        self._folder = folder
        after = str(uidnext - 1) if uidnext > 1 else None
        try:
            self.session.append(folder, messages, on_sent=on_sent)
        except ItemRejected as exc:
            if exc.stored:  # appended one by one: the leading messages are stored
                exc.stored = self._found(folder, messages[: len(exc.stored)], after)
            raise
        return self._found(folder, messages, after)

    def _found(self, folder: str, messages: Sequence[OutgoingMessage], after: str | None) -> list[str | None]:
        self._ensure(folder, fresh=True)
        sent = {m.key: m for m in messages}
        pairs = match(
            [Candidate(m.key, m.fingerprint, len(m.body), int(m.internaldate.timestamp())) for m in messages],
            [s.candidate() for s in self.index(folder, after)],
            lambda keys, refs: ({k: body_digest(sent[k].body) for k in keys}, self.digests(folder, refs)),
        )
        return [pairs.get(m.key) for m in messages]

    def _metas(self, uids: Sequence[int]) -> list[Stored]:
        return [_stored(meta) for meta in self.session.fetch_meta(uids)]

    def index(self, folder: str, after: str | None = None) -> list[Stored]:
        self._ensure(folder, fresh=True)
        return self._metas(self.session.uids_above(int(after) if after else 0))

    def stored(self, folder: str, refs: Sequence[str], *, headers: Collection[str] = ()) -> list[Stored]:
        self._ensure(folder, fresh=True)
        full = {s.ref: s for s in self._metas(sorted(int(r) for r in refs if r in headers))}
        plain = [
            Stored(str(uid), "", "", size, date, frozenset())
            for uid, (size, date) in self.session.fetch_sizes(sorted(int(r) for r in refs if r not in full)).items()
        ]
        return [*full.values(), *plain]

    def digests(self, folder: str, refs: Sequence[str]) -> dict[str, str]:
        self._ensure(folder)
        return {str(uid): digest for uid, digest in self.session.body_digests([int(r) for r in refs]).items()}

    def is_empty(self, folder: str) -> bool:
        return int(self.session.folder_status(folder, ["MESSAGES"]).get(b"MESSAGES", 0)) == 0

    def set_flags(self, folder: str, changes: Sequence[tuple[str, frozenset[str]]]) -> None:
        if not changes:
            return
        self._ensure(folder)
        by_flags: dict[frozenset[str], list[int]] = defaultdict(list)
        for ref, flags in changes:
            by_flags[flags].append(int(ref))
        for flags, uids in by_flags.items():
            self.session.store_flags(uids, flags)

    def delete(self, folder: str, refs: Sequence[str]) -> None:
        self._ensure(folder)
        self.session.delete([int(r) for r in refs])

    def max_item_size(self) -> int | None:
        return self.session.appendlimit()

    def close(self) -> None:
        self.session.close()


def _stored(meta: MessageMeta) -> Stored:
    return Stored(str(meta.uid), meta.fingerprint, meta.header_digest, meta.size, meta.internaldate, meta.flags)
