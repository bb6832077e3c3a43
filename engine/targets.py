"""Where copied mail goes: the target interface and its IMAP implementation.

The sync talks to a :class:`Target` only. Each message it appends carries a ``key`` that
names it in the uncertain window, so that after a crash the target can tell which of the
messages in flight actually arrived (:meth:`Target.resolve`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

from engine.folders import Namespace, RemoteFolder
from engine.imap import ImapEndpoint, ImapSession, OutgoingMessage, answered_now
from engine.store import Pending

__all__ = ["ImapTarget", "Target"]


class Target(Protocol):
    """A mailbox store the sync can append to."""

    #: Where the copies go, for logs and reports (never a password).
    description: str

    def namespace(self) -> Namespace:
        """The target's personal namespace."""

    def list_folders(self) -> list[RemoteFolder]:
        """Existing folders."""

    def create_folder(self, name: str) -> None:
        """Create a folder (its parents exist already)."""

    def open_folder(self, name: str) -> frozenset[str] | None:
        """Make ``name`` the current folder; return the keywords it stores (None: any)."""

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

    def resolve(self, folder: str, pending: Sequence[Pending], after_ref: int) -> dict[str, str | None]:
        """Which pending messages are on the target: key -> reference, for those found."""

    def set_flags(self, folder: str, ref: str, flags: frozenset[str]) -> None:
        """Replace the flags of one copied message."""

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

    def create_folder(self, name: str) -> None:
        self.session.create_folder(name)

    def open_folder(self, name: str) -> frozenset[str] | None:
        status = self.session.select(name, readonly=False)
        # Appending to the selected folder makes the server update this session's view after
        # every transaction; leave it until a flag change needs it selected again.
        self._folder = None if self.session.unselect() else name
        return status.keywords_allowed

    def _ensure(self, folder: str) -> None:
        """Select ``folder`` (read-write) for a flag change or a deletion."""
        if self._folder != folder:
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
        uidnext = None
        if "UIDPLUS" not in self.session.capabilities:
            uidnext = self.session.select(folder, readonly=False).uidnext
            self._folder = folder
        uids = self.session.append(folder, messages, on_sent=on_sent)
        if all(u is not None for u in uids):
            return [str(u) for u in uids]
        # No APPENDUID: find the new messages by fingerprint among those appended just now.
        found = self._by_fingerprint(folder, max((uidnext or 1) - 1, 0))
        out: list[str | None] = []
        for message in messages:
            refs = found.get(message.fingerprint)
            out.append(str(refs.pop(0)) if refs else None)
        return out

    def _by_fingerprint(self, folder: str, after_uid: int) -> dict[str, list[int]]:
        self._folder = None  # select again: the folder's view must include the latest appends
        self._ensure(folder)
        found: dict[str, list[int]] = defaultdict(list)
        uids = self.session.uids_above(after_uid)
        for start in range(0, len(uids), 1000):
            for meta in self.session.fetch_meta(uids[start : start + 1000]):
                found[meta.fingerprint].append(meta.uid)
        return found

    def resolve(self, folder: str, pending: Sequence[Pending], after_ref: int) -> dict[str, str | None]:
        found = self._by_fingerprint(folder, after_ref)
        wanted = Counter(p.fingerprint for p in pending)
        out: dict[str, str | None] = {}
        for p in pending:
            refs = found.get(p.fingerprint)
            if refs and wanted[p.fingerprint] > 0:
                out[p.key] = str(refs.pop(0))
                wanted[p.fingerprint] -= 1
        return out

    def set_flags(self, folder: str, ref: str, flags: frozenset[str]) -> None:
        self._ensure(folder)
        self.session.store_flags(int(ref), flags)

    def delete(self, folder: str, refs: Sequence[str]) -> None:
        self._ensure(folder)
        self.session.delete([int(r) for r in refs])

    def max_item_size(self) -> int | None:
        return self.session.appendlimit()

    def close(self) -> None:
        self.session.close()
