"""Super-user logins: which attempts, in which order, and what a refusal says (a fake transport)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient.exceptions import LoginError

from engine.errors import AuthenticationFailed, ConfigurationError, Throttled
from engine.imap import ImapEndpoint, ImapSession, LoginAttempt, Security, check_master_separator, login_attempts
from shim.config import load_config


class FakeServer:
    """Answers like an IMAP server whose accepted logins are given; records what was tried."""

    def __init__(self, capabilities: tuple[str, ...], accepts: set[tuple[str, str | None]], refusal: str = "[AUTHENTICATIONFAILED] Authentication failed.") -> None:
        self.caps = capabilities
        self.accepts = accepts
        self.refusal = refusal
        self.tried: list[tuple[str, str, str | None]] = []

    def client(self, host: str, **options: Any) -> FakeClient:
        return FakeClient(self)


class FakeClient:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self._imap = self
        self.debug = 4
        self.normalise_times = True
        self.logged_out = False

    def capabilities(self) -> tuple[bytes, ...]:
        return tuple(c.encode() for c in self.server.caps)

    def login(self, user: str, password: str) -> None:
        self._check("LOGIN", user, None)

    def plain_login(self, user: str, password: str, authzid: str | None = None) -> None:
        self._check("PLAIN", user, authzid)

    def _check(self, how: str, user: str, authzid: str | None) -> None:
        self.server.tried.append((how, user, authzid))
        if (user, authzid) not in self.server.accepts:
            raise LoginError(self.server.refusal)

    def shutdown(self) -> None:
        self.logged_out = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``fake(capabilities, accepts) -> FakeServer`` wired in as ImapSession's factory."""
    def make(capabilities: tuple[str, ...], accepts: set[tuple[str, str | None]], **kw: str) -> FakeServer:
        server = FakeServer(capabilities, accepts, **kw)
        monkeypatch.setattr(ImapSession, "factory", server.client)
        return server

    yield make


def endpoint(user: str, **kw: Any) -> ImapEndpoint:
    return ImapEndpoint(host="imap.contoso.edu", port=143, security=Security.NONE, user=user, password="Pa$$word1", **kw)


PLAIN = ("IMAP4rev1", "AUTH=PLAIN")


def test_attempts_for_each_login_form() -> None:
    assert login_attempts("cyrus*alice", "*", offers_plain=True) == [
        LoginAttempt("cyrus*alice"), LoginAttempt("alice*cyrus"), LoginAttempt("cyrus", "alice")]
    assert login_attempts("cyrus*alice", "*", offers_plain=False) == [LoginAttempt("cyrus*alice"), LoginAttempt("alice*cyrus")]
    assert login_attempts("cyrus#alice", "#", offers_plain=True)[2] == LoginAttempt("cyrus", "alice")
    assert login_attempts("cyrus*alice", "#", offers_plain=True) == [LoginAttempt("cyrus*alice")]
    for single in ("alice", "contoso/administrator/alice", "a*b*c", "*alice", "cyrus*"):
        assert login_attempts(single, "*", offers_plain=True) == [LoginAttempt(single)]


@pytest.mark.parametrize(("accepts", "tried"), [
    ({("cyrus*alice", None)}, [("LOGIN", "cyrus*alice", None)]),
    ({("alice*cyrus", None)}, [("LOGIN", "cyrus*alice", None), ("LOGIN", "alice*cyrus", None)]),
    ({("cyrus", "alice")}, [("LOGIN", "cyrus*alice", None), ("LOGIN", "alice*cyrus", None), ("PLAIN", "cyrus", "alice")]),
])
def test_attempts_stop_at_the_first_success(fake: Any, accepts: set[tuple[str, str | None]], tried: list[Any]) -> None:
    server = fake(PLAIN, accepts)
    ImapSession(endpoint("cyrus*alice"))
    assert server.tried == tried


def test_everything_refused_names_the_attempts_not_the_password(fake: Any) -> None:
    server = fake(PLAIN, set())
    with pytest.raises(AuthenticationFailed) as refused:
        ImapSession(endpoint("cyrus*alice"))
    assert str(refused.value) == (
        "connecting to cyrus*alice@imap.contoso.edu:143 (None): the server refused the credentials "
        "(tried LOGIN 'cyrus*alice', LOGIN 'alice*cyrus', AUTHENTICATE PLAIN as 'cyrus' for 'alice')"
    )
    assert "Pa$$word1" not in str(refused.value)
    assert len(server.tried) == 3


def test_no_plain_attempt_without_auth_plain(fake: Any) -> None:
    server = fake(("IMAP4rev1", "AUTH=LOGIN"), set())
    with pytest.raises(AuthenticationFailed, match=r"\(tried LOGIN 'cyrus\*alice', LOGIN 'alice\*cyrus'\)$"):
        ImapSession(endpoint("cyrus*alice"))
    assert [how for how, _, _ in server.tried] == ["LOGIN", "LOGIN"]


def test_a_throttling_answer_stops_the_attempts(fake: Any) -> None:
    server = fake(PLAIN, set(), refusal="[UNAVAILABLE] Temporarily: Too many connections")
    with pytest.raises(Throttled):
        ImapSession(endpoint("cyrus*alice"))
    assert server.tried == [("LOGIN", "cyrus*alice", None)]


def test_plain_logins_and_explicit_authzid_are_unchanged(fake: Any) -> None:
    server = fake(PLAIN, set())
    with pytest.raises(AuthenticationFailed) as refused:
        ImapSession(endpoint("contoso/administrator/alice"))
    assert str(refused.value).endswith("the server refused the credentials")
    assert server.tried == [("LOGIN", "contoso/administrator/alice", None)]
    server = fake(PLAIN, {("cyrus*admin", "alice")})
    ImapSession(endpoint("cyrus*admin", authzid="alice"))
    assert server.tried == [("PLAIN", "cyrus*admin", "alice")]


@pytest.mark.parametrize("bad", ["", "**", "a", "7", " ", "\t", "\x00", "é"])
def test_the_separator_is_one_printable_non_alphanumeric_character(bad: str) -> None:
    assert check_master_separator("#") == "#"
    with pytest.raises(ConfigurationError, match="master-user separator must be one character"):
        check_master_separator(bad)
    with pytest.raises(ConfigurationError, match="master-user separator"):
        endpoint("cyrus*alice", master_separator=bad)


def test_the_service_setting_is_validated(tmp_path: Path) -> None:
    config = load_config({"INSTANCE": str(tmp_path)}, environ={"MAILSHIFT_MASTER_USER_SEPARATOR": "#"})
    assert config["MASTER_USER_SEPARATOR"] == "#"
    assert load_config({"INSTANCE": str(tmp_path)}, environ={})["MASTER_USER_SEPARATOR"] == "*"
    with pytest.raises(ConfigurationError, match="MASTER_USER_SEPARATOR: the master-user separator"):
        load_config({"INSTANCE": str(tmp_path)}, environ={"MAILSHIFT_MASTER_USER_SEPARATOR": "ab"})
