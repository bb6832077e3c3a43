"""The PowerShell module's HTTP contract, against a live ``mailshift serve``.

No PowerShell runs here, so :class:`ModuleClient` does in Python exactly what the module's
private helpers do (Private/RequestHelper.ps1, Private/ValueConversion.ps1,
Private/ErrorRecord.ps1): the same URL, headers, Basic credentials, JSON body, value encodings,
object shapes for pipeline input, and the same fields read back for output objects and
ErrorRecords. ``test_client_mirrors_the_module_source`` ties each of those choices to the
PowerShell text, so the two cannot drift apart silently.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from shim.cmdlets import CMDLETS
from tests.servers.service import MailshiftService

MODULE = Path(__file__).parents[2] / "psmodule" / "Mailshift"
REQUEST_HELPER = (MODULE / "Private" / "RequestHelper.ps1").read_text()
VALUES = (MODULE / "Private" / "ValueConversion.ps1").read_text()
ERRORS = (MODULE / "Private" / "ErrorRecord.ps1").read_text()
CONNECTION = (MODULE / "Private" / "ConnectionState.ps1").read_text()

API_PATH = "/api/v1"
INVOKE_PATH = "/cmdlets/{0}/invoke"
CONTENT_TYPE = "application/json; charset=utf-8"
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Switch:
    """A [switch] parameter value as PowerShell binds it."""

    is_present: bool = True


@dataclass
class ModuleObject:
    """An output object as the module builds it: PSTypeNames, note properties, ToString() override."""

    type_names: list[str]
    properties: dict[str, Any]
    text: str | None

    def __getitem__(self, name: str) -> Any:
        return self.properties[name]

    def __str__(self) -> str:
        return self.text if self.text is not None else repr(self.properties)


@dataclass
class Record:
    """The parts of the ErrorRecord the module's ErrorRecord helper builds."""

    message: str
    error_id: str
    category: str
    target: Any
    terminating: bool
    fully_qualified_error_id: str


@dataclass
class Answer:
    objects: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[Record] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


class Terminating(Exception):
    """What $PSCmdlet.ThrowTerminatingError would raise in PowerShell."""

    def __init__(self, record: Record, status: int) -> None:
        super().__init__(record.message)
        self.record = record
        self.status = status


def to_json_value(value: Any) -> Any:
    """ConvertToMailshiftJsonValue."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Switch):
        return value.is_present
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.astimezone()
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        days, rest = divmod(seconds, 86400)
        clock = f"{rest // 3600:02}:{rest % 3600 // 60:02}:{rest % 60:02}"
        return f"{days}.{clock}" if days else clock
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, ModuleObject):
        return {"typeNames": list(value.type_names),
                "properties": {k: to_json_value(v) for k, v in value.properties.items()}, "text": value.text}
    return str(value)


def from_json_value(value: Any) -> Any:
    """ConvertFromMailshiftValue."""
    if isinstance(value, str) and ISO_DATE.match(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, list):
        return [from_json_value(v) for v in value]
    if isinstance(value, dict):
        if {"typeNames", "properties", "text"} <= set(value):
            return ModuleObject(list(value["typeNames"]),
                                {k: from_json_value(v) for k, v in (value["properties"] or {}).items()}, value["text"])
        return {k: from_json_value(v) for k, v in value.items()}
    return value


def record(service_error: dict[str, Any], command: str) -> Record:
    """ConvertFromMailshiftError: reads message, errorId, category, target (and terminating)."""
    return Record(service_error["message"] or "The Mailshift service reported an error without a message.",
                  service_error["errorId"] or "MailshiftError", service_error["category"] or "NotSpecified",
                  service_error["target"], bool(service_error.get("terminating")),
                  # what PowerShell shows once the command writes the record: "<errorId>,<command>"
                  f"{service_error['errorId']},{command}")


class ModuleClient:
    """The requests InvokeMailshiftRequest sends, and InvokeMailshiftCmdlet's reading of the answers."""

    def __init__(self, uri: str, user: str, password: str) -> None:
        self.api = uri.rstrip("/") + API_PATH
        self.user = user
        self.password = password
        self.session = requests.Session()
        self.sent: list[requests.PreparedRequest] = []

    def authorization(self) -> str:
        pair = f"{self.user.removeprefix(chr(92))}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": self.authorization(), "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = CONTENT_TYPE
        prepared = requests.Request(method, self.api + path, headers=headers, data=data).prepare()
        self.sent.append(prepared)
        response = self.session.send(prepared, timeout=60, allow_redirects=True)
        try:
            answer = json.loads(response.content.decode("utf-8"))
        except ValueError:
            answer = None
        if response.status_code >= 400 or answer is None:
            if isinstance(answer, dict) and "error" in answer:
                raise Terminating(record(answer["error"], "?"), response.status_code)
            raise Terminating(Record(f"HTTP {response.status_code}", "MailshiftUnexpectedAnswer", "ProtocolError",
                                     None, True, "MailshiftUnexpectedAnswer"), response.status_code)
        return response.status_code, answer

    def invoke(self, name: str, parameters: dict[str, Any] | None = None) -> Answer:
        """One process-block call of a generated function: only the bound parameters are sent."""
        body = {"parameters": {k: to_json_value(v) for k, v in (parameters or {}).items()}}
        _, raw = self.request("POST", INVOKE_PATH.format(urllib.parse.quote(name, safe="")), body)
        answer = Answer(raw=raw)
        answer.warnings = [str(w) for w in raw["warnings"] if w is not None]
        answer.objects = [from_json_value(o) for o in raw["output"]]
        for service_error in raw["errors"]:
            answer.errors.append(record(service_error, name))
            if service_error["terminating"]:
                break
        return answer

    def pipe(self, name: str, objects: list[Any], parameters: dict[str, Any] | None = None,
             into: str = "Identity") -> Answer:
        """``$objects | <name>``: the process block runs once per object bound to -Identity by value."""
        total = Answer()
        for item in objects:
            answer = self.invoke(name, {**(parameters or {}), into: item})
            total.objects += answer.objects
            total.warnings += answer.warnings
            total.errors += answer.errors
        return total


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailshiftService]:
    with MailshiftService(tmp_path_factory.mktemp("psmodule") / "instance") as running:
        yield running


