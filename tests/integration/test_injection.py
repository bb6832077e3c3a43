"""Control characters never reach an IMAP command line: a listener records every byte the engine sends."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from engine.controls import ControlCharacterError
from engine.errors import FolderError
from engine.imap import ImapEndpoint, ImapSession, Security

_GREETING = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN UNSELECT] fake ready\r\n"


class _RecordingImapServer:
    """A one-connection-at-a-time IMAP listener that accepts any LOGIN and records the raw bytes received."""

    def __init__(self) -> None:
        self.received = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stopping = threading.Event()
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(10)
            with connection:
                self._converse(connection)

    def _converse(self, connection: socket.socket) -> None:
        connection.sendall(_GREETING)
        pending = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            self.received += chunk
            pending += chunk
            while b"\r\n" in pending:
                line, pending = pending.split(b"\r\n", 1)
                tag, _, rest = line.partition(b" ")
                command = rest.split(b" ", 1)[0].upper()
                if command == b"CAPABILITY":
                    connection.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN UNSELECT\r\n" + tag + b" OK done\r\n")
                elif command in (b"SELECT", b"EXAMINE"):
                    connection.sendall(b"* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n"
                                       + tag + b" OK [READ-ONLY] done\r\n")
                elif command == b"LOGOUT":
                    connection.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                    return
                else:
                    connection.sendall(tag + b" OK done\r\n")

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def server() -> Iterator[_RecordingImapServer]:
    recording = _RecordingImapServer()
    yield recording
    recording.close()


def _endpoint(port: int, **logins: str) -> ImapEndpoint:
    return ImapEndpoint(**{"host": "127.0.0.1", "port": port, "security": Security.NONE, "user": "terry",
                           "password": "Pa$$word1", **logins})  # type: ignore[arg-type]


def _commands(received: bytes) -> list[bytes]:
    return [line.split(b" ")[1].upper() for line in bytes(received).split(b"\r\n") if b" " in line]


def test_a_clean_login_reaches_the_listener(server: _RecordingImapServer) -> None:
    with ImapSession(_endpoint(server.port)):
        pass
    assert b'LOGIN terry "Pa$$word1"' in server.received or b'LOGIN "terry" "Pa$$word1"' in server.received


@pytest.mark.parametrize("field", ["user", "password", "authzid"])
@pytest.mark.parametrize("injected", ["cr18\r\nA1 DELETE INBOX", "cr18\rA1 DELETE INBOX", "cr18\nA1 DELETE INBOX",
                                      "cr18\x00admin", "cr18\x1b", "cr18\x7f"],
                         ids=["crlf", "cr", "lf", "nul", "esc", "del"])
def test_an_injected_login_value_is_refused_and_never_sent(server: _RecordingImapServer, field: str,
                                                           injected: str) -> None:
    with pytest.raises(ControlCharacterError) as caught:
        ImapSession(_endpoint(server.port, **{field: injected}))
    assert "control character" in str(caught.value) and "DELETE" not in str(caught.value)
    commands = _commands(server.received)
    assert b"LOGIN" not in commands and b"AUTHENTICATE" not in commands
    assert b"DELETE" not in server.received and b"cr18" not in server.received


def test_a_tab_in_a_password_is_sent_in_its_quoted_string(server: _RecordingImapServer) -> None:
    with ImapSession(_endpoint(server.port, password="pa\tss")):
        pass
    assert b'"pa\tss"' in server.received


def test_folder_names_go_out_encoded_and_a_control_byte_never_does(server: _RecordingImapServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with ImapSession(_endpoint(server.port)) as session:
        session.select("In\r\nA1 DELETE INBOX", readonly=True)
        assert b'EXAMINE "In&AA0ACg-A1 DELETE INBOX"\r\n' in server.received
        monkeypatch.setattr(session.client, "folder_encode", False)
        sent = len(server.received)
        with pytest.raises(FolderError, match="control character"):
            session.create_folder("In\r\nA1 DELETE INBOX")
        with pytest.raises(FolderError, match="control character"):
            session.select("In\x00box", readonly=False)
        assert len(server.received) == sent
