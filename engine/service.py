"""The migration service: what the cmdlets do, as one engine facade with no HTTP in it.

Each public method is one cmdlet's effect (``new_batch`` is New-MigrationBatch, ...). Methods
take plain Python values, check them, change the catalog through the transition table, wake
the scheduler, and return views whose fields are Exchange's property names in snake case.
Refusals raise :class:`engine.errors.MigrationError` subclasses with messages fit for an
administrator.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine import defaults
from engine.catalog import BatchRow, Catalog, EndpointRow, UserRow
from engine.controls import refuse_controls
from engine.csvfile import MigrationType, parse_migration_csv
from engine.errors import AlreadyExists, ConfigurationError, MigrationError, NotFound, Refused
from engine.folders import parse_excludes
from engine.imap import DEFAULT_MASTER_SEPARATOR, Security, probe_server
from engine.notify import SmtpSettings
from engine.private import private_folder
from engine.scheduler import RUNNING, Executor, Scheduler, TargetSettings, batch_counts, begin_completion
from engine.status import BatchAction, BatchStatus, UserAction, UserStatus, move_batch, parse_status
from engine.vault import Vault

__all__ = [
    "AvailabilityResult",
    "BatchView",
    "ConfigView",
    "EndpointView",
    "MigrationService",
    "SkippedItemView",
    "StatusView",
    "UserStatisticsView",
    "UserView",
]

B = BatchStatus
U = UserStatus

#: Batch statuses during which a 2010-style batch counts as running (one at a time).
LEGACY_ACTIVE = (B.STARTING, B.WAITING, B.SYNCING, B.STOPPING, B.COMPLETING)

#: Batches whose users count as migrating (a user cannot be in two of them).
USERS_ACTIVE = tuple(s for s in B if s not in (B.COMPLETED, B.COMPLETED_WITH_ERRORS))

_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

_SUMMARY = {
    U.QUEUED: "Active", U.SYNCING: "Active", U.INCREMENTAL_SYNCING: "Active", U.COMPLETING: "Active",
    U.STARTING: "Active", U.STOPPING: "Active", U.VALIDATING: "Active", U.PROVISIONING: "Active",
    U.SYNCED: "Synced", U.INCREMENTAL_SYNCED: "Synced", U.COMPLETION_SYNCED: "Synced",
    U.FAILED: "Failed", U.INCREMENTAL_FAILED: "Failed", U.COMPLETION_FAILED: "Failed", U.CORRUPTED: "Failed",
    U.COMPLETED: "Completed", U.COMPLETED_WITH_WARNINGS: "Completed",
    U.STOPPED: "Stopped", U.INCREMENTAL_STOPPED: "Stopped",
}


def _time(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, tz=timezone.utc) if stamp else None


# -- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AvailabilityResult:
    """Test-MigrationServerAvailability's answer; its text is the Result, as scripts expect."""

    result: str
    message: str
    remote_server: str
    port: int
    security: str
    supports_cutover: bool = False

    @property
    def is_valid(self) -> bool:
        """True when the server could be reached."""
        return self.result == "Success"

    def __str__(self) -> str:
        return self.result


@dataclass(frozen=True)
class EndpointView:
    """A MigrationEndpoint."""

    identity: str
    guid: str
    endpoint_type: str
    remote_server: str
    port: int
    security: str
    authentication: str
    accept_untrusted_certificates: bool
    max_concurrent_migrations: int
    max_concurrent_incremental_syncs: int


@dataclass(frozen=True)
class BatchView:
    """A MigrationBatch with its counters."""

    identity: str
    guid: str
    status: str
    migration_type: str
    total_count: int
    active_count: int
    stopped_count: int
    synced_count: int
    finalized_count: int
    failed_count: int
    pending_count: int
    source_endpoint: str | None
    notification_emails: list[str]
    excluded_folders: list[str]
    bad_item_limit: int
    large_item_limit: int
    time_zone: str | None
    start_after: datetime | None
    complete_after: datetime | None
    creation_date_time: datetime | None
    start_date_time: datetime | None
    initial_sync_date_time: datetime | None
    last_synced_date_time: datetime | None
    finalized_date_time: datetime | None


@dataclass(frozen=True)
class UserView:
    """A MigrationUser."""

    identity: str
    guid: str
    batch_id: str
    mailbox_email_address: str
    status: str
    status_summary: str
    error_summary: str | None
    synced_item_count: int
    skipped_item_count: int
    last_successful_sync_time: datetime | None


@dataclass(frozen=True)
class SkippedItemView:
    """One skipped message of a user."""

    kind: str
    folder_name: str
    subject: str
    date_received: str
    message_size: int
    failure: str


