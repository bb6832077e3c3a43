"""TARGET_IMAP_* settings holding a control character are refused when the service starts."""

from __future__ import annotations

import pytest

from engine.controls import ControlCharacterError
from shim.config import target_settings


@pytest.mark.parametrize("name", ["TARGET_IMAP_HOST", "TARGET_IMAP_USER", "TARGET_IMAP_AUTHZID"])
def test_target_imap_settings_with_a_control_character_are_refused(name: str) -> None:
    config = {"TARGET_IMAP_HOST": "imap.example.org", "TARGET_IMAP_USER": "{EmailAddress}*master",
              "TARGET_IMAP_AUTHZID": None, "TARGET_IMAP_PASSWORD_ENV": "PW", "TARGET_IMAP_SECURITY": "Ssl",
              name: "x\r\nA1 DELETE INBOX"}
    with pytest.raises(ControlCharacterError, match=f"^{name} holds a control character"):
        target_settings(config, {"PW": "secret"})


def test_the_target_password_may_hold_a_tab_but_no_line_break() -> None:
    config = {"TARGET_IMAP_HOST": "imap.example.org", "TARGET_IMAP_USER": "{EmailAddress}*master",
              "TARGET_IMAP_PASSWORD_ENV": "PW", "TARGET_IMAP_SECURITY": "Ssl"}
    settings = target_settings(config, {"PW": "se\tcret"})
    assert settings is not None and settings.imap is not None
    with pytest.raises(ControlCharacterError, match=r"^\$PW holds a control character, U\+000A"):
        target_settings(config, {"PW": "se\ncret"})
