"""Request bodies over the limit are refused by every door before they are read, and memory stays flat."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from shim.limits import MAX_REQUEST_BYTES
from shim.wsman import constants as c
from tests.servers.service import MailshiftService

_SENT_BYTES = 200 * 1024 * 1024
_CHUNK = b"x" * (1024 * 1024)
#: Most the service's resident memory may grow while a 200 MB body is pushed at it.
_MAX_GROWTH_BYTES = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailshiftService]:
    with MailshiftService(tmp_path_factory.mktemp("limits") / "instance") as running:
        yield running


def _head(service: MailshiftService, path: str, content_type: str, framing: str) -> bytes:
    token = base64.b64encode(f"{service.user}:{service.password}".encode()).decode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\nAuthorization: Basic {token}\r\n"
            f"Content-Type: {content_type}\r\n{framing}\r\n").encode()


def _answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        plain = b""
        while body:
            size_text, _, rest = body.partition(b"\r\n")
            size = int(size_text, 16)
            if not size:
                break
            plain, body = plain + rest[:size], rest[size + 2:]
        body = plain
    return int(lines[0].split()[1]), headers, body


def _push(service: MailshiftService, path: str, content_type: str, *, chunked: bool) -> tuple[int, dict[str, str], bytes, int]:
    """POST a 200 MB body (declared, or chunked) and return the answer and the service's RSS growth."""
    process = psutil.Process(service.pid)
    before = peak = process.memory_info().rss
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {_SENT_BYTES}\r\n"
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as connection:
        connection.sendall(_head(service, path, content_type, framing))
        frame = b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK) if chunked else _CHUNK
        try:
            for number in range(_SENT_BYTES // len(_CHUNK)):
                connection.sendall(frame)
                if number % 8 == 0:
                    peak = max(peak, process.memory_info().rss)
            if chunked:
                connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # refused before the body was read: the server stopped taking it
        status, headers, body = _answer(connection)
    peak = max(peak, process.memory_info().rss)
    return status, headers, body, peak - before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/api/v1/cmdlets/New-MigrationBatch/invoke", "/api/v1/script"])
def test_an_oversized_rest_body_gets_413_in_the_api_shape(service: MailshiftService, path: str, chunked: bool) -> None:
    status, headers, body, growth = _push(service, path, "application/json", chunked=chunked)
    assert status == 413
    error = json.loads(body)["error"]
    assert (error["errorId"], error["category"], error["terminating"]) == ("Http413", "InvalidOperation", True)
    assert f"{MAX_REQUEST_BYTES:,} bytes" in error["message"]
    assert growth < _MAX_GROWTH_BYTES, f"the service grew by {growth / 2**20:.1f} MiB"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/wsman", "/powershell"])
def test_an_oversized_wsman_body_gets_413_as_a_soap_fault(service: MailshiftService, path: str, chunked: bool) -> None:
    status, headers, body, growth = _push(service, path, "application/soap+xml;charset=UTF-8", chunked=chunked)
    assert status == 413
    assert headers["content-type"].startswith("application/soap+xml")
    text = body.decode()
    assert "s:Fault" in text and f'Code="{int(c.FaultCode.ENVELOPE_TOO_LARGE)}"' in text
    assert growth < _MAX_GROWTH_BYTES, f"the service grew by {growth / 2**20:.1f} MiB"


def test_a_ten_megabyte_csv_still_fits(service: MailshiftService) -> None:
    rows = "EmailAddress,UserName,Password\n" + "".join(
        f"user{n}@contoso.edu,user{n},{'p' * 150}\n" for n in range(60_000))
    data = rows.encode()[:10 * 1024 * 1024]
    body = json.dumps({"parameters": {"Name": "big", "CSVData": base64.b64encode(data).decode(),
                                      "SourceEndpoint": "none"}}).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=60) as connection:
        connection.sendall(_head(service, "/api/v1/cmdlets/New-MigrationBatch/invoke", "application/json",
                                 f"Content-Length: {len(body)}\r\nConnection: close\r\n") + body)
        status, _, answer = _answer(connection)
    assert len(body) > 13 * 1024 * 1024 and status == 200, answer[:300]


def test_the_413_answer_is_documented() -> None:
    spec = json.loads((Path(__file__).parents[2] / "shim" / "openapi.json").read_text())
    for path in ("/cmdlets/{name}/invoke", "/script"):
        answer = spec["paths"][path]["post"]["responses"]["413"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
