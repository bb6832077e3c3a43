"""Runs migration users' syncs within the batches' and endpoints' limits, and moves batches on.

One scheduler thread makes passes over the catalog (every few seconds, or at once when woken):
it reclaims users whose lease expired (their process died), moves batches whose phase is over,
starts incremental syncs when they are due, and hands queued users to the executor as plain
:class:`WorkItem` data. Workers record each user's outcome in the catalog; the state database
is the only shared state, so a restarted service resumes where the last one stopped.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from engine import defaults
from engine.catalog import BatchRow, Catalog, EndpointRow, UserRow
from engine.errors import ConfigurationError, MigrationError
from engine.imap import DEFAULT_MASTER_SEPARATOR, LOGIN_PLACEHOLDER, ImapEndpoint, Security, check_master_separator
from engine.notify import BatchCounts, BatchNotice, ErrorRow, NoticeKind, SmtpSettings, send_notice
from engine.status import BatchAction, BatchStatus, UserAction, UserStatus, move_batch
from engine.sync import MailboxSync, MemoryBudget, Outcome, Progress, SyncOptions
from engine.targets import Target
from engine.vault import Vault

__all__ = [
    "Executor", "Scheduler", "TargetSettings", "ThreadExecutor", "WorkItem", "batch_counts", "begin_completion",
    "require_per_mailbox_login", "require_per_mailbox_maildir",
]

log = logging.getLogger(__name__)

B = BatchStatus
U = UserStatus

#: Batch statuses in which users are being copied, and the phase their queued users run.
PHASE_OF = {B.SYNCING: "initial", B.INCREMENTAL_SYNCING: "incremental", B.COMPLETING: "final"}

#: User statuses of a claimed, running user.
RUNNING = (U.SYNCING, U.INCREMENTAL_SYNCING, U.COMPLETING, U.STOPPING)

#: User statuses that count as failed in a batch's counters.
FAILED = (U.FAILED, U.INCREMENTAL_FAILED, U.COMPLETION_FAILED)


@dataclass(frozen=True)
class WorkItem:
    """One user's sync to run: plain data, so any executor can carry it."""

    user_id: int
    batch_id: int
    phase: str


class Executor(Protocol):
    """Runs work items somewhere: threads here, a distributed task system later."""

    def submit(self, item: WorkItem, run: Callable[[WorkItem], None]) -> None:
        """Run ``run(item)`` soon."""

    def shutdown(self, wait: bool) -> None:
        """Stop taking work; with ``wait``, return when running items have ended."""


