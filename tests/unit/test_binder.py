"""The cmdlet registry's binder: PowerShell's binding rules over the declared cmdlets (pure logic)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from engine.defaults import UNLIMITED
from shim.cmdlets import CMDLETS, Cmdlet, bind
from shim.cmdlets.help import render_help, syntax_lines
from shim.errors import BindingError
from shim.host import NO_VALUE, ParameterToken as T
from shim.psobject import PSObject

BY_NAME = {c.name: c for c in CMDLETS}


def cmd(name: str) -> Cmdlet:
    return BY_NAME[name]


def test_seed_000_new_migration_batch_binds_to_the_2010_set() -> None:
    csv = b"EmailAddress,UserName,Password\r\nterrya@contoso.edu,terry.adams,1091990\r\n"
    elements: list[Any] = [
        T("Imap"), T("Name"), "MigrationBatch1", T("CSVData", csv), T("MaxConcurrentMigrations"), 3,
        T("RemoteServer"), "imap.contoso.edu", T("Port"), 143, T("Timezone"), "Pacific Standard Time",
        T("ExcludeFolders"), ["Deleted Items", "Junk Mail"],
    ]
    bound = bind(cmd("New-MigrationBatch"), elements)
    assert bound.set_name == "Imap"
    assert bound.values == {
        "Imap": True, "Name": "MigrationBatch1", "CSVData": csv, "MaxConcurrentMigrations": 3,
        "RemoteServer": "imap.contoso.edu", "Port": 143, "TimeZone": "Pacific Standard Time",
        "ExcludeFolders": ["Deleted Items", "Junk Mail"],
    }


def test_endpoint_form_picks_the_onboarding_set_and_converts_strings() -> None:
    bound = bind(cmd("New-MigrationBatch"), [
        T("name"), "b2", T("CSV"), b"x", T("SourceEndpoint"), "IMAPEndpoint1", T("AutoStart"),
        T("BadItemLimit"), "unlimited", T("LargeItemLimit"), "10", T("StartAfter"), "7/30/2026 9:00 PM",
        T("AllowUnknownColumnsInCsv", True),
    ])
    assert bound.set_name == "Onboarding"
    assert bound.get("CSVData") == b"x"  # -CSV is a unique prefix of -CSVData
    assert bound.get("BadItemLimit") == UNLIMITED and bound.get("LargeItemLimit") == 10
    assert bound.get("StartAfter") == datetime(2026, 7, 30, 21, 0, tzinfo=timezone.utc)
    assert bound.get("AutoStart") is True and bound.get("AllowUnknownColumnsInCsv") is True


def test_ambiguous_prefix_lists_the_candidates() -> None:
    with pytest.raises(BindingError) as caught:
        bind(cmd("New-MigrationBatch"), [T("Name"), "b", T("CSVData", b"x"), T("Auto")])
    assert "'Auto' is ambiguous" in caught.value.message
    assert "AutoStart, AutoComplete, AutoRetryCount" in caught.value.message
    assert caught.value.fully_qualified_error_id == "AmbiguousParameter,New-MigrationBatch"


def test_unknown_parameter_and_missing_argument_and_duplicates() -> None:
    with pytest.raises(BindingError, match="cannot be found that matches parameter name 'Bogus'"):
        bind(cmd("Get-MigrationBatch"), [T("Bogus"), "x"])
    with pytest.raises(BindingError, match="Missing an argument for parameter 'Port'"):
        bind(cmd("Test-MigrationServerAvailability"), [T("RemoteServer"), "h", T("Port")])
    with pytest.raises(BindingError, match="'Name' is specified more than once"):
        bind(cmd("New-MigrationEndpoint"), [T("IMAP"), T("Name"), "a", T("Name"), "b", T("RemoteServer"), "h"])


def test_missing_mandatory_parameters_are_named() -> None:
    with pytest.raises(BindingError) as caught:
        bind(cmd("New-MigrationBatch"), [T("Imap"), T("Name"), "b"])
    assert "missing mandatory parameters: CSVData RemoteServer" in caught.value.message


def test_switch_forms_and_common_parameters() -> None:
    c = cmd("Remove-MigrationBatch")
    assert bind(c, ["b1", T("Confirm", False)]).values == {"Identity": "b1", "Confirm": False}
    assert bind(c, ["b1", T("WhatIf")]).what_if
    assert not bind(c, ["b1", T("WhatIf", False)]).what_if
    bound = bind(c, [T("Identity"), "b1", T("ErrorAction"), "stop", T("Verbose")])
    assert bound.get("ErrorAction") == "Stop" and bound.arguments == {"Identity": "b1"}
    assert bind(c, ["b1", T("Force", PSObject(["System.Management.Automation.SwitchParameter"],
                                               {"IsPresent": True}))]).get("Force") is True


def test_positional_identity_and_pipeline_input() -> None:
    batch = PSObject(["Microsoft.Exchange.Data.Storage.Management.MigrationBatch"], {
        "Identity": PSObject(["Microsoft.Exchange.Data.Storage.Management.MigrationBatchId"], {"Name": "b1"},
                             text="b1"),
        "Status": "Synced",
    })
    assert bind(cmd("Start-MigrationBatch"), [], batch).get("Identity") == "b1"
    assert bind(cmd("Start-MigrationBatch"), [batch["Identity"]]).get("Identity") == "b1"
    user = PSObject(["Microsoft.Exchange.Data.Storage.Management.MigrationUser"],
                    {"Identity": PSObject([], {"Id": "terrya@contoso.edu"}, text="terrya@contoso.edu")})
    assert bind(cmd("Get-MigrationUserStatistics"), [], user).get("Identity") == "terrya@contoso.edu"
    with pytest.raises(BindingError, match="positional parameter cannot be found that accepts argument 'extra'"):
        bind(cmd("Start-MigrationBatch"), ["b1", "extra"])
    with pytest.raises(BindingError, match="input object cannot be bound"):
        bind(cmd("Get-MigrationStatus"), [], batch)


def test_type_and_range_errors_say_what_is_wrong() -> None:
    with pytest.raises(BindingError, match=r"parameter 'Port'. Cannot convert value \"abc\" to type \"System.Int32\""):
        bind(cmd("Test-MigrationServerAvailability"), [T("RemoteServer"), "h", T("Port"), "abc"])
    with pytest.raises(BindingError, match=r"does not belong to the set \"None,Ssl,Tls\""):
        bind(cmd("Test-MigrationServerAvailability"), [T("RemoteServer"), "h", T("Security"), "Starttls"])
    with pytest.raises(BindingError, match="greater than the maximum allowed range of 10"):
        bind(cmd("New-MigrationBatch"), [T("Imap"), T("Name"), "b", T("CSVData", b"x"), T("RemoteServer"), "h",
                                         T("MaxConcurrentMigrations"), 11])
    with pytest.raises(BindingError, match="Boolean parameters accept only Boolean values"):
        bind(cmd("Set-MigrationEndpoint"), ["e", T("AcceptUntrustedCertificates"), "maybe"])


def test_parameter_sets_that_cannot_be_combined() -> None:
    with pytest.raises(BindingError, match="Parameter set cannot be resolved"):
        bind(cmd("New-MigrationBatch"), [T("Name"), "b", T("CSVData", b"x"), T("SourceEndpoint"), "e",
                                         T("RemoteServer"), "h"])
    assert bind(cmd("Test-MigrationServerAvailability"), [T("Endpoint"), "e1"]).set_name == "TestEndpoint"


def test_values_of_many_kinds() -> None:
    bound = bind(cmd("Set-MigrationConfig"), [T("IncrementalSyncInterval"), "1.06:00:00", T("MaxConcurrentMigrations"),
                                              "Unlimited"])
    assert bound.get("IncrementalSyncInterval") == timedelta(days=1, hours=6)
    assert bound.get("MaxConcurrentMigrations") == UNLIMITED
    emails = bind(cmd("Start-MigrationBatch"), [T("NotificationEmails"), ["a@x.edu", "b@x.edu"]])
    assert emails.get("NotificationEmails") == ["a@x.edu", "b@x.edu"]
    assert bind(cmd("Get-MigrationBatch"), [T("Status"), "synced"]).get("Status") == "Synced"
    assert bind(cmd("Get-MigrationBatch"), [T("Identity", None)]).get("Identity") is None
    assert bind(cmd("New-MigrationBatch"), [T("Name"), "b", T("CSVData"), [69, 109], T("SourceEndpoint"), "e"]).get(
        "CSVData") == b"Em"
    assert NO_VALUE is not None


def test_every_cmdlet_has_help_with_examples_and_syntax() -> None:
    assert len(CMDLETS) == 20
    for cmdlet in CMDLETS:
        assert cmdlet.synopsis and cmdlet.description and len(cmdlet.examples) >= 2, cmdlet.name
        for parameter in cmdlet.parameters:
            assert parameter.help, (cmdlet.name, parameter.name)
        text = render_help(cmdlet, "full")
        assert "SYNTAX" in text and "PARAMETERS" in text and "Example 1" in text
    lines = syntax_lines(cmd("Start-MigrationBatch"))
    assert lines == ["Start-MigrationBatch [[-Identity] <MigrationBatchIdParameter>] "
                     "[-NotificationEmails <MultiValuedProperty>] [-Validate] [-DomainController <Fqdn>] "
                     "[-Partition <MailboxIdParameter>] [-WhatIf] [-Confirm] [<CommonParameters>]"]
    examples = render_help(cmd("New-MigrationBatch"), "examples")
    assert "PS C:\\>New-MigrationBatch -Imap -Name MigrationBatch1 -CSVData:([System.IO.File]::ReadAllBytes(" in examples
    assert "SYNTAX" not in examples
