"""Pure rules of the IMAP adapter: throttling texts and APPENDUID parsing."""

import pytest

from engine import defaults
from engine.errors import ConfigurationError
from engine.imap import ImapEndpoint, Security, _appenduids, _swapped_master_login, throttle_pause


def test_microsoft_backoff_hint_is_followed_and_capped() -> None:
    assert throttle_pause("NO Request is throttled. Suggested Backoff Time: 1500 milliseconds") == 1.5
    assert throttle_pause("Suggested Backoff Time: 299609000 milliseconds") == defaults.THROTTLE_MAX_PAUSE_SECONDS


@pytest.mark.parametrize(
    "text",
    ["NO [THROTTLED] Account exceeded command limit", "* BYE Too many simultaneous connections.", "Account exceeded bandwidth limits"],
)
def test_other_throttling_texts_get_the_default_pause(text: str) -> None:
    assert throttle_pause(text) == defaults.THROTTLE_DEFAULT_PAUSE_SECONDS


def test_ordinary_errors_are_not_throttling() -> None:
    assert throttle_pause("NO [AUTHENTICATIONFAILED] Authentication failed.") is None


def test_appenduid_sets_are_expanded_in_order() -> None:
    assert _appenduids("[APPENDUID 1700 4:6] Append completed.", 3) == [4, 5, 6]
    assert _appenduids("[APPENDUID 1700 4,9] Append completed.", 2) == [4, 9]
    assert _appenduids("Append completed.", 2) == [None, None]
    assert _appenduids("[APPENDUID 1700 4:6] ok", 2) == [None, None]  # count mismatch: not trusted


def test_security_names_parse_case_insensitively() -> None:
    assert Security.parse("ssl") is Security.SSL
    assert Security.parse(" TLS ") is Security.TLS
    with pytest.raises(ConfigurationError, match="None, Ssl, Tls"):
        Security.parse("starttls")


def test_login_template_is_filled_per_mailbox() -> None:
    admin = ImapEndpoint(host="h", user="{EmailAddress}*master", password="secret")
    assert admin.for_mailbox("terrya@contoso.edu").user == "terrya@contoso.edu*master"
    sasl = ImapEndpoint(host="h", user="admin", authzid="{EmailAddress}", password="secret")
    filled = sasl.for_mailbox("annb@contoso.edu")
    assert (filled.user, filled.authzid, filled.password) == ("admin", "annb@contoso.edu", "secret")
    assert "secret" not in repr(filled) and "secret" not in filled.display


def test_master_login_halves_swap_only_for_one_star() -> None:
    assert _swapped_master_login("administrator*terry.adams") == "terry.adams*administrator"
    assert _swapped_master_login("terry.adams") is None
    assert _swapped_master_login("a*b*c") is None
    assert _swapped_master_login("*b") is None
