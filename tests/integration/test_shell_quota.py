"""Leaked shells against a live ``mailshift serve``: `mailshift admin shells` lists them, `close-shells` frees them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from winrm.exceptions import WSManFaultError
from winrm.protocol import Protocol

from tests.servers.service import MailshiftService

QUOTA = 3


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailshiftService]:
    with MailshiftService(tmp_path_factory.mktemp("quota") / "instance", {"MAX_SHELLS_PER_USER": str(QUOTA)}) as running:
        yield running


def protocol(service: MailshiftService) -> Protocol:
    return Protocol(service.wsman, transport="plaintext", username=service.user, password=service.password, proxy=None,
                    server_cert_validation="ignore")


def pool(service: MailshiftService) -> RunspacePool:
    wsman = WSMan("127.0.0.1", port=service.port, path="powershell", ssl=False, auth="basic", encryption="never",
                  username=service.user, password=service.password, operation_timeout=5, read_timeout=10)
    return RunspacePool(wsman, configuration_name="Microsoft.Exchange")


def listed(service: MailshiftService, *name: str) -> list[list[str]]:
    answer = service.mailshift("admin", "shells", *name)
    assert answer.returncode == 0, answer.stderr
    return [line.split("\t") for line in answer.stdout.splitlines()]


def test_leaked_winrs_shells_are_listed_and_closed(service: MailshiftService) -> None:
    client = protocol(service)
    leaked = [client.open_shell() for _ in range(QUOTA)]  # never closed
    with pytest.raises(WSManFaultError, match="maximum number of shells"):
        client.open_shell()
    rows = listed(service, "ADMIN")  # any case names the account
    assert sorted(row[0] for row in rows if row[1] == "WinRS shell") == sorted(leaked)
    assert all(row[2] == "admin" for row in rows)
    one = service.mailshift("admin", "close-shells", "admin", "--id", leaked[0])
    assert one.returncode == 0 and one.stdout.split() == ["closed", leaked[0]]
    shell = client.open_shell()  # a slot is free again
    command = client.run_command(shell, "Get-MigrationConfig")
    stdout, _, code = client.get_command_output(shell, command)
    assert code == 0 and b"MaxNumberOfBatches" in stdout
    every = service.mailshift("admin", "close-shells", "admin")
    assert every.returncode == 0 and len(every.stdout.splitlines()) == QUOTA
    assert [row for row in listed(service) if row[1] == "WinRS shell"] == []
    with pytest.raises(WSManFaultError, match="ShellId"):
        client.run_command(shell, "Get-MigrationConfig")  # the closed shell is gone for its client too


def test_leaked_psrp_sessions_are_closed_and_the_admin_works_again(service: MailshiftService) -> None:
    leaked = [pool(service) for _ in range(QUOTA)]
    for runspace in leaked:
        runspace.open()
    with pytest.raises(Exception, match="maximum of 3 open PowerShell sessions"):
        pool(service).open()
    rows = [row for row in listed(service, "admin") if row[1] == "PSRP runspace pool"]
    assert sorted(row[0] for row in rows) == sorted(str(r.shell.id).upper() for r in leaked)
    closed = service.mailshift("admin", "close-shells", "admin")
    assert closed.returncode == 0 and len(closed.stdout.splitlines()) == QUOTA
    with pool(service) as fresh:
        ps = PowerShell(fresh)
        ps.add_cmdlet("Get-MigrationConfig")
        output = ps.invoke()
        assert not ps.had_errors and output


def test_the_cli_says_when_no_service_runs(tmp_path_factory: pytest.TempPathFactory) -> None:
    idle = MailshiftService(tmp_path_factory.mktemp("idle") / "instance")
    idle.instance.mkdir(parents=True)
    made = idle.mailshift("admin", "add", "admin", "--password-env", "MAILSHIFT_ADMIN_PASSWORD")
    assert made.returncode == 0, made.stderr
    answer = idle.mailshift("admin", "close-shells", "admin")
    assert answer.returncode == 2 and "mailshift serve is not running" in answer.stderr
    unknown = idle.mailshift("admin", "shells", "nobody")
    assert unknown.returncode == 2 and "no account named 'nobody'" in unknown.stderr
