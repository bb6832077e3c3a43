"""The IMAP quirk proxy against a real Dovecot: each option does what it says and nothing else."""

from __future__ import annotations

import datetime
import random
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from tests.conftest import NewQuirkProxy, NewUser
from tests.servers.dovecot import DovecotServer
from tests.servers.imap_proxy import APPEND_TIME, ImapQuirkProxy
from tests.servers.mailbox import client, create_folder, make_message

pytestmark = pytest.mark.integration

_DATE = datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
_IMAP_DATE = b'"04-Mar-2021 05:06:07 +0200"'


class Raw:
    """A bare IMAP connection: send exact bytes, read exact answers (no client library in between)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.greeting = self.line()

    def line(self) -> bytes:
        """The next line, CRLF included."""
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"connection closed; unread: {self.buffer!r}")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def until(self, tag: bytes) -> list[bytes]:
        """Every line up to and including the tagged answer of ``tag``."""
        lines = [self.line()]
        while not lines[-1].startswith(tag + b" "):
            lines.append(self.line())
        return lines

    def command(self, tag: bytes, text: bytes) -> list[bytes]:
        """Send one literal-free command and read its answer."""
        self.sock.sendall(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def append(self, tag: bytes, messages: list[bytes], folder: bytes = b"INBOX", options: bytes = b"") -> list[bytes]:
        """APPEND (MULTIAPPEND for several) with non-synchronizing literals; read the answer.

        ``options`` (flags and date, e.g. ``b'(\\Seen) "01-Jan-2021 00:00:00 +0000"'``) go before
        each message.
        """
        literals = b"".join(b"%s {%d+}\r\n%s" % (b" " + options if options else b"", len(message), message)
                           for message in messages)
        self.sock.sendall(tag + b" APPEND " + folder + literals + b"\r\n")
        return self.until(tag)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[list[Raw]]:
    """Raw connections opened by a test (append to the list), closed after it."""
    opened: list[Raw] = []
    yield opened
    for connection in opened:
        connection.close()


def _login(proxy: ImapQuirkProxy, user: str, password: str, raw: list[Raw]) -> Raw:
    connection = Raw(proxy.host, proxy.port)
    raw.append(connection)
    assert connection.command(b"l", b"LOGIN " + user.encode() + b" " + password.encode())[-1].startswith(b"l OK")
    return connection


def _imap(proxy: ImapQuirkProxy, user: str, password: str, timeout: float = 5.0) -> IMAPClient:
    imap = IMAPClient(proxy.host, proxy.port, ssl=False, timeout=timeout)
    imap.login(user, password)
    imap.normalise_times = False
    return imap


def _stored(server: DovecotServer, user: str, folder: str = "INBOX") -> list[tuple[bytes, list[bytes], datetime.datetime]]:
    """(body, flags without \\Recent, internal date) of every message of a folder, read directly."""
    with client(server, user) as imap:
        imap.normalise_times = False
        imap.select_folder(folder, readonly=True)
        fetched = imap.fetch(imap.search("ALL"), ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
        return [
            (data[b"BODY[]"], sorted(f for f in data[b"FLAGS"] if f != b"\\Recent"), data[b"INTERNALDATE"])
            for _, data in sorted(fetched.items())
        ]


def _caps(lines: list[bytes]) -> set[bytes]:
    """Capability names in ``* CAPABILITY`` lines and ``[CAPABILITY ...]`` codes."""
    names: set[bytes] = set()
    for line in lines:
        if line.upper().startswith(b"* CAPABILITY "):
            names |= set(line.split()[2:])
        if b"[CAPABILITY " in line:
            names |= set(line.split(b"[CAPABILITY ", 1)[1].split(b"]", 1)[0].split())
    return names


# --------------------------------------------------------------------------- pass-through


def test_a_pass_through_proxy_changes_nothing(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    user_directly, password_directly = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    direct, proxied = Raw(dovecot_slash.host, dovecot_slash.port), Raw(proxy.host, proxy.port)
    raw += [direct, proxied]
    assert proxied.greeting == direct.greeting.replace(b" STARTTLS", b"")  # the one name always hidden
    for connection, name, secret in ((direct, user_directly, password_directly), (proxied, user, password)):
        login = connection.command(b"a", b"LOGIN " + name.encode() + b" " + secret.encode())
        assert login[-1].startswith(b"a OK")
    messages = [
        make_message(1, size=3000),
        make_message(2, size=3000).rstrip(b"\r\n"),                          # no final line end
        b"Subject: caf\xc3\xa9\nX-Raw: \xe9\n\nbare LF body\n\xff no final CRLF",  # 8 bit, bare LFs
    ]
    options = b"(\\Seen $Label1) " + _IMAP_DATE
    for connection in (direct, proxied):
        for n, message in enumerate(messages):
            assert b"[APPENDUID " in connection.append(b"b%d" % n, [message], options=options)[-1]
        assert b"[APPENDUID " in connection.append(b"c", messages)[-1]
    stored = _stored(dovecot_slash, user)
    assert stored == _stored(dovecot_slash, user_directly)
    served = [*messages[:2], re.sub(rb"(?<!\r)\n", b"\r\n", messages[2])]  # Dovecot serves bare LFs as CRLF
    assert [body for body, _, _ in stored] == served + served
    assert [(flags, date) for _, flags, date in stored[:3]] == [([b"$Label1", b"\\Seen"], _DATE)] * 3
    assert proxy.commands == {"LOGIN": 1, "APPEND": 4} and proxy.appended_messages == 6
    assert [count for _, count in proxy.appends] == [1, 1, 1, 3]
    assert [size - len(message) for (size, _), message in zip(proxy.appends, messages, strict=False)] == [
        len(b"b0 APPEND INBOX  {3000+}\r\n\r\n") + len(options)] * 2 + [len(b"b2 APPEND INBOX  {55+}\r\n\r\n") + len(options)]
    assert proxy.altered == {} and proxy.answered == 0 and proxy.cuts == 0


def test_synchronizing_and_non_synchronizing_literals_both_work(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    connection = Raw(proxy.host, proxy.port)
    raw.append(connection)
    # LOGIN with two synchronizing literals: the proxy answers "+" to each, the server gets one command.
    connection.sock.sendall(b"a LOGIN {%d}\r\n" % len(user))
    assert connection.line().startswith(b"+ ")
    connection.sock.sendall(user.encode() + b" {%d}\r\n" % len(password))
    assert connection.line().startswith(b"+ ")
    connection.sock.sendall(password.encode() + b"\r\n")
    assert connection.until(b"a")[-1].startswith(b"a OK")
    # A mailbox name and two messages as LITERAL+ literals, literal-looking bytes inside one.
    tricky = b"Subject: x\r\n\r\nb {5}\r\nnot a command\r\n"
    connection.sock.sendall(
        b"b APPEND {5+}\r\nINBOX (\\Flagged) {%d+}\r\n%s {1+}\r\nx\r\n" % (len(tricky), tricky)
    )
    answer = connection.until(b"b")
    assert answer[-1].startswith(b"b OK [APPENDUID "), answer
    assert (proxy.sync_literals, proxy.nonsync_literals) == (2, 3)
    assert proxy.commands == {"LOGIN": 1, "APPEND": 1}
    assert proxy.appends[0][1] == 2  # the mailbox literal is not a message
    assert [body for body, _, _ in _stored(dovecot_slash, user)] == [tricky, b"x"]


def test_answers_of_the_proxy_come_after_those_of_earlier_commands(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.answer_next(1, "append", b"NO [THROTTLED] Slow down")
    connection = _login(proxy, user, password, raw)
    connection.sock.sendall(b"a SELECT INBOX\r\nb APPEND INBOX {3+}\r\nabc\r\nc NOOP\r\n")
    lines = connection.until(b"c")
    tagged = [line.split(b" ", 2)[:2] for line in lines if not line.startswith(b"*")]
    assert tagged == [[b"a", b"OK"], [b"b", b"NO"], [b"c", b"OK"]]
    assert b"b NO [THROTTLED] Slow down\r\n" in lines
    assert proxy.answered == 1 and proxy.appended_messages == 0
    assert _stored(dovecot_slash, user) == []


# --------------------------------------------------------------------------- capabilities


def test_stripped_capabilities_vanish_from_greeting_login_and_capability(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.strip_capabilities = {"uidplus", "MULTIAPPEND", "LITERAL+", "CONDSTORE", "SPECIAL-USE", "AUTH"}
    hidden = {b"UIDPLUS", b"MULTIAPPEND", b"LITERAL+", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE",
              b"AUTH=PLAIN", b"AUTH=LOGIN", b"STARTTLS"}
    direct = Raw(dovecot_slash.host, dovecot_slash.port)
    connection = Raw(proxy.host, proxy.port)
    raw += [direct, connection]
    login = b"LOGIN " + user.encode() + b" " + password.encode()
    seen_directly = [_caps([direct.greeting]), _caps(direct.command(b"a", login)), _caps(direct.command(b"b", b"CAPABILITY"))]
    seen = [_caps([connection.greeting]), _caps(connection.command(b"a", login)), _caps(connection.command(b"b", b"CAPABILITY"))]
    for names, names_directly in zip(seen, seen_directly, strict=True):
        assert names == names_directly - hidden
    assert hidden <= seen_directly[0] | seen_directly[2]  # they were there to be stripped
    proxy.strip_capabilities = set()  # changeable at any time, live connections too
    assert b"UIDPLUS" in _caps(connection.command(b"c", b"CAPABILITY"))
    assert b"STARTTLS" not in _caps(connection.command(b"d", b"CAPABILITY"))  # never let through
    assert connection.command(b"e", b"STARTTLS")[-1].startswith(b"e BAD")


def test_without_uidplus_no_appenduid_or_copyuid_and_uid_expunge_is_refused(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    create_folder(dovecot_slash, user, "Other")
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.strip_capabilities = {"UIDPLUS"}
    connection = _login(proxy, user, password, raw)
    answers = [connection.append(b"a", [make_message(1)]), connection.append(b"b", [make_message(2), make_message(3)])]
    connection.command(b"s", b"SELECT INBOX")
    answers += [connection.command(b"c", b"UID COPY 1:2 Other"), connection.command(b"m", b"UID MOVE 1 Other")]
    assert [lines[-1].split(b" ", 2)[1] for lines in answers] == [b"OK"] * 4
    assert not any(b"APPENDUID" in line or b"COPYUID" in line for lines in answers for line in lines)
    assert connection.command(b"x", b"UID EXPUNGE 2")[-1].startswith(b"x BAD")
    assert len(_stored(dovecot_slash, user)) == 2 and len(_stored(dovecot_slash, user, "Other")) == 3
    proxy.strip_capabilities = set()
    assert b"[COPYUID " in connection.command(b"d", b"UID COPY 2 Other")[-1]


def test_without_multiappend_a_multi_message_append_is_refused_and_nothing_stored(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.strip_capabilities = {"MULTIAPPEND"}
    with _imap(proxy, user, password) as imap:
        with pytest.raises(IMAPClientError, match="MULTIAPPEND"):  # imapclient checks capabilities
            imap.multiappend("INBOX", [make_message(1), make_message(2)])
    connection = _login(proxy, user, password, raw)
    assert connection.append(b"a", [make_message(1), make_message(2)])[-1].startswith(b"a BAD")
    assert connection.append(b"b", [make_message(3)])[-1].startswith(b"b OK")
    assert [body for body, _, _ in _stored(dovecot_slash, user)] == [make_message(3)]
    assert proxy.appends[0][1] == 2 and proxy.appended_messages == 1


def test_without_literal_plus_clients_must_wait_for_continuations(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.strip_capabilities = {"LITERAL+"}
    connection = _login(proxy, user, password, raw)
    assert connection.command(b"a", b"APPEND INBOX {5+}\r\nhello")[-1].startswith(b"a BAD")
    with _imap(proxy, user, password) as imap:
        imap.append("INBOX", make_message(1))  # imaplib sends synchronizing literals
    assert [body for body, _, _ in _stored(dovecot_slash, user)] == [make_message(1)]
    assert (proxy.sync_literals, proxy.nonsync_literals) == (1, 1)


def test_without_condstore_nothing_enables_it(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    direct = Raw(dovecot_slash.host, dovecot_slash.port)
    raw.append(direct)
    direct.command(b"l", b"LOGIN " + user.encode() + b" " + password.encode())
    assert direct.command(b"e", b"ENABLE CONDSTORE")[0] == b"* ENABLED CONDSTORE\r\n"
    proxy.strip_capabilities = {"CONDSTORE"}
    connection = _login(proxy, user, password, raw)
    assert connection.command(b"e", b"ENABLE CONDSTORE QRESYNC")[:2] == [b"* ENABLED\r\n", b"e OK Enabled\r\n"]
    enabled = connection.command(b"f", b"ENABLE CONDSTORE UTF8=ACCEPT")  # forwarded without CONDSTORE
    assert enabled[-1].startswith(b"f OK") and not any(b"CONDSTORE" in line for line in enabled)
    assert connection.command(b"s", b"SELECT INBOX (CONDSTORE)")[-1].startswith(b"s BAD")
    assert connection.command(b"t", b"STATUS INBOX (MESSAGES HIGHESTMODSEQ)")[-1].startswith(b"t BAD")
    select = connection.command(b"u", b'SELECT "INBOX"')
    assert select[-1].startswith(b"u OK") and not any(b"MODSEQ" in line for line in select)
    assert connection.command(b"v", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")[-1].startswith(b"v BAD")
    assert connection.command(b"w", b'UID SEARCH SUBJECT "modseq"')[-1].startswith(b"w OK")
    assert proxy.answered == 4


def test_without_special_use_list_shows_no_use_attributes(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    for folder in ("Sent", "Trash", "Work"):
        create_folder(dovecot_slash, user, folder)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    connection = _login(proxy, user, password, raw)
    listed = {line for line in connection.command(b"a", b'LIST "" *') if line.startswith(b"* LIST")}
    assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n' in listed
    proxy.strip_capabilities = {"SPECIAL-USE"}
    stripped = connection.command(b"b", b'LIST "" *')
    assert {line.replace(b" \\Sent", b"").replace(b" \\Trash", b"") for line in listed} == {
        line for line in stripped if line.startswith(b"* LIST")
    }
    assert b'* LSUB () "/" Sent\r\n' in connection.command(b"c", b'LSUB "" *')
    assert connection.command(b"d", b'LIST "" * RETURN (SPECIAL-USE)')[-1].startswith(b"d BAD")
    assert connection.command(b"e", b"CREATE Junk2 (USE (\\Junk))")[-1].startswith(b"e BAD")


# --------------------------------------------------------------------------- altered messages


def test_add_trailing_crlf_and_lf_to_crlf(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.add_trailing_crlf = True
    unended = make_message(1, size=1000).rstrip(b"\r\n")
    ended = make_message(2, size=1000).rstrip(b"\r\n") + b"\r\n"
    with _imap(proxy, user, password) as imap:
        imap.append("INBOX", unended)
        imap.append("INBOX", ended)
        assert proxy.altered == {"add_trailing_crlf": 1}
    proxy.add_trailing_crlf = False
    proxy.lf_to_crlf = True  # imaplib converts bare LFs itself: send them raw
    _login(proxy, user, password, raw).append(b"a", [b"Subject: lf\n\nline\nline\r\n"])
    assert proxy.altered == {"add_trailing_crlf": 1, "lf_to_crlf": 1}
    stored = [body for body, _, _ in _stored(dovecot_slash, user)]
    assert stored == [unended + b"\r\n", ended, b"Subject: lf\r\n\r\nline\r\nline\r\n"]
    assert len(stored[0]) == len(unended) + 2


def test_replace_internaldate_replaces_adds_or_drops_the_date(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.replace_internaldate = _DATE
    old = datetime.datetime(2019, 1, 1, tzinfo=datetime.UTC)
    with _imap(proxy, user, password) as imap:
        imap.append("INBOX", make_message(1), flags=(b"\\Seen",), msg_time=old)
        imap.append("INBOX", make_message(2))  # no date: one is added
        imap.append("INBOX", make_message(3), msg_time=_DATE)  # already that date: not altered
        proxy.replace_internaldate = APPEND_TIME
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        imap.append("INBOX", make_message(4), flags=(b"\\Seen",), msg_time=old)
    stored = _stored(dovecot_slash, user)
    assert [date for _, _, date in stored[:3]] == [_DATE] * 3
    assert before <= stored[3][2] <= datetime.datetime.now(datetime.UTC)
    assert [flags for _, flags, _ in stored] == [[b"\\Seen"], [], [], [b"\\Seen"]]
    assert [body for body, _, _ in stored] == [make_message(n) for n in range(1, 5)]
    assert proxy.altered == {"replace_internaldate": 3}


def test_munge_header_8bit_rewrites_the_header_only(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.munge_header_8bit = True
    message = b"Subject: caf\xc3\xa9\r\nFrom: a@b\r\n\r\nbody caf\xc3\xa9\r\n"
    with _imap(proxy, user, password) as imap:
        imap.append("INBOX", message)
        imap.append("INBOX", make_message(1))
    assert [body for body, _, _ in _stored(dovecot_slash, user)] == [
        b"Subject: cafXX\r\nFrom: a@b\r\n\r\nbody caf\xc3\xa9\r\n", make_message(1)
    ]
    assert proxy.altered == {"munge_header_8bit": 1}


# --------------------------------------------------------------------------- refused APPENDs


def test_a_refused_multiappend_stores_nothing_and_is_accepted_after_times_refusals(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy, raw: list[Raw]
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.refuse_append(lambda message: b"Message 2 " in message, times=2, answer=b"NO [LIMIT] Not now")
    batch = [make_message(n) for n in range(1, 4)]
    connection = _login(proxy, user, password, raw)
    for tag in (b"a", b"b"):
        assert connection.append(tag, batch) == [tag + b" NO [LIMIT] Not now\r\n"]
    assert _stored(dovecot_slash, user) == []
    answers = [connection.append(b"c", [make_message(4)]), connection.append(b"d", batch), connection.append(b"e", batch)]
    assert [lines[-1][:5] for lines in answers] == [b"c OK ", b"d OK ", b"e OK "]
    assert [body for body, _, _ in _stored(dovecot_slash, user)] == [make_message(4), *batch, *batch]
    assert proxy.refused_appends == 2 and proxy.appended_messages == 7
    assert [count for _, count in proxy.appends] == [3, 3, 1, 3, 3]


# --------------------------------------------------------------------------- cuts and stalls


def _talk_until_cut(proxy: ImapQuirkProxy, user: str, password: str) -> None:
    """Log in, then send 1 kB commands until the proxy cuts the connection."""
    imap = IMAPClient(proxy.host, proxy.port, ssl=False, timeout=5)
    try:
        imap.login(user, password)
        imap.select_folder("INBOX")
        for _ in range(200):
            imap.search(["HEADER", "X-Filler", "x" * 1000])
        raise AssertionError("the connection was never cut")
    except (OSError, IMAPClientAbortError):
        pass
    finally:
        imap.shutdown()


def test_cut_every_draws_a_limit_per_connection_and_counts_both_directions(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    proxy.cut_every(5_000, 20_000, seed=11)
    for _ in range(3):
        _talk_until_cut(proxy, user, password)
    expected = random.Random(11)
    limits = [expected.randint(5_000, 20_000) for _ in range(3)]
    assert proxy.cuts == 3
    assert [up + down for up, down in proxy.cut_points] == limits  # exactly: both directions count
    assert all(up > 1_000 and down > 500 for up, down in proxy.cut_points)

    proxy.cut_after(3_000, "to_client")
    _talk_until_cut(proxy, user, password)
    assert proxy.cuts == 4 and proxy.cut_points[-1][1] == 3_000
    proxy.cut_never()
    with _imap(proxy, user, password) as imap:
        imap.noop()
    assert proxy.cuts == 4


def test_stall_silences_a_connection_then_it_continues_or_the_client_gives_up(
    dovecot_slash: DovecotServer, new_user: NewUser, quirk_proxy: NewQuirkProxy
) -> None:
    user, password = new_user(dovecot_slash)
    proxy = quirk_proxy(dovecot_slash.host, dovecot_slash.port)
    with _imap(proxy, user, password) as imap:
        proxy.stall(after_bytes=0, seconds=0.6)  # an open connection past the threshold stalls at once
        started = time.monotonic()
        imap.noop()
        assert time.monotonic() - started >= 0.55
        started = time.monotonic()
        imap.noop()  # each connection stalls once
        assert time.monotonic() - started < 0.3
    proxy.stall_never()
    imap = _imap(proxy, user, password)
    imap.socket().settimeout(0.3)
    proxy.stall(after_bytes=0, seconds=30)
    try:
        with pytest.raises((TimeoutError, socket.timeout)):
            imap.noop()
    finally:
        imap.shutdown()
    assert proxy.stalls == 2


def test_stop_ends_every_thread_and_connection_even_mid_stall(
    dovecot_slash: DovecotServer, new_user: NewUser
) -> None:
    user, password = new_user(dovecot_slash)
    before = set(threading.enumerate())
    proxy = ImapQuirkProxy(dovecot_slash.host, dovecot_slash.port)
    stalled = _imap(proxy, user, password)
    working = _imap(proxy, user, password)
    proxy.stall(after_bytes=0, seconds=60)
    stalled.socket().sendall(b"n NOOP\r\n")  # the first connection is now silent for a minute
    time.sleep(0.2)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2
    for imap in (stalled, working):
        with pytest.raises((OSError, IMAPClientError)):
            imap.noop()
        imap.shutdown()
    assert set(threading.enumerate()) == before
    assert proxy.active == 0
