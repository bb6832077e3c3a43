"""Message identity and flag rules."""

import random
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser

import pytest

from engine.messages import IDENTITY_HEADERS, _plain_headers, fingerprint, meta_from_fetch, normalize_flags, target_flags

WHEN = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))


def test_flags_are_canonical_and_recent_is_dropped() -> None:
    assert normalize_flags([b"\\SEEN", b"\\Recent", b"$Label1", "\\flagged", b"\\X-Custom"]) == {
        "\\Seen",
        "\\Flagged",
        "$Label1",
    }


def test_target_flags_keep_only_permitted_keywords() -> None:
    flags = frozenset({"\\Seen", "$Label1", "Work"})
    assert target_flags(flags, None) == flags
    assert target_flags(flags, frozenset({"Work"})) == {"\\Seen", "Work"}


def test_fingerprint_depends_on_message_id_date_and_size() -> None:
    base = fingerprint("<a@x>", WHEN, 100, "h")
    assert base == fingerprint(" <a@x> ", WHEN.astimezone(timezone.utc), 100, "other")
    assert base != fingerprint("<b@x>", WHEN, 100, "h")
    assert base != fingerprint("<a@x>", WHEN + timedelta(seconds=1), 100, "h")
    assert base != fingerprint("<a@x>", WHEN, 101, "h")


def test_messages_without_message_id_are_told_apart_by_headers() -> None:
    one = meta_from_fetch(1, 10, WHEN, (), b"Subject: one\r\nFrom: a@x\r\n\r\n", None)
    two = meta_from_fetch(2, 10, WHEN, (), b"Subject: two\r\nFrom: a@x\r\n\r\n", None)
    again = meta_from_fetch(9, 10, WHEN, (), b"Subject:  one\r\nFrom: a@x\r\n\r\n", None)
    assert one.fingerprint != two.fingerprint
    assert one.fingerprint == again.fingerprint


def test_meta_decodes_subject_for_reports() -> None:
    meta = meta_from_fetch(
        7, 5, WHEN, [b"\\Seen"], b"Message-ID: <m@x>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Thu, 4 Mar 2021\r\n\r\n", 42
    )
    assert meta.subject == "Grüße"
    assert meta.date == "Thu, 4 Mar 2021"
    assert meta.flags == {"\\Seen"}
    assert meta.modseq == 42
    assert meta.fingerprint == fingerprint("<m@x>", WHEN, 5, "ignored")


def _email_package_values(block: bytes) -> dict[str, object]:
    parsed = BytesHeaderParser().parsebytes(block)
    return {name: parsed.get(name) for name in IDENTITY_HEADERS}


@pytest.mark.parametrize("block", [
    b"Message-ID: <a@b>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nFrom: A <a@b.c>\r\nTo: b@c.d\r\nSubject: hi\r\n\r\n",
    b"Subject:\r\n folded only\r\n\r\n",
    b"Subject: one\r\n  two\r\n\tthree  \r\nsubject: second is ignored\r\nMESSAGE-id:<x@y>\r\n\r\n",
    b"To: a\r\n\r\nSubject: after the blank line\r\n",
    b"",
    b"\r\n",
])
def test_plain_header_blocks_read_as_the_email_package_reads_them(block: bytes) -> None:
    plain = _plain_headers(block)
    assert plain is not None
    assert {name: plain.get(name.lower()) for name in IDENTITY_HEADERS} == _email_package_values(block)


@pytest.mark.parametrize("block", [
    "Subject: caf\u00e9\r\n\r\n".encode(),       # not ASCII
    b"Subject: bare\nLF\r\n\r\n",                 # not CRLF
    b" continuation first\r\nSubject: x\r\n\r\n",
    b"From someone Mon Jan 1\r\nSubject: x\r\n\r\n",  # mbox From_ line
    b"Sub ject: x\r\n\r\n",
])
def test_other_header_blocks_are_left_to_the_email_package(block: bytes) -> None:
    assert _plain_headers(block) is None


def test_random_header_blocks_never_read_differently_from_the_email_package() -> None:
    """The fingerprint of every message depends on these values: a difference would make a
    message copied by an older version look new after a UIDVALIDITY change."""
    rng = random.Random(20261130)
    pieces = [b"Message-ID", b"Subject", b"From", b"To", b"Date", b"subject", b"X-A", b":", b": ", b" ", b"\t",
              b"\r\n", b"\r", b"\n", b"value", b"<x@y>", b"\xc3\xa9", b"From ", b"\r\n ", b"\r\n\t", b"\r\n\r\n"]
    fast = 0
    for _ in range(20_000):
        block = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        plain = _plain_headers(block)
        if plain is None:
            continue
        fast += 1
        assert {name: plain.get(name.lower()) for name in IDENTITY_HEADERS} == _email_package_values(block), block
    assert fast > 2_000  # the comparison really ran on many blocks
