"""The fixture layer itself: real Dovecot servers, mailbox helpers and the faulty proxy work.

Facts about Dovecot 2.3.19 found here (and asserted below, so a different build shows up):

* Over-size APPEND on a server with ``quota_max_mail_size`` (quota plugin): tagged
  ``NO [LIMIT] Mail size is larger than the maximum size allowed by server configuration``
  followed by Dovecot's timing suffix, e.g. ``(0.001 + 0.000 secs).``. With a synchronising
  literal ``{n}`` the NO comes at once instead of the ``+`` continuation; with LITERAL+ ``{n+}``
  Dovecot reads and drops the literal, then answers the same NO; the connection stays usable
  either way. A message of exactly the limit is accepted. APPENDLIMIT is not advertised, neither
  before nor after login.
* APPEND of a message containing a NUL byte is NOT rejected: ``[APPENDUID ...] Append
  completed``. Dovecot stores the NUL as is; FETCH BODY[] returns it replaced by 0x80 (same
  size), so the body read back differs from the one appended, while BINARY.PEEK[] returns the
  original bytes as a literal8 (``~{n}``, which imapclient 4.1 does not parse).
* A failed login answers after about 0.5 s (the auth failure queue runs twice a second, even
  with ``auth_failure_delay = 0``); the per-IP auth penalty is disabled by the fixture.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import imaplib
import ssl
import threading
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.conftest import NewProxy, NewUser
from tests.servers import dovecot
from tests.servers.dovecot import DovecotError, DovecotServer
from tests.servers.mailbox import (
    Mail,
    Security,
    client,
    create_folder,
    deliver,
    fill,
    imap_name,
    make_message,
    snapshot,
)
from tests.servers.proxy import BYE_TOO_MANY, FaultProxy

pytestmark = pytest.mark.integration

UTC = datetime.UTC
MiB = 1024 * 1024


@pytest.fixture(params=["dovecot_slash", "dovecot_dot"])
def server(request: pytest.FixtureRequest) -> DovecotServer:
    """Each test using it runs once per layout."""
    found: DovecotServer = request.getfixturevalue(request.param)
    return found


def _connect(server: DovecotServer, port: int | None = None) -> IMAPClient:
    """Open a plain, not logged-in connection (to the server, or to a proxy's port)."""
    return IMAPClient(server.host, port or server.port, ssl=False, timeout=10)


# --------------------------------------------------------------------------- logins and TLS


def test_plain_login_checks_the_password(dovecot_slash: DovecotServer, new_user: NewUser) -> None:
    user, password = new_user(dovecot_slash)
    with client(dovecot_slash, user, password) as imap:
        assert imap.noop()
    imap = _connect(dovecot_slash)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            imap.login(user, password + "x")
    finally:
        imap.logout()


def test_users_added_at_run_time_can_log_in_at_once(
    dovecot_slash: DovecotServer, new_user: NewUser
) -> None:
    # Dovecot re-reads a changed passwd-file at most once a second: logins right after
    # add_user, interleaved with other lookups, must still see the new user.
    users = []
    for _ in range(5):
        users.append(new_user(dovecot_slash))
        for user, password in users:
            with client(dovecot_slash, user, password) as imap:
                assert imap.noop()


def test_master_user_logs_in_as_user_star_master(
    dovecot_slash: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(dovecot_slash)
    deliver(dovecot_slash, user, "INBOX", make_message(1))
    login = f"{user}*{dovecot_slash.master_user}"
    with client(dovecot_slash, login, dovecot_slash.master_password) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 1


def test_master_user_logs_in_with_sasl_plain_authorization_identity(
    dovecot_dot: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(dovecot_dot)
    deliver(dovecot_dot, user, "INBOX", make_message(1))
    with _connect(dovecot_dot) as imap:
        imap.plain_login(
            dovecot_dot.master_user, dovecot_dot.master_password, authorization_identity=user
        )
        assert imap.select_folder("INBOX")[b"EXISTS"] == 1


@pytest.mark.parametrize("security", ["Tls", "Ssl"])
def test_starttls_and_implicit_tls_work_without_verification(
    dovecot_slash: DovecotServer, new_user: NewUser, security: Security
) -> None:
    user, password = new_user(dovecot_slash)
    with client(dovecot_slash, user, password, security=security) as imap:
        assert isinstance(imap.socket(), ssl.SSLSocket)
        assert imap.noop()


def test_verifying_context_refuses_the_self_signed_certificate(
    dovecot_slash: DovecotServer,
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            dovecot_slash.host,
            dovecot_slash.ssl_port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=10,
        )
    imap = _connect(dovecot_slash)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            imap.starttls(ssl.create_default_context())
    finally:
        # The failed handshake already closed the socket: shutdown() then fails with EBADF.
        with contextlib.suppress(OSError):
            imap.shutdown()


def test_certificate_verifies_against_its_own_file_for_ip_and_localhost(
    dovecot_slash: DovecotServer,
) -> None:
    trusting = ssl.create_default_context(cafile=str(dovecot_slash.ca_file))
    for host in (dovecot_slash.host, "localhost"):
        with IMAPClient(
            host, dovecot_slash.ssl_port, ssl=True, ssl_context=trusting, timeout=10
        ) as imap:
            assert b"AUTH=PLAIN" in imap.capabilities()


# --------------------------------------------------------------------------- namespaces and folders


def test_layouts_report_their_namespace(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser
) -> None:
    expected = {dovecot_slash: (("", "/"),), dovecot_dot: (("INBOX.", "."),)}
    for server, personal in expected.items():
        user, _ = new_user(server)
        with client(server, user) as imap:
            assert imap.namespace().personal == personal
        assert (server.prefix, server.separator) == personal[0]


def test_special_use_folders_are_not_precreated_but_flagged_once_created(
    server: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(server)
    with client(server, user) as imap:
        assert [name for _, _, name in imap.list_folders()] == ["INBOX"]
    for folder in ("Sent", "Trash", "Junk", "Drafts", "Archive", "Archive/2020"):
        create_folder(server, user, folder)
    with client(server, user) as imap:
        attributes = {name: set(flags) for flags, _, name in imap.list_folders()}
        subscribed = {name for _, _, name in imap.list_sub_folders()}
    for folder in ("Sent", "Trash", "Junk", "Drafts", "Archive"):
        assert f"\\{folder}".encode() in attributes[imap_name(server, folder)]
    assert imap_name(server, "Archive/2020") in subscribed


def test_folder_names_with_dots_need_the_slash_layout(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(dovecot_slash)
    deliver(dovecot_slash, user, "v1.2/notes", make_message(1))
    assert set(snapshot(dovecot_slash, user)) == {"INBOX", "v1.2/notes"}
    user, _ = new_user(dovecot_dot)
    for bad in ("v1.2", "INBOX/child", "a//b"):
        with pytest.raises(ValueError):
            deliver(dovecot_dot, user, bad, make_message(1))


# --------------------------------------------------------------------------- Maildir round trips


def test_delivered_messages_come_back_identical_over_imap(
    server: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(server)
    when = datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    items = [
        ("INBOX", make_message(1), ("\\Seen", "Work", "$Forwarded"), when),
        (
            "Archive/2020",
            make_message(2, folder="Archive/2020", size=40_000),
            ("\\Answered", "\\Flagged", "\\Deleted", "\\Draft"),
            when + datetime.timedelta(days=1),
        ),
        ("Café/Grüße", make_message(3, subject="Grüße", folder="Café"), (), when),
    ]
    expected: dict[str, list[tuple[str, frozenset[str], int]]] = {}
    for folder, raw, flags, date in items:
        path = deliver(server, user, folder, raw, flags, date)
        assert path.parent.name == "cur"
        expected.setdefault(folder, []).append(
            (hashlib.sha256(raw).hexdigest(), frozenset(flags), int(date.timestamp()))
        )
    assert snapshot(server, user) == expected

    # Later deliveries into folders Dovecot has indexed, with a keyword table it has written.
    late = make_message(4, with_message_id=False, extra_headers={"X-Late": "yes"})
    deliver(server, user, "INBOX", late, ["Later", "Work"], when)
    expected["INBOX"] = sorted(
        [
            *expected["INBOX"],
            (hashlib.sha256(late).hexdigest(), frozenset({"Later", "Work"}), int(when.timestamp())),
        ],
        key=lambda item: (item[0], sorted(item[1]), item[2]),
    )
    assert snapshot(server, user) == expected


def test_same_content_gives_equal_snapshots_across_layouts(
    dovecot_slash: DovecotServer, dovecot_dot: DovecotServer, new_user: NewUser
) -> None:
    when = datetime.datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC)
    spec: dict[str, int | list[bytes | Mail]] = {
        "INBOX": 40,
        "Archive/2020": 25,
        "Sent": [Mail(make_message(7, subject="Ünïcode"), ("\\Seen", "Work"), when)],
        "Empty": [],
    }
    snapshots = []
    for server in (dovecot_slash, dovecot_dot):
        user, _ = new_user(server)
        counts = fill(server, user, spec, size=3000)
        assert counts == {"INBOX": 40, "Archive/2020": 25, "Sent": 1, "Empty": 0}
        snapshots.append(snapshot(server, user))
    assert snapshots[0] == snapshots[1]
    assert {folder: len(items) for folder, items in snapshots[0].items()} == {
        "INBOX": 40,
        "Archive/2020": 25,
        "Sent": 1,
        "Empty": 0,
    }
    seen = [flags for _, flags, _ in snapshots[0]["INBOX"] if "\\Seen" in flags]
    assert len(seen) == 20


def test_make_message_is_deterministic_crlf_and_exactly_sized() -> None:
    first = make_message(5, size=10_000, folder="Archive/2020")
    assert first == make_message(5, size=10_000, folder="Archive/2020")
    assert first != make_message(5, size=10_000, folder="INBOX")
    assert len(first) == 10_000
    assert b"\n" not in first.replace(b"\r\n", b"")
    assert b"\r" not in first.replace(b"\r\n", b"")
    assert b"Message-ID:" in first
    assert b"Message-ID:" not in make_message(5, with_message_id=False)


# --------------------------------------------------------------------------- server limits


def test_size_limited_server_rejects_append_over_one_mib(
    dovecot_small: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(dovecot_small)
    with client(dovecot_small, user) as imap:
        assert not any(cap.startswith(b"APPENDLIMIT") for cap in imap.capabilities())
        assert b"Append completed" in imap.append("INBOX", make_message(1, size=MiB))
        with pytest.raises(imaplib.IMAP4.error) as refused:
            imap.append("INBOX", make_message(2, size=MiB + 1))
        assert (
            "[LIMIT] Mail size is larger than the maximum size allowed by server configuration"
            in str(refused.value)
        )
        assert imap.select_folder("INBOX")[b"EXISTS"] == 1
    with _connect(dovecot_small) as imap:
        assert not any(cap.startswith(b"APPENDLIMIT") for cap in imap.capabilities())


def test_append_with_nul_byte_is_accepted_and_read_back_as_0x80(
    dovecot_slash: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(dovecot_slash)
    raw = b"Subject: nul\r\n\r\nab\x00cd\r\n"
    with client(dovecot_slash, user) as imap:
        assert b"Append completed" in imap.append("INBOX", raw)
        imap.select_folder("INBOX", readonly=True)
        (data,) = imap.fetch(imap.search(), ["BODY.PEEK[]", "RFC822.SIZE"]).values()
    assert data[b"BODY[]"] == raw.replace(b"\x00", b"\x80")
    assert data[b"RFC822.SIZE"] == len(raw)
    stored = [p.read_bytes() for p in dovecot_slash.maildir(user).glob("*/*,S=*")]
    assert stored == [raw.replace(b"\r\n", b"\n")]


# --------------------------------------------------------------------------- fault proxy


def test_proxy_cuts_connections_after_the_configured_bytes(
    dovecot_slash: DovecotServer, new_user: NewUser, fault_proxy: NewProxy
) -> None:
    user, password = new_user(dovecot_slash)
    deliver(dovecot_slash, user, "INBOX", make_message(1, size=50_000))
    proxy = fault_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.cut_after_bytes = 5_000
    imap = _connect(dovecot_slash, proxy.port)
    try:
        imap.login(user, password)
        imap.select_folder("INBOX")
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            imap.fetch([1], ["BODY.PEEK[]"])
    finally:
        imap.shutdown()
    assert proxy.cuts == 1

    proxy.cut_after_bytes = None
    with _connect(dovecot_slash, proxy.port) as imap:
        imap.login(user, password)
        imap.select_folder("INBOX")
        assert len(imap.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]) == 50_000
    assert (proxy.connections, proxy.cuts) == (2, 1)


def test_proxy_greets_the_next_connections_with_bye(
    dovecot_slash: DovecotServer, new_user: NewUser, fault_proxy: NewProxy
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = fault_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.greet_next(2, BYE_TOO_MANY)
    for _ in range(2):
        with pytest.raises(imaplib.IMAP4.error, match="Too many simultaneous connections"):
            _connect(dovecot_slash, proxy.port)
    with _connect(dovecot_slash, proxy.port) as imap:
        imap.login(user, password)
        assert proxy.active == 1
    assert (proxy.connections, proxy.greeted) == (3, 2)


def test_proxy_stop_ends_its_threads_and_live_connections(
    dovecot_slash: DovecotServer, new_user: NewUser
) -> None:
    user, password = new_user(dovecot_slash)
    before = set(threading.enumerate())
    proxy = FaultProxy(dovecot_slash.host, dovecot_slash.port)
    imap = _connect(dovecot_slash, proxy.port)
    try:
        imap.login(user, password)
        proxy.stop()
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            imap.noop()
    finally:
        imap.shutdown()
    assert set(threading.enumerate()) == before


# --------------------------------------------------------------------------- life cycle


def _gone(pid: int) -> bool:
    """Tell whether a process ended (a zombie left to a non-reaping init counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_stop_kills_the_instance_and_removes_its_folder() -> None:
    with DovecotServer(layout="dot") as server:
        pid = int((server.root / "run" / "master.pid").read_text())
        root = server.root
        assert server.running and not _gone(pid)
    assert _gone(pid) and not server.running
    assert not root.exists()
    server.stop()  # a second stop is harmless


def test_start_failure_raises_with_dovecots_reason() -> None:
    class Broken(DovecotServer):
        def _config(self) -> str:
            return super()._config() + "no_such_setting = 1\n"

    server = Broken()
    with pytest.raises(DovecotError, match="no_such_setting"):
        server.start()
    assert not server.root.exists()


def test_missing_dovecot_is_reported_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dovecot, "DOVECOT", Path("/nonexistent/dovecot"))
    message = dovecot.dovecot_missing_message()
    assert message is not None and "make test" in message
    with pytest.raises(DovecotError, match="make test"):
        DovecotServer().start()
