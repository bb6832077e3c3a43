"""Copies one mailbox from a source IMAP server to a target, incrementally and crash-safely.

How a folder is copied:

1. Messages left in the uncertain window by an interrupted run (recorded as *pending* before
   their APPEND) are looked up on the target by key or fingerprint and recorded as copied
   when found; the others are simply copied again.
2. When the source folder's UIDVALIDITY changed, the messages recorded under the old one form
   a pool of fingerprints: a source message matching one is recorded, not copied again.
3. Flag changes of copied messages are carried (only those changed since the last HIGHESTMODSEQ
   when the source has CONDSTORE), and, if asked, deletions.
4. New messages (UID above the high-water mark, not yet recorded) are fetched in chunks bounded
   by bytes by one thread while another appends the previous chunk (MULTIAPPEND where offered),
   recording pending rows before each APPEND and the outcome after it, in one transaction.
   Once the fetching thread has fetched the last chunk of a folder, it opens the next folder on
   the source and fetches that folder's first chunk while the last ones are still appended, so
   the appending thread does not wait at every folder start (see :class:`_Lookahead`).

Transient failures (a dropped connection, throttling) close both connections and restart the
folder from the recorded state after a bounded pause.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from engine import defaults
from engine.errors import (
    CommandRefused,
    ConnectionLost,
    FolderError,
    Interrupted,
    ItemRejected,
    LimitExceeded,
    MigrationError,
    Scope,
    Throttled,
)
from engine.folders import FolderPlan, MailboxPlan, listing_digest, plan_mailbox
from engine.provision import provision
from engine.imap import FolderStatus, ImapEndpoint, ImapSession, OutgoingMessage
from engine.matching import Candidate, Digests, alterations, match
from engine.messages import MessageMeta, normalize_flags, target_flags
from engine.store import Altered, FolderState, Mapped, Pending, Skipped, Store
from engine.targets import Opened, Target

__all__ = [
    "MailboxSync",
    "MemoryBudget",
    "Outcome",
    "Progress",
    "SyncOptions",
    "SyncReport",
    "keep_large_blocks_out_of_the_heap",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
F = TypeVar("F")

LARGE = "LargeItem"
BAD = "BadItem"


class Outcome(StrEnum):
    """How a mailbox sync ended."""

    SYNCED = "Synced"
    SYNCED_WITH_ERRORS = "SyncedWithErrors"
    FAILED = "Failed"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class SyncOptions:
    """What to copy and how hard to try. Item limits use :data:`defaults.UNLIMITED` for none."""

    exclude: tuple[str, ...] = ()
    user_root: str | None = None
    max_item_size: int = defaults.MAX_ITEM_BYTES
    bad_item_limit: int = defaults.BAD_ITEM_LIMIT
    large_item_limit: int = defaults.LARGE_ITEM_LIMIT
    sync_deletions: bool = False
    chunk_bytes: int = defaults.APPEND_CHUNK_BYTES
    chunk_messages: int = defaults.APPEND_CHUNK_MESSAGES
    in_flight_bytes: int = defaults.IN_FLIGHT_BYTES
    reconnect_attempts: int = defaults.RECONNECT_ATTEMPTS
    backoff_start: float = defaults.RECONNECT_BACKOFF_START_SECONDS
    backoff_max: float = defaults.RECONNECT_BACKOFF_MAX_SECONDS
    throttle_max_pause: float = defaults.THROTTLE_MAX_PAUSE_SECONDS
    late_commit_grace: float = defaults.LATE_COMMIT_GRACE_SECONDS


class Progress:
    """Live counters of a running sync, safe to read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._values: dict[str, Any] = {
            "folders_total": 0,
            "folders_done": 0,
            "current_folder": None,
            "messages_total": 0,
            "bytes_total": 0,
            "messages_copied": 0,
            "bytes_copied": 0,
            "messages_found": 0,
            "messages_skipped": 0,
            "flags_updated": 0,
            "messages_deleted": 0,
        }

    def add(self, **counts: int) -> None:
        """Increase counters by the given amounts."""
        with self._lock:
            for name, value in counts.items():
                self._values[name] += value

    def set(self, **values: Any) -> None:
        """Set counters or fields to values."""
        with self._lock:
            self._values.update(values)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the counters, with elapsed seconds and rates."""
        with self._lock:
            out = dict(self._values)
        elapsed = max(time.monotonic() - self._started, 1e-9)
        out["seconds"] = round(elapsed, 3)
        out["messages_per_second"] = round(out["messages_copied"] / elapsed, 1)
        out["bytes_per_second"] = int(out["bytes_copied"] / elapsed)
        return out


@dataclass
class SyncReport:
    """The outcome of one run, for the CLI and the batch layer."""

    mailbox: str
    outcome: Outcome
    error: str | None
    progress: dict[str, Any]
    folders: list[dict[str, str]] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    folder_errors: list[str] = field(default_factory=list)
    skipped_items: list[Skipped] = field(default_factory=list)
    #: Things the administrator should know that did not stop the copy (e.g. what a login
    #: form cannot carry over).
    warnings: list[str] = field(default_factory=list)
    #: Copied messages the target stored differently from the source (the copy is exact only
    #: when this is empty).
    altered: list[Altered] = field(default_factory=list)

    def alteration_summary(self) -> dict[str, int]:
        """How many messages the target changed, by kind of change."""
        counts: dict[str, int] = defaultdict(int)
        for item in self.altered:
            for kind in item.kinds:
                counts[kind] += 1
        return dict(sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (never includes credentials)."""
        return {
            "mailbox": self.mailbox,
            "outcome": self.outcome.value,
            "error": self.error,
            **self.progress,
            "folders": self.folders,
            "excluded": self.excluded,
            "folder_errors": self.folder_errors,
            "warnings": self.warnings,
            "altered": self.alteration_summary(),
            "altered_items": [vars(a) for a in self.altered],
            "skipped_items": [vars(s) for s in self.skipped_items],
        }


@dataclass
class _Sending:
    """A chunk on its way to the target: its messages as sent, and what reads the answer."""

    chunk: _Chunk
    outgoing: list[OutgoingMessage]
    metas: dict[str, MessageMeta]
    answer: Callable[[], list[str | None]] | None = None


@dataclass(frozen=True)
class _Appended:
    """A message appended in this run, as sent, to check what the target stored."""

    uid: int
    ref: str
    size: int
    internaldate: datetime
    header_digest: str
    eight_bit: bool
    #: Whether the bytes sent end with CRLF (a size 2 bytes larger is then not a line end added).
    ends_crlf: bool

    @classmethod
    def of(cls, meta: MessageMeta, ref: str, body: bytes) -> _Appended:
        return cls(meta.uid, ref, len(body), meta.internaldate, meta.header_digest, meta.eight_bit,
                   body.endswith(b"\r\n"))