@pytest.fixture()
def client(service: MailshiftService) -> Iterator[ModuleClient]:
    made = ModuleClient(service.url, service.user, service.password)
    yield made
    made.session.close()  # an idle keep-alive connection would hold up the service's shutdown


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_client_mirrors_the_module_source() -> None:
    assert f"$script:MailshiftApiPath = '{API_PATH}'" in CONNECTION
    assert "ApiUri               = $base + $script:MailshiftApiPath" in CONNECTION
    assert f"$script:MailshiftInvokePath = '{INVOKE_PATH}'" in REQUEST_HELPER
    assert "$script:MailshiftInvokePath -f [System.Uri]::EscapeDataString($Name)" in REQUEST_HELPER
    assert f"$script:MailshiftJsonContentType = '{CONTENT_TYPE}'" in REQUEST_HELPER
    assert "Accept        = 'application/json'" in REQUEST_HELPER
    assert "'Basic ' + [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($pair))" in REQUEST_HELPER
    assert "$pair = $user + ':' + $Credential.GetNetworkCredential().Password" in REQUEST_HELPER
    assert "$body = @{ parameters = $Parameters }" in REQUEST_HELPER
    assert "[System.Text.Encoding]::UTF8.GetBytes($json)" in REQUEST_HELPER
    assert "return $Value.IsPresent" in VALUES
    assert "[System.Convert]::ToBase64String($Value)" in VALUES
    assert "ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ'" in VALUES
    assert "$Value.ToString('c'" in VALUES
    assert "return @{ typeNames = $typeNames; properties = $properties; text = $text }" in VALUES
    assert f"$script:MailshiftIsoDate = '{ISO_DATE.pattern}'" in VALUES
    # The fields of the service's error shape the ErrorRecord helpers read.
    read = set(re.findall(r"\$ServiceError\.(\w+)", ERRORS)) | set(re.findall(r"\$serviceError\.(\w+)", REQUEST_HELPER))
    assert read == {"message", "errorId", "category", "target", "terminating"}
    assert set(re.findall(r"\$answer\.(\w+)", REQUEST_HELPER)) - {"PSObject"} == {"error", "warnings", "output", "errors"}


def test_requests_are_built_like_the_module_builds_them(client: ModuleClient, service: MailshiftService) -> None:
    answer = client.invoke("Get-MigrationStatus", {"DomainController": "dc01.contoso.edu"})
    sent = client.sent[-1]
    assert sent.method == "POST" and sent.url == f"{service.url}/api/v1/cmdlets/Get-MigrationStatus/invoke"
    assert sent.headers["Content-Type"] == CONTENT_TYPE and sent.headers["Accept"] == "application/json"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{service.user}:{service.password}".encode()).decode()
    assert json.loads(sent.body or b"") == {"parameters": {"DomainController": "dc01.contoso.edu"}}
    [status] = answer.objects
    assert status.type_names == ["Microsoft.Exchange.Data.Storage.Management.MigrationStatus"]
    assert "TotalCount" in status.properties


