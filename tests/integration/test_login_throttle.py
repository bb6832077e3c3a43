"""Password guessing against a live ``mailshift serve``: lockouts on REST Basic, WinRM Basic and NTLM, and the log.

Loopback has a whole /8, so a second client address is 127.0.0.2 (a source address of the connection).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator

import pytest
import requests
import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError

from shim.throttle import LOGIN_FREE_FAILURES
from tests.servers.service import MailshiftService

WRONG = "not the password at all"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailshiftService]:
    with MailshiftService(tmp_path_factory.mktemp("throttle") / "instance") as running:
        yield running


def get_cmdlets(service: MailshiftService, password: str, source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30, source_address=(source, 0))
    token = base64.b64encode(f"{service.user}:{password}".encode()).decode()
    try:
        connection.request("GET", "/api/v1/cmdlets", headers={"Authorization": f"Basic {token}"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def winrm_session(service: MailshiftService, password: str, transport: str) -> winrm.Session:
    return winrm.Session(service.wsman, auth=(service.user, password), transport=transport, proxy=None,
                         ca_trust_path=None)


def test_rest_basic_guessing_is_locked_out_and_logged(service: MailshiftService) -> None:
    for _ in range(LOGIN_FREE_FAILURES + 1):
        assert get_cmdlets(service, WRONG)[0] == 401
    status, headers, body = get_cmdlets(service, WRONG)
    assert status == 429 and headers["Retry-After"] == "1"
    error = json.loads(body)["error"]
    assert error["category"] == "SecurityError" and "Too many failed logins" in error["message"]
    assert get_cmdlets(service, service.password)[0] == 429  # even the right password waits at a guessing address
    assert get_cmdlets(service, service.password, source="127.0.0.2")[0] == 200  # another address gets in at once
    time.sleep(1.1)
    assert get_cmdlets(service, WRONG)[0] == 401  # the lockout ended; this guess is checked and locks for 2 s
    status, headers, _ = get_cmdlets(service, service.password)
    assert status == 429 and headers["Retry-After"] == "2"
    time.sleep(2.1)
    assert get_cmdlets(service, service.password)[0] == 200  # and a success forgets the failures
    assert get_cmdlets(service, WRONG)[0] == 401
    log = service.log.read_text(errors="replace")
    assert log.count("failed login of 'admin' from 127.0.0.1") == LOGIN_FREE_FAILURES + 3
    assert "address 127.0.0.1 locked for 1 s after 6 failed logins" in log
    assert "address 127.0.0.1 locked for 2 s after 7 failed logins" in log
    assert "login of 'admin' from 127.0.0.1 refused for 1 s: too many failed logins for this address" in log
    assert WRONG not in log and service.password not in log


def test_winrm_basic_and_ntlm_guessing_are_locked_out(service: MailshiftService) -> None:
    assert get_cmdlets(service, service.password)[0] == 200  # a clean start for this address
    for _ in range(LOGIN_FREE_FAILURES - 1):
        with pytest.raises(InvalidCredentialsError):
            winrm_session(service, WRONG, "basic").run_cmd("Get-MigrationConfig")
    with pytest.raises(InvalidCredentialsError):  # NTLM failures count against the same address and account
        winrm_session(service, WRONG, "ntlm").run_cmd("Get-MigrationConfig")
    with pytest.raises(InvalidCredentialsError):
        winrm_session(service, WRONG, "ntlm").run_cmd("Get-MigrationConfig")
    for transport in ("basic", "ntlm"):
        with pytest.raises(WinRMTransportError) as refused:
            winrm_session(service, service.password, transport).run_cmd("Get-MigrationConfig")
        assert refused.value.code == 429 and "Too many failed logins" in refused.value.response_text
    time.sleep(1.1)
    result = winrm_session(service, service.password, "ntlm").run_cmd("Get-MigrationConfig")
    assert result.status_code == 0 and b"MaxNumberOfBatches" in result.std_out
    log = service.log.read_text(errors="replace")
    assert "failed login of 'admin' from 127.0.0.1" in log


def test_the_right_password_is_not_slowed_down(service: MailshiftService) -> None:
    session = requests.Session()
    started = time.monotonic()
    for _ in range(20):
        answer = session.get(f"{service.url}/api/v1/cmdlets", auth=(service.user, service.password), timeout=30)
        assert answer.status_code == 200
    assert time.monotonic() - started < 10
