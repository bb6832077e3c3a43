"""Two writers appending into one Maildir folder at once: unique temporary names, nothing fails."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.imap import OutgoingMessage
from engine.maildir import MaildirTarget

MESSAGES = 150
ROUNDS = 4


def _messages() -> list[OutgoingMessage]:
    out = []
    for n in range(MESSAGES):
        body = f"Message-ID: <{n}@contoso.edu>\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()
        out.append(OutgoingMessage(
            key=f"k{n:04d}", body=body, flags=frozenset({"\\Seen", "$Label1"}),
            internaldate=datetime(2024, 5, 1, 12, n % 60, tzinfo=timezone.utc),
            fingerprint=hashlib.sha256(body).hexdigest(),
        ))
    return out


def _firsts() -> list[int]:
    return list(range(0, MESSAGES, 10))


def test_two_writers_append_the_same_keys_into_one_folder_at_once(tmp_path: Path) -> None:
    messages = _messages()
    start = threading.Barrier(2)
    failures: list[BaseException] = []
    refs: dict[int, list[list[str | None]]] = {0: [], 1: []}

    def write(writer: int) -> None:
        target = MaildirTarget(tmp_path / "Maildir", fsync=False)
        try:
            start.wait()
            for _ in range(ROUNDS):
                for first in _firsts():
                    refs[writer].append(target.append("INBOX", messages[first:first + 10]))
        except BaseException as exc:  # noqa: BLE001 - any failure of a writer fails the test
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert failures == []
    expected = [[m.key for m in messages[first:first + 10]] for first in _firsts()] * ROUNDS
    assert refs == {0: expected, 1: expected}
    cur = sorted(os.listdir(tmp_path / "Maildir" / "cur"))
    # One file per key, named from the key (what the engine looks a message up by after a crash).
    assert [name.split(",", 1)[0] for name in cur] == [m.key for m in messages]
    assert os.listdir(tmp_path / "Maildir" / "tmp") == []
    for message in messages[:5]:
        stored = next(tmp_path.joinpath("Maildir", "cur").glob(f"{message.key},*"))
        assert stored.read_bytes() == message.body
        assert stored.stat().st_mtime == message.internaldate.timestamp()


def test_a_writer_between_another_writers_write_and_rename_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The interleaving that failed in a service whose batch shared one Maildir: writer B writes and
    # renames a message while writer A's copy of it is still in tmp/.
    message = _messages()[0]
    real_utime = os.utime
    interleaved: list[BaseException | None] = []

    def utime_after_the_other_writer(path: Path, times: tuple[float, float]) -> None:
        if not interleaved:
            interleaved.append(None)
            other = threading.Thread(target=lambda: MaildirTarget(tmp_path / "Maildir", fsync=False).append(
                "INBOX", [message]))
            other.start()
            other.join()
        real_utime(path, times)

    monkeypatch.setattr(os, "utime", utime_after_the_other_writer)
    assert MaildirTarget(tmp_path / "Maildir", fsync=False).append("INBOX", [message]) == [message.key]
    assert interleaved == [None]
    [stored] = (tmp_path / "Maildir" / "cur").iterdir()
    assert stored.name.startswith(f"{message.key},") and stored.read_bytes() == message.body
    assert os.listdir(tmp_path / "Maildir" / "tmp") == []