class ThreadExecutor:
    """Work items on threads of this process."""

    def __init__(self, threads: int = defaults.WORKER_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mailshift-sync")

    def submit(self, item: WorkItem, run: Callable[[WorkItem], None]) -> None:
        self._pool.submit(run, item)

    def shutdown(self, wait: bool) -> None:
        self._pool.shutdown(wait=wait)


def batch_counts(statuses: Mapping[UserStatus, int]) -> BatchCounts:
    """A batch's counters from how many of its users are in each status."""
    def count(*wanted: UserStatus) -> int:
        return sum(statuses.get(s, 0) for s in wanted)

    return BatchCounts(
        total=sum(statuses.values()),
        synced=count(U.SYNCED, U.INCREMENTAL_SYNCED, U.COMPLETION_SYNCED),
        finalized=count(U.COMPLETED, U.COMPLETED_WITH_WARNINGS),
        failed=count(*FAILED),
        stopped=count(U.STOPPED, U.INCREMENTAL_STOPPED),
        pending=count(U.QUEUED),
    )


def require_per_mailbox_maildir(path: str, setting: str = "the target Maildir path") -> None:
    """Refuse a Maildir path template without ``{EmailAddress}``: every user would write into one Maildir.

    Raises:
        ConfigurationError: The path has no placeholder.
    """
    if LOGIN_PLACEHOLDER not in path:
        raise ConfigurationError(
            f"{setting} {path!r} has no {LOGIN_PLACEHOLDER}: every mailbox of a batch would be written into "
            f"this one Maildir, mixing the users' mail; give a path per mailbox, such as "
            f"'/srv/mail/{LOGIN_PLACEHOLDER}/Maildir'")


def require_per_mailbox_login(user: str, authzid: str | None,
                              settings: str = "the target login and authorization identity") -> None:
    """Refuse a target IMAP login template where neither the login nor the authzid has ``{EmailAddress}``.

    A target login serves a whole batch, so it names each mailbox: an admin login such as
    ``{EmailAddress}*master``, or an admin acting as the authzid ``{EmailAddress}``. Without the
    placeholder every user would be copied into the one account the login opens.

    Raises:
        ConfigurationError: Neither value has the placeholder.
    """
    if LOGIN_PLACEHOLDER not in user + (authzid or ""):
        raise ConfigurationError(
            f"{settings} ({user!r}, {authzid!r}) have no {LOGIN_PLACEHOLDER}: every mailbox of a batch would be "
            f"copied into this one account, mixing the users' mail; use an admin login template such as "
            f"'{LOGIN_PLACEHOLDER}*master', or an authorization identity of '{LOGIN_PLACEHOLDER}'")


@dataclass(frozen=True)
class TargetSettings:
    """Where each migrated mailbox goes: a Maildir per address, or an IMAP server.

    ``{EmailAddress}`` in the Maildir path or the IMAP login is replaced by each user's address.
    """

    maildir: str | None = None
    imap: ImapEndpoint | None = None

    def __post_init__(self) -> None:
        """Refuse a target every mailbox of a batch would share (their mail mixed in one place)."""
        if self.imap is not None:
            require_per_mailbox_login(self.imap.user, self.imap.authzid)
        elif self.maildir is not None:
            require_per_mailbox_maildir(self.maildir)

    def factory(self, email: str) -> Callable[[], Target]:
        """Opens the target of one mailbox."""
        from engine.maildir import MaildirTarget
        from engine.targets import ImapTarget

        if self.imap is not None:
            endpoint = self.imap.for_mailbox(email)
            return lambda: ImapTarget(endpoint)
        assert self.maildir is not None
        path = Path(self.maildir.replace("{EmailAddress}", email))
        return lambda: MaildirTarget(path)


@dataclass
class _Running:
    item: WorkItem
    stop: threading.Event = field(default_factory=threading.Event)
    progress: Progress | None = None


class Scheduler:
    """Moves batches through their phases and runs their users' syncs."""

    def __init__(
        self,
        database: Path,
        vault: Vault,
        target: TargetSettings,
        *,
        smtp: SmtpSettings | None = None,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = defaults.SCHEDULER_POLL_SECONDS,
        master_separator: str = DEFAULT_MASTER_SEPARATOR,
    ) -> None:
        self.database = database
        #: Joins the halves of a super-user login in a CSV UserName (``Admin*User``).
        self.master_separator = check_master_separator(master_separator)
        self.vault = vault
        self.target = target
        self.smtp = smtp
        self.executor = executor or ThreadExecutor()
        self.clock = clock
        self.poll_seconds = poll_seconds
        #: Identifies this process's leases; a restarted service reclaims the old ones.
        self.owner = f"{uuid.uuid4()}"
        self._running: dict[int, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.notices: list[BatchNotice] = []
        #: Bodies in memory, shared by all the syncs this process runs at once.
        self.memory = MemoryBudget(defaults.PROCESS_IN_FLIGHT_BYTES)

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler thread."""
        self._thread = threading.Thread(target=self._loop, name="mailshift-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Make a pass now (after a cmdlet changed something)."""
        self._wake.set()

    def shutdown(self, wait: bool = True) -> None:
        """Warm shutdown: running syncs stop at their next safe point and are queued again."""
        self._halt.set()
        self._wake.set()
        with self._lock:
            for running in self._running.values():
                running.stop.set()
        if self._thread is not None:
            self._thread.join()
        self.executor.shutdown(wait=wait)

    def _loop(self) -> None:
        catalog = Catalog(self.database)
        try:
            while not self._halt.is_set():
                try:
                    self.tick(catalog)
                except MigrationError:
                    log.exception("scheduler pass failed")
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        finally:
            catalog.close()

    # -- what runs ----------------------------------------------------------------------

    def progress(self, user_id: int) -> Progress | None:
        """Live counters of a user being synced by this process."""
        with self._lock:
            running = self._running.get(user_id)
            return running.progress if running else None

    def stop_user(self, user_id: int) -> None:
        """Ask a running user's sync to stop at its next safe point."""
        with self._lock:
            running = self._running.get(user_id)
            if running:
                running.stop.set()

    def active(self) -> int:
        """Syncs running in this process now."""
        with self._lock:
            return len(self._running)

    # -- one pass -----------------------------------------------------------------------

    def tick(self, catalog: Catalog) -> None:
        """One pass: reclaim, renew, move batches on, dispatch queued users."""
        now = self.clock()
        with self._lock:
            mine = list(self._running)
        catalog.renew(mine, self.owner, now + defaults.LEASE_SECONDS)
        for user in catalog.expired_leases(now, self.owner):
            if user.id in mine:
                continue
            if user.status is U.STOPPING:
                catalog.move_user(user, UserAction.STOP_DONE, U.STOPPED, lease_owner=None, lease_until=None)
            else:
                log.warning("migration user %s: its worker is gone; queued again", user.email)
                catalog.move_user(user, UserAction.QUEUE, U.QUEUED, lease_owner=None, lease_until=None, queued=now)
        for batch in catalog.batches():
            self._advance(catalog, batch, now)
        self._dispatch(catalog, now)

    def _advance(self, catalog: Catalog, batch: BatchRow, now: float) -> None:
        start_after = batch.settings.get("start_after")
        if batch.status is B.STARTING:
            if start_after and now < start_after:
                catalog.move_batch(batch, BatchAction.WAIT, B.WAITING)
            else:
                catalog.move_batch(batch, BatchAction.RUN, B.SYNCING, started=now)
            return
        if batch.status is B.WAITING:
            if not start_after or now >= start_after:
                catalog.move_batch(batch, BatchAction.RUN, B.SYNCING, started=now)
            return
        counts = catalog.status_counts(batch.id)
        busy = sum(counts.get(s, 0) for s in (U.QUEUED, *RUNNING))
        if batch.status is B.STOPPING:
            for user in catalog.users(batch_id=batch.id, statuses=[U.QUEUED]):
                catalog.move_user(user, UserAction.STOP, U.STOPPED)
            if not sum(counts.get(s, 0) for s in RUNNING):
                done = catalog.move_batch(batch, BatchAction.STOP_DONE, B.STOPPED, finished=now)
                self._notify(catalog, done, NoticeKind.STOPPED, now)
            return
        if batch.status in PHASE_OF and not busy:
            self._finish_phase(catalog, batch, counts, now)
            return
        if batch.status in (B.SYNCED, B.SYNCED_WITH_ERRORS):
            complete_after = batch.settings.get("complete_after")
            if complete_after and now >= complete_after:
                begin_completion(catalog, batch, now)
                return
            if not batch.settings.get("allow_incremental_syncs", True):
                return
            due = [
                u for u in catalog.users(batch_id=batch.id, statuses=[U.SYNCED, U.INCREMENTAL_FAILED])
                if batch.sync_requested or (u.next_sync is not None and u.next_sync <= now)
            ]
            if due or batch.sync_requested:
                moved = catalog.move_batch(batch, BatchAction.INCREMENTAL_BEGIN, B.INCREMENTAL_SYNCING, sync_requested=0)
                for user in due:
                    catalog.move_user(user, UserAction.QUEUE, U.QUEUED, queued=now)
                if not due:
                    self._finish_phase(catalog, moved, catalog.status_counts(batch.id), now)

    def _finish_phase(self, catalog: Catalog, batch: BatchRow, counts: Mapping[UserStatus, int], now: float) -> None:
        failed = sum(counts.get(s, 0) for s in FAILED)
        if batch.status is B.SYNCING:
            new = B.SYNCED_WITH_ERRORS if failed else B.SYNCED
            done = catalog.move_batch(batch, BatchAction.INITIAL_SYNC_DONE, new, initial_sync_done=now, last_synced=now)
            self._notify(catalog, done, NoticeKind.INITIAL_SYNC_FINISHED, now)
        elif batch.status is B.INCREMENTAL_SYNCING:
            new = B.SYNCED_WITH_ERRORS if failed else B.SYNCED
            catalog.move_batch(batch, BatchAction.INCREMENTAL_DONE, new, last_synced=now)
        elif batch.status is B.COMPLETING:
            new = B.COMPLETED_WITH_ERRORS if failed or counts.get(U.STOPPED, 0) else B.COMPLETED
            done = catalog.move_batch(batch, BatchAction.COMPLETE_DONE, new, finished=now, last_synced=now)
            self._notify(catalog, done, NoticeKind.COMPLETED, now)

    def _dispatch(self, catalog: Catalog, now: float) -> None:
        config = catalog.config()
        service_cap = int(config.get("MaxConcurrentMigrations", defaults.SERVICE_MAX_CONCURRENT_MIGRATIONS))
        running = catalog.users(statuses=[U.SYNCING, U.INCREMENTAL_SYNCING, U.COMPLETING])
        by_batch = Counter(u.batch_id for u in running)
        batches = {b.id: b for b in catalog.batches()}
        by_endpoint: Counter[tuple[int | None, str]] = Counter()
        for u in running:
            owner = batches.get(u.batch_id)
            by_endpoint[(owner.endpoint_id if owner else None, u.phase or "initial")] += 1
        total = len(running)
        # A sync of this process whose user is recorded as done still holds its thread until it
        # has closed its connections: it counts until then, so the limits hold for the threads too.
        recorded = {u.id for u in running}
        with self._lock:
            finishing = [r.item for r in self._running.values() if r.item.user_id not in recorded]
        for item in finishing:
            owner = batches.get(item.batch_id)
            total += 1
            by_batch[item.batch_id] += 1
            by_endpoint[(owner.endpoint_id if owner else None, item.phase)] += 1
        for batch in batches.values():
            phase = PHASE_OF.get(batch.status)
            if phase is None:
                continue
            endpoint = catalog.endpoint_by_id(batch.endpoint_id) if batch.endpoint_id else None
            for user in catalog.users(batch_id=batch.id, statuses=[U.QUEUED]):
                if total >= service_cap or by_batch[batch.id] >= _batch_cap(batch):
                    break
                if endpoint and by_endpoint[(endpoint.id, phase)] >= _endpoint_cap(endpoint, phase):
                    break
                claimed = catalog.claim(user, self.owner, now + defaults.LEASE_SECONDS, phase)
                if claimed is None:
                    continue
                total += 1
                by_batch[batch.id] += 1
                by_endpoint[(batch.endpoint_id, phase)] += 1
                item = WorkItem(user.id, batch.id, phase)
                with self._lock:
                    self._running[user.id] = _Running(item)
                self.executor.submit(item, self._run)

    # -- one user -------------------------------------------------------------------------

    def _run(self, item: WorkItem) -> None:
        catalog = Catalog(self.database)
        try:
            self._run_user(catalog, item)
        except Exception:  # noqa: BLE001 - a worker must record every failure, never die silently
            log.exception("migration user %d: the worker failed", item.user_id)
            user = catalog.user_by_id(item.user_id)
            if user is not None and user.status in RUNNING:
                catalog.move_user(user, UserAction.FAIL, _failed_status(user.status),
                                  error="internal error; see the service log", lease_owner=None, lease_until=None)
        finally:
            catalog.close()
            with self._lock:
                self._running.pop(item.user_id, None)
            self.wake()

    def _run_user(self, catalog: Catalog, item: WorkItem) -> None:
        user = catalog.user_by_id(item.user_id)
        batch = catalog.batch_by_id(item.batch_id)
        if user is None or batch is None:
            return
        endpoint = catalog.endpoint_by_id(batch.endpoint_id) if batch.endpoint_id else None
        if endpoint is None:
            raise MigrationError(f"batch {batch.name!r} has no source endpoint")
        source = ImapEndpoint(
            host=endpoint.remote_server,
            port=endpoint.port,
            security=Security.parse(endpoint.security),
            user=user.user_name,
            password=self.vault.open(user.password) if user.password else "",
            accept_untrusted_certificates=endpoint.accept_untrusted,
            master_separator=self.master_separator,
        )
        options = SyncOptions(
            exclude=tuple(batch.settings.get("exclude_folders", ())),
            user_root=user.user_root or None,
            bad_item_limit=int(user.settings.get("bad_item_limit", defaults.BAD_ITEM_LIMIT)),
            large_item_limit=int(user.settings.get("large_item_limit", defaults.LARGE_ITEM_LIMIT)),
        )
        with self._lock:
            running = self._running[user.id]
        sync = MailboxSync(source, self.target.factory(user.email), catalog, user.mailbox_key, options,
                           stop=running.stop, memory=self.memory, label=user.email)
        running.progress = sync.progress
        report = sync.run()
        now = self.clock()
        progress = report.progress
        counts: dict[str, Any] = {
            "synced_items": catalog.copied_count(user.mailbox_key),
            "skipped_items": len(report.skipped_items),
            "bytes_transferred": user.bytes_transferred + int(progress["bytes_copied"]),
            "total_items": int(progress["messages_total"]) or user.total_items,
            "total_bytes": int(progress["bytes_total"]) or user.total_bytes,
            "lease_owner": None,
            "lease_until": None,
        }
        current = catalog.user_by_id(user.id)
        assert current is not None
        entries = [{"CreationTime": now, "Message": _report_message(item.phase, report.outcome, report.error, progress)}]
        entries += [{"CreationTime": now, "Message": f"Folder error: {text}"} for text in report.folder_errors]
        entries += [{"CreationTime": now, "Message": f"Warning: {text}"} for text in report.warnings]
        altered = report.alteration_summary()
        if altered and progress["messages_copied"]:
            changes = ", ".join(f"{kind} ({count:,})" for kind, count in altered.items())
            entries.append({"CreationTime": now, "Message": f"Not exact: the target changed {len(report.altered):,} "
                                                            f"of the copied messages: {changes}"})
        counts["report"] = [*current.report, *entries][-50:]
        if report.outcome in (Outcome.SYNCED, Outcome.SYNCED_WITH_ERRORS):
            new = U.COMPLETED if item.phase == "final" else U.SYNCED
            catalog.move_user(current, UserAction.SUCCEED, new, error=None, last_successful_sync=now,
                              next_sync=now + self._interval(catalog), **counts)
        elif report.outcome is Outcome.STOPPED:
            if self._halt.is_set():  # the service is shutting down: resume after the restart
                catalog.move_user(current, UserAction.QUEUE, U.QUEUED, queued=now, **counts)
            else:
                new = U.INCREMENTAL_STOPPED if item.phase == "incremental" else U.STOPPED
                catalog.move_user(current, UserAction.STOP, new, **counts)
        else:
            catalog.move_user(current, UserAction.FAIL, _failed_status(current.status), error=report.error, **counts)

    @staticmethod
    def _interval(catalog: Catalog) -> float:
        return float(catalog.config().get("IncrementalSyncInterval", defaults.INCREMENTAL_SYNC_INTERVAL_SECONDS))

    # -- notices ------------------------------------------------------------------------

    def _notify(self, catalog: Catalog, batch: BatchRow, kind: NoticeKind, now: float) -> None:
        recipients = list(dict.fromkeys(batch.settings.get("notification_emails", [])))
        if not recipients:
            return
        users = catalog.users(batch_id=batch.id)
        rows = [
            ErrorRow(u.email, u.user_name, u.error or _unfinished(u), {k: v for k, v in u.columns.items()})
            for u in users
            if u.status in FAILED or (kind is NoticeKind.STOPPED and u.status in (U.STOPPED, U.INCREMENTAL_STOPPED, U.QUEUED))
        ]
        notice = BatchNotice(
            batch=batch.name,
            kind=kind,
            status=batch.status.value,
            counts=batch_counts(catalog.status_counts(batch.id)),
            started_at=_utc(batch.started or batch.created),
            finished_at=_utc(now),
            recipients=recipients,
            error_rows=rows,
        )
        self.notices.append(notice)
        if self.smtp is None:
            log.warning("batch %s: no SMTP server is configured; the %s notice was not sent", batch.name, kind.value)
            return
        smtp = self.smtp
        threading.Thread(target=_send, args=(smtp, notice), name="mailshift-notice", daemon=True).start()


def begin_completion(catalog: Catalog, batch: BatchRow, now: float) -> None:
    """Complete a batch: every synced or failed user queued for a final sync, then Completing.

    The users are queued first: a scheduler pass between the two steps must never find a
    Completing batch with no user left to sync (it would end the batch at once).
    """
    move_batch(batch.name, BatchAction.COMPLETE, batch.status, B.COMPLETING)  # refused before anything moves
    for user in catalog.users(batch_id=batch.id, statuses=[U.SYNCED, U.INCREMENTAL_FAILED, U.COMPLETION_FAILED, U.FAILED]):
        catalog.move_user(user, UserAction.QUEUE, U.QUEUED, queued=now)
    catalog.move_batch(batch, BatchAction.COMPLETE, B.COMPLETING)


def _send(smtp: SmtpSettings, notice: BatchNotice) -> None:
    try:
        send_notice(smtp, notice)
    except MigrationError as exc:
        log.error("batch %s: the status e-mail could not be sent: %s", notice.batch, exc)


def _utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, tz=timezone.utc)


def _unfinished(user: UserRow) -> str:
    if user.started is None:
        return "The migration was stopped before this mailbox was started; start the batch again to migrate it."
    return "The migration was stopped before this mailbox finished; start the batch again to continue."


def _failed_status(running: UserStatus) -> UserStatus:
    return {U.INCREMENTAL_SYNCING: U.INCREMENTAL_FAILED, U.COMPLETING: U.COMPLETION_FAILED}.get(running, U.FAILED)


def _batch_cap(batch: BatchRow) -> int:
    """A 2010-style batch's own MaxConcurrentMigrations; newer batches use their endpoint's."""
    cap = batch.settings.get("max_concurrent_migrations")
    return int(cap) if cap else 1 << 30


def _endpoint_cap(endpoint: EndpointRow, phase: str) -> int:
    cap = endpoint.max_concurrent_incremental_syncs if phase == "incremental" else endpoint.max_concurrent_migrations
    return cap if cap >= 0 else 1 << 30


def _report_message(phase: str, outcome: Outcome, error: str | None, progress: Mapping[str, Any]) -> str:
    what = {"initial": "Initial sync", "incremental": "Incremental sync", "final": "Final sync"}[phase]
    summary = (
        f"{progress['messages_copied']} messages ({progress['bytes_copied']} bytes) copied, "
        f"{progress['messages_skipped']} skipped, {progress['flags_updated']} flag changes in {progress['seconds']} s"
    )
    if outcome is Outcome.FAILED:
        return f"{what} failed: {error}"
    return f"{what} {outcome.value.lower()}: {summary}"
