"""Engine views turned into the objects Exchange's cmdlets return (type names and property names).

Scripts rely on property names, on ``Identity`` printing as the name (and a batch's
``Identity.Name``), and on statuses comparing as strings; these builders give them that.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from engine.defaults import UNLIMITED
from engine.service import AvailabilityResult, BatchView, ConfigView, EndpointView, StatusView, UserStatisticsView, UserView
from shim.host import TableView
from shim.psobject import PSObject

__all__ = [
    "BATCH",
    "ENDPOINT",
    "VIEWS",
    "availability_object",
    "batch_object",
    "config_object",
    "endpoint_object",
    "statistics_object",
    "status_object",
    "user_object",
    "user_statistics_object",
]

_NS = "Microsoft.Exchange.Data.Storage.Management"
BATCH = f"{_NS}.MigrationBatch"
BATCH_ID = f"{_NS}.MigrationBatchId"
USER = f"{_NS}.MigrationUser"
USER_ID = f"{_NS}.MigrationUserId"
USER_STATISTICS = f"{_NS}.MigrationUserStatistics"
SKIPPED_ITEM = f"{_NS}.MigrationUserSkippedItem"
REPORT = f"{_NS}.MigrationReportSet"
ENDPOINT = f"{_NS}.MigrationEndpoint"
ENDPOINT_ID = f"{_NS}.MigrationEndpointId"
STATISTICS = f"{_NS}.MigrationStatistics"
STATUS = f"{_NS}.MigrationStatus"
CONFIG = f"{_NS}.MigrationConfig"
AVAILABILITY = "Microsoft.Exchange.Migration.TestMigrationServerAvailabilityOutcome"

#: Default views: what each type prints as with no Format-* command.
VIEWS: dict[str, TableView] = {
    BATCH: TableView(("Identity", "Status", "MigrationType", "TotalCount"), {"MigrationType": "Type"}),
    USER: TableView(("Identity", "BatchId", "Status", "LastSuccessfulSyncTime"),
                    {"BatchId": "Batch", "LastSuccessfulSyncTime": "LastSyncTime"}),
    USER_STATISTICS: TableView(("Identity", "BatchId", "Status", "SyncedItemCount", "SkippedItemCount"),
                               {"BatchId": "Batch", "SyncedItemCount": "Items Synced",
                                "SkippedItemCount": "Items Skipped"}),
    ENDPOINT: TableView(("Identity", "EndpointType", "RemoteServer", "Port", "Security")),
    AVAILABILITY: TableView(("Result", "Message"), default="list"),
    STATISTICS: TableView(("TotalCount", "ActiveCount", "SyncedCount", "FinalizedCount", "FailedCount",
                           "PendingCount"), {"TotalCount": "Total", "ActiveCount": "Active",
                                             "SyncedCount": "Synced", "FinalizedCount": "Finalized",
                                             "FailedCount": "Failed", "PendingCount": "Pending"}),
    STATUS: TableView(("BatchCount", "TotalCount", "ActiveCount", "SyncedCount", "FailedCount"),
                      {"BatchCount": "Batches", "TotalCount": "Total", "ActiveCount": "Active",
                       "SyncedCount": "Synced", "FailedCount": "Errors"}),
    SKIPPED_ITEM: TableView(("Kind", "FolderName", "Subject", "DateReceived", "MessageSize")),
    CONFIG: TableView(("MaxNumberOfBatches", "MaxConcurrentMigrations", "Features"), default="list"),
}


def _limit(value: int) -> str | int:
    return "Unlimited" if value == UNLIMITED else value


def _identity(type_name: str, name: str, guid: str) -> PSObject:
    return PSObject([type_name], {"Name": name, "Id": name, "Guid": guid}, text=name)


def _state(status: str) -> str:
    if status in ("Stopped", "Stopping", "Created"):
        return "Stopped"
    if status in ("Completed", "CompletedWithErrors"):
        return "Completed"
    if status in ("Failed", "Corrupted"):
        return "Failed"
    return "Active"


def batch_object(view: BatchView) -> PSObject:
    """A MigrationBatch."""
    return PSObject([BATCH], [
        ("Identity", _identity(BATCH_ID, view.identity, view.guid)),
        ("Status", view.status),
        ("State", _state(view.status)),
        ("MigrationType", view.migration_type),
        ("TotalCount", view.total_count),
        ("ActiveCount", view.active_count),
        ("StoppedCount", view.stopped_count),
        ("SyncedCount", view.synced_count),
        ("FinalizedCount", view.finalized_count),
        ("FailedCount", view.failed_count),
        ("PendingCount", view.pending_count),
        ("ProvisionedCount", 0),
        ("SourceEndpoint", view.source_endpoint),
        ("TargetEndpoint", None),
        ("NotificationEmails", list(view.notification_emails)),
        ("ExcludedFolders", list(view.excluded_folders)),
        ("BadItemLimit", _limit(view.bad_item_limit)),
        ("LargeItemLimit", _limit(view.large_item_limit)),
        ("TimeZone", view.time_zone),
        ("StartAfter", view.start_after),
        ("StartAfterUTC", view.start_after),
        ("CompleteAfter", view.complete_after),
        ("CompleteAfterUTC", view.complete_after),
        ("CreationDateTime", view.creation_date_time),
        ("StartDateTime", view.start_date_time),
        ("InitialSyncDateTime", view.initial_sync_date_time),
        ("LastSyncedDateTime", view.last_synced_date_time),
        ("FinalizedDateTime", view.finalized_date_time),
        ("BatchGuid", view.guid),
    ])


def _user_properties(view: UserView) -> list[tuple[str, Any]]:
    return [
        ("Identity", PSObject([USER_ID], {"Id": view.identity, "MailboxEmailAddress": view.mailbox_email_address},
                              text=view.identity)),
        ("Guid", view.guid),
        ("BatchId", PSObject([BATCH_ID], {"Name": view.batch_id, "Id": view.batch_id}, text=view.batch_id)),
        ("MailboxEmailAddress", view.mailbox_email_address),
        ("RecipientType", "Mailbox"),
        ("Status", view.status),
        ("StatusSummary", view.status_summary),
        ("State", view.status_summary),
        ("ErrorSummary", view.error_summary),
        ("SyncedItemCount", view.synced_item_count),
        ("SkippedItemCount", view.skipped_item_count),
        ("HasUnapprovedSkippedItems", False),
        ("LastSuccessfulSyncTime", view.last_successful_sync_time),
    ]


def user_object(view: UserView) -> PSObject:
    """A MigrationUser."""
    return PSObject([USER], _user_properties(view))


def user_statistics_object(view: UserStatisticsView, *, include_report: bool) -> PSObject:
    """A MigrationUserStatistics (a MigrationUser with its transfer figures)."""
    skipped = [
        PSObject([SKIPPED_ITEM], [
            ("Kind", item.kind), ("FolderName", item.folder_name), ("Subject", item.subject),
            ("DateReceived", item.date_received), ("MessageSize", item.message_size), ("Failure", item.failure),
        ])
        for item in view.skipped_items
    ]
    entries = [
        PSObject([f"{_NS}.MigrationReportEntry"], {"CreationTime": e.get("CreationTime"), "Message": e.get("Message")},
                 text=f"{_when(e.get('CreationTime'))} {e.get('Message', '')}".strip())
        for e in view.report
    ]
    report = PSObject([REPORT], {"Entries": entries}, text=f"{len(entries)} entries") if include_report else None
    return PSObject([USER_STATISTICS, USER], [
        *_user_properties(view),
        ("Error", view.error),
        ("TotalItemsInSourceMailboxCount", view.total_items_in_source_mailbox_count),
        ("EstimatedTotalTransferSize", view.estimated_total_transfer_size),
        ("BytesTransferred", view.bytes_transferred),
        ("PercentageComplete", view.percentage_complete),
        ("SkippedItems", skipped),
        ("Report", report),
    ])


def _when(value: Any) -> str:
    return value.strftime("%m/%d/%Y %H:%M:%S") if isinstance(value, datetime) else ""


def endpoint_object(view: EndpointView) -> PSObject:
    """A MigrationEndpoint (its password is never part of it)."""
    return PSObject([ENDPOINT], [
        ("Identity", _identity(ENDPOINT_ID, view.identity, view.guid)),
        ("EndpointType", view.endpoint_type),
        ("RemoteServer", view.remote_server),
        ("Port", view.port),
        ("Security", view.security),
        ("Authentication", view.authentication),
        ("AcceptUntrustedCertificates", view.accept_untrusted_certificates),
        ("MaxConcurrentMigrations", view.max_concurrent_migrations),
        ("MaxConcurrentIncrementalSyncs", view.max_concurrent_incremental_syncs),
        ("Guid", view.guid),
    ])


def availability_object(result: AvailabilityResult) -> PSObject:
    """Test-MigrationServerAvailability's outcome; prints (and compares) as its Result."""
    return PSObject([AVAILABILITY], [
        ("Result", result.result),
        ("Message", result.message),
        ("RemoteServer", result.remote_server),
        ("Port", result.port),
        ("Security", result.security),
        ("SupportsCutover", result.supports_cutover),
        ("IsValid", result.is_valid),
    ], text=result.result)


