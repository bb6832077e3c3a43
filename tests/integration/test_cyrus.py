"""Cyrus IMAP: the fixture itself, engine copies to and from it, and the seed's SASL super-user login.

Cyrus runs from Debian's .debs unpacked beside Dovecot (``tests/servers/install-cyrus.sh``); see
``tests/servers/cyrus.py`` for its two layouts and its admin.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from engine.cli import main as cli_main
from engine.errors import AuthenticationFailed
from engine.imap import ImapEndpoint, ImapSession, Security
from engine.scheduler import TargetSettings
from engine.service import MigrationService
from engine.sync import Outcome
from engine.targets import ImapTarget, Target
from tests.conftest import NewUser
from tests.integration.test_batches import wait_for
from tests.integration.test_sync import content, imap_target, run
from tests.servers import cyrus as cyrus_module
from tests.servers.cyrus import CyrusError, CyrusServer
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import Mail, client, fill, imap_name, make_message, snapshot

pytestmark = pytest.mark.integration

UTC = datetime.UTC
_REPO = Path(__file__).resolve().parents[2]


def cyrus_target(server: CyrusServer, user: str) -> Callable[[], Target]:
    """The admin's way in to a Cyrus mailbox: SASL PLAIN as ``cyrus`` acting as ``user``."""
    endpoint = ImapEndpoint(host=server.host, port=server.port, security=Security.NONE,
                            user=server.admin, authzid=user, password=server.admin_password)
    return lambda: ImapTarget(endpoint)


def user_endpoint(server: DovecotServer | CyrusServer, user: str, password: str) -> ImapEndpoint:
    """A user's own login, over plain IMAP."""
    return ImapEndpoint(host=server.host, port=server.port, security=Security.NONE, user=user, password=password)


def cyrus_server(request: pytest.FixtureRequest, layout: str) -> CyrusServer:
    server: CyrusServer = request.getfixturevalue("cyrus" if layout == "dot" else "cyrus_slash")
    return server


# --------------------------------------------------------------------------- the fixture


@pytest.mark.parametrize(("layout", "separator", "personal", "others"), [
    ("dot", ".", "INBOX.", "user."),
    ("slash", "/", "", "Other Users/"),
])
def test_both_layouts_announce_their_namespace_and_separator(
    request: pytest.FixtureRequest, new_user: NewUser, layout: str, separator: str, personal: str, others: str
) -> None:
    server = cyrus_server(request, layout)
    user, _ = new_user(server)
    assert (server.separator, server.prefix) == (separator, personal)
    with client(server, user) as imap:
        namespace = imap.namespace()
        assert namespace.personal[0] == (personal, separator)
        assert namespace.other[0] == (others, separator)
        imap.create_folder(imap_name(server, "Archive/2019"))
        listed = {name: delimiter.decode() for _, delimiter, name in imap.list_folders()}
    # Cyrus creates the missing parent as a real mailbox.
    assert listed == {"INBOX": separator, imap_name(server, "Archive"): separator,
                      imap_name(server, "Archive/2019"): separator}


@pytest.mark.parametrize("layout", ["dot", "slash"])
def test_a_user_logs_in_and_the_admin_acts_as_the_user_with_sasl_plain(
    request: pytest.FixtureRequest, new_user: NewUser, layout: str
) -> None:
    server = cyrus_server(request, layout)
    user, password = new_user(server)
    message = make_message(1, subject="for the admin to read")
    with client(server, user, password) as imap:
        imap.append("INBOX", message)
    with IMAPClient(server.host, server.port, ssl=False, timeout=30) as imap:
        assert b"AUTH=PLAIN" in imap.capabilities()
        imap.plain_login(server.admin, server.admin_password, user)
        assert imap.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1
        [fetched] = imap.fetch("1", ["BODY.PEEK[]"]).values()
        assert fetched[b"BODY[]"] == message
    # The LOGIN forms of a super-user are not Cyrus's: both orders are refused.
    for login in (f"{server.admin}*{user}", f"{user}*{server.admin}"):
        with IMAPClient(server.host, server.port, ssl=False, timeout=30) as imap, pytest.raises(LoginError):
            imap.login(login, server.admin_password)
    with IMAPClient(server.host, server.port, ssl=False, timeout=30) as imap, pytest.raises(LoginError):
        imap.login(user, "Wrong-Pa$$word1")


def test_starttls_and_implicit_tls_verify_against_the_fixture_certificate(cyrus: CyrusServer, new_user: NewUser) -> None:
    user, _ = new_user(cyrus)
    for security in ("Tls", "Ssl"):
        with client(cyrus, user, security=security) as imap:
            assert imap.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0


