"""A bounded, seeded fuzz run over every REST route and the WinRS door's script input.

Hostile values (NUL and other control characters, lone surrogates, huge and non-finite numbers,
deep nesting, non-UTF-8 bodies, Windows and POSIX paths) go to a live ``mailshift serve``. No
answer may be a 500, and none may carry Python's own text: a traceback, a Python exception
class name, a path of the code. Every refusal is the door's own, in its own shape.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import winrm

from tests.servers.service import MailshiftService

_SEED = 15
_REST_REQUESTS = 300
_WINRS_SCRIPTS = 40
_TIME_BUDGET_SECONDS = 30.0

_PYTHON_TEXT = re.compile(
    r"Traceback \(most recent call last\)|\bFile \"[^\"]+\.py\"|site-packages|" + re.escape(str(Path(__file__).parents[2]))
    + r"|embedded null byte|\b(ValueError|KeyError|TypeError|IndexError|AttributeError|UnicodeDecodeError"
    r"|UnicodeEncodeError|OverflowError|RecursionError|ZeroDivisionError|AssertionError|OSError|IOError"
    r"|FileNotFoundError|IsADirectoryError|NotADirectoryError|PermissionError|RuntimeError|NameError"
    r"|JSONDecodeError|binascii|sqlite3|NoneType|StopIteration|MemoryError)\b|<class '")

_HOSTILE_TEXT = [
    "", " ", "\x00", "a\x00b", "\r\n", "x\r\nA1 DELETE INBOX", "\x1b[31m", "\x7f", "\t", "\ud800", "\udfff",
    "é" * 3, "日本語", "%s%n", "{0}", "$(Get-Date)", "'", '"', "`", "\\\\server\\share\\a.csv",
    "C:\\Users\\admin\\batch\x00.csv", "/etc/passwd", "../../secret.key", "a" * 5000, "Unlimited", "-1",
    "9" * 400, "1e999", "NaN", "@{a=1}", "$null", "true",
]
_HOSTILE_SCALARS: list[Any] = [
    0, -1, 2**31, 2**63, 10**400, -(10**400), 1e308, 1.5, True, False, None, [], {}, [None], {"": None},
]
_SAFE_SERVERS = ["127.0.0.1", "", "\x00", "a\r\nb", " ", "127.0.0.1\t"]

_HOSTILE_SCRIPTS = [
    '[System.IO.File]::ReadAllBytes("C:\\Users\\a\\b\x00.csv")',
    '[System.IO.File]::ReadAllBytes("/tmp/\x00")',
    'Get-Content -Encoding Byte -Path "a\x00b.csv"',
    'Get-Content -Encoding Byte -Path "../../mailshift.db"',
    'New-MigrationBatch -Name "b\x00" -CSVData ([byte[]](0,1,2))',
    "New-MigrationEndpoint -IMAP -Name e1 -RemoteServer \"imap`r`nA1 LOGOUT\" -SkipVerification",
    "Get-MigrationBatch -Identity ('x' * 100000)",
    "$a = 1; $a / 0",
    "[int]::MaxValue + 99999999999999999999",
    "1" + "+1" * 2000,
    "(" * 500 + "1" + ")" * 500,
    "@(" * 300 + ")" * 300,
    "Set-MigrationConfig -MaxNumberOfBatches 99999999999999999999999",
    "Get-Help \x00",
    "Get-MigrationUserStatistics -Identity \"\ud800\"",
    "\x00\x01\x02",
    "foreach ($i in 1..3) { $i",
    "'unterminated",
    "@\"\nhere\n",
    "Test-MigrationServerAvailability -Imap -RemoteServer 127.0.0.1 -Port 99999999",
    "Test-MigrationServerAvailability -Imap -RemoteServer 127.0.0.1 -Port -5",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailshiftService]:
    with MailshiftService(tmp_path_factory.mktemp("fuzz") / "instance", {"RUN_SCHEDULER": "false"}) as running:
        yield running


def _value(rng: random.Random, parameter: dict[str, Any], depth: int = 0) -> Any:
    if parameter["name"] in ("RemoteServer", "Server"):
        return rng.choice(_SAFE_SERVERS)
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(_HOSTILE_TEXT)
    if roll < 0.75:
        return rng.choice(_HOSTILE_SCALARS)
    if roll < 0.85 and parameter["validValues"]:
        return rng.choice(parameter["validValues"]) + rng.choice(["", "\x00", "\r\n", " "])
    if roll < 0.92:
        return [_value(rng, {**parameter, "validValues": []}, depth + 1) for _ in range(rng.randint(0, 3))] \
            if depth < 2 else "deep"
    return base64.b64encode(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))).decode()


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _requests(rng: random.Random, cmdlets: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path, requests keyword arguments) of each fuzzed request."""
    names = [c["name"] for c in cmdlets] + ["Get-Mailbox", "\x00", "..", "a" * 300]
    for _ in range(_REST_REQUESTS):
        kind = rng.random()
        cmdlet = rng.choice(cmdlets)
        name = rng.choice(names) if rng.random() < 0.2 else cmdlet["name"]
        if kind < 0.5:
            chosen = rng.sample(cmdlet["parameters"], k=min(len(cmdlet["parameters"]), rng.randint(0, 4)))
            parameters = {p["name"]: _value(rng, p) for p in chosen}
            if any(p["name"] == "SkipVerification" for p in cmdlet["parameters"]):
                parameters["SkipVerification"] = True
            if rng.random() < 0.1:
                parameters[rng.choice(_HOSTILE_TEXT)] = rng.choice(_HOSTILE_SCALARS)
            body: Any = {"parameters": parameters}
            if rng.random() < 0.2:
                body["input"] = [rng.choice(_HOSTILE_SCALARS + _HOSTILE_TEXT) for _ in range(rng.randint(0, 3))]
            yield "post", f"/api/v1/cmdlets/{name}/invoke", {"data": json.dumps(body), "json_body": True}
        elif kind < 0.62:
            raw = rng.choice([
                _deep(rng.choice([50, 3000, 100_000])).encode(), b"\xff\xfe\x00{", b'{"parameters": ', b"\x00" * 10,
                b'{"parameters": {"Identity": "\xc3\x28"}}', b'{"parameters": [1]}', b'{"input": {}}',
                b'{"parameters": {"BadItemLimit": 1e999}}', b'{"parameters": {"BadItemLimit": NaN}}',
                b'{"parameters": {"Identity": "\\ud800"}}', json.dumps({"parameters": {"x": _deep(1)}}).encode(),
                b'{"parameters": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
            ])
            path = rng.choice([f"/api/v1/cmdlets/{name}/invoke", "/api/v1/script"])
            yield "post", path, {"data": raw, "json_body": True}
        elif kind < 0.8:
            script = rng.choice(_HOSTILE_SCRIPTS + [f"{cmdlet['name']} {rng.choice(_HOSTILE_TEXT)}"])
            yield "post", "/api/v1/script", {"data": json.dumps({"script": script}), "json_body": True}
        elif kind < 0.9:
            query = {"mode": rng.choice(["default", "full", "parameter", "\x00", "x" * 100]),
                     "parameter": rng.choice(_HOSTILE_TEXT)}
            yield "get", f"/api/v1/help/{name}", {"params": query}
        else:
            yield "get", rng.choice([f"/api/v1/cmdlets/{name}", "/api/v1/cmdlets", "/api/v1/openapi.json",
                                     f"/api/v1/{rng.choice(_HOSTILE_TEXT)}"]), {}