def test_wrong_credentials_end_the_command(service: MailshiftService) -> None:
    stranger = ModuleClient(service.url, service.user, "not-the-password")
    with stranger.session, pytest.raises(Terminating) as caught:
        stranger.invoke("Get-MigrationBatch")
    assert caught.value.status == 401 and caught.value.record.category == "SecurityError"


def test_every_cmdlet_through_the_module(client: ModuleClient, service: MailshiftService) -> None:
    called: set[str] = set()

    def run(name: str, parameters: dict[str, Any] | None = None) -> Answer:
        called.add(name)
        return client.invoke(name, parameters)

    port = closed_port()
    tested = run("Test-MigrationServerAvailability", {"Imap": Switch(), "RemoteServer": "127.0.0.1", "Port": port,
                                                       "Security": "None"})
    [outcome] = tested.objects
    assert str(outcome) == "Failed" and outcome["Result"] == "Failed" and outcome.type_names[0].endswith("Outcome")

    made = run("New-MigrationEndpoint", {"IMAP": Switch(), "Name": "ps-ep", "RemoteServer": "127.0.0.1", "Port": port,
                                         "Security": "None", "SkipVerification": Switch(),
                                         "MaxConcurrentMigrations": "Unlimited"})
    assert made.errors == [], made.raw
    [endpoint] = made.objects
    assert str(endpoint["Identity"]) == "ps-ep" and endpoint["Port"] == port
    assert run("Set-MigrationEndpoint", {"Identity": endpoint, "MaxConcurrentMigrations": 5, "MaxConcurrentIncrementalSyncs": 2,
                                         "SkipVerification": Switch()}).errors == []
    [again] = run("Get-MigrationEndpoint", {"Identity": endpoint["Identity"]}).objects
    assert again["MaxConcurrentMigrations"] == 5

    # Byte[]: the CSV's bytes go as base64 (UTF-8 with a BOM, as Excel writes it).
    csv = "\ufeffEmailAddress,UserName,Password\r\nterrya@contoso.edu,administrator*terry.adams,Pa$$word1\r\n"
    created = run("New-MigrationBatch", {"Name": "ps-batch", "CSVData": csv.encode("utf-8"), "SourceEndpoint": "ps-ep",
                                         "ExcludeFolders": ["Deleted Items", "Junk Mail"],
                                         "NotificationEmails": ["admin@contoso.edu"], "AutoStart": Switch(False),
                                         "StartAfter": datetime(2031, 1, 1, tzinfo=timezone.utc)})
    assert created.errors == [], created.raw
    [batch] = created.objects
    assert batch.type_names == ["Microsoft.Exchange.Data.Storage.Management.MigrationBatch"]
    assert str(batch["Identity"]) == "ps-batch" and batch["Identity"]["Name"] == "ps-batch"
    assert batch["TotalCount"] == 1 and batch["ExcludedFolders"] == ["Deleted Items", "Junk Mail"]
    assert isinstance(batch["CreationDateTime"], datetime)

    complete_after = datetime(2031, 8, 31, 18, 0, tzinfo=timezone.utc)
    changed = run("Set-MigrationBatch", {"Identity": batch["Identity"], "BadItemLimit": "Unlimited",
                                         "LargeItemLimit": 5, "CompleteAfter": complete_after})
    assert changed.errors == [], changed.raw
    [seen] = run("Get-MigrationBatch", {"Identity": "ps-batch"}).objects
    assert seen["BadItemLimit"] == "Unlimited" and seen["LargeItemLimit"] == 5
    assert seen["CompleteAfter"] == complete_after

    # Pipeline: Get-MigrationUser -BatchId ps-batch | Get-MigrationUserStatistics
    users = run("Get-MigrationUser", {"BatchId": batch}).objects
    assert [str(u["Identity"]) for u in users] == ["terrya@contoso.edu"]
    called.add("Get-MigrationUserStatistics")
    stats = client.pipe("Get-MigrationUserStatistics", users, {"IncludeSkippedItems": Switch()})
    assert stats.errors == [] and [s.type_names[0] for s in stats.objects] == [
        "Microsoft.Exchange.Data.Storage.Management.MigrationUserStatistics"]
    assert stats.objects[0]["MailboxEmailAddress"] == "terrya@contoso.edu"

    assert run("Get-MigrationStatistics").objects[0]["TotalCount"] >= 1
    assert run("Get-MigrationStatus").objects[0]["BatchCount"] >= 1
    assert run("Set-MigrationConfig", {"IncrementalSyncInterval": timedelta(hours=6)}).errors == []
    [config] = run("Get-MigrationConfig").objects
    assert config["IncrementalSyncInterval"] == 6 * 3600

    # $batch | Start-MigrationBatch: the batch waits for its StartAfter time, so nothing is copied.
    called.add("Start-MigrationBatch")
    started = client.pipe("Start-MigrationBatch", [batch])
    assert started.errors == [], started.raw
    # Start-MigrationBatch moves the batch to Starting; the scheduler then sees StartAfter and parks it.
    deadline = time.monotonic() + 30
    while run("Get-MigrationBatch", {"Identity": "ps-batch"}).objects[0]["Status"] == "Starting":
        assert time.monotonic() < deadline, "the batch stayed Starting"
        time.sleep(0.05)
    assert run("Get-MigrationBatch", {"Identity": "ps-batch"}).objects[0]["Status"] == "Waiting"
    assert run("Stop-MigrationBatch", {"Identity": batch}).errors == []
    deadline = time.monotonic() + 30
    while run("Get-MigrationBatch", {"Identity": "ps-batch"}).objects[0]["Status"] != "Stopped":
        assert time.monotonic() < deadline, "the batch did not stop"
        time.sleep(0.1)
    [refused] = run("Complete-MigrationBatch", {"Identity": "ps-batch"}).errors
    assert (refused.category, refused.error_id, refused.terminating) == (
        "InvalidOperation", "MigrationBatchStatusException", False)
    assert refused.fully_qualified_error_id == "MigrationBatchStatusException,Complete-MigrationBatch"
    assert "Stopped" in refused.message and refused.target == "ps-batch"
    [nothing_ready] = run("Complete-Migration").errors
    assert nothing_ready.category == "InvalidOperation" and not nothing_ready.terminating
    assert run("Remove-MigrationUser", {"Identity": users[0], "Force": Switch()}).errors == []
    assert run("Get-MigrationUser", {"BatchId": "ps-batch"}).objects == []
    assert run("Remove-MigrationBatch", {"Identity": "ps-batch", "Force": Switch()}).errors == []
    assert run("Remove-MigrationEndpoint", {"Identity": "ps-ep"}).errors == []
    assert run("Get-MigrationEndpoint", {"Identity": "ps-ep"}).errors[0].category == "ObjectNotFound"

    assert called == {c.name for c in CMDLETS}