@pytest.mark.parametrize("layout", ["dot", "slash"])
def test_appended_messages_read_back_with_flags_keywords_and_dates(
    request: pytest.FixtureRequest, new_user: NewUser, layout: str
) -> None:
    server = cyrus_server(request, layout)
    user, _ = new_user(server)
    when = datetime.datetime(2009, 2, 3, 4, 5, 6, tzinfo=UTC)
    mails = [Mail(make_message(i, folder="Work/2020"), ("\\Seen", "$Forwarded", "Project") if i else (), when)
             for i in range(3)]
    assert fill(server, user, {"Work/2020": mails, "INBOX": 4}) == {"Work/2020": 3, "INBOX": 4}
    snap = snapshot(server, user)
    assert set(snap) == {"INBOX", "Work", "Work/2020"}
    assert snap["Work"] == []
    assert sorted(snap["Work/2020"]) == sorted(
        (hashlib.sha256(m.raw).hexdigest(), frozenset(m.flags), int(when.timestamp())) for m in mails
    )
    # fill's generated messages: every 2nd \Seen, 7th \Flagged, 11th \Answered, an hour apart.
    assert sorted(sorted(flags) for _, flags, _ in snap["INBOX"]) == [
        [], [], ["\\Answered", "\\Flagged", "\\Seen"], ["\\Seen"]
    ]


EIGHT_BIT = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n"
    b"Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n"
    b"Message-ID: <8bit.1@mailshift.test>\r\n"
    b"\r\n"
    b"K\xc3\xb6ln, body bytes stay.\r\n"
)