@dataclass(frozen=True)
class UserStatisticsView(UserView):
    """MigrationUserStatistics: a user with its transfer figures (live while it runs)."""

    error: str | None = None
    total_items_in_source_mailbox_count: int = 0
    estimated_total_transfer_size: int = 0
    bytes_transferred: int = 0
    percentage_complete: int = 0
    skipped_items: list[SkippedItemView] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class StatusView:
    """Get-MigrationStatus / Get-MigrationStatistics: the whole migration's counters."""

    batch_count: int
    total_count: int
    active_count: int
    stopped_count: int
    synced_count: int
    finalized_count: int
    failed_count: int
    pending_count: int


@dataclass(frozen=True)
class ConfigView:
    """Get-MigrationConfig."""

    max_number_of_batches: int
    max_concurrent_migrations: int
    incremental_sync_interval_seconds: float
    features: list[str]


# -- the service ---------------------------------------------------------------------------


class MigrationService:
    """The migration engine's facade: one instance per service process."""

    def __init__(
        self,
        instance: str | Path,
        *,
        target: TargetSettings | None = None,
        smtp: SmtpSettings | None = None,
        executor: Executor | None = None,
        poll_seconds: float = defaults.SCHEDULER_POLL_SECONDS,
        run_scheduler: bool = True,
        master_separator: str = DEFAULT_MASTER_SEPARATOR,
    ) -> None:
        """Open (creating when new) the instance folder and start the scheduler.

        Args:
            instance: The instance folder: state database, key file, default Maildirs.
            target: Where mailboxes go; by default ``<instance>/mailboxes/{EmailAddress}/Maildir``.
            smtp: Where status e-mails are sent from; None sends none (and logs so).
            executor: Runs the syncs; threads in this process by default.
            poll_seconds: Longest pause of the scheduler between passes.
            run_scheduler: False for a process that only answers queries.
            master_separator: What joins the halves of a super-user login in a CSV UserName
                (``Admin*User``; the service setting MASTER_USER_SEPARATOR).
        """
        self.instance = Path(instance)
        private_folder(self.instance)
        self.database = self.instance / "mailshift.db"
        self.vault = Vault(self.instance)
        self._local = threading.local()
        Catalog(self.database).close()  # create or upgrade the schema, or fail loudly, now
        target = target or TargetSettings(maildir=str(self.instance / "mailboxes" / "{EmailAddress}" / "Maildir"))
        self.scheduler = Scheduler(self.database, self.vault, target, smtp=smtp, executor=executor, poll_seconds=poll_seconds,
                                   master_separator=master_separator)
        if run_scheduler:
            self.scheduler.start()

    def close(self) -> None:
        """Stop the scheduler (running syncs stop at a safe point and resume after a restart)."""
        self.scheduler.shutdown(wait=True)

    @contextmanager
    def _catalog(self) -> Iterator[Catalog]:
        catalog: Catalog | None = getattr(self._local, "catalog", None)
        if catalog is None:
            catalog = self._local.catalog = Catalog(self.database)
        yield catalog

    # -- availability -----------------------------------------------------------------

    def test_server_availability(
        self,
        remote_server: str | None = None,
        port: int | None = None,
        *,
        security: str | None = None,
        accept_untrusted_certificates: bool = False,
        endpoint: str | None = None,
    ) -> AvailabilityResult:
        """Can this IMAP server be reached (TCP, TLS as asked, greeting)? Never raises for a bad server."""
        if endpoint is not None:
            with self._catalog() as catalog:
                found = self._endpoint(catalog, endpoint)
            remote_server, port, security = found.remote_server, found.port, found.security
            accept_untrusted_certificates = found.accept_untrusted
        if not remote_server:
            raise ConfigurationError("give -RemoteServer (and -Port), or -Endpoint")
        refuse_controls(remote_server, "-RemoteServer")
        mechanism = Security.parse(security) if security else (Security.SSL if port == 993 else Security.NONE)
        port = port or (993 if mechanism is Security.SSL else 143)
        try:
            probe_server(remote_server, port, mechanism, accept_untrusted_certificates=accept_untrusted_certificates,
                         timeout=15.0)
        except MigrationError as exc:
            return AvailabilityResult("Failed", f"The connection to the server {remote_server}:{port} failed: {exc}",
                                      remote_server, port, mechanism.value)
        return AvailabilityResult("Success", f"The IMAP server {remote_server}:{port} answered.", remote_server, port,
                                  mechanism.value)

    # -- endpoints --------------------------------------------------------------------

    def new_endpoint(
        self,
        name: str,
        remote_server: str,
        *,
        port: int | None = None,
        security: str | None = None,
        authentication: str = "Basic",
        accept_untrusted_certificates: bool = False,
        max_concurrent_migrations: int = defaults.ENDPOINT_MAX_CONCURRENT_MIGRATIONS,
        max_concurrent_incremental_syncs: int = defaults.ENDPOINT_MAX_CONCURRENT_INCREMENTAL_SYNCS,
        skip_verification: bool = False,
    ) -> EndpointView:
        """New-MigrationEndpoint -IMAP (defaults: port 993, Ssl, 100 and 20 concurrent)."""
        mechanism = Security.parse(security) if security else Security.SSL
        port = port or (993 if mechanism is Security.SSL else 143)
        _check_name(name, "migration endpoint")
        refuse_controls(remote_server, "-RemoteServer")
        refuse_controls(authentication, "-Authentication")
        _check_concurrency(max_concurrent_migrations, max_concurrent_incremental_syncs)
        with self._catalog() as catalog:
            existing_endpoint = catalog.find_endpoint(name)
            if existing_endpoint:
                raise AlreadyExists(f"A migration endpoint named '{existing_endpoint.name}' already exists.")
            if not skip_verification:
                self._verify(remote_server, port, mechanism, accept_untrusted_certificates)
            row = catalog.add_endpoint(
                name=name, endpoint_type="IMAP", remote_server=remote_server, port=port, security=mechanism.value,
                authentication=authentication, accept_untrusted=int(accept_untrusted_certificates),
                max_concurrent_migrations=max_concurrent_migrations,
                max_concurrent_incremental_syncs=max_concurrent_incremental_syncs,
            )
            return _endpoint_view(row)

    def _verify(self, remote_server: str, port: int, security: Security, accept_untrusted: bool) -> None:
        result = self.test_server_availability(remote_server, port, security=security.value,
                                               accept_untrusted_certificates=accept_untrusted)
        if not result.is_valid:
            raise Refused(f"{result.message} Check the settings, or use -SkipVerification.")

    def get_endpoints(self, identity: str | None = None) -> list[EndpointView]:
        """Get-MigrationEndpoint."""
        with self._catalog() as catalog:
            if identity is not None:
                return [_endpoint_view(self._endpoint(catalog, identity))]
            return [_endpoint_view(e) for e in catalog.endpoints()]

    def set_endpoint(self, identity: str, *, skip_verification: bool = False, **changes: Any) -> EndpointView:
        """Set-MigrationEndpoint: remote_server, port, security, authentication,
        accept_untrusted_certificates, max_concurrent_migrations, max_concurrent_incremental_syncs.

        A change of the server, port, security or certificate policy is tested first (as
        New-MigrationEndpoint does) unless ``skip_verification``; a refused change changes nothing.
        """
        columns = {"accept_untrusted_certificates": "accept_untrusted"}
        allowed = {"remote_server", "port", "security", "authentication", "accept_untrusted_certificates",
                   "max_concurrent_migrations", "max_concurrent_incremental_syncs"}
        unknown = set(changes) - allowed
        if unknown:
            raise ConfigurationError(f"Set-MigrationEndpoint cannot change {', '.join(sorted(unknown))}")
        for key in ("remote_server", "authentication"):
            if isinstance(changes.get(key), str):
                refuse_controls(changes[key], "-" + key.title().replace("_", ""))
        with self._catalog() as catalog:
            row = self._endpoint(catalog, identity)
            values = {columns.get(k, k): v for k, v in changes.items() if v is not None}
            if "security" in values:
                values["security"] = Security.parse(values["security"]).value
            if "accept_untrusted" in values:
                values["accept_untrusted"] = int(bool(values["accept_untrusted"]))
            merged = {**row.__dict__, **values}
            _check_concurrency(merged["max_concurrent_migrations"], merged["max_concurrent_incremental_syncs"])
            # Every connection setting counts: taking back AcceptUntrustedCertificates on a server
            # with a self-signed certificate would otherwise break each later sync.
            if not skip_verification and {"remote_server", "port", "security", "accept_untrusted"} & set(values):
                self._verify(merged["remote_server"], merged["port"], Security.parse(merged["security"]),
                             bool(merged["accept_untrusted"]))
            catalog.update_endpoint(row.id, values)
            found = catalog.endpoint_by_id(row.id)
            assert found is not None
            return _endpoint_view(found)

    def remove_endpoint(self, identity: str) -> None:
        """Remove-MigrationEndpoint; refused while a batch uses it."""
        with self._catalog() as catalog:
            row = self._endpoint(catalog, identity)
            users = catalog.batches_using(row.id)
            if users:
                raise Refused(f"The migration endpoint '{row.name}' is used by the batches {', '.join(users)}; "
                              "remove them first.")
            catalog.remove_endpoint(row.id)

    @staticmethod
    def _endpoint(catalog: Catalog, identity: str) -> EndpointRow:
        row = catalog.find_endpoint(str(identity))
        if row is None:
            raise NotFound(f"The migration endpoint '{identity}' can't be found.")
        return row

    # -- batches ----------------------------------------------------------------------

    def new_batch(
        self,
        name: str,
        csv_data: bytes,
        *,
        source_endpoint: str | None = None,
        imap: bool = False,
        remote_server: str | None = None,
        port: int | None = None,
        security: str | None = None,
        max_concurrent_migrations: int | None = None,
        time_zone: str | None = None,
        exclude_folders: Sequence[str] = (),
        notification_emails: Sequence[str] = (),
        bad_item_limit: int | None = None,
        large_item_limit: int | None = None,
        auto_start: bool = False,
        auto_complete: bool = False,
        start_after: datetime | None = None,
        complete_after: datetime | None = None,
        allow_unknown_columns_in_csv: bool = False,
        allow_incremental_syncs: bool = True,
        requested_by: str | None = None,
    ) -> BatchView:
        """New-MigrationBatch, in the 2010 form (``imap`` + remote_server/port) or with a source endpoint."""
        _check_name(name, "migration batch")
        legacy = imap or remote_server is not None
        if legacy and source_endpoint:
            raise ConfigurationError("give either -SourceEndpoint or -RemoteServer/-Port (the 2010 form), not both")
        if not legacy and not source_endpoint:
            raise ConfigurationError("an IMAP batch needs -SourceEndpoint, or -Imap with -RemoteServer and -Port")
        if legacy and not remote_server:
            raise ConfigurationError("-Imap needs -RemoteServer (and -Port)")
        if remote_server:
            refuse_controls(remote_server, "-RemoteServer")
        if max_concurrent_migrations is not None and legacy and not 1 <= max_concurrent_migrations <= defaults.LEGACY_MAX_CONCURRENT_MIGRATIONS:
            raise ConfigurationError(f"-MaxConcurrentMigrations must be between 1 and {defaults.LEGACY_MAX_CONCURRENT_MIGRATIONS}")
        parse_excludes(list(exclude_folders))
        recipients = _addresses(notification_emails)
        batch_defaults = {k: v for k, v in (("BadItemLimit", bad_item_limit), ("LargeItemLimit", large_item_limit)) if v is not None}
        parsed = parse_migration_csv(bytes(csv_data), MigrationType.IMAP,
                                     allow_unknown_columns=allow_unknown_columns_in_csv, batch_defaults=batch_defaults)
        with self._catalog() as catalog:
            existing = catalog.find_batch(name)
            if existing:
                raise AlreadyExists(f"A migration batch named '{existing.name}' already exists; batch names must be unique.")
            limit = int(catalog.config().get("MaxNumberOfBatches", defaults.MAX_NUMBER_OF_BATCHES))
            if len(catalog.batches()) >= limit:
                raise Refused(f"The limit of {limit} migration batches is reached; remove a batch first.")
            if legacy:
                running = [b.name for b in catalog.batches(LEGACY_ACTIVE)]
                if running:
                    raise Refused(f"The migration batch '{running[0]}' is still running; only one batch can be "
                                  "active at a time. Check it with Get-MigrationBatch and submit this one when it finishes.")
            taken = self._users_in_active_batches(catalog, [r.email for r in parsed.rows])
            if taken:
                shown = ", ".join(f"{email} (batch {batch})" for email, batch in taken[:10])
                more = f" and {len(taken) - 10} more" if len(taken) > 10 else ""
                raise Refused(f"These users are already in another migration batch: {shown}{more}.")
            if legacy:
                mechanism = Security.parse(security) if security else (Security.SSL if port == 993 else Security.NONE)
                endpoint = catalog.add_endpoint(
                    name=f"{name} (IMAP {remote_server})", endpoint_type="IMAP", remote_server=remote_server,
                    port=port or (993 if mechanism is Security.SSL else 143), security=mechanism.value,
                    authentication="Basic", accept_untrusted=0,
                    max_concurrent_migrations=max_concurrent_migrations or defaults.LEGACY_MAX_CONCURRENT_MIGRATIONS,
                    max_concurrent_incremental_syncs=max_concurrent_migrations or defaults.LEGACY_MAX_CONCURRENT_MIGRATIONS,
                    implicit=1,
                )
            else:
                endpoint = self._endpoint(catalog, str(source_endpoint))
            settings = {
                "legacy": legacy,
                "exclude_folders": list(exclude_folders),
                "notification_emails": recipients + ([requested_by] if requested_by and legacy else []),
                "bad_item_limit": bad_item_limit if bad_item_limit is not None else defaults.BAD_ITEM_LIMIT,
                "large_item_limit": large_item_limit if large_item_limit is not None else defaults.LARGE_ITEM_LIMIT,
                "max_concurrent_migrations": max_concurrent_migrations if legacy else None,
                "time_zone": time_zone,
                "start_after": start_after.timestamp() if start_after else None,
                "complete_after": complete_after.timestamp() if complete_after else None,
                "auto_complete": auto_complete,
                "allow_incremental_syncs": allow_incremental_syncs,
                "csv_columns": parsed.columns,
            }
            users = [
                {
                    "email": row.email,
                    "line": row.line,
                    "user_name": row.values.get("UserName", ""),
                    "password": self.vault.seal(row.values.get("Password", "")),
                    "user_root": row.values.get("UserRoot") or None,
                    "columns": {k: v for k, v in row.values.items() if k.lower() != "password"},
                    "settings": {"bad_item_limit": row.settings.bad_item_limit,
                                 "large_item_limit": row.settings.large_item_limit},
                }
                for row in parsed.rows
            ]
            batch = catalog.add_batch(name=name, migration_type="IMAP", endpoint_id=endpoint.id, settings=settings,
                                      users=users)
        if auto_start:
            self.start_batch(batch.name)
        return self.get_batches(batch.name)[0]

    @staticmethod
    def _users_in_active_batches(catalog: Catalog, emails: Sequence[str]) -> list[tuple[str, str]]:
        active = {b.id: b.name for b in catalog.batches(USERS_ACTIVE)}
        wanted = {e.lower() for e in emails}
        return [(u.email, active[u.batch_id]) for u in catalog.users() if u.batch_id in active and u.email.lower() in wanted]

    def _batch(self, catalog: Catalog, identity: str | None, action: str) -> BatchRow:
        if identity is not None:
            row = catalog.find_batch(str(identity))
            if row is None:
                raise NotFound(f"The migration batch '{identity}' can't be found.")
            return row
        batches = catalog.batches()
        if len(batches) == 1:
            return batches[0]
        if not batches:
            raise NotFound(f"There is no migration batch to {action}.")
        raise ConfigurationError(
            f"There are {len(batches)} migration batches; name the one to {action} with -Identity "
            f"({', '.join(b.name for b in batches[:5])}{', ...' if len(batches) > 5 else ''})."
        )

    def start_batch(self, identity: str | None = None, *, notification_emails: Sequence[str] = (),
                    requested_by: str | None = None) -> None:
        """Start-MigrationBatch: starts a new batch, resumes a stopped one, retries failed users."""
        recipients = _addresses(notification_emails)
        with self._catalog() as catalog:
            batch = self._batch(catalog, identity, "start")
            settings = dict(batch.settings)
            extra = recipients + ([requested_by] if requested_by and settings.get("legacy") else [])
            settings["notification_emails"] = list(dict.fromkeys([*settings.get("notification_emails", []), *extra]))
            now = time.time()
            batch = catalog.move_batch(batch, BatchAction.START, B.STARTING, settings=settings, error=None)
            for user in catalog.users(batch_id=batch.id, statuses=[U.STOPPED, U.INCREMENTAL_STOPPED, U.FAILED,
                                                                    U.INCREMENTAL_FAILED, U.COMPLETION_FAILED]):
                catalog.move_user(user, UserAction.QUEUE, U.QUEUED, queued=now, error=None)
        self.scheduler.wake()

    def stop_batch(self, identity: str | None = None) -> None:
        """Stop-MigrationBatch: running users finish their current chunk; pending ones stay pending."""
        with self._catalog() as catalog:
            batch = self._batch(catalog, identity, "stop")
            counts = catalog.status_counts(batch.id)
            if counts and all(s in (U.COMPLETED, U.FAILED, U.COMPLETION_FAILED) for s in counts):
                raise Refused(f"Every user of the migration batch '{batch.name}' is completed or failed; there is nothing to stop.")
            catalog.move_batch(batch, BatchAction.STOP, B.STOPPING)
            for user in catalog.users(batch_id=batch.id, statuses=RUNNING):
                self.scheduler.stop_user(user.id)
        self.scheduler.wake()

    def complete_batch(self, identity: str | None = None, *, notification_emails: Sequence[str] = (),
                       requested_by: str | None = None) -> None:
        """Complete-MigrationBatch: a final incremental sync of every user, then Completed.

        Exchange Online no longer supports it for IMAP batches (they end with Remove); Mailshift
        does, because a final sync after the MX switch is what administrators want.
        """
        recipients = _addresses(notification_emails)
        with self._catalog() as catalog:
            batch = self._batch(catalog, identity, "complete")
            self._complete(catalog, batch, recipients + ([requested_by] if requested_by else []))
        self.scheduler.wake()

    def complete_migration(self, *, notification_emails: Sequence[str] = (), requested_by: str | None = None) -> list[str]:
        """Complete-Migration (2010): completes every synced batch; returns their names.

        A CompletedWithErrors batch counts as ready too: running Complete-Migration again is how
        its failed mailboxes are retried (the completion mail says so); completed ones stay.
        """
        recipients = _addresses(notification_emails) + ([requested_by] if requested_by else [])
        with self._catalog() as catalog:
            ready = catalog.batches([B.SYNCED, B.SYNCED_WITH_ERRORS, B.COMPLETED_WITH_ERRORS])
            if not ready:
                states = ", ".join(f"{b.name} ({b.status.value})" for b in catalog.batches()) or "none"
                raise Refused(f"No migration batch is synced and ready to complete; batches: {states}.")
            for batch in ready:
                self._complete(catalog, batch, recipients)
        self.scheduler.wake()
        return [b.name for b in ready]

    @staticmethod
    def _complete(catalog: Catalog, batch: BatchRow, recipients: Sequence[str]) -> None:
        move_batch(batch.name, BatchAction.COMPLETE, batch.status, B.COMPLETING)  # refuse early, clearly
        if recipients:
            settings = dict(batch.settings)
            settings["notification_emails"] = list(dict.fromkeys([*settings.get("notification_emails", []), *recipients]))
            catalog.update_batch(batch.id, {"settings": settings})
            batch = catalog.batch_by_id(batch.id) or batch
        begin_completion(catalog, batch, time.time())

    def set_batch(
        self,
        identity: str,
        *,
        bad_item_limit: int | None = None,
        large_item_limit: int | None = None,
        notification_emails: Sequence[str] | None = None,
        start_after: datetime | None = None,
        complete_after: datetime | None = None,
        allow_incremental_syncs: bool | None = None,
        sync_now: bool = False,
    ) -> None:
        """Set-MigrationBatch (limits apply to users whose CSV row left them blank)."""
        with self._catalog() as catalog:
            batch = self._batch(catalog, identity, "change")
            move_batch(batch.name, BatchAction.SET, batch.status, batch.status)
            if sync_now:
                move_batch(batch.name, BatchAction.SYNC_NOW, batch.status, B.INCREMENTAL_SYNCING)
            settings = dict(batch.settings)
            if notification_emails is not None:
                settings["notification_emails"] = _addresses(notification_emails)
            for key, when in (("start_after", start_after), ("complete_after", complete_after)):
                if when is not None:
                    settings[key] = when.timestamp()
            if allow_incremental_syncs is not None:
                settings["allow_incremental_syncs"] = allow_incremental_syncs
            for key, column, limit in (("bad_item_limit", "BadItemLimit", bad_item_limit),
                                       ("large_item_limit", "LargeItemLimit", large_item_limit)):
                if limit is None:
                    continue
                if limit != defaults.UNLIMITED and not 0 <= limit <= 2147483647:
                    raise ConfigurationError(f"-{column} must be Unlimited or a number from 0 to 2147483647")
                settings[key] = limit
                for user in catalog.users(batch_id=batch.id):
                    if not (user.columns.get(column) or "").strip():
                        catalog.update_user(user.id, {"settings": {**user.settings, key: limit}})
            catalog.update_batch(batch.id, {"settings": settings, **({"sync_requested": 1} if sync_now else {})})
        self.scheduler.wake()

    def remove_batch(self, identity: str | None = None) -> None:
        """Remove-MigrationBatch: ends the batch's syncs and forgets it (copied mail stays)."""
        with self._catalog() as catalog:
            batch = self._batch(catalog, identity, "remove")
            catalog.move_batch(batch, BatchAction.REMOVE, B.REMOVING)
            for key in catalog.remove_batch(batch.id):
                catalog.drop_mailbox(key)
            endpoint = catalog.endpoint_by_id(batch.endpoint_id) if batch.endpoint_id else None
            if endpoint is not None and endpoint.implicit:
                catalog.remove_endpoint(endpoint.id)

    def get_batches(self, identity: str | None = None, *, status: str | None = None) -> list[BatchView]:
        """Get-MigrationBatch."""
        with self._catalog() as catalog:
            if identity is not None:
                rows = [self._batch(catalog, identity, "show")]
            else:
                rows = catalog.batches()
            if status is not None:
                wanted = parse_status(BatchStatus, status)
                rows = [b for b in rows if b.status is wanted]
            return [self._batch_view(catalog, b) for b in rows]

    @staticmethod
    def _batch_view(catalog: Catalog, batch: BatchRow) -> BatchView:
        statuses = catalog.status_counts(batch.id)
        counts = batch_counts(statuses)
        active = sum(statuses.get(s, 0) for s in RUNNING)
        endpoint = catalog.endpoint_by_id(batch.endpoint_id) if batch.endpoint_id else None
        s = batch.settings
        return BatchView(
            identity=batch.name, guid=batch.guid, status=batch.status.value, migration_type=batch.migration_type,
            total_count=counts.total, active_count=active, stopped_count=counts.stopped, synced_count=counts.synced,
            finalized_count=counts.finalized, failed_count=counts.failed, pending_count=counts.pending,
            source_endpoint=endpoint.name if endpoint and not endpoint.implicit else None,
            notification_emails=list(s.get("notification_emails", [])),
            excluded_folders=list(s.get("exclude_folders", [])),
            bad_item_limit=int(s.get("bad_item_limit", 0)), large_item_limit=int(s.get("large_item_limit", 0)),
            time_zone=s.get("time_zone"), start_after=_time(s.get("start_after")),
            complete_after=_time(s.get("complete_after")), creation_date_time=_time(batch.created),
            start_date_time=_time(batch.started), initial_sync_date_time=_time(batch.initial_sync_done),
            last_synced_date_time=_time(batch.last_synced), finalized_date_time=_time(batch.finished),
        )

    def get_status(self) -> StatusView:
        """Get-MigrationStatus / Get-MigrationStatistics: counters over every batch."""
        with self._catalog() as catalog:
            statuses = catalog.status_counts()
            counts = batch_counts(statuses)
            return StatusView(
                batch_count=len(catalog.batches()), total_count=counts.total,
                active_count=sum(statuses.get(s, 0) for s in RUNNING), stopped_count=counts.stopped,
                synced_count=counts.synced, finalized_count=counts.finalized, failed_count=counts.failed,
                pending_count=counts.pending,
            )

    # -- users ------------------------------------------------------------------------

    def get_users(self, identity: str | None = None, *, batch: str | None = None,
                  status: str | None = None) -> list[UserView]:
        """Get-MigrationUser."""
        with self._catalog() as catalog:
            rows = self._users(catalog, identity, batch, status)
            names = {b.id: b.name for b in catalog.batches()}
            return [_user_view(u, names[u.batch_id]) for u in rows]

    def _users(self, catalog: Catalog, identity: str | None, batch: str | None, status: str | None) -> list[UserRow]:
        batch_id = self._batch(catalog, batch, "list").id if batch is not None else None
        statuses = [parse_status(UserStatus, status)] if status is not None else None
        rows = catalog.users(batch_id=batch_id, statuses=statuses, email=str(identity) if identity is not None else None)
        if identity is not None and not rows:
            raise NotFound(f"The migration user '{identity}' can't be found.")
        return rows

    def _one_user(self, catalog: Catalog, identity: str) -> UserRow:
        rows = self._users(catalog, identity, None, None)
        if len(rows) > 1:
            raise ConfigurationError(f"'{identity}' is in {len(rows)} batches; name the user by its Guid "
                                     f"({', '.join(u.guid for u in rows)}).")
        return rows[0]

    def get_user_statistics(self, identity: str, *, include_report: bool = False, include_skipped_items: bool = False,
                            limit_skipped_items_to: int | None = None) -> UserStatisticsView:
        """Get-MigrationUserStatistics, with live figures while the user is being synced."""
        with self._catalog() as catalog:
            user = self._one_user(catalog, identity)
            batch = catalog.batch_by_id(user.batch_id)
            assert batch is not None
            base = _user_view(user, batch.name)
            live = self.scheduler.progress(user.id)
            total_items, total_bytes, moved = user.total_items, user.total_bytes, user.bytes_transferred
            synced = user.synced_items
            if live is not None:
                now = live.snapshot()
                total_items = int(now["messages_total"]) or total_items
                total_bytes = int(now["bytes_total"]) or total_bytes
                moved += int(now["bytes_copied"])
                synced = catalog.copied_count(user.mailbox_key)
            skipped = []
            if include_skipped_items:
                mailbox = catalog.mailbox(user.mailbox_key)
                skipped = [SkippedItemView(s.kind, s.folder, s.subject, s.date, s.size, s.reason) for s in catalog.skipped(mailbox)]
                if limit_skipped_items_to is not None:
                    skipped = skipped[:limit_skipped_items_to]
            percentage = 100 if user.status in (U.SYNCED, U.COMPLETED) else (
                min(99, int(100 * synced / total_items)) if total_items else 0)
            fields = {**base.__dict__, "synced_item_count": synced}
            return UserStatisticsView(
                **fields,
                error=user.error,
                total_items_in_source_mailbox_count=total_items,
                estimated_total_transfer_size=total_bytes,
                bytes_transferred=moved,
                percentage_complete=percentage,
                skipped_items=skipped,
                report=[{**e, "CreationTime": _time(e["CreationTime"])} for e in user.report] if include_report else [],
            )

    def remove_user(self, identity: str) -> None:
        """Remove-MigrationUser: not while it is being synced."""
        with self._catalog() as catalog:
            user = self._one_user(catalog, identity)
            if user.status in RUNNING or user.status is U.QUEUED:
                raise Refused(f"The migration user '{user.email}' is {user.status.value}; stop its batch first.")
            catalog.remove_user(user.id)
            catalog.drop_mailbox(user.mailbox_key)

    # -- config -----------------------------------------------------------------------

    def get_config(self) -> ConfigView:
        """Get-MigrationConfig."""
        with self._catalog() as catalog:
            c = catalog.config()
            return ConfigView(
                max_number_of_batches=int(c.get("MaxNumberOfBatches", defaults.MAX_NUMBER_OF_BATCHES)),
                max_concurrent_migrations=int(c.get("MaxConcurrentMigrations", defaults.SERVICE_MAX_CONCURRENT_MIGRATIONS)),
                incremental_sync_interval_seconds=float(
                    c.get("IncrementalSyncInterval", defaults.INCREMENTAL_SYNC_INTERVAL_SECONDS)),
                features=["MultiBatch", "Endpoints"],
            )

    def set_config(self, *, max_number_of_batches: int | None = None, max_concurrent_migrations: int | None = None,
                   incremental_sync_interval_seconds: float | None = None) -> ConfigView:
        """Set-MigrationConfig."""
        given: dict[str, float | None] = {
            "MaxNumberOfBatches": max_number_of_batches,
            "MaxConcurrentMigrations": max_concurrent_migrations,
            "IncrementalSyncInterval": incremental_sync_interval_seconds,
        }
        values = {k: v for k, v in given.items() if v is not None}
        for key, value in values.items():
            if value < 1:
                raise ConfigurationError(f"-{key} must be at least 1")
        with self._catalog() as catalog:
            catalog.set_config(values)
        self.scheduler.wake()
        return self.get_config()