def _counts(view: StatusView) -> list[tuple[str, Any]]:
    return [
        ("BatchCount", view.batch_count), ("TotalCount", view.total_count), ("ActiveCount", view.active_count),
        ("StoppedCount", view.stopped_count), ("SyncedCount", view.synced_count),
        ("FinalizedCount", view.finalized_count), ("FailedCount", view.failed_count),
        ("PendingCount", view.pending_count), ("ProvisionedCount", 0),
    ]


def statistics_object(view: StatusView) -> PSObject:
    """Get-MigrationStatistics' counters."""
    return PSObject([STATISTICS], _counts(view))


def status_object(view: StatusView) -> PSObject:
    """Get-MigrationStatus (2010): the same counters, as the overall migration's status."""
    overall = "Syncing" if view.active_count or view.pending_count else (
        "Completed" if view.total_count and view.finalized_count == view.total_count else
        "Synced" if view.synced_count else "Stopped" if view.total_count else "None")
    return PSObject([STATUS], [("Status", overall), *_counts(view)])


def config_object(view: ConfigView) -> PSObject:
    """Get-MigrationConfig."""
    return PSObject([CONFIG], [
        ("Identity", "MigrationConfig"),
        ("MaxNumberOfBatches", view.max_number_of_batches),
        ("MaxConcurrentMigrations", view.max_concurrent_migrations),
        ("IncrementalSyncInterval", view.incremental_sync_interval_seconds),
        ("Features", list(view.features)),
    ])
