"""pypsrp against a live ``mailshift serve``: PowerShell remoting (PSRP over WS-Management) as Exchange serves it.

The pool opens on ``.../powershell/Microsoft.Exchange`` with Basic over HTTP (loopback) and
HTTPS, and with NTLM and Negotiate encrypted with MS-WSMV; command metadata, the seed-000
walkthrough with outputs checked property by property, errors in the error stream, refused
scripts, and a stopped loop.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError
from pypsrp.messages import MessageType
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from tests.conftest import NewUser
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import fill
from tests.servers.service import MailshiftService

EXCHANGE = "Microsoft.Exchange"
COMMON = {"Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable", "WarningVariable",
          "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable"}


@pytest.fixture(scope="module")
def service_https() -> bool:
    """The pool is also opened over HTTPS (see ``service`` in conftest.py)."""
    return True


def wsman(service: MailshiftService, auth: str = "basic", *, https: bool = False, password: str | None = None) -> WSMan:
    port = service.https_port if https else service.port
    assert port is not None
    return WSMan("127.0.0.1", port=port, path="powershell", ssl=https, auth=auth,
                 encryption="never" if auth == "basic" else "auto", username=service.user,
                 password=password or service.password, cert_validation=False, operation_timeout=5,
                 read_timeout=10)


def pool(service: MailshiftService, auth: str = "basic", **kwargs: Any) -> RunspacePool:
    return RunspacePool(wsman(service, auth, **kwargs), configuration_name=EXCHANGE)


def run(rp: RunspacePool, cmdlet: str, *parameters: tuple[str, Any]) -> PowerShell:
    ps = PowerShell(rp)
    ps.add_cmdlet(cmdlet)
    for name, value in parameters:
        ps.add_parameter(name, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypsrp warns about an unknown host call it ignores
        ps.invoke()
    return ps


def props(obj: Any) -> dict[str, Any]:
    return {**obj.adapted_properties, **obj.extended_properties}


@pytest.mark.parametrize("auth,https", [("basic", False), ("basic", True), ("ntlm", False), ("negotiate", False)],
                         ids=["basic-http", "basic-https", "ntlm-encrypted", "negotiate-encrypted"])
def test_pool_opens_with_each_authentication(service: MailshiftService, auth: str, https: bool) -> None:
    with pool(service, auth, https=https) as rp:
        ps = run(rp, "Get-MigrationConfig")
        assert not ps.had_errors, ps.streams.error
        [config] = ps.output
        assert config.types[0] == "Microsoft.Exchange.Data.Storage.Management.MigrationConfig"
        assert props(config)["Identity"] == "MigrationConfig"
        assert props(config)["MaxNumberOfBatches"] == 100
    transport = wsman(service, auth, https=https).transport
    if auth != "basic":
        assert transport.wrap_required  # the exchange above went encrypted both ways


@pytest.mark.parametrize("auth", ["basic", "ntlm", "negotiate"])
def test_wrong_password_is_refused(service: MailshiftService, auth: str) -> None:
    with pytest.raises(AuthenticationError):
        with pool(service, auth, password="not-the-password-at-all"):
            pass


def test_command_metadata_lists_every_cmdlet_with_common_parameters(service: MailshiftService) -> None:
    listed = service.mailshift("module", "build", "--output", str(service.instance / "module-check"))
    assert listed.returncode == 0, listed.stderr
    expected = sorted(p.stem for p in (service.instance / "module-check" / "Mailshift" / "Public").glob("*.ps1"))
    with pool(service) as rp:
        metadata = rp.get_command_metadata("*")
        assert sorted(m.name for m in metadata) == expected
        batch = next(m for m in metadata if m.name == "New-MigrationBatch")
        parameters = batch.parameters
        assert COMMON <= set(parameters)
        assert parameters["CSVData"].parameter_type == "System.Byte[]"
        assert parameters["AutoStart"].switch_parameter is True
        assert parameters["Name"].switch_parameter is False
        assert parameters["WhatIf"].switch_parameter is True
        assert all(p.dynamic is False for p in parameters.values())
        assert [m.name for m in rp.get_command_metadata(["Get-Migration*Statistics"])] == [
            "Get-MigrationStatistics", "Get-MigrationUserStatistics"]
        assert rp.get_command_metadata("Get-Mailbox") == []


def _wait(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_seed_000_walkthrough_property_by_property(service: MailshiftService, dovecot_slash: DovecotServer,
                                                  new_user: NewUser) -> None:
    logins = []
    for _ in range(2):
        user, _ = new_user(dovecot_slash)
        fill(dovecot_slash, user, {"INBOX": 5, "Sent Items": 2, "Junk Mail": 1})
        logins.append(user)
    master, secret = dovecot_slash.master_user, dovecot_slash.master_password
    csv = ("EmailAddress,UserName,Password\r\n"
           + "".join(f"{u}@contoso.edu,{u}*{master},{secret}\r\n" for u in logins)).encode()
    host, port = "127.0.0.1", dovecot_slash.port
    with pool(service) as rp:
        ps = run(rp, "Test-MigrationServerAvailability", ("Imap", None), ("RemoteServer", host), ("Port", port))
        [outcome] = ps.output
        assert outcome.types[0] == "Microsoft.Exchange.Migration.TestMigrationServerAvailabilityOutcome"
        assert outcome.to_string == "Success"
        assert {k: props(outcome)[k] for k in ("Result", "RemoteServer", "Port", "IsValid")} == {
            "Result": "Success", "RemoteServer": host, "Port": port, "IsValid": True}

        ps = run(rp, "New-MigrationBatch", ("Imap", None), ("Name", "PsrpBatch1"), ("CSVData", csv),
                 ("RemoteServer", host), ("Port", port), ("MaxConcurrentMigrations", 3),
                 ("TimeZone", "Pacific Standard Time"), ("ExcludeFolders", ["Junk Mail"]))
        assert not ps.had_errors, [str(e) for e in ps.streams.error]
        [batch] = ps.output
        assert batch.types[:2] == ["Microsoft.Exchange.Data.Storage.Management.MigrationBatch", "System.Object"]
        created = props(batch)
        assert created["Identity"].to_string == "PsrpBatch1"
        assert (created["Status"], created["State"], created["MigrationType"]) == ("Created", "Stopped", "IMAP")
        assert (created["TotalCount"], created["SyncedCount"], created["FailedCount"]) == (2, 0, 0)
        assert created["ExcludedFolders"] == ["Junk Mail"]
        assert created["TimeZone"] == "Pacific Standard Time"

        ps = run(rp, "Start-MigrationBatch", ("Identity", "PsrpBatch1"),
                 ("NotificationEmails", ["super-user@contoso.edu"]))
        assert not ps.had_errors, [str(e) for e in ps.streams.error]

        def status() -> str:
            [found] = run(rp, "Get-MigrationBatch", ("Identity", "PsrpBatch1")).output
            return str(props(found)["Status"])

        _wait(lambda: status() == "Synced", "the initial sync")
        [synced] = run(rp, "Get-MigrationBatch", ("Identity", "PsrpBatch1")).output
        assert (props(synced)["SyncedCount"], props(synced)["TotalCount"], props(synced)["State"]) == (2, 2, "Active")
        assert props(synced)["NotificationEmails"] == ["administrator@contoso.edu", "super-user@contoso.edu"]
        for login in logins:
            [stats] = run(rp, "Get-MigrationUserStatistics", ("Identity", f"{login}@contoso.edu")).output
            assert stats.types[0] == "Microsoft.Exchange.Data.Storage.Management.MigrationUserStatistics"
            values = props(stats)
            assert values["Identity"].to_string == f"{login}@contoso.edu"
            assert (values["Status"], values["SyncedItemCount"], values["SkippedItemCount"]) == ("Synced", 7, 0)
            assert values["BatchId"].to_string == "PsrpBatch1"

        ps = run(rp, "Complete-MigrationBatch", ("Identity", "PsrpBatch1"))
        assert not ps.had_errors, [str(e) for e in ps.streams.error]
        _wait(lambda: status() == "Completed", "completion")


def test_errors_reach_the_error_stream_with_category_and_id(service: MailshiftService) -> None:
    with pool(service) as rp:
        ps = run(rp, "Get-MigrationBatch", ("Identity", "no-such-batch"))
        assert ps.state == PSInvocationState.COMPLETED and ps.output == []
        [record] = ps.streams.error
        assert record.fq_error == "ManagementObjectNotFoundException,Get-MigrationBatch"
        assert record.reason == "ManagementObjectNotFoundException"
        assert record.target_name == "no-such-batch"
        assert "no-such-batch" in str(record)
        assert "ObjectNotFound" in record.message

        ps = run(rp, "Get-Mailbox")
        assert ps.state == PSInvocationState.FAILED and ps.had_errors
        [record] = ps.streams.error
        assert record.fq_error == "CommandNotFoundException,Get-Mailbox"
        assert "'Get-Mailbox' is not recognized" in str(record)

        ps = run(rp, "New-MigrationBatch", ("Name", "x"), ("Auto", None))
        assert ps.state == PSInvocationState.FAILED
        [record] = ps.streams.error
        assert record.fq_error == "AmbiguousParameter,New-MigrationBatch"
        assert "InvalidArgument" in record.message


def test_a_script_is_refused_like_exchanges_no_language_endpoint(service: MailshiftService) -> None:
    with pool(service) as rp:
        ps = PowerShell(rp)
        ps.add_script("Get-MigrationBatch | ForEach-Object { $_.Identity }")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED and ps.output == []
        [record] = ps.streams.error
        assert record.fq_error == "ScriptsNotAllowed"
        assert "no-language mode" in str(record)
        assert "ParserError" in record.message
        # The pool is still usable after the refusal.
        assert run(rp, "Get-MigrationConfig").output


def test_stop_ends_a_long_statistics_loop(service: MailshiftService) -> None:
    loop = "while ($true) { Get-MigrationUserStatistics | Out-Null; Start-Sleep -Milliseconds 50 }"
    with pool(service) as rp:
        ps = PowerShell(rp)
        ps.add_cmdlet("Invoke-Expression").add_parameter("Command", loop)
        ps.begin_invoke()
        ps.poll_invoke(timeout=1)
        assert ps.state == PSInvocationState.RUNNING
        command_id = ps._command_id
        started = time.monotonic()
        ps.stop()  # Signal powershell/signal/ctrl_c
        state, _, buffers = rp.shell.receive("stdout", command_id=command_id, timeout=5)
        assert state.endswith("CommandState/Done")
        messages = rp._fragmenter.defragment(buffers["stdout"])
        states = [m.data.state for m in messages if m.message_type == MessageType.PIPELINE_STATE]
        assert states == [PSInvocationState.STOPPING, PSInvocationState.STOPPED]
        assert time.monotonic() - started < 5
        rp.shell.signal("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate", command_id)
        assert run(rp, "Get-MigrationConfig").output


def test_execute_ps_runs_text_through_the_restricted_interpreter(service: MailshiftService) -> None:
    client = Client("127.0.0.1", port=service.port, path="powershell", ssl=False, auth="basic", encryption="never",
                    username=service.user, password=service.password, configuration_name=EXCHANGE)
    output, streams, had_errors = client.execute_ps("Get-MigrationConfig | Format-List MaxNumberOfBatches")
    assert not had_errors
    assert output.strip() == "MaxNumberOfBatches : 100"
    output, streams, had_errors = client.execute_ps("Get-MigrationBatch -Identity nothing-here")
    assert streams.error[0].fq_error == "ManagementObjectNotFoundException,Get-MigrationBatch"