def _check_name(name: str, what: str) -> None:
    if not name or not name.strip():
        raise ConfigurationError(f"the {what} needs a -Name")
    refuse_controls(name, f"the {what} name")
    if len(name) > defaults.BATCH_NAME_MAX_LENGTH:
        raise ConfigurationError(f"the {what} name is {len(name)} characters; at most {defaults.BATCH_NAME_MAX_LENGTH} are allowed")


def _check_concurrency(migrations: int, incremental: int) -> None:
    if migrations < 1 or incremental < 1:
        raise ConfigurationError("-MaxConcurrentMigrations and -MaxConcurrentIncrementalSyncs must be at least 1")
    if incremental > migrations:
        raise ConfigurationError("-MaxConcurrentIncrementalSyncs can't be larger than -MaxConcurrentMigrations")


def _addresses(values: Sequence[str]) -> list[str]:
    for value in values:
        refuse_controls(str(value), "-NotificationEmails")
    bad = [v for v in values if not _ADDRESS.match(str(v).strip())]
    if bad:
        raise ConfigurationError(f"not valid e-mail addresses: {', '.join(map(str, bad))}")
    return [str(v).strip() for v in values]


def _endpoint_view(row: EndpointRow) -> EndpointView:
    return EndpointView(
        identity=row.name, guid=row.guid, endpoint_type=row.endpoint_type, remote_server=row.remote_server,
        port=row.port, security=row.security, authentication=row.authentication,
        accept_untrusted_certificates=row.accept_untrusted, max_concurrent_migrations=row.max_concurrent_migrations,
        max_concurrent_incremental_syncs=row.max_concurrent_incremental_syncs,
    )


def _user_view(user: UserRow, batch: str) -> UserView:
    return UserView(
        identity=user.email, guid=user.guid, batch_id=batch, mailbox_email_address=user.email,
        status=user.status.value, status_summary=_SUMMARY.get(user.status, "Active"), error_summary=user.error,
        synced_item_count=user.synced_items, skipped_item_count=user.skipped_items,
        last_successful_sync_time=_time(user.last_successful_sync),
    )