def test_munge8bit_turns_8bit_header_bytes_into_x_and_can_be_turned_off(cyrus: CyrusServer, new_user: NewUser) -> None:
    """A fact the engine relies on: Cyrus rewrites raw 8-bit header bytes on APPEND by default
    (one X per byte, so the size stays the same); the body is stored unchanged."""
    user, _ = new_user(cyrus)
    fill(cyrus, user, {"INBOX": [EIGHT_BIT]})
    with client(cyrus, user) as imap:
        imap.select_folder("INBOX", readonly=True)
        [stored] = imap.fetch("1", ["BODY.PEEK[]", "RFC822.SIZE"]).values()
    assert stored[b"BODY[]"] == EIGHT_BIT.replace(b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln", b"GrXXXXe aus KXXln")
    assert stored[b"RFC822.SIZE"] == len(EIGHT_BIT)
    with CyrusServer(munge8bit=False) as verbatim:
        name = verbatim.add_user("alice", "alice-password")
        fill(verbatim, name, {"INBOX": [EIGHT_BIT]})
        with client(verbatim, name) as imap:
            imap.select_folder("INBOX", readonly=True)
            [kept] = imap.fetch("1", ["BODY.PEEK[]"]).values()
    assert kept[b"BODY[]"] == EIGHT_BIT


def _instance_processes(root: Path) -> list[int]:
    """Processes whose command line names files of an instance folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(root).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if cyrus_module._alive(pid)]


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def test_stop_leaves_nothing_running_and_removes_the_folder() -> None:
    server = CyrusServer(layout="slash")
    with server:
        server.add_user("alice", "alice-password")
        with client(server, "alice") as imap:  # a connection open while stopping: its imapd too
            imap.noop()
            root, port = server.root, server.port
            assert len(_instance_processes(root)) >= 2  # master and the connection's imapd
            server.stop()
    assert _instance_processes(root) == []
    assert not root.exists()
    assert _refuses(port)
    assert not server.running


_CHILD = """
import sys, time
from tests.servers.cyrus import CyrusServer
server = CyrusServer()
server.start()
print(server.root, server.port, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_an_interrupted_test_process_leaves_no_cyrus_running(how: signal.Signals) -> None:
    """Ctrl-C (SIGINT) stops the instances at exit and removes their folders; a killed test
    process (SIGKILL) takes its instances' processes with it (master gets SIGTERM)."""
    with subprocess.Popen([sys.executable, "-c", _CHILD], cwd=_REPO, stdout=subprocess.PIPE,
                          env=dict(os.environ, PYTHONPATH=str(_REPO))) as child:
        assert child.stdout is not None
        root_text, port_text = child.stdout.readline().decode().split()
        root, port = Path(root_text), int(port_text)
        try:
            assert _instance_processes(root)
            child.send_signal(how)
            child.wait(timeout=30)
            deadline = time.monotonic() + 15
            while _instance_processes(root) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _instance_processes(root) == []
            assert _refuses(port)
            assert root.exists() is (how == signal.SIGKILL)
        finally:
            child.kill()
            if root.exists():  # what a SIGKILL leaves behind: the folder
                subprocess.run(["rm", "-rf", str(root)], check=True)


def test_a_missing_cyrus_fails_with_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cyrus_module, "_BIN", tmp_path / "nowhere")
    with pytest.raises(CyrusError, match=r"Cyrus IMAP is not installed .*run `make system-deps`"):
        CyrusServer().start()


# --------------------------------------------------------------------------- engine copies

FOLDERS = {
    "INBOX": 20,
    "Work": 5,
    "Work/2019": 6,
    "Work/2019/Q1": 3,
    "Projekte/Überblick": 4,
}
KEYWORDS_DATE = datetime.datetime(2009, 2, 3, 4, 5, 6, tzinfo=UTC)


def _fill_source(server: DovecotServer | CyrusServer, user: str) -> int:
    """FOLDERS of generated mail, INBOX with \\Seen on every 2nd message, keywords, a \\Draft without
    Message-ID, and dates from 2009 and 2020; returns the number of messages."""
    inbox = [
        Mail(make_message(i, size=3000, folder="INBOX"), ("\\Seen",) if i % 2 == 0 else (),
             datetime.datetime(2020, 1, 1, tzinfo=UTC) + datetime.timedelta(hours=i))
        for i in range(FOLDERS["INBOX"])
    ]
    inbox.append(Mail(make_message(900, subject="keywords"), ("\\Seen", "$Forwarded", "Work"), KEYWORDS_DATE))
    inbox.append(Mail(make_message(901, with_message_id=False, size=70_000), ("\\Draft",), KEYWORDS_DATE))
    return sum(fill(server, user, {**FOLDERS, "INBOX": inbox}, size=3000).values())


@pytest.mark.parametrize(("dovecot_name", "layout"), [("dovecot_slash", "dot"), ("dovecot_dot", "slash")])
def test_dovecot_to_cyrus_copy_is_exact(
    request: pytest.FixtureRequest, new_user: NewUser, tmp_path: Path, dovecot_name: str, layout: str
) -> None:
    source: DovecotServer = request.getfixturevalue(dovecot_name)
    target = cyrus_server(request, layout)
    user, password = new_user(source)
    target_user, _ = new_user(target)
    total = _fill_source(source, user)

    report = run(user_endpoint(source, user, password), cyrus_target(target, target_user), tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, report.error
    before, after = content(snapshot(source, user)), content(snapshot(target, target_user))
    assert {f: len(m) for f, m in after.items()} == {f: len(m) for f, m in before.items()}
    assert after == before
    assert report.progress["messages_copied"] == total == sum(FOLDERS.values()) + 2
    again = run(user_endpoint(source, user, password), cyrus_target(target, target_user), tmp_path / "s.db")
    assert again.outcome is Outcome.SYNCED and again.progress["messages_copied"] == 0
    assert content(snapshot(target, target_user)) == before


@pytest.mark.parametrize(("layout", "dovecot_name"), [("dot", "dovecot_slash"), ("slash", "dovecot_dot")])
def test_cyrus_to_dovecot_copy_is_exact(
    request: pytest.FixtureRequest, new_user: NewUser, tmp_path: Path, layout: str, dovecot_name: str
) -> None:
    source = cyrus_server(request, layout)
    target: DovecotServer = request.getfixturevalue(dovecot_name)
    user, password = new_user(source)
    target_user, _ = new_user(target)
    total = _fill_source(source, user)

    report = run(user_endpoint(source, user, password), imap_target(target, target_user), tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, report.error
    before, after = content(snapshot(source, user)), content(snapshot(target, target_user))
    assert {f: len(m) for f, m in after.items()} == {f: len(m) for f, m in before.items()}
    assert after == before
    assert report.progress["messages_copied"] == total


# --------------------------------------------------------------------------- the seed's super-user login


def test_seed_super_user_login_reaches_cyrus_through_sasl_plain(
    cyrus: CyrusServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Seed 000 on SASL servers: UserName ``Admin*User`` with the admin's password. Cyrus refuses
    both LOGIN orders; the admin then logs in with AUTHENTICATE PLAIN acting as the user."""
    user, _ = new_user(cyrus)
    target_user, _ = new_user(dovecot_dot)
    fill(cyrus, user, {"INBOX": 7, "Work": 3})
    source = user_endpoint(cyrus, f"{cyrus.admin}*{user}", cyrus.admin_password)

    report = run(source, imap_target(dovecot_dot, target_user), tmp_path / "s.db")

    assert report.outcome is Outcome.SYNCED, report.error
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(cyrus, user))
    assert report.progress["messages_copied"] == 10
    assert (f"logged in with AUTHENTICATE PLAIN as 'cyrus' for '{user}' after the server refused "
            f"LOGIN 'cyrus*{user}', LOGIN '{user}*cyrus'") in caplog.text


def test_a_refused_super_user_login_names_every_attempt_and_never_the_password(cyrus: CyrusServer, new_user: NewUser) -> None:
    user, _ = new_user(cyrus)
    with pytest.raises(AuthenticationFailed) as refused:
        ImapSession(user_endpoint(cyrus, f"cyrus*{user}", "Wrong-Pa$$word1"))
    message = str(refused.value)
    assert message.endswith(
        f"the server refused the credentials (tried LOGIN 'cyrus*{user}', LOGIN '{user}*cyrus', "
        f"AUTHENTICATE PLAIN as 'cyrus' for '{user}')"
    )
    assert "Wrong-Pa$$word1" not in message


def test_dovecot_master_user_logins_still_work_in_both_orders(
    dovecot_slash: DovecotServer, new_user: NewUser
) -> None:
    user, _ = new_user(dovecot_slash)
    fill(dovecot_slash, user, {"INBOX": 3})
    for login in (f"{user}*{dovecot_slash.master_user}", f"{dovecot_slash.master_user}*{user}"):
        with ImapSession(user_endpoint(dovecot_slash, login, dovecot_slash.master_password)) as session:
            assert session.select("INBOX", readonly=True).exists == 3


def test_mailshift_sync_with_another_master_separator(
    cyrus_slash: CyrusServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    user, _ = new_user(cyrus_slash)
    target_user, _ = new_user(dovecot_dot)
    fill(cyrus_slash, user, {"INBOX": 4, "Work/2020": 2})
    monkeypatch.setenv("MAILSHIFT_SOURCE_PASSWORD", cyrus_slash.admin_password)
    monkeypatch.setenv("MAILSHIFT_TARGET_PASSWORD", dovecot_dot.master_password)
    common = [
        "sync", "--source-host", cyrus_slash.host, "--source-port", str(cyrus_slash.port), "--source-security", "None",
        "--target-host", dovecot_dot.host, "--target-port", str(dovecot_dot.port), "--target-security", "None",
        "--target-user", dovecot_dot.master_user, "--target-authzid", target_user,
        "--state", str(tmp_path / "s.db"), "--json",
    ]
    # With '#' as the separator, 'cyrus*user' is one login name: nothing else is tried.
    assert cli_main([*common, "--source-user", f"cyrus*{user}", "--master-separator", "#"]) == 1
    assert f"(tried LOGIN 'cyrus*{user}'" not in capsys.readouterr().err
    assert cli_main([*common, "--source-user", f"cyrus#{user}", "--master-separator", "#"]) == 0
    assert json.loads(capsys.readouterr().out)["messages_copied"] == 6
    assert content(snapshot(dovecot_dot, target_user)) == content(snapshot(cyrus_slash, user))
    with pytest.raises(SystemExit) as usage:
        cli_main([*common, "--source-user", f"cyrus#{user}", "--master-separator", "a"])
    assert usage.value.code == 2
    assert "the master-user separator must be one character" in capsys.readouterr().err


def test_a_batch_with_the_seed_super_user_form_migrates_from_cyrus(
    cyrus: CyrusServer, dovecot_dot: DovecotServer, new_user: NewUser, tmp_path: Path
) -> None:
    """A CSV whose UserName is ``cyrus*<user>`` with the admin's password, through the service."""
    user, _ = new_user(cyrus)
    fill(cyrus, user, {"INBOX": 9, "Work": 4, "Work/2019": 2})
    email = f"{user}@contoso.edu"
    dovecot_dot.add_user(email, "unused-target-password")
    target = TargetSettings(imap=ImapEndpoint(
        host=dovecot_dot.host, port=dovecot_dot.port, security=Security.NONE, user=dovecot_dot.master_user,
        authzid="{EmailAddress}", password=dovecot_dot.master_password,
    ))
    service = MigrationService(tmp_path / "instance", target=target, poll_seconds=0.1)
    try:
        csv_data = f"EmailAddress,UserName,Password\r\n{email},{cyrus.admin}*{user},{cyrus.admin_password}\r\n".encode()
        service.new_batch("FromCyrus", csv_data, imap=True, remote_server=cyrus.host, port=cyrus.port)
        service.start_batch("FromCyrus")
        wait_for(lambda: service.get_batches("FromCyrus")[0].status in ("Synced", "SyncedWithErrors", "Failed"),
                 "the initial sync")
        [migrated] = service.get_users(batch="FromCyrus")
        assert (migrated.status, migrated.error_summary) == ("Synced", None)
        assert service.get_user_statistics(email).synced_item_count == 15
    finally:
        service.close()
    assert content(snapshot(dovecot_dot, email, "unused-target-password")) == content(snapshot(cyrus, user))
