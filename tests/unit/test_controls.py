"""Control characters are refused in every value bound for an IMAP or SMTP line: endpoints, batches, settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.controls import ControlCharacterError, control_character, refuse_controls
from engine.notify import SmtpSettings
from engine.service import MigrationService

_CSV = b"EmailAddress,UserName,Password\nterrya@contoso.edu,terry,pw\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigrationService]:
    made = MigrationService(tmp_path_factory.mktemp("controls") / "instance", run_scheduler=False)
    yield made
    made.close()


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"])
def test_every_c0_control_and_del_is_found(char: str) -> None:
    assert control_character(f"ab{char}c") == (2, char)


def test_tab_only_where_allowed_and_printable_text_passes() -> None:
    assert control_character("pa\tss", allow_tab=True) is None
    assert control_character("Grüße ñ 日本 ~", allow_tab=False) is None
    with pytest.raises(ControlCharacterError, match=r"^-RemoteServer holds a control character, U\+000D "
                                                    r"\(carriage return\) at character 5; .*remove it$"):
        refuse_controls("imap\r\nA1 DELETE INBOX", "-RemoteServer")


def test_endpoint_settings_with_a_control_character_are_refused(service: MigrationService) -> None:
    with pytest.raises(ControlCharacterError, match="-RemoteServer holds a control character, U\\+000A"):
        service.new_endpoint("src", "imap.contoso.edu\nA1 LOGOUT", skip_verification=True)
    with pytest.raises(ControlCharacterError, match="-Authentication"):
        service.new_endpoint("src", "imap.contoso.edu", authentication="Basic\r", skip_verification=True)
    with pytest.raises(ControlCharacterError, match="migration endpoint name"):
        service.new_endpoint("src\x00", "imap.contoso.edu", skip_verification=True)
    service.new_endpoint("src", "imap.contoso.edu", skip_verification=True)
    with pytest.raises(ControlCharacterError, match="-RemoteServer"):
        service.set_endpoint("src", remote_server="imap\x00.contoso.edu", skip_verification=True)
    assert service.get_endpoints("src")[0].remote_server == "imap.contoso.edu"
    with pytest.raises(ControlCharacterError, match="-RemoteServer"):
        service.test_server_availability("imap.contoso.edu\r\n", 143)


def test_batch_values_with_a_control_character_are_refused(service: MigrationService) -> None:
    with pytest.raises(ControlCharacterError, match="-RemoteServer"):
        service.new_batch("b1", _CSV, imap=True, remote_server="imap\r.contoso.edu", port=143)
    with pytest.raises(ControlCharacterError, match="-NotificationEmails holds a control character, U\\+000D"):
        service.new_batch("b1", _CSV, imap=True, remote_server="imap.contoso.edu", port=143,
                          notification_emails=["admin@contoso.edu\r\nRCPT TO:<x@evil.example>"])
    with pytest.raises(ControlCharacterError, match="migration batch name"):
        service.new_batch("b\n1", _CSV, imap=True, remote_server="imap.contoso.edu", port=143)
    assert service.get_batches() == []


@pytest.mark.parametrize("field, value", [
    ("host", "smtp.contoso.edu\r\nMAIL FROM:<x@y.z>"), ("sender", "mailshift@contoso.edu\r\nRCPT TO:<x@y.z>"),
    ("user", "relay\x00admin"), ("password", "pw\nAUTH"),
])
def test_smtp_settings_with_a_control_character_are_refused(field: str, value: str) -> None:
    given = {"host": "smtp.contoso.edu", "sender": "mailshift@contoso.edu", "port": 587, "user": "relay",
             "password": "secret", field: value}
    with pytest.raises(ControlCharacterError) as caught:
        SmtpSettings(**given)  # type: ignore[arg-type]
    assert "control character" in str(caught.value) and "AUTH" not in str(caught.value)