def test_service_errors_carry_what_the_error_record_needs(client: ModuleClient) -> None:
    missing = client.invoke("Get-MigrationBatch", {"Identity": "no-such-batch"})
    [error] = missing.errors
    assert error.category == "ObjectNotFound" and not error.terminating and error.message
    assert error.fully_qualified_error_id == f"{error.error_id},Get-MigrationBatch"
    for field_name in ("message", "category", "errorId", "fullyQualifiedErrorId", "command", "target", "terminating"):
        assert field_name in missing.raw["errors"][0]

    bad_csv = client.invoke("New-MigrationBatch", {"Name": "ps-bad", "SourceEndpoint": "nowhere",
                                                   "CSVData": b"Email Address,UserName,Password\r\na@contoso.edu,a,b\r\n"})
    [csv_error] = bad_csv.errors
    assert csv_error.category == "InvalidData" and csv_error.error_id == "MigrationCsvValidationException"
    assert "EmailAddress" in csv_error.message

    with pytest.raises(Terminating) as caught:
        client.invoke("Get-Mailbox")
    assert caught.value.status == 404 and caught.value.record.category == "ObjectNotFound"


def test_pipeline_objects_name_their_identity(client: ModuleClient) -> None:
    """$batch, $batch.Identity and the name are the same batch; a Select-Object copy still works."""
    port = closed_port()
    assert client.invoke("New-MigrationEndpoint", {"IMAP": Switch(), "Name": "ps-ep2", "RemoteServer": "127.0.0.1",
                                                   "Port": port, "SkipVerification": Switch()}).errors == []
    csv = b"EmailAddress,UserName,Password\r\nannb@contoso.edu,admin*ann.beebe,x\r\n"
    [batch] = client.invoke("New-MigrationBatch", {"Name": "ps-pipe", "CSVData": csv, "SourceEndpoint": "ps-ep2"}).objects
    selected = ModuleObject(["Selected.Microsoft.Exchange.Data.Storage.Management.MigrationBatch"],
                            {"Identity": batch["Identity"], "Status": batch["Status"]}, None)
    found = client.pipe("Get-MigrationBatch", [batch, batch["Identity"], "ps-pipe", selected])
    assert found.errors == []
    assert [str(b["Identity"]) for b in found.objects] == ["ps-pipe"] * 4
    client.invoke("Remove-MigrationBatch", {"Identity": batch, "Force": Switch()})
