"""The service's log against a live ``mailshift serve``: the private rotating file, the audit line of
each cmdlet call (REST and WinRS), batch and user lifecycle lines by EmailAddress, start-up lines,
JSON lines, and no password anywhere; ``mailshift sync -v/-vv`` steps on standard error."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import winrm
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from engine.logs import log_file
from shim.cmdlets.audit import MASK, masked_parameters
from shim.cmdlets.binder import Bound
from shim.cmdlets.declarations import CMDLETS
from tests.conftest import NewUser
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import fill
from tests.servers.service import MailshiftService
from tests.servers.smtp import SmtpListener

TARGET_SECRET = "Target-Secret-7f3a9c"
WRONG_CSV_PASSWORD = "Wrong-Csv-Secret-41d2"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def ps(service: MailshiftService, script: str) -> tuple[str, str, int]:
    session = winrm.Session(service.wsman, auth=(service.user, service.password), transport="plaintext", proxy=None,
                            ca_trust_path=None)
    result = session.run_ps(script)
    return result.std_out.decode("utf-8", "replace"), result.std_err.decode("utf-8", "replace"), result.status_code


def rest(service: MailshiftService, name: str, parameters: dict[str, Any]) -> requests.Response:
    return requests.post(f"{service.url}/api/v1/cmdlets/{name}/invoke", json={"parameters": parameters},
                         auth=(service.user, service.password), timeout=60)


def logged(service: MailshiftService) -> str:
    """Every log file of the instance (the current one and the rotated ones) and the process's stderr."""
    files = sorted(log_file(service.instance).parent.glob("mailshift.log*"))
    return "\n".join(f.read_text(encoding="utf-8") for f in files) + service.log.read_text(encoding="utf-8")


def test_text_log_audits_doors_and_follows_a_batch(tmp_path: Path, dovecot_slash: DovecotServer, new_user: NewUser,
                                                   smtp: SmtpListener) -> None:
    settings = {"SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "None",
                "SMTP_SENDER": "mailshift@contoso.edu"}
    with MailshiftService(tmp_path / "instance", settings, {"MAILSHIFT_TARGET_PASSWORD": TARGET_SECRET}) as service:
        path = log_file(service.instance)
        wait_for(lambda: "logging to " in path.read_text(encoding="utf-8"), "the start-up lines", timeout=10)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
        text = path.read_text(encoding="utf-8")
        assert f"listening on http://127.0.0.1:{service.port} (/wsman, /powershell, /api/v1)" in text
        assert f"target: Maildir {service.instance}/mailboxes/{{EmailAddress}}/Maildir" in text
        assert (f"status e-mails: SMTP {smtp.host} port {smtp.port}, security None, sender mailshift@contoso.edu"
                in text)

        assert rest(service, "Get-MigrationConfig", {}).status_code == 200
        good, _ = new_user(dovecot_slash)
        bad, _ = new_user(dovecot_slash)
        fill(dovecot_slash, good, {"INBOX": 3, "Sent Items": 1})
        master, secret = dovecot_slash.master_user, dovecot_slash.master_password
        csv = (f"EmailAddress,UserName,Password\r\n{good}@contoso.edu,{good}*{master},{secret}\r\n"
               f"{bad}@contoso.edu,{bad},{WRONG_CSV_PASSWORD}\r\n")
        (service.import_folder / "logs.csv").write_text(csv)
        out, err, code = ps(service, 'New-MigrationBatch -Imap -Name LogBatch -CSVData ([System.IO.File]::ReadAllBytes('
                                     f'"C:\\logs.csv")) -RemoteServer 127.0.0.1 -Port {dovecot_slash.port} -AutoStart')
        assert code == 0, err
        refused = rest(service, "New-MigrationBatch", {"Name": "RestBatch", "SourceEndpoint": "no-such-endpoint",
                                                       "CSVData": base64.b64encode(csv.encode()).decode()})
        assert refused.status_code == 200 and refused.json()["errors"], refused.text

        def status() -> str:
            return ps(service, "(Get-MigrationBatch LogBatch).Status")[0].strip()

        wait_for(lambda: status() == "SyncedWithErrors", "the initial sync")
        out, err, code = ps(service, "Complete-MigrationBatch LogBatch")
        assert code == 0, err
        wait_for(lambda: status() == "CompletedWithErrors", "completion")

        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        rest_audit = [line for line in lines if "Get-MigrationConfig by admin via REST: ok (" in line]
        assert len(rest_audit) == 1 and " INFO mailshift.audit: " in rest_audit[0]
        winrs_audit = next(line for line in lines if "New-MigrationBatch by admin via WinRS" in line)
        assert f"-CSVData '<{len(csv)} bytes>'" in winrs_audit and "-Name 'LogBatch'" in winrs_audit
        assert winrs_audit.rstrip().endswith(" ms)") and ": ok (" in winrs_audit
        refused_audit = next(line for line in lines if "New-MigrationBatch by admin via REST" in line)
        assert f"-CSVData '<{len(csv)} bytes>'" in refused_audit
        assert ": InvalidOperation: These users are already in another migration batch" in refused_audit
        assert any("Complete-MigrationBatch by admin via WinRS -Identity 'LogBatch': ok" in line for line in lines)

        assert "batch LogBatch: created with 2 users" in text
        assert "batch LogBatch: Created -> Syncing" in text or "batch LogBatch: Starting -> Syncing" in text
        for event in ("Stopped -> Queued", "Queued -> Syncing", "Syncing -> Synced", "Synced -> Queued",
                      "Queued -> Completing", "Completing -> Completed"):
            assert f"migration user {good}@contoso.edu (batch LogBatch): {event}" in text, event
        failed = next(line for line in lines if f"migration user {bad}@contoso.edu (batch LogBatch): Syncing -> Failed"
                      in line)
        assert " WARNING engine.lifecycle: " in failed and "credentials" in failed.lower()
        assert "user:" not in "\n".join(line for line in lines if "engine.lifecycle" in line)  # no GUID keys
        assert "batch LogBatch: Completing -> CompletedWithErrors" in text

    everything = logged(service)
    for password in (secret, WRONG_CSV_PASSWORD, TARGET_SECRET, service.password):
        assert password not in everything