def _quoted(text: str, safe: str) -> str:
    """``text`` percent-encoded as UTF-8, lone surrogates included (their bytes are not valid UTF-8)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def _check(text: str, status: int, what: str) -> None:
    assert status != 500, f"{what} answered 500: {text[:500]}"
    found = _PYTHON_TEXT.search(text)
    assert found is None, f"{what} answered Python's text {found.group(0)!r}: {text[:800]}"


def test_no_route_answers_500_or_python_text(service: MailshiftService) -> None:
    rng = random.Random(_SEED)
    auth = (service.user, service.password)
    cmdlets = requests.get(f"{service.url}/api/v1/cmdlets", auth=auth, timeout=30).json()["cmdlets"]
    deadline = time.monotonic() + _TIME_BUDGET_SECONDS
    session = requests.Session()
    sent = 0
    for method, path, options in _requests(rng, cmdlets):
        headers = {"Content-Type": "application/json"} if options.pop("json_body", False) else {}
        url = service.url + _quoted(path, "/")
        if "params" in options:
            url += "?" + "&".join(f"{k}={_quoted(v, '')}" for k, v in options.pop("params").items())
        response = session.request(method, url, auth=auth, headers=headers, timeout=30, **options)
        _check(response.text, response.status_code, f"{method.upper()} {path!r} {str(options)[:300]}")
        if response.status_code >= 400:
            assert "error" in response.json(), response.text[:300]
        sent += 1
        assert time.monotonic() < deadline, f"the fuzz run took more than {_TIME_BUDGET_SECONDS} s ({sent} sent)"
    assert sent == _REST_REQUESTS


def test_no_winrs_script_answers_python_text(service: MailshiftService) -> None:
    rng = random.Random(_SEED)
    protocol = winrm.Protocol(service.wsman, transport="basic", username=service.user, password=service.password,
                              proxy=None, ca_trust_path=None)
    shell = protocol.open_shell()
    deadline = time.monotonic() + _TIME_BUDGET_SECONDS
    try:
        scripts = _HOSTILE_SCRIPTS + [rng.choice(_HOSTILE_SCRIPTS) + " " + rng.choice(_HOSTILE_TEXT)
                                      for _ in range(_WINRS_SCRIPTS - len(_HOSTILE_SCRIPTS))]
        for script in scripts:
            encoded = base64.b64encode(script.encode("utf-16-le", "surrogatepass")).decode()
            command = protocol.run_command(shell, "powershell", ["-EncodedCommand", encoded])
            stdout, stderr, code = protocol.get_command_output(shell, command)
            protocol.cleanup_command(shell, command)
            _check(stdout.decode("utf-8", "replace") + stderr.decode("utf-8", "replace"), 200, f"script {script!r}")
            assert time.monotonic() < deadline, f"the WinRS fuzz run took more than {_TIME_BUDGET_SECONDS} s"
    finally:
        protocol.close_shell(shell)