@dataclass
class _Chunk:
    """What the fetching thread hands to the appending one."""

    messages: list[tuple[MessageMeta, bytes]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    highest_uid: int = 0
    nbytes: int = 0


class MemoryBudget:
    """Bounds the bytes of message bodies held between fetching and appending.

    Each sync gets its own budget unless it is given one: a process that runs several syncs at
    once (``mailshift sync --mailboxes``, the migration service) gives them the same one, so the
    process holds about ``max(limit, largest message)`` bytes of bodies whatever the number of
    mailboxes. Requests are served in arrival order: a message larger than what is free waits
    for the bytes held to drain and is not overtaken by smaller requests meanwhile. A request
    larger than the whole budget is granted once nothing else is held.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._waiting: deque[object] = deque()
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        """Bytes held now."""
        with self._cond:
            return self._used

    def acquire(self, n: int, stop: threading.Event) -> bool:
        """Wait until ``n`` bytes may be held; False (nothing acquired) when ``stop`` is set first."""
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while self._waiting[0] is not ticket or (self._used and self._used + n > self.limit):
                    if stop.is_set():
                        return False
                    self._cond.wait(0.2)
                self._used += n
                return True
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def release(self, n: int) -> None:
        """Give back ``n`` bytes."""
        with self._cond:
            self._used -= n
            self._cond.notify_all()


def keep_large_blocks_out_of_the_heap(threshold: int = 1024 * 1024) -> bool:
    """Have the C library serve allocations of ``threshold`` bytes and more with ``mmap``.

    Message bodies are large, short-lived blocks allocated in one thread and freed in another.
    By default glibc raises its mmap threshold after such frees and then serves the next large
    bodies from the threads' heaps, whose freed space the process keeps: peak RSS then depends
    on the order of allocations, not only on :class:`MemoryBudget` (two mailboxes with 30-40 MiB
    messages copied at once peaked at 108-135 MB, and at 105-107 MB with a fixed 1 MiB
    threshold). Call once at start-up in a process that copies mailboxes.

    Returns:
        False where the C library is not glibc (nothing changed).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:
        return False
    if mallopt is None:
        return False
    m_mmap_threshold = -3  # glibc's M_MMAP_THRESHOLD; setting it also stops the dynamic adjustment
    return bool(mallopt(m_mmap_threshold, threshold))


class _ByteBudget:
    """One folder copy's share of a :class:`MemoryBudget`, which it can give back whole.

    One share covers a folder's chunks and the next folder's first chunk fetched ahead, so
    memory stays bounded across folder boundaries too. Bytes of chunks that are dropped (a
    failed copy, a fetch ahead that is not used) are given back by :meth:`drain`.
    """

    def __init__(self, memory: MemoryBudget, stop: threading.Event) -> None:
        self._memory = memory
        self._held = 0
        self._lock = threading.Lock()
        #: Ends a wait; each folder's copy sets its own event here.
        self.stop = stop

    def acquire(self, n: int) -> bool:
        if not self._memory.acquire(n, self.stop):
            return False
        with self._lock:
            self._held += n
        return True

    def release(self, n: int) -> None:
        with self._lock:
            self._held -= n
        self._memory.release(n)

    def drain(self) -> None:
        """Give back everything still held (the chunks it covered are dropped)."""
        with self._lock:
            held, self._held = self._held, 0
        if held:
            self._memory.release(held)


@dataclass(frozen=True)
class _Lookahead:
    """The next folder as the state database describes it, for fetching its first chunk ahead.

    Read by the thread that owns the store before the current folder's copy starts; the
    folder's rows do not change meanwhile (only the current folder's are written), and the
    folder's own start checks them again before using what was fetched.
    """

    plan: FolderPlan
    #: The recorded UIDVALIDITY, or None for a folder never copied (no rows at all).
    uidvalidity: int | None
    highest: int
    done: frozenset[int]


@dataclass
class _Prefetched:
    """What the fetching thread prepared for the next folder: its SELECT, the UIDs to copy,
    the first chunk (bodies included, held in ``budget``) and the rest still to fetch."""

    ahead: _Lookahead
    status: FolderStatus
    uids: list[int]
    budget: _ByteBudget
    limit: int
    first: list[_Chunk]
    rest: Iterator[_Chunk]


def _windows(uids: list[int], first: int, rest: int) -> Iterator[list[int]]:
    """``uids`` in metadata windows: a first one of ``first`` UIDs, then ``rest`` at a time.

    The appending thread waits for the first chunk of each folder; a small first window lets
    the first bodies be fetched sooner, and the later windows overlap with the appends.
    """
    start = 0
    size = max(1, min(first, rest))
    while start < len(uids):
        yield uids[start : start + size]
        start += size
        size = rest


def _taken(items: list[_Chunk]) -> Iterator[_Chunk]:
    """The items of a list, each removed from it as it is handed out (nothing stays referenced)."""
    while items:
        yield items.pop(0)


def _limit_text(limit: int) -> str:
    return "Unlimited" if limit == defaults.UNLIMITED else str(limit)


class _MailboxLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes a sync's log lines with its mailbox and adds it as the ``mailbox`` extra."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"mailbox {extra.get('mailbox')}: {msg}", kwargs


class MailboxSync:
    """One mailbox's copy from a source account to a target."""

    def __init__(
        self,
        source: ImapEndpoint,
        target_factory: Callable[[], Target],
        store: Store,
        key: str,
        options: SyncOptions | None = None,
        stop: threading.Event | None = None,
        memory: MemoryBudget | None = None,
        label: str | None = None,
    ) -> None:
        """Prepare a sync; nothing connects before :meth:`run`.

        Args:
            source: The source account.
            target_factory: Opens the target (called again after a lost connection).
            store: The state database.
            key: Names this mailbox in the store (the same key continues the same copy).
            options: What to copy and limits.
            stop: When set, the sync ends at its next safe point (after the chunk being
                appended is recorded) with the outcome Stopped.
            memory: The budget of bodies held in memory, shared with the other syncs of the
                process; by default the sync's own of ``options.in_flight_bytes``.
            label: How the log lines name the mailbox (e.g. its address); the key by default.
        """
        self.source = source
        self.target_factory = target_factory
        self.store = store
        self.key = key
        #: How logs name the mailbox (its address, where the caller knows it).
        self._log = _MailboxLog(log, {"mailbox": label or key})
        self.options = options or SyncOptions()
        self.progress = Progress()
        self.stop = stop or threading.Event()
        self._src: ImapSession | None = None
        self._tgt: Target | None = None
        self._mailbox = 0
        self._plan: MailboxPlan | None = None
        #: The UIDVALIDITY each folder had when opened, checked after a reconnection.
        self._uidvalidity: dict[str, int] = {}
        self._prefetched: _Prefetched | None = None
        self._listed: dict[str, dict[bytes, int]] = {}
        self._memory = memory or MemoryBudget(self.options.in_flight_bytes)
        #: Every share taken from ``_memory`` in this run, given back whole when it ends.
        self._budgets: list[_ByteBudget] = []
        #: This run's folder errors (a folder not copied, the rest of the mailbox copied) and
        #: warnings, reported in :class:`SyncReport`.
        self._folder_errors: list[str] = []
        self._warnings: list[str] = []
        #: Chunk bounds now: halved after a lost connection, doubled back (up to the options')
        #: after each chunk stored, so that a link that drops every megabyte still gets through.
        self._chunk_bytes = self.options.chunk_bytes
        self._chunk_messages = self.options.chunk_messages
        #: Counts steps that recorded progress; a retry that follows progress starts its
        #: attempt budget afresh.
        self._progress_made = 0
        #: Messages appended to the current folder in this run, checked against what the
        #: target stored once the folder is copied.
        self._appended: list[_Appended] = []
        #: The highest target reference recorded when the current folder's copy began.
        self._floor: str | None = None
        self._run_started = 0.0

    # -- connections ----------------------------------------------------------------------

    def _source(self) -> ImapSession:
        if self._src is None:
            self._src = ImapSession(self.source)
        return self._src

    def _target(self) -> Target:
        if self._tgt is None:
            self._tgt = self.target_factory()
        return self._tgt

    def _connect_both(self) -> tuple[ImapSession, Target]:
        """Both connections, the target's opened while the source logs in (a re-sync with
        nothing new spends much of its time logging in)."""
        if self._src is None and self._tgt is None:
            opened: list[Target | BaseException] = []

            def open_target() -> None:
                try:
                    opened.append(self.target_factory())
                except BaseException as exc:  # noqa: BLE001 - raised in the calling thread
                    opened.append(exc)

            thread = threading.Thread(target=open_target, name="connect target", daemon=True)
            thread.start()
            try:
                self._source()
            finally:
                thread.join()
                result = opened[0]
                if not isinstance(result, BaseException):
                    self._tgt = result  # closed by _reset if the source failed
            if isinstance(result, BaseException):
                raise result
        return self._source(), self._target()

    def _reset(self) -> None:
        self._discard_prefetched()
        for closer in (self._src, self._tgt):
            if closer is not None:
                try:
                    closer.close()
                except MigrationError:
                    pass
        self._src = self._tgt = None

    def _retrying(self, what: str, step: Callable[[], T]) -> T:
        """Run ``step``; on a lost connection or throttling, reconnect and run it again.

        Only attempts without progress count against the budget: a link that drops now and
        then, or every megabyte, still gets the whole mailbox through. After each lost
        connection the chunks are halved (down to one message) so the next attempt fits.
        """
        attempts = 0
        delay = self.options.backoff_start
        mark = self._progress_made
        while True:
            try:
                return step()
            except Throttled as exc:
                attempts = self._count_attempt(attempts, mark)
                mark = self._progress_made
                self._reset()
                if attempts > self.options.reconnect_attempts * 4:
                    raise
                pause = min(exc.pause_seconds, self.options.throttle_max_pause)
                self._log.warning("%s: throttled (%s); pausing %.1f s", what, exc, pause)
                self._pause(pause)
            except ConnectionLost as exc:
                if self._progress_made != mark:
                    delay = self.options.backoff_start
                attempts = self._count_attempt(attempts, mark)
                mark = self._progress_made
                self._reset()
                self._chunk_bytes = max(self._chunk_bytes // 2, 1)
                self._chunk_messages = max(self._chunk_messages // 2, 1)
                if attempts > self.options.reconnect_attempts:
                    raise ConnectionLost(f"{what}: gave up after {attempts} attempts without progress: {exc}") from exc
                self._log.warning("%s: %s; reconnecting in %.1f s", what, exc, delay)
                self._pause(delay)
                delay = min(delay * 2, self.options.backoff_max)

    def _count_attempt(self, attempts: int, mark: int) -> int:
        """``attempts`` plus this one, starting again from one after progress since ``mark``."""
        return 1 if self._progress_made != mark else attempts + 1

    # -- the run --------------------------------------------------------------------------

    def run(self) -> SyncReport:
        """Copy what is new since the last run; never raises for mailbox-level failures.

        Raises:
            engine.errors.StateError: The state database failed (a service-level error).
        """
        self._mailbox = self.store.mailbox(self.key)
        self._folder_errors = folder_errors = []
        self._warnings = []
        self._run_started = time.time()
        if self.options.user_root:
            self._warnings.append(
                "UserRoot reads the user's folders as the administrator sees them (shared folders): "
                "servers that keep \\Seen per user (Cyrus) give the administrator's read state, not the user's"
            )
        error: str | None = None
        stopped = False
        try:
            plan = self._retrying("listing folders", self._make_plan)
            self._log.info("%d folders to sync", len(plan.folders))
            for folder in plan.folders:
                self._check_stop()
                self.progress.set(current_folder=folder.source)
                try:
                    self._retrying(f"folder {folder.source!r}", lambda f=folder: self._sync_folder(f))  # type: ignore[misc]
                except FolderError as exc:
                    folder_errors.append(str(exc))
                    self._log.error("%s", exc)
                self.progress.add(folders_done=1)
            self._check_limits()
        except Interrupted:
            stopped = True
        except MigrationError as exc:
            if exc.scope is Scope.SERVICE:
                raise
            error = str(exc)
            self._log.error("failed: %s", exc)
        finally:
            self._reset()
            for budget in self._budgets:
                budget.drain()
            self._budgets.clear()
            self.progress.set(current_folder=None)
        if error:
            outcome = Outcome.FAILED
        elif stopped:
            outcome = Outcome.STOPPED
        else:
            outcome = Outcome.SYNCED_WITH_ERRORS if folder_errors else Outcome.SYNCED
        done = self._plan
        return SyncReport(
            mailbox=self.key,
            outcome=outcome,
            error=error,
            progress=self.progress.snapshot(),
            folders=[
                {"source": f.source, "target": f.target, **({"note": f.note} if f.note else {})}
                for f in (done.folders if done else [])
            ],
            excluded=[{"source": s, "pattern": p} for s, p in (done.excluded if done else [])],
            folder_errors=folder_errors,
            skipped_items=self.store.skipped(self._mailbox),
            warnings=list(self._warnings),
            altered=self.store.altered(self._mailbox),
        )

    def _pause(self, seconds: float) -> None:
        """Wait before trying again, but end the wait (and the sync) at once when a stop is requested."""
        if self.stop.wait(seconds):
            raise Interrupted(f"mailbox {self.key}: stopped on request")

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted(f"mailbox {self.key}: stopped on request")

    def _check_limits(self) -> None:
        """Fail the mailbox when this run skipped more items than the limits allow.

        Checked once every folder has been copied, so that a failed mailbox still holds
        everything that could be copied; every later run tries the skipped items again.
        """
        counts = self.store.skipped_counts(self._mailbox, self._run_started)
        for kind, limit, name in (
            (BAD, self.options.bad_item_limit, "BadItemLimit"),
            (LARGE, self.options.large_item_limit, "LargeItemLimit"),
        ):
            found = counts.get(kind, 0)
            if limit != defaults.UNLIMITED and found > limit:
                noun = "bad items" if kind == BAD else "large items"
                raise LimitExceeded(
                    f"the mailbox has {found} {noun}, more than {name} {_limit_text(limit)} allows; "
                    f"see the skipped-item report, then raise {name} to accept them"
                )

    def _make_plan(self) -> MailboxPlan:
        """Plan the folders, make them on the target, and read every source folder's STATUS.

        A re-sync whose source lists the same folders and subscriptions as at the last run
        reuses that run's plan, and when the STATUS answers show nothing new in any folder the
        target is not even connected: a daily incremental sync of an unchanged mailbox costs
        the target nothing. Otherwise the target's folders are listed, the plan made again,
        its folders created (:func:`engine.provision.provision`: refused names renamed by the
        rule of :mod:`engine.folders`, a folder that cannot be created at all is a folder error
        of this run) and the source's subscriptions mirrored.
        """
        self._listed = {}
        saved = self.store.saved_plan(self._mailbox)
        src = self._connect_both()[0] if saved is None else self._source()
        listed, namespace, subscribed = src.list_folders(), src.namespace(), src.list_subscribed()
        listing = listing_digest(
            listed, namespace, exclude=self.options.exclude, user_root=self.options.user_root, subscribed=subscribed
        )
        previous = MailboxPlan.from_json(saved, listing) if saved is not None else None
        if previous is not None:
            self._listed = self._source_statuses(src, previous.folders)
            if all(self._unchanged(folder) for folder in previous.folders):
                return self._use_plan(previous)
        tgt = self._target()
        target_listed, target_ns = tgt.list_folders(), tgt.namespace()
        planned = plan_mailbox(
            listed, namespace, target_listed, target_ns, exclude=self.options.exclude, user_root=self.options.user_root
        )
        made = provision(
            planned, tgt, target_listed, target_ns, subscribed, namespace,
            earlier=MailboxPlan.from_json(saved) if saved is not None else None,
        )
        self._folder_errors.extend(made.errors)
        self._warnings.extend(made.warnings)
        plan = made.plan
        self.store.save_plan(self._mailbox, plan.to_json(listing))
        unread = [folder for folder in plan.folders if folder.source not in self._listed]
        self._listed.update(self._source_statuses(src, unread))
        return self._use_plan(plan)

    def _use_plan(self, plan: MailboxPlan) -> MailboxPlan:
        self._plan = plan
        self.progress.set(
            folders_total=len(plan.folders),
            messages_total=sum(s.get(b"MESSAGES", 0) for s in self._listed.values()),
            bytes_total=sum(s.get(b"SIZE", 0) for s in self._listed.values()),
        )
        return plan

    @staticmethod
    def _source_statuses(src: ImapSession, folders: Sequence[FolderPlan]) -> dict[str, dict[bytes, int]]:
        """STATUS of every source folder in one round trip: the totals, and what tells an
        unchanged folder (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) without opening it.

        A folder the server refuses is absent; its own error shows when it is copied.
        """
        what = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
        if "STATUS=SIZE" in src.capabilities:
            what.append("SIZE")
        if "CONDSTORE" in src.capabilities:
            what.append("HIGHESTMODSEQ")
        return src.folder_statuses([f.source for f in folders], what)

    def _unchanged(self, plan: FolderPlan) -> bool:
        """Whether the STATUS read at planning time proves there is nothing to do in a folder.

        True only when the folder was fully handled before under the same UIDVALIDITY, no
        message arrived since (UIDNEXT), no flag changed (CONDSTORE's HIGHESTMODSEQ), no
        interrupted run left work behind, and deletions are not carried (they need the UID list).
        """
        seen = self._listed.get(plan.source)
        if self.options.sync_deletions or seen is None:
            return False
        uidvalidity, uidnext, modseq = seen.get(b"UIDVALIDITY"), seen.get(b"UIDNEXT"), seen.get(b"HIGHESTMODSEQ")
        if uidvalidity is None or uidnext is None or modseq is None:
            return False
        state = self.store.folder_state(self._mailbox, plan.source)
        return (
            state is not None
            and state.uidvalidity == uidvalidity
            and state.highest_uid >= uidnext - 1
            and state.highest_modseq == modseq
            and state.target == plan.target
            and self.store.settled(self._mailbox, plan.source, uidvalidity)
        )

    # -- one folder -----------------------------------------------------------------------

    def _sync_folder(self, plan: FolderPlan) -> None:
        if self._unchanged(plan):
            self._log.info("folder %r: unchanged since the last sync", plan.source)
            return
        ahead, self._prefetched = self._prefetched, None
        if ahead is not None and ahead.ahead.plan.source != plan.source:
            ahead.budget.drain()
            ahead = None
        src, tgt = self._source(), self._target()
        if ahead is not None:
            status = ahead.status  # selected by the fetching thread, still the selected folder
        else:
            try:
                status = src.select(plan.source, readonly=True)
            except CommandRefused as exc:
                raise FolderError(plan.source, f"cannot be opened on the source: {exc}") from exc
        self._uidvalidity[plan.source] = status.uidvalidity
        try:
            opened = tgt.open_folder(plan.target)
        except CommandRefused as exc:
            raise FolderError(plan.target, f"cannot be opened on the target: {exc}") from exc
        keywords = opened.keywords

        state = self.store.folder_state(self._mailbox, plan.source)
        why = self._record_void(plan, state, status, opened)
        if why is None:
            assert state is not None
            if state.target_uidvalidity is None and opened.uidvalidity is not None:
                self.store.set_target_uidvalidity(self._mailbox, plan.source, opened.uidvalidity)
            self.store.drop_other_uidvalidities(self._mailbox, plan.source, status.uidvalidity)
            uncertain, again = self._reconcile_pending(plan, status, keywords, final=False)
            self._carry_changes(plan, status, keywords, state.highest_modseq)
            highest = state.highest_uid
            done = self.store.handled_above(self._mailbox, plan.source, status.uidvalidity, highest)
            if ahead is not None and not (ahead.ahead.uidvalidity == status.uidvalidity
                                          and ahead.ahead.highest == highest and ahead.ahead.done == done):
                ahead.budget.drain()
                ahead = None  # the record is not what the fetch ahead assumed: search again
            new = ahead.uids if ahead is not None else [u for u in src.uids_above(highest) if u not in done]
            new = self._with_retries(plan, status, sorted({u for u in new if u not in uncertain} | again))
            if ahead is not None and new != ahead.uids:
                ahead.budget.drain()
                ahead = None  # earlier runs left work the fetch ahead did not know of
        else:
            if state is not None or opened.exists:
                self._log.info("folder %r: %s; looking for its messages on the target before copying", plan.source, why)
            if ahead is not None and (ahead.ahead.uidvalidity is not None or opened.exists):
                ahead.budget.drain()
                ahead = None
            uncertain = set()
            every = ahead.uids if ahead is not None else src.uids_above(0)
            found: list[Mapped] = []
            altered: list[Altered] = []
            if opened.exists:
                found, altered = self._find_on_target(plan, keywords, every, claimed=set())
            self.store.start_folder(self._mailbox, plan.source, status.uidvalidity, plan.target, opened.uidvalidity, found)
            if altered:
                self.store.commit(self._mailbox, plan.source, status.uidvalidity, altered=altered)
            known = {m.uid for m in found}
            new = [u for u in every if u not in known]
        floor = self.store.highest_target_ref(self._mailbox, plan.target)
        self._floor = str(floor) if floor else None
        self._appended = []
        self._log.info("folder %r -> %r: %d messages to copy", plan.source, plan.target, len(new))
        if new:
            self._copy(plan, status, keywords, new, ahead, lookahead=not uncertain)
        elif ahead is not None:
            ahead.budget.drain()
        if uncertain:
            _, again = self._reconcile_pending(plan, status, keywords, final=True)
            if again:
                self._copy(plan, status, keywords, sorted(again))
        self._verify(plan, status)
        self.store.commit(self._mailbox, plan.source, status.uidvalidity, highest_uid=max(new, default=0))
        self.store.set_modseq(self._mailbox, plan.source, status.highestmodseq)
        self._log.info("folder %r: synced", plan.source)

    def _verify(self, plan: FolderPlan, status: FolderStatus) -> None:
        """Compare what the target stored with what this run appended to the folder; what the
        target changed (sizes, dates, header bytes) is recorded for the report."""
        appended, self._appended = self._appended, []
        if not appended:
            return
        # Header fields are read back only where a target may have rewritten them (8-bit bytes).
        headers = {a.ref for a in appended if a.eight_bit}
        stored = {s.ref: s for s in self._target().stored(plan.target, [a.ref for a in appended], headers=headers)}
        altered: list[Altered] = []
        for sent in appended:
            copy = stored.get(sent.ref)
            if copy is None:
                continue
            kinds, detail = alterations((sent.size, sent.internaldate, sent.header_digest),
                                        (copy.size, copy.internaldate, copy.header_digest), sent.ends_crlf)
            if kinds:
                altered.append(Altered(plan.target, sent.uid, kinds, detail))
        if altered:
            self._log.warning("folder %r: the target changed %d of the %d messages it stored (%s)", plan.target,
                        len(altered), len(appended), ", ".join(sorted({k for a in altered for k in a.kinds})))
            self.store.commit(self._mailbox, plan.source, status.uidvalidity, altered=altered)

    @staticmethod
    def _record_void(plan: FolderPlan, state: FolderState | None, status: FolderStatus, opened: Opened) -> str | None:
        """Why the recorded state of a folder cannot be used, or None when it can."""
        if state is None:
            return "nothing is recorded about it"
        if state.uidvalidity != status.uidvalidity:
            return f"its UIDVALIDITY changed from {state.uidvalidity} to {status.uidvalidity}"
        if state.target != plan.target:
            return f"its target folder is now {plan.target!r} (was {state.target!r})"
        if state.target_uidvalidity not in (None, opened.uidvalidity):
            return f"the target folder {plan.target!r} was replaced (UIDVALIDITY {opened.uidvalidity})"
        return None

    def _with_retries(self, plan: FolderPlan, status: FolderStatus, new: list[int]) -> list[int]:
        """``new`` with the folder's skipped items added: every sync tries them again (a target
        may take now what it refused, a larger item limit may admit a message). Items no
        longer on the source leave the report."""
        skipped = self.store.skipped_uids(self._mailbox, plan.source, status.uidvalidity) - set(new)
        if not skipped:
            return new
        present = set(self._source().present(sorted(skipped)))
        gone = sorted(skipped - present)
        if gone:
            self.store.forget_skipped(self._mailbox, plan.source, status.uidvalidity, gone)
        return sorted(set(new) | present)

    def _source_candidates(self, uids: Sequence[int]) -> dict[str, MessageMeta]:
        """Metadata of source messages by UID (as text), for matching."""
        return {str(meta.uid): meta for meta in self._source().fetch_meta(uids)}

    def _digests(self, target: str) -> Digests:
        """Reads body digests on both sides for :func:`engine.matching.match`."""
        def read(source_refs: list[str], target_refs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
            ours = self._source().body_digests([int(r) for r in source_refs])
            return {str(uid): digest for uid, digest in ours.items()}, self._target().digests(target, target_refs)

        return read

    def _find_on_target(
        self, plan: FolderPlan, keywords: frozenset[str] | None, uids: Sequence[int], claimed: set[str],
        after: str | None = None,
    ) -> tuple[list[Mapped], list[Altered]]:
        """The source messages ``uids`` that are already in the target folder, found by content
        (:mod:`engine.matching`) among its messages after ``after`` not ``claimed`` by others.

        Their flags are made the source's (they may have changed since they were copied), and
        what the target changed in them is returned for the report.
        """
        tgt = self._target()
        if not uids:
            return [], []
        # Both sides' metadata at once, each on its own connection.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="index target") as pool:
            listed = pool.submit(tgt.index, plan.target, after)
            metas = self._source_candidates(uids)
            stored = {s.ref: s for s in listed.result() if s.ref not in claimed}
        if not stored:
            return [], []
        pairs = match(
            [Candidate(ref, m.fingerprint, m.size, int(m.internaldate.timestamp())) for ref, m in metas.items()],
            [s.candidate() for s in stored.values()],
            self._digests(plan.target),
        )
        found: list[Mapped] = []
        altered: list[Altered] = []
        flag_changes: list[tuple[str, frozenset[str]]] = []
        for source_ref, ref in pairs.items():
            meta, copy = metas[source_ref], stored[ref]
            flags = target_flags(meta.flags, keywords)
            if copy.flags != flags:
                flag_changes.append((ref, flags))
            found.append(Mapped(meta.uid, plan.target, ref, meta.fingerprint, flags))
            kinds, detail = alterations((meta.size, meta.internaldate, meta.header_digest),
                                        (copy.size, copy.internaldate, copy.header_digest))
            if kinds:
                altered.append(Altered(plan.target, meta.uid, kinds, detail))
        tgt.set_flags(plan.target, flag_changes)
        if found:
            self._log.info("folder %r: %d of %d source messages are already on the target; not copied again",
                     plan.source, len(found), len(uids))
            self.progress.add(messages_found=len(found))
            self._progress_made += 1
        return found, altered

    def _reconcile_pending(
        self, plan: FolderPlan, status: FolderStatus, keywords: frozenset[str] | None, *, final: bool
    ) -> tuple[set[int], set[int]]:
        """Settle the messages an interrupted APPEND left pending: those found on the target by
        content (among the messages stored since that APPEND's folder copy began) are recorded
        as copied, the others are to be copied again.

        A server may still commit an APPEND whose client died or lost its connection after
        sending it in full; copying its messages again before then would duplicate them. Such
        messages (sent in full, not found, within ``late_commit_grace`` of being sent) stay
        pending while the rest of the folder is copied (``final=False``) and are settled at the
        folder's end (``final=True``), waiting out what is left of the grace.

        Returns:
            ``(deferred, again)``: UIDs still pending, and UIDs to copy again.
        """
        items = self.store.pending(self._mailbox, plan.source).get(status.uidvalidity)
        if not items:
            return set(), set()
        present = set(self._source().present([p.uid for p in items]))
        gone = [p.uid for p in items if p.uid not in present]  # deleted on the source meanwhile
        items = [p for p in items if p.uid in present]
        claimed = self.store.target_refs(self._mailbox, plan.target)
        floors = [p.after for p in items]
        after = None if None in floors else str(min(int(f) for f in floors if f is not None))
        found: list[Mapped] = []
        altered: list[Altered] = []
        while items:
            found, altered = self._find_on_target(plan, keywords, [p.uid for p in items], claimed, after)
            known = {m.uid for m in found}
            waiting = [p for p in items if p.uid not in known and p.sent is not None]
            deadline = max((p.sent or 0.0 for p in waiting), default=0.0) + self.options.late_commit_grace
            if not final or not waiting or time.time() >= deadline:
                break
            self._log.info("folder %r: waiting for %d messages an interrupted APPEND sent to show on the target",
                     plan.source, len(waiting))
            self._pause(min(defaults.LATE_COMMIT_POLL_SECONDS, max(deadline - time.time(), 0.0)))
        known = {m.uid for m in found}
        late = time.time() < max((p.sent or 0.0 for p in items if p.uid not in known), default=0.0) + self.options.late_commit_grace
        deferred = {p.uid for p in items if p.uid not in known and p.sent is not None} if late else set()
        again = {p.uid for p in items if p.uid not in known and p.uid not in deferred}
        self._log.info("folder %r: %d of %d messages of an interrupted APPEND were found on the target%s",
                 plan.source, len(found), len(items), f"; {len(deferred)} may still arrive" if deferred else "")
        self.store.commit(self._mailbox, plan.source, status.uidvalidity, mapped=found, altered=altered,
                          resolved_pending=sorted(known) + gone)
        if again:
            # Still pending (so never forgotten, though below the folder's high-water mark) until
            # copied again; not sent, so never waited for again.
            self.store.mark_sent(self._mailbox, plan.source, status.uidvalidity, sorted(again), None)
        return deferred, again

    def _carry_changes(
        self,
        plan: FolderPlan,
        status: FolderStatus,
        keywords: frozenset[str] | None,
        modseq: int | None,
    ) -> None:
        src, tgt = self._source(), self._target()
        condstore = "CONDSTORE" in src.capabilities and modseq is not None and status.highestmodseq is not None
        unchanged = condstore and status.highestmodseq == modseq
        if unchanged and not self.options.sync_deletions:
            return
        mapped = self.store.mapped(self._mailbox, plan.source, status.uidvalidity)
        if not mapped:
            return
        if not unchanged:
            changed = src.fetch_flags(sorted(mapped), modseq if condstore else None)
            if any(mapped[uid].target_ref is None for uid in changed if uid in mapped):
                mapped = self._locate_unmapped(plan, status, keywords, mapped)
            updates: list[tuple[int, frozenset[str]]] = []
            changes: list[tuple[str, frozenset[str]]] = []
            for uid, raw in changed.items():
                row = mapped.get(uid)
                if row is None or row.target_ref is None:
                    continue
                flags = target_flags(normalize_flags(raw), keywords)
                if flags != row.flags:
                    changes.append((row.target_ref, flags))
                    updates.append((uid, flags))
            tgt.set_flags(plan.target, changes)
            if updates:
                self.store.update_flags(self._mailbox, plan.source, status.uidvalidity, updates)
                self.progress.add(flags_updated=len(updates))
        if self.options.sync_deletions:
            present = set(src.uids_above(0))
            if any(row.target_ref is None for uid, row in mapped.items() if uid not in present):
                mapped = self._locate_unmapped(plan, status, keywords, mapped, present)
            gone = [row for uid, row in mapped.items() if uid not in present]
            refs = [row.target_ref for row in gone if row.target_ref is not None]
            if refs:
                tgt.delete(plan.target, refs)
            if gone:
                self.store.forget(self._mailbox, plan.source, status.uidvalidity, [r.uid for r in gone])
                self.progress.add(messages_deleted=len(gone))
            tgt.open_folder(plan.target)

    def _locate_unmapped(
        self, plan: FolderPlan, status: FolderStatus, keywords: frozenset[str] | None, mapped: dict[int, Mapped],
        present: set[int] | None = None,
    ) -> dict[int, Mapped]:
        """Find on the target the copied messages recorded without a target reference (an
        APPEND answered without APPENDUID whose copy was not recognised at once), so that their
        flag changes and deletions are carried. With ``present`` (the source's UIDs) given, the
        messages deleted on the source are looked for, by their recorded identity."""
        claimed = {row.target_ref for row in mapped.values() if row.target_ref is not None}
        unknown = sorted(uid for uid, row in mapped.items() if row.target_ref is None)
        if present is not None:
            gone = [mapped[uid] for uid in unknown if uid not in present]
            stored = [s for s in self._target().index(plan.target) if s.ref not in claimed]
            by_identity: dict[str, list[str]] = defaultdict(list)
            for copy in stored:
                by_identity[copy.identity].append(copy.ref)
            relocated = [replace(row, target_ref=by_identity[row.fingerprint].pop(0))
                         for row in gone if by_identity.get(row.fingerprint)]
            return {**mapped, **{row.uid: row for row in relocated}}
        found, _ = self._find_on_target(plan, keywords, unknown, claimed)
        if found:
            # the flags the target holds now are the source's (set by _find_on_target)
            self.store.commit(self._mailbox, plan.source, status.uidvalidity, mapped=found)
            mapped = {**mapped, **{m.uid: m for m in found}}
        return mapped

    # -- copying new messages ------------------------------------------------------------

    def _copy(
        self,
        plan: FolderPlan,
        status: FolderStatus,
        keywords: frozenset[str] | None,
        uids: list[int],
        ahead: _Prefetched | None = None,
        *,
        lookahead: bool = True,
    ) -> None:
        """Copy the messages ``uids``: fetched in chunks by one thread, appended by this one.

        With ``lookahead``, the fetching thread opens the next folder on the source once this
        one is fetched (the caller must not use the source for this folder afterwards).
        """
        stop = threading.Event()
        chunks: queue.Queue[_Chunk | BaseException | None] = queue.Queue(maxsize=2)
        produced: Iterator[_Chunk]
        if ahead is not None:
            budget, limit = ahead.budget, ahead.limit
            budget.stop = stop
            produced = itertools.chain(_taken(ahead.first), ahead.rest)
        else:
            budget = _ByteBudget(self._memory, stop)
            self._budgets.append(budget)
            limit = self.options.max_item_size
            target_limit = self._target().max_item_size()
            if target_limit is not None:
                limit = min(limit, target_limit)
            produced = self._chunks(plan, uids, limit, budget)
        following = self._lookahead(plan) if lookahead else None

        def produce() -> None:
            try:
                for chunk in produced:
                    while not stop.is_set():
                        try:
                            chunks.put(chunk, timeout=0.2)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                    del chunk  # the appender's now: not held while the next one is fetched
                if following is not None:
                    # The source connection is this thread's until the copy ends: open the
                    # next folder while the last chunks of this one are appended.
                    self._prefetch(following, limit, budget)
                chunks.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the appending thread
                chunks.put(exc)

        fetcher = threading.Thread(target=produce, name=f"fetch {plan.source}", daemon=True)
        fetcher.start()
        ended = False
        try:
            # While the target stores one chunk, the next one's pending rows are written; once
            # it has answered, the next chunk is sent and then the answered one is recorded.
            # A chunk's bytes are given back once it is recorded, so when the next chunk is not
            # there yet (the fetcher may be waiting for exactly those bytes) the chunk in
            # flight is finished first.
            sending: _Sending | None = None

            def record(answered: _Sending, outcome: tuple[list[tuple[OutgoingMessage, str | None]], list[Skipped]]) -> None:
                self._record_chunk(plan, status, answered, outcome)
                budget.release(answered.chunk.nbytes)

            while True:
                item: _Chunk | BaseException | None
                if self.stop.is_set():
                    item = None
                elif sending is None:
                    item = chunks.get()
                else:
                    try:
                        item = chunks.get_nowait()
                    except queue.Empty:
                        record(sending, self._await_chunk(plan, sending))
                        sending = None
                        continue
                if isinstance(item, BaseException):
                    raise item
                prepared = self._prepare_chunk(plan, status, keywords, item) if item is not None else None
                del item
                outcome = self._await_chunk(plan, sending) if sending is not None else None
                started = self._start_chunk(plan, status, prepared) if prepared is not None else None
                del prepared
                if sending is not None and outcome is not None:
                    record(sending, outcome)
                sending = started
                if sending is None:
                    break
            self._check_stop()
            ended = True
        finally:
            stop.set()
            while fetcher.is_alive():
                try:
                    chunks.get(timeout=0.2)
                except queue.Empty:
                    pass
            fetcher.join()
            if not ended:
                self._discard_prefetched()  # the next folder starts from its own SELECT
                budget.drain()

    def _chunks(self, plan: FolderPlan, uids: list[int], limit: int, budget: _ByteBudget) -> Iterator[_Chunk]:
        """Runs in the fetching thread: metadata, decisions, then bodies, chunk by chunk."""
        src = self._source()
        for window in _windows(uids, self._chunk_messages, defaults.METADATA_BATCH_MESSAGES):
            chunk = _Chunk()
            metas, failures = self._fetch_isolating(
                plan, window, lambda session, part: {m.uid: m for m in session.fetch_meta(part)}
            )
            for uid, reason in failures.items():
                chunk.skipped.append(Skipped(plan.source, uid, BAD, "", "", 0, reason))
            for meta in (metas[uid] for uid in sorted(metas)):
                if meta.size > limit:
                    chunk.skipped.append(
                        self._skip(plan, meta, LARGE, f"the message is {meta.size} bytes, over the {limit}-byte limit")
                    )
                elif chunk.messages and (
                    chunk.nbytes + meta.size > self._chunk_bytes or len(chunk.messages) >= self._chunk_messages
                ):
                    yield from self._filled(chunk, src, plan, budget)
                    chunk = _Chunk(messages=[(meta, b"")], nbytes=meta.size)
                else:
                    chunk.messages.append((meta, b""))
                    chunk.nbytes += meta.size
                # A chunk's high-water mark covers only what it carries, so that committing
                # it never marks a later message as handled.
                chunk.highest_uid = max(chunk.highest_uid, meta.uid)
            # messages expunged between SEARCH and FETCH simply no longer exist
            chunk.highest_uid = max(chunk.highest_uid, window[-1])
            yield from self._filled(chunk, src, plan, budget)

    def _filled(self, chunk: _Chunk, src: ImapSession, plan: FolderPlan, budget: _ByteBudget) -> Iterator[_Chunk]:
        if not budget.acquire(chunk.nbytes):
            return
        uids = [m.uid for m, _ in chunk.messages]
        try:
            bodies, failures = self._fetch_isolating(plan, uids, lambda session, part: session.fetch_bodies(part))
        except BaseException:
            budget.release(chunk.nbytes)
            raise
        filled: list[tuple[MessageMeta, bytes]] = []
        for meta, _ in chunk.messages:
            body = bodies.get(meta.uid)
            if body is not None:
                filled.append((meta, body))
            else:
                reason = failures.get(meta.uid, "the source server did not deliver the message")
                chunk.skipped.append(self._skip(plan, meta, BAD, reason))
        chunk.messages = filled
        yield chunk

    def _fetch_isolating(
        self,
        plan: FolderPlan,
        uids: list[int],
        fetch: Callable[[ImapSession, list[int]], dict[int, F]],
    ) -> tuple[dict[int, F], dict[int, str]]:
        """Fetch ``uids``; after a lost connection, one at a time to find one that breaks it.

        Some servers drop the connection on a corrupt message every time it is read; such a
        message is reported as a bad item instead of failing the whole mailbox. A message is
        given up on only when it broke two fresh connections in a row.

        Returns:
            What was fetched, by UID, and the UIDs given up on with the reason.
        """
        try:
            return fetch(self._reopen_source(plan), uids), {}
        except ConnectionLost:
            self._drop_source()
        found: dict[int, F] = {}
        failures: dict[int, str] = {}
        for uid in uids:
            for attempt in range(2):
                try:
                    found.update(fetch(self._reopen_source(plan), [uid]))
                    break
                except ConnectionLost as exc:
                    self._drop_source()
                    if attempt:
                        failures[uid] = f"the source server failed each time it sent the message: {exc}"
        return found, failures

    def _lookahead(self, plan: FolderPlan) -> _Lookahead | None:
        """The folder after ``plan``, when its first chunk may be fetched ahead.

        Only a folder that needs a copy and that no interrupted run left work in (no pending
        rows, no rows of an older UIDVALIDITY): its start then does nothing the fetch ahead
        would have to wait for.
        """
        folders = self._plan.folders if self._plan is not None else []
        position = next((n for n, f in enumerate(folders) if f.source == plan.source), None)
        if position is None or position + 1 >= len(folders):
            return None
        following = folders[position + 1]
        if self._unchanged(following):
            return None
        state = self.store.folder_state(self._mailbox, following.source)
        if state is None:
            # never copied: no rows at all (UIDVALIDITY 0 does not exist, so any row would
            # count), and nothing on the target to look for the source's messages among
            if not self.store.settled(self._mailbox, following.source, 0) or not self._target().is_empty(following.target):
                return None
            return _Lookahead(following, None, 0, frozenset())
        if not self.store.settled(self._mailbox, following.source, state.uidvalidity):
            return None
        done = self.store.handled_above(self._mailbox, following.source, state.uidvalidity, state.highest_uid)
        return _Lookahead(following, state.uidvalidity, state.highest_uid, frozenset(done))

    def _prefetch(self, ahead: _Lookahead, limit: int, budget: _ByteBudget) -> None:
        """Runs in the fetching thread once its folder is fetched: SELECT the next folder, find
        its new UIDs and fetch its first chunk, for :meth:`_sync_folder` to continue from.

        Best effort: on any failure nothing is kept and the folder starts as it would have
        (with a new connection when this one may be broken).
        """
        source = ahead.plan.source
        try:
            src = self._source()
            status = src.select(source, readonly=True)
            if ahead.uidvalidity is not None and status.uidvalidity != ahead.uidvalidity:
                return  # the folder's own start handles the UIDVALIDITY change
            self._uidvalidity[source] = status.uidvalidity
            uids = [u for u in src.uids_above(ahead.highest) if u not in ahead.done]
            rest = self._chunks(ahead.plan, uids, limit, budget)
            first = [chunk for chunk in itertools.islice(rest, 1)]
        except MigrationError as exc:
            self._log.debug("folder %r: not fetched ahead: %s", source, exc)
            self._drop_source()
            return
        self._prefetched = _Prefetched(ahead, status, uids, budget, limit, first, rest)

    def _discard_prefetched(self) -> None:
        if self._prefetched is not None:
            self._prefetched.budget.drain()
            self._prefetched = None

    def _reopen_source(self, plan: FolderPlan) -> ImapSession:
        """The source connection, reconnected and on the folder's same UIDVALIDITY if it was lost."""
        if self._src is None:
            expected = self._uidvalidity.get(plan.source)
            src = self._source()
            if src.select(plan.source, readonly=True).uidvalidity != expected:
                raise ConnectionLost(f"folder {plan.source!r} changed its UIDVALIDITY while being copied")
        assert self._src is not None
        return self._src

    def _drop_source(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None

    def _skip(self, plan: FolderPlan, meta: MessageMeta, kind: str, reason: str) -> Skipped:
        return Skipped(plan.source, meta.uid, kind, meta.subject, meta.date or meta.internaldate.isoformat(), meta.size, reason)

    def _prepare_chunk(
        self, plan: FolderPlan, status: FolderStatus, keywords: frozenset[str] | None, chunk: _Chunk
    ) -> _Sending:
        """The chunk's messages as they will be sent, recorded as pending (the uncertain window)."""
        folder_tag = hashlib.sha1(plan.source.encode("utf-8")).hexdigest()[:8]
        outgoing = [
            OutgoingMessage(
                key=f"ms{folder_tag}-{status.uidvalidity}-{meta.uid}",
                body=body,
                flags=target_flags(meta.flags, keywords),
                internaldate=meta.internaldate,
                fingerprint=meta.fingerprint,
            )
            for meta, body in chunk.messages
        ]
        metas = {o.key: meta for o, (meta, _) in zip(outgoing, chunk.messages)}
        if outgoing:
            self.store.add_pending(
                self._mailbox,
                plan.source,
                status.uidvalidity,
                [Pending(metas[o.key].uid, o.key, plan.target, o.fingerprint, o.flags, after=self._floor)
                 for o in outgoing],
            )
        return _Sending(chunk, outgoing, metas)

    def _start_chunk(self, plan: FolderPlan, status: FolderStatus, sending: _Sending) -> _Sending:
        """Send the chunk's APPEND; its answer is read by :meth:`_await_chunk`."""
        if sending.outgoing:
            sent_uids = [sending.metas[o.key].uid for o in sending.outgoing]

            def sent() -> None:
                self.store.mark_sent(self._mailbox, plan.source, status.uidvalidity, sent_uids, time.time())

            try:
                sending.answer = self._target().start_append(plan.target, sending.outgoing, on_sent=sent)
            except ConnectionLost as exc:
                if exc.unsent:  # the command never reached its end: nothing of it can be stored
                    self.store.mark_sent(self._mailbox, plan.source, status.uidvalidity, sent_uids, None)
                raise
        return sending

    def _await_chunk(
        self, plan: FolderPlan, sending: _Sending
    ) -> tuple[list[tuple[OutgoingMessage, str | None]], list[Skipped]]:
        """The target's answer to a sent chunk: each appended message with its reference, and
        the skipped ones, the refused ones included (found one by one: a refused MULTIAPPEND
        stores nothing, RFC 3502)."""
        skipped = list(sending.chunk.skipped)
        if sending.answer is None:
            return [], skipped
        try:
            return list(zip(sending.outgoing, sending.answer())), skipped
        except ItemRejected as exc:
            pairs, rejected = self._after_refusal(plan.target, sending.outgoing, exc)
            for one, refusal in rejected:
                kind = LARGE if refusal.too_large else BAD
                skipped.append(self._skip(plan, sending.metas[one.key], kind, f"the target refused the message: {refusal}"))
            return pairs, skipped

    def _after_refusal(
        self, folder: str, messages: Sequence[OutgoingMessage], refusal: ItemRejected
    ) -> tuple[list[tuple[OutgoingMessage, str | None]], list[tuple[OutgoingMessage, ItemRejected]]]:
        """The messages of a refused append tried again in halves, down to single messages, so
        that only the messages the target really refuses are left out.

        A target appending one message at a time names the refused one: the first not among
        those it stored (``refusal.stored``); the rest is tried again. A refused MULTIAPPEND
        stored nothing (RFC 3502) and is halved.

        Returns:
            The messages stored with their references, and the refused ones with the refusal.
        """
        stored = list(zip(messages, refusal.stored))
        rest = list(messages[len(stored) :])
        self._log.debug("folder %r: the target refused an append of %d messages (%s); trying the rest again in parts",
                  folder, len(messages), refusal)
        if stored or len(rest) == 1:
            pairs, rejected = self._append_halving(folder, rest[1:])
            return stored + pairs, [(rest[0], refusal), *rejected]
        middle = len(rest) // 2
        first, first_rejected = self._append_halving(folder, rest[:middle])
        second, second_rejected = self._append_halving(folder, rest[middle:])
        return first + second, first_rejected + second_rejected

    def _append_halving(
        self, folder: str, messages: Sequence[OutgoingMessage]
    ) -> tuple[list[tuple[OutgoingMessage, str | None]], list[tuple[OutgoingMessage, ItemRejected]]]:
        if not messages:
            return [], []
        try:
            return list(zip(messages, self._target().append(folder, messages))), []
        except ItemRejected as exc:
            return self._after_refusal(folder, messages, exc)

    def _record_chunk(
        self,
        plan: FolderPlan,
        status: FolderStatus,
        sending: _Sending,
        outcome: tuple[list[tuple[OutgoingMessage, str | None]], list[Skipped]],
    ) -> None:
        """Commit what became of a chunk: copies, skipped items, its pending rows resolved."""
        pairs, skipped = outcome
        metas = sending.metas
        mapped: list[Mapped] = []
        copied_bytes = 0
        for message, ref in pairs:
            meta = metas[message.key]
            mapped.append(Mapped(meta.uid, plan.target, ref, message.fingerprint, message.flags))
            copied_bytes += len(message.body)
            if ref is not None:
                self._appended.append(_Appended.of(meta, ref, message.body))
        self.store.commit(
            self._mailbox,
            plan.source,
            status.uidvalidity,
            mapped=mapped,
            skipped=skipped,
            resolved_pending=[metas[o.key].uid for o in sending.outgoing],
            highest_uid=sending.chunk.highest_uid,
        )
        self.progress.add(messages_copied=len(mapped), bytes_copied=copied_bytes, messages_skipped=len(skipped))
        self._log.debug("folder %r: chunk of %d messages (%d bytes) stored, %d skipped", plan.source, len(mapped),
                  copied_bytes, len(skipped))
        if mapped:
            self._progress_made += 1
            self._chunk_bytes = min(self._chunk_bytes * 2, self.options.chunk_bytes)
            self._chunk_messages = min(self._chunk_messages * 2, self.options.chunk_messages)
