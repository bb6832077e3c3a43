"""pywinrm against a live ``mailshift serve``: the seeds' commands as written, run_ps end to end."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import winrm
from winrm.exceptions import InvalidCredentialsError

from tests.conftest import NewUser
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import deliver, fill, make_message
from tests.servers.service import MailshiftService
from tests.servers.smtp import SmtpListener


def session(service: MailshiftService, password: str | None = None) -> winrm.Session:
    return winrm.Session(service.wsman, auth=(service.user, password or service.password), transport="plaintext", proxy=None, ca_trust_path=None)


def ps(service: MailshiftService, script: str) -> tuple[str, str, int]:
    result = session(service).run_ps(script)
    return result.std_out.decode("utf-8", "replace"), result.std_err.decode("utf-8", "replace"), result.status_code


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_wrong_credentials_are_refused(service: MailshiftService) -> None:
    with pytest.raises(InvalidCredentialsError):
        session(service, password="not-the-password").run_ps("Get-MigrationBatch")


def test_seed_000_as_written(service: MailshiftService, dovecot_slash: DovecotServer, new_user: NewUser,
                             smtp: SmtpListener) -> None:
    logins = []
    for _ in range(3):
        user, _ = new_user(dovecot_slash)
        fill(dovecot_slash, user, {"INBOX": 6, "Sent Items": 2, "Deleted Items": 2, "Junk Mail": 1})
        logins.append(user)
    master, secret = dovecot_slash.master_user, dovecot_slash.master_password
    rows = [f"{u}@contoso.edu,{u}*{master},{secret}" for u in logins[:2]] + [f"{logins[2]}@contoso.edu,{logins[2]},Wrong"]
    (service.import_folder / "MigrationBatch_1.csv").write_text("EmailAddress,UserName,Password\r\n" + "\r\n".join(rows)
                                                                 + "\r\n")
    host, port = "127.0.0.1", dovecot_slash.port

    out, err, code = ps(service, f"Test-MigrationServerAvailability -RemoteServer {host} -Port {port}")
    assert (code, err) == (0, "") and "Success" in out
    out, err, code = ps(service, "$t = Test-MigrationServerAvailability -RemoteServer imap.contoso.edu -Port 143\n"
                                 'if ($t.Result -eq "Failed") { Write-Host $t.Message }')
    assert code == 0 and "imap.contoso.edu:143 failed" in out

    out, err, code = ps(service, (
        'New-MigrationBatch -Imap -Name MigrationBatch1 -CSVData:([System.IO.File]::ReadAllBytes('
        '"C:\\Users\\Administrator\\Desktop\\MigrationBatch_1.csv")) -MaxConcurrentMigrations 3 '
        f'-RemoteServer {host} -Port {port} -Timezone "Pacific Standard Time" -ExcludeFolders "Deleted Items","Junk Mail"'))
    assert (code, err) == (0, ""), err
    assert "MigrationBatch1" in out and "Created" in out

    out, err, code = ps(service, 'Start-MigrationBatch -NotificationEmails "super-user@contoso.edu",'
                                 '"helpdesk@contoso.edu","CIO@contoso.edu"')
    assert (code, err) == (0, ""), err

    def batch_status() -> str:
        text, _, _ = ps(service, "(Get-MigrationBatch MigrationBatch1).Status")
        return text.strip()

    wait_for(lambda: batch_status() == "SyncedWithErrors", "the initial sync")
    out, err, code = ps(service, "Get-MigrationBatch")
    assert code == 0 and "MigrationBatch1" in out and "SyncedWithErrors" in out
    out, _, _ = ps(service, "Get-MigrationStatus | Format-List")
    assert "TotalCount" in out and ": 3" in out
    out, _, _ = ps(service, "Get-MigrationUser | Get-MigrationUserStatistics | "
                            "Select-Object Identity, Status, SyncedItemCount | Format-Table -AutoSize")
    assert f"{logins[0]}@contoso.edu" in out and "Failed" in out
    for user in logins[:2]:
        maildir = service.instance / "mailboxes" / f"{user}@contoso.edu" / "Maildir"
        assert sum(1 for p in maildir.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")) == 8
    wait_for(lambda: len(smtp.messages) >= 1, "the status e-mail")
    assert {"super-user@contoso.edu", "helpdesk@contoso.edu", "CIO@contoso.edu",
            "administrator@contoso.edu"} <= set(smtp.messages[-1].rcpt_tos)

    deliver(dovecot_slash, logins[0], "INBOX", make_message(777, subject="after the MX switch"))
    out, err, code = ps(service, "Set-MigrationBatch MigrationBatch1 -SyncNow")
    assert (code, err) == (0, ""), err
    wait_for(lambda: ps(service, f"(Get-MigrationUserStatistics {logins[0]}@contoso.edu).SyncedItemCount")[0].strip()
             == "9", "the incremental sync")

    out, err, code = ps(service, "Complete-Migration -NotificationEmails super-user@contoso.edu")
    assert code == 0, err
    wait_for(lambda: batch_status() == "CompletedWithErrors", "completion")

    out, err, code = ps(service, "Get-Help New-MigrationBatch -Examples")
    assert code == 0 and "Example 1" in out and "MigrationBatch_1.csv" in out
    out, _, _ = ps(service, "Get-Help New-MigrationBatch -Detailed")
    assert "PARAMETERS" in out and "-CSVData <Byte[]>" in out
    out, _, _ = ps(service, "Get-Help New-MigrationBatch")
    assert "SYNTAX" in out and "New-MigrationBatch -Imap -Name <String>" in out.replace("\r\n", "\n")


def test_errors_reach_stderr_with_exit_code(service: MailshiftService) -> None:
    out, err, code = ps(service, "Get-Mailbox")
    assert code == 1 and "'Get-Mailbox' is not recognized" in err
    out, err, code = ps(service, "Start-MigrationBatch -Identity no-such-batch")
    assert code == 1 and "no-such-batch" in err and "ObjectNotFound" in err
    out, err, code = ps(service, "New-MigrationBatch -Name x -Auto")
    assert code == 1 and "ambiguous" in err and "AutoStart, AutoComplete, AutoRetryCount" in err
    out, err, code = ps(service, '[System.IO.File]::ReadAllBytes("/etc/passwd")')
    assert code == 1 and "import folder" in err
    for refused in ('Invoke-Expression "Get-MigrationBatch"', "Start-Process calc", "[System.Diagnostics.Process]::Start('calc')"):
        out, err, code = ps(service, refused)
        assert code == 1 and err, refused


def test_seed_000_bare_forms_and_time_zones(service: MailshiftService, dovecot_slash: DovecotServer,
                                            new_user: NewUser) -> None:
    out, err, code = ps(service, 'Get-ChildItem "HKLM:\\Software\\Microsoft\\Windows NT\\CurrentVersion\\Time zones" '
                                 '| FL pschildname')
    assert code == 0 and "PSChildName : Pacific Standard Time" in out
    user, _ = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 40})
    row = f"{user}@contoso.edu,{user}*{dovecot_slash.master_user},{dovecot_slash.master_password}"
    (service.import_folder / "bare.csv").write_text(f"EmailAddress,UserName,Password\n{row}\n")
    out, err, code = ps(service, 'New-MigrationBatch -Imap -Name Bare1 -CSVData ([System.IO.File]::ReadAllBytes('
                                 f'"C:\\bare.csv")) -RemoteServer 127.0.0.1 -Port {dovecot_slash.port}')
    assert code == 0, err
    # With one batch still open (the first test's batch is completed), the bare forms act on it.
    out, err, code = ps(service, "Start-MigrationBatch")
    assert code == 0, err
    out, err, code = ps(service, "Stop-MigrationBatch")
    assert code == 0, err
    wait_for(lambda: ps(service, "(Get-MigrationBatch Bare1).Status")[0].strip() == "Stopped", "the stop")
    out, err, code = ps(service, "Start-MigrationBatch")
    assert code == 0, err
    wait_for(lambda: ps(service, "(Get-MigrationBatch Bare1).Status")[0].strip() == "Synced", "the resumed sync")
    out, _, _ = ps(service, f"(Get-MigrationUserStatistics {user}@contoso.edu).SyncedItemCount")
    assert out.strip() == "40"
    out, err, code = ps(service, "Complete-Migration")
    assert code == 0 and "Bare1" in out
    wait_for(lambda: ps(service, "(Get-MigrationBatch Bare1).Status")[0].strip() == "Completed", "completion")


def test_seed_003_commands_say_what_mailshift_does_not_do(service: MailshiftService) -> None:
    (service.import_folder / "OnBoarding1.csv").write_text(
        "EmailAddress,MailboxType\nuser1@contoso.com,\nuser2@contoso.com,\nuser3@cloud.contoso.com,PrimaryAndArchive\n")
    out, err, code = ps(service, (
        'New-MigrationBatch -Name OnBoarding1 -SourceEndpoint RemoteEndpoint1 -TargetDeliveryDomain cloud.contoso.com '
        '-CSVData ([System.IO.File]::ReadAllBytes("C:\\Users\\Administrator\\Desktop\\OnBoarding1.csv")) '
        '-MailboxType ArchiveOnly -AutoStart'))
    assert code == 1 and "Mailshift migrates mailboxes from IMAP servers; -MailboxType" in err
    # The guide's @(EXCH-MBX-02,EXCH-MBX-03) is not valid PowerShell (a bare word list in command position):
    # a parse error, as powershell.exe gives; quoted, the names reach the cmdlet, which says it can't do moves.
    out, err, code = ps(service, (
        'New-MigrationBatch -Name CrossForestBatch1 -SourceEndpoint ForestEndpoint1 -TargetDeliveryDomain '
        'forest2.contoso.com -TargetDatabases @(EXCH-MBX-02,EXCH-MBX-03) -TargetArchiveDatabases '
        '@(EXCH-MBX-A02,EXCH-MBX-A03) -CSVData ([System.IO.File]::ReadAllBytes('
        '"C:\\Users\\Administrator\\Desktop\\CrossForestBatch1.csv")) -AutoStart'))
    assert code == 1 and "ParserError" in err and "At line:1 char:" in err
    out, err, code = ps(service, (
        "New-MigrationBatch -Name CrossForestBatch1 -SourceEndpoint ForestEndpoint1 -TargetDeliveryDomain "
        "forest2.contoso.com -TargetDatabases @('EXCH-MBX-02','EXCH-MBX-03') -CSVData ([byte[]](69,109)) -AutoStart"))
    assert code == 1 and "-TargetDatabases (Exchange mailbox moves) is not supported" in err


def test_binding_forms_through_run_ps(service: MailshiftService, dovecot_slash: DovecotServer) -> None:
    port = dovecot_slash.port
    script = (
        "$p = @{ IMAP = $true; Name = 'SplatEP'; RemoteServer = '127.0.0.1'; Port = '%d'; Security = 'none'; "
        "MaxConcurrentMigrations = 'Unlimited'; MaxConcurrentIncrementalSyncs = 5; Confirm = [switch]$false }\n"
        "New-MigrationEndpoint @p | Out-Null\n"
        "New-MigrationEndpoint -imap -name:PrefixEP -Remote 127.0.0.1 -Po %d -Sec None -SkipVerification:$true "
        "-MaxConcurrentMigrations 7 -MaxConcurrentIncrementalSyncs 7 | Out-Null\n"
        "Get-MigrationEndpoint | Where-Object { $_.Identity -like '*EP' } | Sort-Object Identity | "
        "Format-Table Identity, Port, Security, MaxConcurrentMigrations -AutoSize"
    ) % (port, port)
    out, err, code = ps(service, script)
    assert (code, err) == (0, ""), err
    lines = [line.rstrip() for line in out.replace("\r\n", "\n").split("\n") if line.strip()]
    width = len(str(port))
    assert lines == [  # numbers (and their headings) right-aligned, as PowerShell prints them
        f"Identity {'Port'.rjust(width)} Security MaxConcurrentMigrations",
        f"-------- {'----'.rjust(width)} -------- -----------------------",
        f"PrefixEP {port} None                           7",
        f"SplatEP  {port} None                         300",
    ]
    out, err, code = ps(service, "Set-MigrationEndpoint SplatEP -MaxConcurrentMigrations 10 -MaxConcurrentIncrementalSyncs 11")
    assert code == 1 and "can't be larger than -MaxConcurrentMigrations" in err
    out, err, code = ps(service, "Remove-MigrationEndpoint PrefixEP -WhatIf; (Get-MigrationEndpoint PrefixEP).Port")
    assert code == 0 and 'What if: Performing the operation "Removing migration endpoint" on target "PrefixEP".' in out
    assert out.strip().endswith(str(port))
    out, err, code = ps(service, "Remove-MigrationEndpoint -Identity PrefixEP,SplatEP -Confirm:$false")
    assert code == 1 and "Cannot process argument transformation on parameter 'Identity'" in err
    out, err, code = ps(service, "Get-MigrationEndpoint | ? Identity -like '*EP' | Remove-MigrationEndpoint -Confirm:$false\n"
                                 "@(Get-MigrationEndpoint | ? Identity -like '*EP').Count")
    assert (code, err, out.strip()) == (0, "", "0")


def test_migration_to_an_imap_target_driven_only_through_run_ps(
        tmp_path_factory: pytest.TempPathFactory, dovecot_slash: DovecotServer, dovecot_dot: DovecotServer,
        new_user: NewUser) -> None:
    from tests.servers.mailbox import snapshot

    settings = {"TARGET_IMAP_HOST": "127.0.0.1", "TARGET_IMAP_PORT": str(dovecot_dot.port),
                "TARGET_IMAP_SECURITY": "None", "TARGET_IMAP_USER": "{EmailAddress}*" + dovecot_dot.master_user}
    environ = {"MAILSHIFT_TARGET_PASSWORD": dovecot_dot.master_password}
    source_user, source_password = new_user(dovecot_slash)
    fill(dovecot_slash, source_user, {"INBOX": 15, "Sent Items": 5, "Projekte/Überblick": 4})
    target_user = f"{source_user}@contoso.edu"
    dovecot_dot.add_user(target_user, "target-password-unused")
    with MailshiftService(tmp_path_factory.mktemp("imap-target") / "instance", settings, environ) as imap_service:
        (imap_service.import_folder / "users.csv").write_text(
            f"EmailAddress,UserName,Password\r\n{target_user},{source_user},{source_password}\r\n")
        out, err, code = ps(imap_service, (
            f"New-MigrationEndpoint -IMAP -Name Src -RemoteServer 127.0.0.1 -Port {dovecot_slash.port} -Security None\n"
            "$b = New-MigrationBatch -Name ToImap -SourceEndpoint Src -AutoStart "
            "-CSVData ([System.IO.File]::ReadAllBytes('C:\\Temp\\users.csv'))\n"
            "$b.Identity.Name"))
        assert code == 0 and out.strip().endswith("ToImap"), err
        wait_for(lambda: ps(imap_service, "(Get-MigrationBatch ToImap).Status")[0].strip() == "Synced", "the sync")
    source = snapshot(dovecot_slash, source_user)
    copied = snapshot(dovecot_dot, f"{target_user}*{dovecot_dot.master_user}", dovecot_dot.master_password)
    assert copied["INBOX"] == source["INBOX"]
    # the target has no folder marked \Sent yet (its Sent is declared, not created): the name is kept
    assert copied["Sent Items"] == source["Sent Items"]
    assert copied["Projekte/Überblick"] == source["Projekte/Überblick"]


def test_refusals_print_cleanly_on_stderr(service: MailshiftService) -> None:
    out, err, code = ps(service, "New-MigrationEndpoint -IMAP -Name x")
    assert code == 1 and "missing mandatory parameters: RemoteServer" in err
    assert "FullyQualifiedErrorId : MissingMandatoryParameter,New-MigrationEndpoint" in err
    (service.import_folder / "bad.csv").write_text("EmailAddress,User Name,Password\nnot-an-address,u,p\n")
    out, err, code = ps(service, "New-MigrationBatch -Imap -Name BadCsv -RemoteServer 127.0.0.1 -Port 143 "
                                 "-CSVData ([System.IO.File]::ReadAllBytes('D:\\csv\\bad.csv'))")
    assert code == 1 and "The CSV data is not valid:" in err
    assert "line 1: column 2 is headed 'User Name'" in err and "use UserName" in err  # the header, the right name
    assert "line 2, column EmailAddress" in err  # every problem at once
    (service.import_folder / "ok.csv").write_text("EmailAddress,UserName,Password\nillegal@contoso.edu,u,p\n")
    out, err, code = ps(service, "New-MigrationBatch -Name Illegal -SourceEndpoint nowhere "
                                 "-CSVData ([System.IO.File]::ReadAllBytes('ok.csv'))")
    assert code == 1 and "The migration endpoint 'nowhere' can't be found." in err
    out, err, code = ps(service, "New-MigrationEndpoint -IMAP -Name Unused -RemoteServer 127.0.0.1 -Port 1 "
                                 "-SkipVerification | Out-Null\n"
                                 "New-MigrationBatch -Name Illegal -SourceEndpoint Unused "
                                 "-CSVData ([System.IO.File]::ReadAllBytes('ok.csv')) | Out-Null\n"
                                 "Stop-MigrationBatch Illegal -Confirm:$false")
    assert code == 1 and "while its status is Created" in err
    assert "FullyQualifiedErrorId : MigrationBatchStatusException,Stop-MigrationBatch" in err
    assert out == ""
