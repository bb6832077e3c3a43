"""The service as a whole: HTTPS with its generated certificate, plain HTTP only from loopback, the CLI."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import winrm

from shim.app import create_app
from tests.servers.service import MailshiftService


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailshiftService]:
    with MailshiftService(tmp_path_factory.mktemp("https") / "instance", https=True) as running:
        yield running


def test_https_uses_the_generated_certificate(secure: MailshiftService) -> None:
    assert secure.https_port is not None
    cert = secure.instance / "tls" / "service.crt"
    key = secure.instance / "tls" / "service.key"
    assert cert.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    url = f"https://127.0.0.1:{secure.https_port}"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/api/v1/cmdlets", auth=(secure.user, secure.password), timeout=10)
    answer = requests.get(f"{url}/api/v1/cmdlets", auth=(secure.user, secure.password), timeout=10, verify=str(cert))
    assert answer.status_code == 200 and len(answer.json()["cmdlets"]) == 20
    session = winrm.Session(f"{url}/wsman", auth=(secure.user, secure.password), transport="ssl",
                            server_cert_validation="ignore", proxy=None, ca_trust_path=None)
    result = session.run_cmd("Get-MigrationConfig")
    assert result.status_code == 0 and b"MaxNumberOfBatches" in result.std_out
    assert ssl.PEM_cert_to_DER_cert(cert.read_text())  # a real certificate


def test_plain_http_is_for_loopback_only(tmp_path: Path) -> None:
    app = create_app({"INSTANCE": str(tmp_path / "instance"), "RUN_SCHEDULER": False})
    accounts = app.extensions["mailshift_accounts"]
    accounts.set("admin", "a long enough password")
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:a long enough password").decode()}
    client = app.test_client()
    try:
        assert client.get("/api/v1/cmdlets", headers=auth, environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
        refused = client.get("/api/v1/cmdlets", headers=auth, environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert refused.status_code == 403 and "HTTPS" in refused.get_json()["error"]["message"]
        over_tls = client.get("/api/v1/cmdlets", headers=auth, base_url="https://mailshift.contoso.edu",
                              environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert over_tls.status_code == 200
    finally:
        app.extensions["mailshift_service"].close()


def test_cli_admin_accounts(tmp_path: Path) -> None:
    service = MailshiftService(tmp_path / "instance")
    made = service.mailshift("admin", "add", "helpdesk", "--generate")
    assert made.returncode == 0 and len(made.stdout.strip()) >= 20
    listed = service.mailshift("admin", "list")
    assert listed.stdout.split() == ["helpdesk"]
    assert made.stdout.strip() not in (tmp_path / "instance" / "admins.json").read_text()
    short = service.mailshift("admin", "add", "x", "--password-env", "NOT_SET_ANYWHERE")
    assert short.returncode == 2 and "NOT_SET_ANYWHERE" in short.stderr


def test_run_and_shell_use_the_same_interpreter(tmp_path: Path) -> None:
    service = MailshiftService(tmp_path / "instance")
    script = tmp_path / "check.ps1"
    script.write_text("$c = Get-MigrationConfig\n"
                      "Write-Host \"batches allowed: $($c.MaxNumberOfBatches)\"\n"
                      "Get-MigrationBatch -Identity nothing-here\n", encoding="utf-8-sig")
    ran = service.mailshift("run", str(script), "--no-scheduler")
    assert ran.returncode == 1
    assert "batches allowed: 100" in ran.stdout
    assert "The migration batch 'nothing-here' can't be found." in ran.stderr
    import subprocess
    import sys
    shell = subprocess.run([sys.executable, "-m", "shim.cli", "shell", "--instance", str(tmp_path / "instance"),
                            "--no-scheduler"], input="Get-MigrationConfig | Format-List MaxNumberOfBatches\n"
                           "Get-Mailbox\nexit\n", capture_output=True, text=True, timeout=60, check=False)
    assert shell.returncode == 0
    assert "MaxNumberOfBatches : 100" in shell.stdout
    assert "'Get-Mailbox' is not recognized" in shell.stderr