def test_json_lines_rotate_and_keep_the_target_password_out(tmp_path: Path) -> None:
    settings = {"LOG_FORMAT": "json", "LOG_MAX_BYTES": "4096", "LOG_BACKUP_COUNT": "2",
                "TARGET_IMAP_HOST": "127.0.0.1", "TARGET_IMAP_PORT": "1143", "TARGET_IMAP_SECURITY": "None",
                "TARGET_IMAP_USER": "{EmailAddress}*master", "TARGET_IMAP_PASSWORD_ENV": "LOG_TEST_TARGET_PASSWORD"}
    with MailshiftService(tmp_path / "instance", settings, {"LOG_TEST_TARGET_PASSWORD": TARGET_SECRET}) as service:
        path = log_file(service.instance)
        wait_for(lambda: "logging to " in path.read_text(encoding="utf-8"), "the start-up lines", timeout=10)
        first = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        target = next(r for r in first if r.get("target") == "IMAP")
        assert target["logger"] == "mailshift.serve" and target["level"] == "INFO"
        assert target["message"] == ("target: IMAP 127.0.0.1 port 1143, security None, login {EmailAddress}*master "
                                     "(password from $LOG_TEST_TARGET_PASSWORD)")
        assert (target["host"], target["port"], target["user"]) == ("127.0.0.1", 1143, "{EmailAddress}*master")

        assert rest(service, "Get-MigrationBatch", {"Identity": "no-such-batch"}).json()["errors"]
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        audit = next(r for r in records if r["logger"] == "mailshift.audit")
        assert {k: audit[k] for k in ("admin", "door", "cmdlet", "parameters")} == {
            "admin": "admin", "door": "REST", "cmdlet": "Get-MigrationBatch", "parameters": {"Identity": "no-such-batch"}}
        assert audit["outcome"].startswith("ObjectNotFound: ") and isinstance(audit["duration_ms"], float)
        assert {"time", "level", "logger", "message"} <= set(audit)

        wsman = WSMan("127.0.0.1", port=service.port, path="powershell", ssl=False, auth="basic", encryption="never",
                      username=service.user, password=service.password, operation_timeout=5, read_timeout=10)
        with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
            shell = PowerShell(pool)
            shell.add_cmdlet("Get-MigrationConfig")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pypsrp warns about a host call it ignores
                shell.invoke()
            assert not shell.had_errors
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        psrp = next(r for r in records if r.get("door") == "PSRP")
        assert (psrp["cmdlet"], psrp["outcome"], psrp["parameters"]) == ("Get-MigrationConfig", "ok", {})

        for _ in range(40):
            assert rest(service, "Get-MigrationConfig", {}).status_code == 200
        rotated = sorted(p.name for p in path.parent.iterdir())
        assert rotated == ["mailshift.log", "mailshift.log.1", "mailshift.log.2"]
        for name in rotated:
            file = path.parent / name
            assert oct(file.stat().st_mode & 0o777) == "0o600", name
            assert file.stat().st_size <= 4096
            for line in file.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                assert {"time", "level", "logger", "message"} <= set(record)
    everything = logged(service)
    assert TARGET_SECRET not in everything and service.password not in everything


def test_secret_parameters_are_masked() -> None:
    endpoint = next(c for c in CMDLETS if c.name == "New-MigrationEndpoint")
    bound = Bound(endpoint, endpoint.set_names[0], {"Name": "e1", "Credentials": "domain\\admin:Endpoint-Secret",
                                                    "RemoteServer": "imap.contoso.edu"})
    assert masked_parameters(bound) == {"Name": "e1", "Credentials": MASK, "RemoteServer": "imap.contoso.edu"}


def test_sync_verbose_logs_folder_steps_and_chunks(dovecot_slash: DovecotServer, new_user: NewUser,
                                                   tmp_path: Path) -> None:
    user, password = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 4, "Sent Items": 2})
    env = dict(os.environ, MAILSHIFT_SOURCE_PASSWORD=password)

    def sync(flag: str, state: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shim.cli", "sync", "--source-host", dovecot_slash.host, "--source-port",
             str(dovecot_slash.port), "--source-security", "None", "--source-user", user, "--target-maildir",
             str(tmp_path / state / "{EmailAddress}"), "--email", f"{user}@contoso.edu", "--state",
             str(tmp_path / f"{state}.db"), flag],
            env=env, capture_output=True, text=True, timeout=120, check=False)

    verbose = sync("-v", "v")
    assert verbose.returncode == 0, verbose.stderr
    mailbox = f"mailbox {user}@contoso.edu"  # each line names its mailbox by address
    assert f"INFO engine.sync: {mailbox}: folder 'INBOX' -> 'INBOX': 4 messages to copy" in verbose.stderr
    assert f"INFO engine.sync: {mailbox}: folder 'Sent Items': synced" in verbose.stderr
    assert "chunk of" not in verbose.stderr
    debug = sync("-vv", "vv")
    assert debug.returncode == 0, debug.stderr
    assert f"DEBUG engine.sync: {mailbox}: folder 'INBOX': chunk of 4 messages (" in debug.stderr
    for result in (verbose, debug):
        assert password not in result.stdout + result.stderr
