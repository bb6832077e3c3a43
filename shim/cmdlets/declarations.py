"""Every cmdlet Mailshift implements, declared once: surface, help, and the engine call.

The REST binder, the script interpreter, the PSRP door, the generated PowerShell module, its
format file and its MAML help all read these declarations. Names, parameter sets, types,
positions and pipeline binding follow Exchange's cmdlets (``shared/reference/cmdlets.md``);
the help text is Mailshift's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from engine import defaults
from engine.status import BatchStatus, UserStatus
from shim.cmdlets import objects
from shim.cmdlets.binder import Bound
from shim.cmdlets.context import Context
from shim.cmdlets.model import ALL_SETS, Cmdlet, Example, Parameter
from shim.cmdlets.types import (
    BATCH_ID,
    BOOLEAN,
    BYTES,
    DATETIME,
    ENDPOINT_ID,
    FQDN,
    INT32,
    MULTI,
    SMTP,
    STRING,
    SWITCH,
    TIMESPAN,
    UNLIMITED_INT,
    USER_ID,
    ParamType,
    enum,
)
from shim.errors import NotSupported
from shim.psobject import PSObject

__all__ = ["CMDLETS"]

_SECURITY = enum("IMAPSecurityMechanism", "Microsoft.Exchange.Data.IMAPSecurityMechanism", ("None", "Ssl", "Tls"))
_AUTHENTICATION = enum("AuthenticationMethod",
                       "Microsoft.Exchange.Data.Directory.SystemConfiguration.AuthenticationMethod",
                       ("Basic", "Digest", "Ntlm", "Fba", "WindowsIntegrated", "LiveIdFba", "LiveIdBasic",
                        "WSSecurity", "Certificate", "NegoEx", "OAuth", "Adfs", "Kerberos", "Negotiate",
                        "LiveIdNegotiate", "Misconfigured"))
_BATCH_STATUS = enum("MigrationBatchStatus", "Microsoft.Exchange.Data.Storage.Management.MigrationBatchStatus",
                     tuple(s.value for s in BatchStatus))
_USER_STATUS = enum("MigrationUserStatus", "Microsoft.Exchange.Data.Storage.Management.MigrationUserStatus",
                    tuple(s.value for s in UserStatus))
_USER_SUMMARY = enum("MigrationUserStatusSummary",
                     "Microsoft.Exchange.Data.Storage.Management.MigrationUserStatusSummary",
                     ("Active", "Failed", "Synced", "Completed", "Stopped"))
_MIGRATION_TYPE = enum("MigrationType", "Microsoft.Exchange.Data.Storage.Management.MigrationType",
                       ("None", "IMAP", "XO1", "ExchangeOutlookAnywhere", "BulkProvisioning", "ExchangeRemoteMove",
                        "ExchangeLocalMove", "PSTImport", "PublicFolder"))
_CREDENTIAL = ParamType("PSCredential", "System.Management.Automation.PSCredential", lambda value: value)
_ANY_ID = ParamType("MailboxIdParameter", "Microsoft.Exchange.Configuration.Tasks.MailboxIdParameter",
                    lambda value: None if value is None else str(value))

# -- shared parameters ---------------------------------------------------------------------

_DOMAIN_CONTROLLER = Parameter("DomainController", FQDN, "Accepted for compatibility with Exchange on-premises "
                               "scripts and ignored: Mailshift has no directory.", ignored=True)
_PARTITION = Parameter("Partition", _ANY_ID, "Accepted for compatibility with Exchange Online scripts and ignored.",
                       ignored=True)
_DIAGNOSTICS = (
    Parameter("Diagnostic", SWITCH, "Accepted and ignored; diagnostics are in the service log.", ignored=True),
    Parameter("DiagnosticArgument", STRING, "Accepted and ignored.", ignored=True),
    Parameter("DiagnosticInfo", STRING, "Accepted and ignored.", ignored=True),
)
_RESULT_SIZE = Parameter("ResultSize", UNLIMITED_INT, "The most objects to return: a number or Unlimited. "
                         "The default is 1000.")
_NOTIFICATION_EMAILS = "The e-mail addresses that receive the migration status messages, e.g. " \
                       "\"admin@contoso.edu\",\"helpdesk@contoso.edu\"."


def _current_batch(ctx: Context, b: Bound) -> str | None:
    """The batch a cmdlet acts on: -Identity, else (2010 style) the one batch that is not completed."""
    given: str | None = b.get("Identity")
    if given is not None:
        return given
    open_batches = [v.identity for v in ctx.service.get_batches()
                    if v.status not in ("Completed", "CompletedWithErrors", "Removing")]
    return open_batches[0] if len(open_batches) == 1 else None


def _batch_identity(mandatory: bool, help_text: str) -> Parameter:
    return Parameter("Identity", BATCH_ID, help_text, mandatory=(ALL_SETS,) if mandatory else (), position=0,
                     from_pipeline=True, from_pipeline_by_property_name=True)


def _concurrency(value: int | None) -> int | None:
    if value == defaults.UNLIMITED:
        return defaults.SERVICE_MAX_CONCURRENT_MIGRATIONS
    return value


def _refuse_non_imap(bound: Bound, names: Sequence[str], what: str) -> None:
    given = [n for n in names if bound.get(n)]
    if given:
        raise NotSupported(f"Mailshift migrates mailboxes from IMAP servers; -{given[0]} ({what}) is not supported.",
                           command=bound.cmdlet.name, target=given[0])


def _ignored_warning(ctx: Context, bound: Bound) -> None:
    for parameter in bound.cmdlet.parameters:
        if parameter.ignored and bound.has(parameter.name) and parameter.name not in (
                "DomainController", "Partition", "Diagnostic", "DiagnosticArgument", "DiagnosticInfo"):
            ctx.warn(f"-{parameter.name} has no effect on IMAP migrations in Mailshift and was ignored.")


# -- Test-MigrationServerAvailability ----------------------------------------------------------


def _test_availability(ctx: Context, b: Bound) -> PSObject:
    _refuse_non_imap(b, ("ExchangeOutlookAnywhere", "ExchangeRemoteMove", "Gmail", "PSTImport", "Compliance",
                         "PublicFolder"), "another migration type")
    result = ctx.service.test_server_availability(
        b.get("RemoteServer"), b.get("Port"), security=b.get("Security"),
        accept_untrusted_certificates=bool(b.get("AcceptUntrustedCertificates")), endpoint=b.get("Endpoint"),
    )
    return objects.availability_object(result)


TEST_MIGRATION_SERVER_AVAILABILITY = Cmdlet(
    name="Test-MigrationServerAvailability",
    synopsis="Tests whether Mailshift can reach an IMAP server.",
    description=(
        "Connects to the IMAP server on the given port with the given security (a TCP connection, the TLS "
        "handshake for Ssl or Tls, and the server's greeting) and reports Success or Failed with the reason. "
        "No login is attempted. Run it before New-MigrationBatch or New-MigrationEndpoint to check the server "
        "name, the port and the certificate. The result prints as its Result, so a script can compare the "
        "whole result with \"Success\" or read its Result and Message properties. Both the 2010 form "
        "(-RemoteServer -Port) and the Exchange Online form (-Imap -RemoteServer -Port -Security) work, and "
        "-Endpoint tests an existing migration endpoint again."
    ),
    default_set="IMAP",
    parameters=(
        Parameter("Imap", SWITCH, "Selects an IMAP server test. Optional: IMAP is the only kind Mailshift tests.",
                  sets=("IMAP",), aliases=("IMAP4",)),
        Parameter("RemoteServer", FQDN, "The host name (or address) of the IMAP server, e.g. imap.contoso.edu.",
                  sets=("IMAP",), mandatory=("IMAP",)),
        Parameter("Port", INT32, "The TCP port: 993 for Ssl, 143 for None or Tls. Without it, 993 is used for "
                  "Ssl and 143 otherwise.", sets=("IMAP",), range=(1, 65535)),
        Parameter("Security", _SECURITY, "None (plain IMAP), Ssl (TLS from the first byte) or Tls (STARTTLS). "
                  "Without it: Ssl on port 993, None on other ports.", sets=("IMAP",)),
        Parameter("Authentication", _AUTHENTICATION, "Accepted for compatibility; the test does not log in.",
                  sets=("IMAP",), ignored=True),
        Parameter("AcceptUntrustedCertificates", SWITCH, "Accept a TLS certificate that fails verification "
                  "(self-signed or expired). Without it such a certificate fails the test.", sets=("IMAP",)),
        Parameter("Endpoint", ENDPOINT_ID, "An existing migration endpoint to test with its own settings.",
                  sets=("TestEndpoint",), mandatory=("TestEndpoint",)),
        Parameter("ExchangeRemoteMove", SWITCH, "Not supported: Mailshift migrates from IMAP servers.",
                  sets=("Other",)),
        Parameter("ExchangeOutlookAnywhere", SWITCH, "Not supported: Mailshift migrates from IMAP servers.",
                  sets=("Other",)),
        Parameter("Gmail", SWITCH, "Not supported: use -Imap with imap.gmail.com.", sets=("Other",)),
        Parameter("PSTImport", SWITCH, "Not supported.", sets=("Other",)),
        Parameter("Compliance", SWITCH, "Not supported.", sets=("Other",)),
        Parameter("PublicFolder", SWITCH, "Not supported.", sets=("Other",)),
        Parameter("Autodiscover", SWITCH, "Not supported (Exchange only).", sets=("Other",)),
        Parameter("EmailAddress", SMTP, "Not supported (Exchange only).", sets=("Other",)),
        Parameter("Credentials", _CREDENTIAL, "Not supported (Exchange only).", sets=("Other",)),
        _PARTITION,
    ),
    handler=_test_availability,
    output_type=objects.AVAILABILITY,
    confirm_impact="Low",
    what_if="Testing the connection to the IMAP server",
    examples=(
        Example("Test-MigrationServerAvailability -RemoteServer imap.contoso.edu -Port 143",
                "Tests plain IMAP on port 143 of imap.contoso.edu, as the 2010 migration guide does."),
        Example("Test-MigrationServerAvailability -Imap -RemoteServer imap.contoso.edu -Port 993 -Security Ssl",
                "Tests IMAP over TLS; the certificate must be trusted."),
        Example("$t = Test-MigrationServerAvailability -Imap -RemoteServer imap.contoso.edu -Port 143 -Security Tls "
                "-AcceptUntrustedCertificates\nif ($t.Result -eq \"Failed\") { Write-Host $t.Message }",
                "Tests STARTTLS with a self-signed certificate and prints the reason when it fails."),
        Example("foreach ($e in (Get-MigrationEndpoint).Identity) { Test-MigrationServerAvailability -Endpoint $e }",
                "Tests every migration endpoint again."),
    ),
)

# -- endpoints -----------------------------------------------------------------------------------


def _new_endpoint(ctx: Context, b: Bound) -> PSObject:
    _refuse_non_imap(b, ("ExchangeRemoteMove", "ExchangeOutlookAnywhere", "Gmail", "PublicFolder"),
                     "another endpoint type")
    kwargs: dict[str, Any] = {}
    for name, key in (("MaxConcurrentMigrations", "max_concurrent_migrations"),
                      ("MaxConcurrentIncrementalSyncs", "max_concurrent_incremental_syncs")):
        if b.has(name):
            kwargs[key] = _concurrency(b.get(name))
    view = ctx.service.new_endpoint(
        b.get("Name"), b.get("RemoteServer"), port=b.get("Port"), security=b.get("Security"),
        authentication=b.get("Authentication") or "Basic",
        accept_untrusted_certificates=bool(b.get("AcceptUntrustedCertificates")),
        skip_verification=bool(b.get("SkipVerification")), **kwargs,
    )
    return objects.endpoint_object(view)


NEW_MIGRATION_ENDPOINT = Cmdlet(
    name="New-MigrationEndpoint",
    synopsis="Creates an IMAP migration endpoint: the source server's connection settings for batches.",
    description=(
        "A migration endpoint holds where and how Mailshift connects to the source IMAP server: host, port, "
        "security, certificate policy, and how many mailboxes it copies at once (MaxConcurrentMigrations for "
        "initial syncs, MaxConcurrentIncrementalSyncs for the daily incremental ones). Batches created with "
        "New-MigrationBatch -SourceEndpoint use it. Unless -SkipVerification is given, the server is tested first "
        "(as Test-MigrationServerAvailability does) and the endpoint is not created when it cannot be reached."
    ),
    default_set="IMAP",
    parameters=(
        Parameter("IMAP", SWITCH, "Creates an IMAP endpoint (the only kind Mailshift has).", sets=("IMAP",),
                  mandatory=("IMAP",)),
        Parameter("Name", STRING, "A unique name of at most 64 characters; it becomes the Identity.",
                  mandatory=(ALL_SETS,)),
        Parameter("RemoteServer", FQDN, "The IMAP server's host name, e.g. imap.contoso.edu.", sets=("IMAP",),
                  mandatory=("IMAP",)),
        Parameter("Port", INT32, "The TCP port; 993 by default (143 for None or Tls).", sets=("IMAP",),
                  range=(1, 65535)),
        Parameter("Security", _SECURITY, "None, Ssl (the default) or Tls (STARTTLS).", sets=("IMAP",)),
        Parameter("Authentication", _AUTHENTICATION, "Basic (the default): the CSV's UserName and Password log in "
                  "with IMAP LOGIN or SASL PLAIN.", sets=("IMAP",)),
        Parameter("AcceptUntrustedCertificates", SWITCH, "Accept TLS certificates that fail verification.",
                  sets=("IMAP",)),
        Parameter("MaxConcurrentMigrations", UNLIMITED_INT, "Mailboxes copied at the same time during initial "
                  f"syncs; {defaults.ENDPOINT_MAX_CONCURRENT_MIGRATIONS} by default."),
        Parameter("MaxConcurrentIncrementalSyncs", UNLIMITED_INT, "Mailboxes synced at the same time during "
                  f"incremental syncs; {defaults.ENDPOINT_MAX_CONCURRENT_INCREMENTAL_SYNCS} by default, at most "
                  "MaxConcurrentMigrations."),
        Parameter("SkipVerification", SWITCH, "Create the endpoint without testing the server."),
        Parameter("ExchangeRemoteMove", SWITCH, "Not supported.", sets=("Other",), mandatory=("Other",)),
        Parameter("ExchangeOutlookAnywhere", SWITCH, "Not supported.", sets=("Other",)),
        Parameter("Gmail", SWITCH, "Not supported: use -IMAP with imap.gmail.com.", sets=("Other",)),
        Parameter("PublicFolder", SWITCH, "Not supported.", sets=("Other",)),
        Parameter("Credentials", _CREDENTIAL, "Not supported (Exchange endpoints only).", sets=("Other",)),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_new_endpoint,
    output_type=objects.ENDPOINT,
    confirm_impact="Medium",
    what_if="Creating IMAP migration endpoint",
    examples=(
        Example("New-MigrationEndpoint -IMAP -Name IMAPEndpoint1 -RemoteServer imap.contoso.com -Port 993",
                "Creates an endpoint for IMAP over TLS on port 993 (Security Ssl is the default)."),
        Example("New-MigrationEndpoint -IMAP -Name Courier -RemoteServer mail.contoso.edu -Port 143 -Security Tls "
                "-AcceptUntrustedCertificates -MaxConcurrentMigrations 20 -MaxConcurrentIncrementalSyncs 10",
                "Creates an endpoint that uses STARTTLS with a self-signed certificate and copies at most 20 "
                "mailboxes at a time."),
    ),
)


def _get_endpoint(ctx: Context, b: Bound) -> list[PSObject]:
    views = ctx.service.get_endpoints(b.get("Identity"))
    wanted = b.get("Type")
    return [objects.endpoint_object(v) for v in views if wanted is None or v.endpoint_type.lower() == wanted.lower()]


GET_MIGRATION_ENDPOINT = Cmdlet(
    name="Get-MigrationEndpoint",
    synopsis="Shows migration endpoints.",
    description="Without -Identity, lists every migration endpoint; with it, the one named (by name or GUID).",
    default_set="Identity",
    parameters=(
        Parameter("Identity", ENDPOINT_ID, "The endpoint's name or GUID.", sets=("Identity",), position=0,
                  from_pipeline=True, from_pipeline_by_property_name=True),
        Parameter("Type", _MIGRATION_TYPE, "Only endpoints of this type (IMAP is the only one Mailshift has).",
                  sets=("TypeFilter",), mandatory=("TypeFilter",)),
        *_DIAGNOSTICS, _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_get_endpoint,
    output_type=objects.ENDPOINT,
    examples=(
        Example("Get-MigrationEndpoint", "Lists every migration endpoint."),
        Example("Get-MigrationEndpoint -Identity IMAPEndpoint1 | Format-List",
                "Shows every setting of the endpoint IMAPEndpoint1."),
    ),
)


def _set_endpoint(ctx: Context, b: Bound) -> None:
    changes: dict[str, Any] = {
        "remote_server": b.get("RemoteServer"), "port": b.get("Port"), "security": b.get("Security"),
        "authentication": b.get("Authentication"),
        "accept_untrusted_certificates": b.get("AcceptUntrustedCertificates"),
        "max_concurrent_migrations": _concurrency(b.get("MaxConcurrentMigrations")),
        "max_concurrent_incremental_syncs": _concurrency(b.get("MaxConcurrentIncrementalSyncs")),
    }
    ctx.service.set_endpoint(b.get("Identity"), skip_verification=bool(b.get("SkipVerification")),
                             **{k: v for k, v in changes.items() if v is not None})


SET_MIGRATION_ENDPOINT = Cmdlet(
    name="Set-MigrationEndpoint",
    synopsis="Changes an IMAP migration endpoint.",
    description=(
        "Changes the connection settings or the concurrency of an endpoint. New settings apply to each mailbox "
        "the next time it is synced. A changed server, port or security is tested first unless -SkipVerification "
        "is given. Note that -AcceptUntrustedCertificates is a Boolean here ($true or $false), as in Exchange."
    ),
    parameters=(
        Parameter("Identity", ENDPOINT_ID, "The endpoint's name or GUID.", mandatory=(ALL_SETS,), position=0,
                  from_pipeline=True, from_pipeline_by_property_name=True),
        Parameter("RemoteServer", FQDN, "The IMAP server's host name."),
        Parameter("Port", INT32, "The TCP port.", range=(1, 65535)),
        Parameter("Security", _SECURITY, "None, Ssl or Tls."),
        Parameter("Authentication", _AUTHENTICATION, "Basic."),
        Parameter("AcceptUntrustedCertificates", BOOLEAN, "$true to accept certificates that fail verification."),
        Parameter("MaxConcurrentMigrations", UNLIMITED_INT, "Mailboxes copied at the same time."),
        Parameter("MaxConcurrentIncrementalSyncs", UNLIMITED_INT, "Mailboxes synced incrementally at the same time."),
        Parameter("SkipVerification", SWITCH, "Do not test the server."),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_set_endpoint,
    confirm_impact="Medium",
    what_if="Changing migration endpoint",
    examples=(
        Example("Set-MigrationEndpoint IMAPEndpoint1 -MaxConcurrentMigrations 50 -MaxConcurrentIncrementalSyncs 25",
                "Lets the endpoint copy 50 mailboxes at a time."),
        Example("Set-MigrationEndpoint IMAPEndpoint1 -AcceptUntrustedCertificates $true",
                "Accepts the server's self-signed certificate from now on."),
    ),
)


def _remove_endpoint(ctx: Context, b: Bound) -> None:
    ctx.service.remove_endpoint(b.get("Identity"))


REMOVE_MIGRATION_ENDPOINT = Cmdlet(
    name="Remove-MigrationEndpoint",
    synopsis="Removes a migration endpoint that no batch uses.",
    description="Removes the endpoint. It is refused while a migration batch still uses it; remove the batch first.",
    parameters=(
        Parameter("Identity", ENDPOINT_ID, "The endpoint's name or GUID.", mandatory=(ALL_SETS,), position=0,
                  from_pipeline=True, from_pipeline_by_property_name=True),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_remove_endpoint,
    confirm_impact="High",
    what_if="Removing migration endpoint",
    examples=(
        Example("Remove-MigrationEndpoint IMAPEndpoint1 -Confirm:$false", "Removes the endpoint without asking."),
        Example("Get-MigrationEndpoint | Where-Object { $_.RemoteServer -eq 'old.contoso.edu' } | "
                "Remove-MigrationEndpoint -Confirm:$false",
                "Removes every endpoint that points to the retired server old.contoso.edu."),
    ),
)

# -- batches -------------------------------------------------------------------------------------


def _new_batch(ctx: Context, b: Bound) -> PSObject:
    _refuse_non_imap(b, ("Local", "TargetDatabases", "TargetArchiveDatabases", "MailboxType", "PrimaryOnly",
                         "ArchiveOnly", "TargetEndpoint"), "Exchange mailbox moves")
    if b.get("IncludeFolders"):
        raise NotSupported("-IncludeFolders is not supported; list the folders to leave out with -ExcludeFolders.",
                           command=b.cmdlet.name, target="IncludeFolders")
    if b.get("ContentFilter"):
        raise NotSupported("-ContentFilter is not supported; Mailshift copies every message of the included folders.",
                           command=b.cmdlet.name, target="ContentFilter")
    _ignored_warning(ctx, b)
    legacy = b.set_name == "Imap"
    view = ctx.service.new_batch(
        b.get("Name"), b.get("CSVData"),
        source_endpoint=b.get("SourceEndpoint"), imap=legacy,
        remote_server=b.get("RemoteServer"), port=b.get("Port"), security=b.get("Security"),
        max_concurrent_migrations=b.get("MaxConcurrentMigrations"), time_zone=b.get("TimeZone"),
        exclude_folders=b.get("ExcludeFolders") or (), notification_emails=b.get("NotificationEmails") or (),
        bad_item_limit=b.get("BadItemLimit"), large_item_limit=b.get("LargeItemLimit"),
        auto_start=bool(b.get("AutoStart")), auto_complete=bool(b.get("AutoComplete")),
        start_after=b.get("StartAfter"), complete_after=b.get("CompleteAfter"),
        allow_unknown_columns_in_csv=bool(b.get("AllowUnknownColumnsInCsv")),
        allow_incremental_syncs=b.get("AllowIncrementalSyncs", True),
        requested_by=ctx.user_email,
    )
    return objects.batch_object(view)


NEW_MIGRATION_BATCH = Cmdlet(
    name="New-MigrationBatch",
    synopsis="Creates a migration batch from a CSV file: one migration user per row.",
    description=(
        "Reads the CSV data (a header row EmailAddress,UserName,Password, optionally UserRoot, BadItemLimit and "
        "LargeItemLimit; one row per mailbox) and creates a batch whose users are copied from the IMAP server to "
        "the target. Every problem in the CSV is reported at once with its line and column. UserName is the "
        "login on the IMAP server, as the user or as an administrator acting for the user "
        "(Domain/Admin/User, admin*user or user*admin). Two forms work: the 2010 form, which names the server "
        "on the batch (-Imap -RemoteServer -Port -MaxConcurrentMigrations), and the Exchange 2013+ form, which "
        "names a migration endpoint (-SourceEndpoint). Batch names are unique, and a mailbox can't be in two "
        "active batches. With -AutoStart the batch starts at once (or at -StartAfter); otherwise run "
        "Start-MigrationBatch. After the initial sync each mailbox is synced again every 24 hours until the "
        "batch is completed or removed."
    ),
    default_set="Onboarding",
    parameters=(
        Parameter("Imap", SWITCH, "The 2010 form: the batch names the IMAP server itself (with -RemoteServer and "
                  "-Port). Only one such batch runs at a time.", sets=("Imap",), mandatory=("Imap",)),
        Parameter("Name", STRING, "A unique name of at most 64 characters; it becomes the batch's Identity.",
                  mandatory=(ALL_SETS,)),
        Parameter("CSVData", BYTES, "The CSV file's bytes, read with ([System.IO.File]::ReadAllBytes(\"path\")). "
                  "UTF-8 (with or without BOM) and UTF-16 files are read.", mandatory=(ALL_SETS,)),
        Parameter("SourceEndpoint", ENDPOINT_ID, "The IMAP migration endpoint (name or GUID) holding the source "
                  "server's settings.", sets=("Onboarding",)),
        Parameter("RemoteServer", FQDN, "The 2010 form: the IMAP server's host name.", sets=("Imap",),
                  mandatory=("Imap",)),
        Parameter("Port", INT32, "The 2010 form: the IMAP server's port (143 plain or STARTTLS, 993 TLS).",
                  sets=("Imap",), range=(1, 65535)),
        Parameter("Security", _SECURITY, "The 2010 form: None, Ssl or Tls. Without it: Ssl on port 993, None "
                  "otherwise.", sets=("Imap",)),
        Parameter("MaxConcurrentMigrations", INT32, "The 2010 form: mailboxes copied at the same time, 1 to 10.",
                  sets=("Imap",), range=(1, defaults.LEGACY_MAX_CONCURRENT_MIGRATIONS)),
        Parameter("TimeZone", STRING, "The submitting administrator's Windows time zone name, e.g. \"Pacific "
                  "Standard Time\" (kept with the batch; dates without a zone are read as UTC)."),
        Parameter("ExcludeFolders", MULTI, "Folders not to copy, relative to the mailbox root, case-insensitive: "
                  "\"Deleted Items\",\"Junk Mail\". Name/* also leaves out the subfolders; #Inbox#, #SentItems#, "
                  "#DeletedItems#, #JunkEmail#, #Drafts# name the well-known folders; \\# is a literal #."),
        Parameter("IncludeFolders", MULTI, "Not supported; use -ExcludeFolders.", sets=("Onboarding",)),
        Parameter("ContentFilter", STRING, "Not supported.", sets=("Onboarding",)),
        Parameter("AutoStart", SWITCH, "Start the batch as soon as it is created (or at -StartAfter)."),
        Parameter("AutoComplete", SWITCH, "Complete the batch as soon as every user's initial sync is done."),
        Parameter("NotificationEmails", MULTI, _NOTIFICATION_EMAILS),
        Parameter("BadItemLimit", UNLIMITED_INT, "Messages that may be skipped because the target refused them or "
                  "the source could not deliver them before a mailbox fails: a number or Unlimited; 0 by default. "
                  "A BadItemLimit cell in the CSV overrides it for that row."),
        Parameter("LargeItemLimit", UNLIMITED_INT, "Messages over the size limit (35 MB, or the target's "
                  "APPENDLIMIT) that may be skipped before a mailbox fails; 0 by default."),
        Parameter("StartAfter", DATETIME, "Start copying at this time (UTC when no zone is given)."),
        Parameter("CompleteAfter", DATETIME, "Complete the batch at this time."),
        Parameter("AllowUnknownColumnsInCsv", BOOLEAN, "$true to ignore CSV columns Mailshift does not know; "
                  "$false (the default) reports them as errors."),
        Parameter("AllowIncrementalSyncs", BOOLEAN, "$false stops each mailbox after its initial sync; $true (the "
                  "default) keeps syncing every 24 hours."),
        Parameter("ReportInterval", TIMESPAN, "Accepted for compatibility and ignored: status e-mails go out "
                  "when the initial sync finishes, on Stop and on completion.", ignored=True),
        Parameter("SkipReports", SWITCH, "Accepted for compatibility and ignored.", ignored=True),
        Parameter("DisallowExistingUsers", SWITCH, "Accepted: Mailshift always refuses users already in an "
                  "active batch.", ignored=True),
        Parameter("TargetDeliveryDomain", STRING, "Accepted and ignored (Exchange moves only).", ignored=True),
        Parameter("TargetDatabases", MULTI, "Not supported: Exchange moves only.", sets=("Onboarding",)),
        Parameter("TargetArchiveDatabases", MULTI, "Not supported: Exchange moves only.", sets=("Onboarding",)),
        Parameter("MailboxType", enum("MailboxType", "Microsoft.Exchange.Data.MigrationMailboxType",
                                      ("PrimaryOnly", "ArchiveOnly", "PrimaryAndArchive")),
                  "Not supported: Exchange moves only (an IMAP mailbox has no archive).", sets=("Onboarding",)),
        Parameter("PrimaryOnly", SWITCH, "Not supported: Exchange moves only.", sets=("Onboarding",)),
        Parameter("ArchiveOnly", SWITCH, "Not supported: Exchange moves only.", sets=("Onboarding",)),
        Parameter("TargetEndpoint", ENDPOINT_ID, "Not supported: offboarding moves to Exchange.", sets=("Onboarding",)),
        Parameter("Local", SWITCH, "Not supported: local Exchange database moves.", sets=("Onboarding",)),
        Parameter("Locale", STRING, "Accepted and ignored.", ignored=True),
        Parameter("AutoRetryCount", INT32, "Accepted and ignored: Start-MigrationBatch retries failed users.",
                  ignored=True),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_new_batch,
    output_type=objects.BATCH,
    confirm_impact="Medium",
    what_if="Creating migration batch",
    examples=(
        Example('New-MigrationBatch -Imap -Name MigrationBatch1 -CSVData:([System.IO.File]::ReadAllBytes('
                '"C:\\Users\\Administrator\\Desktop\\MigrationBatch_1.csv")) -MaxConcurrentMigrations 3 '
                '-RemoteServer imap.contoso.edu -Port 143 -Timezone "Pacific Standard Time" '
                '-ExcludeFolders "Deleted Items","Junk Mail"',
                "The 2010 form: creates MigrationBatch1 from the CSV file, copying three mailboxes at a time from "
                "imap.contoso.edu port 143 and leaving out the Deleted Items and Junk Mail folders. On the "
                "Mailshift service, the file is read from its import folder by file name."),
        Example('New-MigrationBatch -Name IMAPbatch1 -CSVData ([System.IO.File]::ReadAllBytes("C:\\Users\\'
                'Administrator\\Desktop\\IMAPmigration_1.csv")) -SourceEndpoint IMAPEndpoint1 '
                '-ExcludeFolders "Deleted Items","Junk Email"',
                "The endpoint form: the batch uses the settings of the endpoint IMAPEndpoint1 and waits for "
                "Start-MigrationBatch."),
        Example('New-MigrationBatch -Name IMAPBatch2 -SourceEndpoint IMAPEndpoint1 -CSVData $bytes -AutoStart '
                '-NotificationEmails "admin@contoso.edu" -BadItemLimit 10',
                "Creates and starts a batch at once, allows ten bad items per mailbox, and mails the status to "
                "admin@contoso.edu."),
    ),
)


def _start_batch(ctx: Context, b: Bound) -> None:
    ctx.service.start_batch(_current_batch(ctx, b), notification_emails=b.get("NotificationEmails") or (),
                            requested_by=ctx.user_email)


START_MIGRATION_BATCH = Cmdlet(
    name="Start-MigrationBatch",
    synopsis="Starts a migration batch, resumes a stopped one, or retries its failed users.",
    description=(
        "Queues the batch's users for their initial sync; they run as the concurrency limits allow (the others "
        "show Queued). On a stopped batch it resumes where the copy stopped; on a batch with failed users it "
        "retries them. Without -Identity it starts the only batch there is. The status e-mail goes to the "
        "batch's notification addresses, to the addresses given here, and (for 2010-form batches) to the "
        "administrator who runs the command."
    ),
    parameters=(
        _batch_identity(False, "The batch's name or GUID (or a batch object from the pipeline). Optional when "
                               "there is only one batch."),
        Parameter("NotificationEmails", MULTI, _NOTIFICATION_EMAILS + " Added to the batch's recipients."),
        Parameter("Validate", SWITCH, "Accepted and ignored.", ignored=True),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_start_batch,
    confirm_impact="Medium",
    what_if="Starting migration batch",
    examples=(
        Example('Start-MigrationBatch -NotificationEmails "super-user@contoso.edu","helpdesk@contoso.edu",'
                '"CIO@contoso.edu"', "Starts the batch and sends the status e-mail to three more recipients."),
        Example("Start-MigrationBatch -Identity IMAPbatch1", "Starts (or resumes) the batch IMAPbatch1."),
        Example("Get-MigrationBatch -Status Stopped | Start-MigrationBatch", "Resumes every stopped batch."),
    ),
)


def _stop_batch(ctx: Context, b: Bound) -> None:
    ctx.service.stop_batch(_current_batch(ctx, b))


STOP_MIGRATION_BATCH = Cmdlet(
    name="Stop-MigrationBatch",
    synopsis="Stops a migration batch; mailboxes being copied finish their current step first.",
    description=(
        "Mailboxes being copied finish the chunk of messages in flight (so nothing is half-recorded), then the "
        "batch is Stopped; queued mailboxes stay as they are. Mailboxes already synced keep their mail. A status "
        "e-mail lists the mailboxes that were in progress or waiting in MigrationErrors.csv. Start-MigrationBatch "
        "resumes the batch. Refused when every user is completed or failed."
    ),
    parameters=(
        _batch_identity(False, "The batch's name or GUID, or a batch object from the pipeline."),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_stop_batch,
    confirm_impact="High",
    what_if="Stopping migration batch",
    examples=(
        Example("Stop-MigrationBatch", "Stops the batch (when there is only one)."),
        Example("Stop-MigrationBatch -Identity IMAPbatch1 -Confirm:$false", "Stops IMAPbatch1 without asking."),
    ),
)


def _complete_batch(ctx: Context, b: Bound) -> None:
    ctx.service.complete_batch(_current_batch(ctx, b), notification_emails=b.get("NotificationEmails") or (),
                               requested_by=None)


COMPLETE_MIGRATION_BATCH = Cmdlet(
    name="Complete-MigrationBatch",
    synopsis="Completes a synced batch: one last incremental sync of every user, then Completed.",
    description=(
        "Run it after the MX records point to the new system and mail has stopped arriving at the old server. "
        "Each user gets a final incremental sync; the batch then shows Completed, or CompletedWithErrors when a "
        "user's final sync failed, and its daily syncs end. Exchange Online no longer offers this for IMAP "
        "batches (there, Remove-MigrationBatch ends them); Mailshift keeps it because the final sync is what "
        "administrators want after the MX switch. Allowed when the batch is Synced or SyncedWithErrors."
    ),
    parameters=(
        _batch_identity(False, "The batch's name or GUID, or a batch object from the pipeline."),
        Parameter("NotificationEmails", MULTI, _NOTIFICATION_EMAILS),
        Parameter("SyncAndComplete", SWITCH, "Accepted: completion always starts with a final sync."),
        Parameter("CompletePublicFolderMigrationWithDataLoss", SWITCH, "Accepted and ignored.", ignored=True),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_complete_batch,
    confirm_impact="High",
    what_if="Completing migration batch",
    examples=(
        Example("Complete-MigrationBatch -Identity IMAPbatch1 -Confirm:$false",
                "Runs the final sync of IMAPbatch1 and completes it."),
        Example("Get-MigrationBatch IMAPbatch1 | Complete-MigrationBatch -NotificationEmails admin@contoso.edu",
                "Completes the batch from the pipeline and mails the final report."),
    ),
)


def _complete_migration(ctx: Context, b: Bound) -> None:
    names = ctx.service.complete_migration(notification_emails=b.get("NotificationEmails") or (),
                                           requested_by=ctx.user_email)
    ctx.warn(f"Completing {len(names)} migration batch(es): {', '.join(names)}. Each runs a final sync; "
             "check them with Get-MigrationBatch.")


COMPLETE_MIGRATION = Cmdlet(
    name="Complete-Migration",
    synopsis="Finalizes the whole migration (the 2010 cmdlet): a final sync of every synced batch.",
    description=(
        "Completes every batch that is Synced or SyncedWithErrors: each user gets a final incremental sync, then "
        "the periodic syncs end. Run it again on a CompletedWithErrors batch to retry the mailboxes whose final "
        "sync failed (completed ones are left alone). Switch the MX records and wait at least 24 hours before running it. The final "
        "status e-mail goes to the batches' recipients, the addresses given here, and the administrator who "
        "runs it."
    ),
    parameters=(
        Parameter("NotificationEmails", MULTI, _NOTIFICATION_EMAILS),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_complete_migration,
    confirm_impact="Medium",
    what_if="Completing the migration",
    examples=(
        Example("Complete-Migration", "Completes the migration; the final status message goes to you."),
        Example("Complete-Migration -NotificationEmails super-user@contoso.edu",
                "Completes the migration and also sends the final status message to super-user@contoso.edu."),
    ),
)


def _set_batch(ctx: Context, b: Bound) -> None:
    if b.get("AddUsers") or (b.has("CSVData") and b.get("CSVData") is not None):
        raise NotSupported("Adding users to an existing batch (-AddUsers, -CSVData) is not supported; create "
                           "another batch with New-MigrationBatch for the new rows.", command=b.cmdlet.name,
                           target="CSVData")
    _ignored_warning(ctx, b)
    ctx.service.set_batch(
        b.get("Identity"), bad_item_limit=b.get("BadItemLimit"), large_item_limit=b.get("LargeItemLimit"),
        notification_emails=b.get("NotificationEmails") if b.has("NotificationEmails") else None,
        start_after=b.get("StartAfter"), complete_after=b.get("CompleteAfter"),
        allow_incremental_syncs=b.get("AllowIncrementalSyncs"), sync_now=bool(b.get("SyncNow")),
    )


SET_MIGRATION_BATCH = Cmdlet(
    name="Set-MigrationBatch",
    synopsis="Changes a migration batch: limits, recipients, schedule, or an immediate sync.",
    description=(
        "Changes BadItemLimit and LargeItemLimit (for users whose CSV row left them blank; a failed user picks "
        "the new limit up when Start-MigrationBatch retries it), the notification addresses (a list replaces "
        "the old one), StartAfter, CompleteAfter and AllowIncrementalSyncs. -SyncNow runs an incremental sync "
        "of the synced users at once, e.g. right after the MX switch."
    ),
    parameters=(
        _batch_identity(True, "The batch's name or GUID, or a batch object from the pipeline."),
        Parameter("BadItemLimit", UNLIMITED_INT, "Bad items allowed per mailbox: a number or Unlimited."),
        Parameter("LargeItemLimit", UNLIMITED_INT, "Large items allowed per mailbox: a number or Unlimited."),
        Parameter("NotificationEmails", MULTI, _NOTIFICATION_EMAILS + " Replaces the current list."),
        Parameter("StartAfter", DATETIME, "When the batch may start copying."),
        Parameter("CompleteAfter", DATETIME, "When the batch completes by itself."),
        Parameter("AllowIncrementalSyncs", BOOLEAN, "$false ends the daily incremental syncs."),
        Parameter("SyncNow", SWITCH, "Sync the synced users now."),
        Parameter("AddUsers", SWITCH, "Not supported: create another batch for new users."),
        Parameter("CSVData", BYTES, "Not supported here: create another batch for new users."),
        Parameter("AllowUnknownColumnsInCsv", BOOLEAN, "Accepted and ignored.", ignored=True),
        Parameter("ApproveSkippedItems", SWITCH, "Accepted and ignored: skipped items need no approval.",
                  ignored=True),
        Parameter("AutoRetryCount", INT32, "Accepted and ignored.", ignored=True),
        Parameter("ReportInterval", TIMESPAN, "Accepted and ignored.", ignored=True),
        Parameter("SkipReports", BOOLEAN, "Accepted and ignored.", ignored=True),
        Parameter("Update", SWITCH, "Accepted: new endpoint settings apply at each mailbox's next sync anyway.",
                  ignored=True),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_set_batch,
    confirm_impact="Medium",
    what_if="Changing migration batch",
    examples=(
        Example("Set-MigrationBatch -Identity IMAPbatch1 -BadItemLimit 20 -LargeItemLimit Unlimited",
                "Allows 20 bad items and any number of large items per mailbox."),
        Example("Set-MigrationBatch IMAPbatch1 -SyncNow", "Runs an incremental sync of the batch now."),
        Example("Set-MigrationBatch IMAPbatch1 -CompleteAfter (Get-Date).AddDays(3).ToUniversalTime()",
                "Completes the batch in three days."),
    ),
)


def _remove_batch(ctx: Context, b: Bound) -> None:
    ctx.service.remove_batch(b.get("Identity"))


REMOVE_MIGRATION_BATCH = Cmdlet(
    name="Remove-MigrationBatch",
    synopsis="Removes a migration batch and ends its syncs (the copied mail stays).",
    description=(
        "Ends the batch's incremental syncs and deletes the batch, its users and their sync state. Mail already "
        "copied stays in the target mailboxes. Refused while the batch is starting, syncing or completing; stop "
        "it first."
    ),
    parameters=(
        _batch_identity(False, "The batch's name or GUID, or a batch object from the pipeline."),
        Parameter("Force", SWITCH, "Accepted for compatibility."),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_remove_batch,
    confirm_impact="High",
    what_if="Removing migration batch",
    examples=(
        Example("Remove-MigrationBatch -Identity IMAPbatch1 -Confirm:$false", "Removes IMAPbatch1 without asking."),
        Example("Get-MigrationBatch -Status Completed | Remove-MigrationBatch -Confirm:$false",
                "Removes every completed batch."),
    ),
)


def _result_size(b: Bound, items: list[PSObject]) -> list[PSObject]:
    size = b.get("ResultSize", 1000)
    return items if size == defaults.UNLIMITED else items[:size]


def _get_batch(ctx: Context, b: Bound) -> list[PSObject]:
    views = ctx.service.get_batches(b.get("Identity"), status=b.get("Status"))
    endpoint = b.get("Endpoint")
    if endpoint is not None:
        views = [v for v in views if (v.source_endpoint or "").lower() == endpoint.lower()]
    return _result_size(b, [objects.batch_object(v) for v in views])


GET_MIGRATION_BATCH = Cmdlet(
    name="Get-MigrationBatch",
    synopsis="Shows migration batches with their status and counts.",
    description=(
        "Without -Identity, lists every batch; with it, the one named (by name or GUID). Each batch shows its "
        "Status and the counts of its users: TotalCount, ActiveCount, StoppedCount, SyncedCount, "
        "FinalizedCount, FailedCount and PendingCount. Pipe it to Format-List to see every property."
    ),
    default_set="Identity",
    parameters=(
        Parameter("Identity", BATCH_ID, "The batch's name or GUID.", sets=("Identity",), position=0,
                  from_pipeline=True, from_pipeline_by_property_name=True),
        Parameter("Status", _BATCH_STATUS, "Only batches with this status (Created, Syncing, Synced, Stopped, "
                  "Completed, Failed, ...).", sets=("Identity", "BatchesByStatus"), mandatory=("BatchesByStatus",)),
        Parameter("Endpoint", ENDPOINT_ID, "Only batches that use this migration endpoint.",
                  sets=("BatchesByEndpoint",), mandatory=("BatchesByEndpoint",)),
        Parameter("IncludeReport", SWITCH, "Accepted; per-user reports are on Get-MigrationUserStatistics "
                  "-IncludeReport."),
        _RESULT_SIZE, *_DIAGNOSTICS, _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_get_batch,
    output_type=objects.BATCH,
    examples=(
        Example("Get-MigrationBatch", "Lists every batch with its status."),
        Example("Get-MigrationBatch -Identity IMAPBatch1 | Format-List Status", "Shows the status of IMAPBatch1."),
        Example("Get-MigrationBatch | Select-Object Identity, Status, TotalCount, SyncedCount, FailedCount",
                "Shows the counts of every batch."),
    ),
)


def _get_status(ctx: Context, b: Bound) -> PSObject:
    return objects.status_object(ctx.service.get_status())


GET_MIGRATION_STATUS = Cmdlet(
    name="Get-MigrationStatus",
    synopsis="Shows the status of the whole migration (the 2010 cmdlet).",
    description="Shows the overall status and the mailbox counts over every batch: total, active, synced, "
                "finalized, failed and pending.",
    parameters=(_DOMAIN_CONTROLLER, _PARTITION),
    handler=_get_status,
    output_type=objects.STATUS,
    examples=(
        Example("Get-MigrationStatus", "Shows how far the whole migration has come."),
        Example("Get-MigrationStatus | Format-List TotalCount, SyncedCount, FailedCount",
                "Shows how many mailboxes there are, how many are synced and how many failed."),
    ),
)


def _get_statistics(ctx: Context, b: Bound) -> PSObject:
    return objects.statistics_object(ctx.service.get_status())


GET_MIGRATION_STATISTICS = Cmdlet(
    name="Get-MigrationStatistics",
    synopsis="Shows the migration's counters over every batch.",
    description="Shows TotalCount, ActiveCount, StoppedCount, SyncedCount, FinalizedCount, FailedCount and "
                "PendingCount for all migration users of all batches.",
    parameters=(*_DIAGNOSTICS, _DOMAIN_CONTROLLER, _PARTITION),
    handler=_get_statistics,
    output_type=objects.STATISTICS,
    examples=(
        Example("Get-MigrationStatistics | Format-List", "Shows every counter."),
        Example("$s = Get-MigrationStatistics\nif ($s.FailedCount -gt 0) { Get-MigrationUser -Status Failed }",
                "Lists the failed users when there are any."),
    ),
)

# -- users ---------------------------------------------------------------------------------------


def _get_user(ctx: Context, b: Bound) -> list[PSObject]:
    identity = b.get("Identity") or b.get("EmailAddress")
    views = ctx.service.get_users(identity, batch=b.get("BatchId"), status=b.get("Status"))
    summary = b.get("StatusSummary")
    if summary is not None:
        views = [v for v in views if v.status_summary == summary]
    return _result_size(b, [objects.user_object(v) for v in views])


GET_MIGRATION_USER = Cmdlet(
    name="Get-MigrationUser",
    synopsis="Shows migration users (one per CSV row) with their status.",
    description=(
        "Without parameters, lists the users of every batch (the first 1000; use -ResultSize Unlimited for all). "
        "-Identity takes the user's e-mail address, or its Guid when the address is in several batches. "
        "-BatchId and -Status filter. Pipe the users to Get-MigrationUserStatistics for their figures."
    ),
    default_set="Identity",
    parameters=(
        Parameter("Identity", USER_ID, "The user's e-mail address or Guid.", sets=("Identity",), position=0,
                  from_pipeline=True, from_pipeline_by_property_name=True),
        Parameter("BatchId", BATCH_ID, "Only the users of this batch.", sets=("StatusAndBatchId",)),
        Parameter("Status", _USER_STATUS, "Only users with this status (Queued, Syncing, Synced, Failed, ...).",
                  sets=("StatusAndBatchId",)),
        Parameter("StatusSummary", _USER_SUMMARY, "Only users with this summary status (Active, Failed, Synced, "
                  "Completed, Stopped).", sets=("StatusAndBatchId",)),
        Parameter("EmailAddress", SMTP, "The user's e-mail address.", sets=("EmailAddress",),
                  mandatory=("EmailAddress",)),
        _RESULT_SIZE, _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_get_user,
    output_type=objects.USER,
    examples=(
        Example("Get-MigrationUser -BatchId IMAPbatch1 -ResultSize Unlimited", "Lists every user of IMAPbatch1."),
        Example("Get-MigrationUser -Status Failed | Select-Object Identity, BatchId, ErrorSummary",
                "Shows the failed users and why they failed."),
    ),
)


def _get_user_statistics(ctx: Context, b: Bound) -> PSObject:
    include_report = bool(b.get("IncludeReport"))
    view = ctx.service.get_user_statistics(
        b.get("Identity"), include_report=include_report,
        include_skipped_items=bool(b.get("IncludeSkippedItems")) or b.has("LimitSkippedItemsTo"),
        limit_skipped_items_to=b.get("LimitSkippedItemsTo"),
    )
    return objects.user_statistics_object(view, include_report=include_report)


GET_MIGRATION_USER_STATISTICS = Cmdlet(
    name="Get-MigrationUserStatistics",
    synopsis="Shows a migration user's figures: items synced and skipped, bytes, progress, errors.",
    description=(
        "Shows SyncedItemCount, SkippedItemCount, TotalItemsInSourceMailboxCount, BytesTransferred, "
        "EstimatedTotalTransferSize, PercentageComplete, LastSuccessfulSyncTime and Error, live while the "
        "mailbox is being copied. -IncludeSkippedItems lists each skipped message (folder, subject, date, size "
        "and reason); -IncludeReport adds the user's report entries. Takes users from the pipeline: "
        "Get-MigrationUser | Get-MigrationUserStatistics."
    ),
    parameters=(
        Parameter("Identity", USER_ID, "The user's e-mail address or Guid, or a migration user from the pipeline.",
                  mandatory=(ALL_SETS,), position=0, from_pipeline=True, from_pipeline_by_property_name=True),
        Parameter("IncludeReport", SWITCH, "Fill the Report property with the user's report entries."),
        Parameter("IncludeSkippedItems", SWITCH, "Fill the SkippedItems property with each skipped message."),
        Parameter("LimitSkippedItemsTo", INT32, "List at most this many skipped messages.", range=(0, 2**31 - 1)),
        Parameter("SkipSubscription", SWITCH, "Accepted and ignored.", ignored=True),
        Parameter("IncludeCopilotReport", SWITCH, "Accepted and ignored.", ignored=True),
        *_DIAGNOSTICS, _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_get_user_statistics,
    output_type="Microsoft.Exchange.Data.Storage.Management.MigrationUserStatistics",
    examples=(
        Example("Get-MigrationUser -BatchId IMAPbatch1 | Get-MigrationUserStatistics",
                "Shows the figures of every user of IMAPbatch1."),
        Example("Get-MigrationUserStatistics terrya@contoso.edu -IncludeReport | Format-List Status,Error,Report",
                "Shows a user's status, error and report."),
        Example("Get-MigrationUserStatistics terrya@contoso.edu -IncludeSkippedItems | Select-Object "
                "-ExpandProperty SkippedItems | Format-List DateReceived, Subject",
                "Lists the messages that were skipped for a user."),
    ),
)


def _remove_user(ctx: Context, b: Bound) -> None:
    ctx.service.remove_user(b.get("Identity"))


REMOVE_MIGRATION_USER = Cmdlet(
    name="Remove-MigrationUser",
    synopsis="Removes a migration user from its batch (the copied mail stays).",
    description="Removes the user and its sync state; refused while the user is queued or being synced.",
    parameters=(
        Parameter("Identity", USER_ID, "The user's e-mail address or Guid, or a migration user from the pipeline.",
                  mandatory=(ALL_SETS,), position=0, from_pipeline=True, from_pipeline_by_property_name=True),
        Parameter("Force", SWITCH, "Accepted for compatibility."),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_remove_user,
    confirm_impact="High",
    what_if="Removing migration user",
    examples=(
        Example("Remove-MigrationUser -Identity annb@contoso.edu -Confirm:$false", "Removes the user annb."),
        Example("Get-MigrationUser -Status Failed | Remove-MigrationUser -Confirm:$false",
                "Removes every failed user."),
    ),
)

# -- config --------------------------------------------------------------------------------------


def _get_config(ctx: Context, b: Bound) -> PSObject:
    return objects.config_object(ctx.service.get_config())


GET_MIGRATION_CONFIG = Cmdlet(
    name="Get-MigrationConfig",
    synopsis="Shows the migration service's settings.",
    description="Shows MaxNumberOfBatches, MaxConcurrentMigrations (over all batches), the incremental sync "
                "interval and the features.",
    parameters=(
        Parameter("AllPartitions", SWITCH, "Accepted and ignored: Mailshift has one configuration.", ignored=True),
        Parameter("IncludeSimplifiedGmailMigrationData", SWITCH, "Accepted and ignored.", ignored=True),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_get_config,
    output_type=objects.CONFIG,
    examples=(
        Example("Get-MigrationConfig", "Shows the service's migration settings."),
        Example("(Get-MigrationConfig).MaxConcurrentMigrations",
                "Shows how many mailboxes the service copies at once over all batches."),
    ),
)


def _set_config(ctx: Context, b: Bound) -> None:
    interval: timedelta | None = b.get("IncrementalSyncInterval")
    ctx.service.set_config(
        max_number_of_batches=b.get("MaxNumberOfBatches"),
        max_concurrent_migrations=_concurrency(b.get("MaxConcurrentMigrations")),
        incremental_sync_interval_seconds=interval.total_seconds() if interval is not None else None,
    )


SET_MIGRATION_CONFIG = Cmdlet(
    name="Set-MigrationConfig",
    synopsis="Changes the migration service's settings.",
    description=(
        "Changes how many batches may exist (MaxNumberOfBatches), how many mailboxes are copied at once over "
        "all batches (MaxConcurrentMigrations), and, as a Mailshift extension, how often synced mailboxes are "
        "synced again (IncrementalSyncInterval, 24 hours by default)."
    ),
    parameters=(
        Parameter("MaxNumberOfBatches", INT32, "How many batches may exist at once.", range=(1, 2**31 - 1)),
        Parameter("MaxConcurrentMigrations", UNLIMITED_INT, "Mailboxes copied at once over all batches."),
        Parameter("IncrementalSyncInterval", TIMESPAN, "Time between incremental syncs of a synced mailbox, e.g. "
                  "\"12:00:00\" (Mailshift only)."),
        Parameter("Features", MULTI, "Accepted and ignored: MultiBatch and Endpoints are always on.", ignored=True),
        _DOMAIN_CONTROLLER, _PARTITION,
    ),
    handler=_set_config,
    confirm_impact="Medium",
    what_if="Changing the migration configuration",
    examples=(
        Example("Set-MigrationConfig -MaxNumberOfBatches 50 -MaxConcurrentMigrations 100",
                "Allows 50 batches and 100 mailboxes copied at once."),
        Example('Set-MigrationConfig -IncrementalSyncInterval "06:00:00"', "Syncs synced mailboxes every six hours."),
    ),
)

#: Every cmdlet, in the order help and the module list them.
CMDLETS: tuple[Cmdlet, ...] = (
    TEST_MIGRATION_SERVER_AVAILABILITY,
    NEW_MIGRATION_ENDPOINT, GET_MIGRATION_ENDPOINT, SET_MIGRATION_ENDPOINT, REMOVE_MIGRATION_ENDPOINT,
    NEW_MIGRATION_BATCH, GET_MIGRATION_BATCH, SET_MIGRATION_BATCH, START_MIGRATION_BATCH, STOP_MIGRATION_BATCH,
    COMPLETE_MIGRATION_BATCH, REMOVE_MIGRATION_BATCH, COMPLETE_MIGRATION,
    GET_MIGRATION_STATUS, GET_MIGRATION_STATISTICS,
    GET_MIGRATION_USER, GET_MIGRATION_USER_STATISTICS, REMOVE_MIGRATION_USER,
    GET_MIGRATION_CONFIG, SET_MIGRATION_CONFIG,
)
