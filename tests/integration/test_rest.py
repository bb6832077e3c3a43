"""The REST door of a live ``mailshift serve``: every answer checked against shim/openapi.json."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from tests.conftest import NewUser
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import fill
from tests.servers.service import MailshiftService

SPEC = json.loads((Path(__file__).parents[2] / "shim" / "openapi.json").read_text())


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailshiftService]:
    # test_every_route_needs_credentials fails 18 logins from one address: no lockout for this module
    with MailshiftService(tmp_path_factory.mktemp("rest") / "instance", {"LOGIN_FREE_FAILURES": "1000"}) as running:
        yield running


def checked(response: requests.Response, path: str, method: str) -> Any:
    """The JSON body, after validating it against the OpenAPI response schema for its status."""
    operation = SPEC["paths"][path][method]
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, f"{method.upper()} {path} answered undocumented {response.status_code}: {response.text}"
    body = response.json()
    schema = declared["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**SPEC, **schema}, cls=jsonschema.Draft202012Validator)
    return body


def call(service: MailshiftService, name: str, parameters: dict[str, Any] | None = None,
         input_objects: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"parameters": parameters or {}}
    if input_objects is not None:
        body["input"] = input_objects
    response = requests.post(f"{service.url}/api/v1/cmdlets/{name}/invoke", json=body,
                             auth=(service.user, service.password), timeout=60)
    result: dict[str, Any] = checked(response, "/cmdlets/{name}/invoke", "post")
    return result


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


ROUTES = [
    ("get", "/api/v1/cmdlets"), ("get", "/api/v1/cmdlets/Get-MigrationBatch"),
    ("post", "/api/v1/cmdlets/Get-MigrationBatch/invoke"), ("get", "/api/v1/help/New-MigrationBatch"),
    ("post", "/api/v1/script"), ("get", "/api/v1/openapi.json"), ("post", "/wsman"), ("post", "/"),
    ("get", "/nothing-here"),
]


@pytest.mark.parametrize("auth", [None, ("admin", "wrong-password"), ("nobody", "x" * 16)])
def test_every_route_needs_credentials(service: MailshiftService, auth: tuple[str, str] | None) -> None:
    for method, route in ROUTES:
        response = requests.request(method, service.url + route, auth=auth, timeout=10, json={})
        assert response.status_code == 401, (method, route)
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert response.json()["error"]["category"] == "SecurityError"


def test_metadata_and_help(service: MailshiftService) -> None:
    auth = (service.user, service.password)
    listed = checked(requests.get(f"{service.url}/api/v1/cmdlets", auth=auth, timeout=10), "/cmdlets", "get")
    names = [c["name"] for c in listed["cmdlets"]]
    assert len(names) == 20 and "New-MigrationBatch" in names and "Complete-Migration" in names
    one = checked(requests.get(f"{service.url}/api/v1/cmdlets/new-migrationbatch", auth=auth, timeout=10),
                  "/cmdlets/{name}", "get")
    csv = next(p for p in one["parameters"] if p["name"] == "CSVData")
    assert csv["netType"] == "System.Byte[]" and {"name": "Imap", "mandatory": True} in csv["sets"]
    missing = checked(requests.get(f"{service.url}/api/v1/cmdlets/Get-Mailbox", auth=auth, timeout=10),
                      "/cmdlets/{name}", "get")
    assert missing["error"]["fullyQualifiedErrorId"] == "CommandNotFoundException,Get-Mailbox"
    examples = checked(requests.get(f"{service.url}/api/v1/help/New-MigrationBatch?mode=examples", auth=auth,
                                    timeout=10), "/help/{name}", "get")
    assert "-------------------------- Example 1 --------------------------" in examples["text"]
    spec = requests.get(f"{service.url}/api/v1/openapi.json", auth=auth, timeout=10).json()
    assert spec["info"]["title"] == "Mailshift REST API"


def test_migration_driven_over_rest(service: MailshiftService, dovecot_slash: DovecotServer,
                                    new_user: NewUser) -> None:
    user, _ = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 9, "Sent Items": 4})
    email = f"{user}@contoso.edu"

    test = call(service, "Test-MigrationServerAvailability",
                {"Imap": True, "RemoteServer": "127.0.0.1", "Port": dovecot_slash.port, "Security": "None"})
    assert test["output"][0]["text"] == "Success" and test["output"][0]["properties"]["Result"] == "Success"

    endpoint = call(service, "New-MigrationEndpoint", {"IMAP": True, "Name": f"ep-{user}", "RemoteServer": "127.0.0.1",
                                                       "Port": dovecot_slash.port, "Security": "None"})
    assert endpoint["errors"] == [] and endpoint["output"][0]["properties"]["Security"] == "None"

    csv = f"EmailAddress,UserName,Password\r\n{email},{user}*{dovecot_slash.master_user},{dovecot_slash.master_password}\r\n"
    made = call(service, "New-MigrationBatch", {"Name": f"b-{user}", "SourceEndpoint": f"ep-{user}",
                                                "CSV": base64.b64encode(csv.encode()).decode(), "AutoStart": True})
    assert made["errors"] == [], made
    batch = made["output"][0]
    assert batch["typeNames"][0] == "Microsoft.Exchange.Data.Storage.Management.MigrationBatch"
    assert batch["properties"]["Identity"]["text"] == f"b-{user}" and batch["properties"]["TotalCount"] == 1

    def status() -> str:
        return str(call(service, "Get-MigrationBatch", {"Identity": f"b-{user}"})["output"][0]["properties"]["Status"])

    wait_for(lambda: status() == "Synced", "the initial sync")
    users = call(service, "Get-MigrationUser", {"BatchId": f"b-{user}"})["output"]
    stats = call(service, "Get-MigrationUserStatistics", {}, users)["output"]
    assert [s["properties"]["SyncedItemCount"] for s in stats] == [13]
    assert stats[0]["properties"]["PercentageComplete"] == 100
    maildir = service.instance / "mailboxes" / email / "Maildir"
    assert sum(1 for p in maildir.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")) == 13


def test_errors_come_back_in_one_shape(service: MailshiftService) -> None:
    bad_csv = base64.b64encode(b"Email Address,UserName,Password\r\na@contoso.edu,a,b\r\n").decode()
    result = call(service, "New-MigrationBatch", {"Name": "bad-csv", "SourceEndpoint": "none", "CSVData": bad_csv})
    [error] = result["errors"]
    assert error["fullyQualifiedErrorId"] == "MigrationCsvValidationException,New-MigrationBatch"
    assert error["category"] == "InvalidData" and "line 1" in error["message"] and "EmailAddress" in error["message"]
    bad = call(service, "New-MigrationEndpoint", {"IMAP": True, "Name": "x", "RemoteServer": "h", "Port": "abc"})
    assert bad["errors"][0]["fullyQualifiedErrorId"] == "ParameterArgumentTransformationError,New-MigrationEndpoint"
    response = requests.post(f"{service.url}/api/v1/cmdlets/New-MigrationBatch/invoke", json={"parameters": {"Auto": True}},
                             auth=(service.user, service.password), timeout=10)
    ambiguous = checked(response, "/cmdlets/{name}/invoke", "post")
    assert response.status_code == 400 and "AutoStart, AutoComplete, AutoRetryCount" in ambiguous["error"]["message"]
    unknown = requests.post(f"{service.url}/api/v1/cmdlets/Get-Mailbox/invoke", json={},
                            auth=(service.user, service.password), timeout=10)
    assert checked(unknown, "/cmdlets/{name}/invoke", "post")["error"]["category"] == "ObjectNotFound"
    whatif = call(service, "Remove-MigrationBatch", {"Identity": "anything", "WhatIf": True})
    assert whatif["output"] == ['What if: Performing the operation "Removing migration batch" on target "anything".']
    missing = call(service, "Get-MigrationBatch", {"Identity": "no-such-batch"})
    assert missing["errors"][0]["category"] == "ObjectNotFound" and missing["errors"][0]["terminating"] is False


#: One call per cmdlet: read-only ones for real, state-changing ones under -WhatIf (nothing changes).
EVERY_CMDLET: dict[str, dict[str, Any]] = {
    "Test-MigrationServerAvailability": {"RemoteServer": "127.0.0.1", "Port": 1, "Security": "None"},
    "New-MigrationEndpoint": {"IMAP": True, "Name": "e", "RemoteServer": "imap.contoso.edu", "WhatIf": True},
    "Get-MigrationEndpoint": {},
    "Set-MigrationEndpoint": {"Identity": "e", "Port": 143, "WhatIf": True},
    "Remove-MigrationEndpoint": {"Identity": "e", "WhatIf": True},
    "New-MigrationBatch": {"Name": "b", "CSVData": base64.b64encode(b"x").decode(), "SourceEndpoint": "e",
                           "WhatIf": True},
    "Get-MigrationBatch": {"ResultSize": "Unlimited"},
    "Set-MigrationBatch": {"Identity": "b", "SyncNow": True, "WhatIf": True},
    "Start-MigrationBatch": {"Identity": "b", "WhatIf": True},
    "Stop-MigrationBatch": {"Identity": "b", "WhatIf": True},
    "Complete-MigrationBatch": {"Identity": "b", "WhatIf": True},
    "Remove-MigrationBatch": {"Identity": "b", "WhatIf": True},
    "Complete-Migration": {"WhatIf": True},
    "Get-MigrationStatus": {},
    "Get-MigrationStatistics": {},
    "Get-MigrationUser": {"ResultSize": 10},
    "Get-MigrationUserStatistics": {"Identity": "nobody@contoso.edu"},
    "Remove-MigrationUser": {"Identity": "nobody@contoso.edu", "WhatIf": True},
    "Get-MigrationConfig": {},
    "Set-MigrationConfig": {"MaxNumberOfBatches": 50, "WhatIf": True},
}


def test_every_cmdlet_answers_in_the_documented_shape(service: MailshiftService) -> None:
    listed = requests.get(f"{service.url}/api/v1/cmdlets", auth=(service.user, service.password), timeout=10).json()
    assert sorted(c["name"] for c in listed["cmdlets"]) == sorted(EVERY_CMDLET)
    for name, parameters in EVERY_CMDLET.items():
        result = call(service, name, parameters)
        if parameters.get("WhatIf"):
            assert result["errors"] == [] and result["output"][0].startswith("What if: "), (name, result)
        elif name == "Get-MigrationUserStatistics":
            assert result["errors"][0]["category"] == "ObjectNotFound"
        elif name == "Test-MigrationServerAvailability":
            assert result["output"][0]["properties"]["Result"] == "Failed"
        else:
            assert result["errors"] == [], (name, result)
    config = call(service, "Get-MigrationConfig")["output"][0]["properties"]
    assert config["MaxNumberOfBatches"] == 100  # the -WhatIf Set-MigrationConfig changed nothing
