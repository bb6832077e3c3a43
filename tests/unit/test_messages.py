"""Message identity and flag rules."""

import hashlib
import random
from datetime import datetime, timedelta, timezone

from engine.messages import _raw_fields, body_digest, identity_digests, meta_from_fetch, normalize_flags, target_flags

WHEN = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))

HEADERS = (
    b"Message-ID: <a@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: Z\xc3\xbcrich \xe2\x82\xac\r\n\r\n"
)


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


def test_fields_are_read_from_raw_bytes_unfolded_first_value_first() -> None:
    block = b"Subject: one\r\n  two\r\n\tthree\r\nsubject: second\r\nFrom:a\xff\nTo: x\r\n\r\nCc: after the end\r\n"
    fields = _raw_fields(block)
    assert b" ".join(fields[b"subject"].split()) == b"one two three"
    assert fields[b"from"] == b"a\xff"
    assert fields[b"to"] == b" x\r"  # as sent; blanks and line ends are folded by the callers
    assert b"cc" not in fields


def test_identity_survives_what_servers_do_to_headers() -> None:
    """Cyrus writes X for each 8-bit header byte, other servers '?'; servers fold, unfold and
    turn bare LF into CRLF: none of it changes the identity, while the exact digest tells."""
    identity, exact = identity_digests(HEADERS)
    munged = HEADERS.replace("Zürich €".encode(), b"ZXXrich XXX")
    questioned = HEADERS.replace("Zürich €".encode(), b"Z??rich ???")
    refolded = HEADERS.replace(b"Subject: ", b"Subject:\r\n ").replace(b"\r\n", b"\n")
    for changed in (munged, questioned, refolded):
        assert identity_digests(changed)[0] == identity
    assert identity_digests(munged)[1] != exact
    assert identity_digests(refolded)[1] == exact


def test_identity_tells_messages_apart_by_any_identifying_field() -> None:
    identity = identity_digests(HEADERS)[0]
    for old, new in [(b"<a@example.org>", b"<b@example.org>"), (b"10:00:00", b"10:00:01"),
                     (b"Ann", b"Anne"), (b"bob@", b"rob@"), (b"Subject: Z", b"Subject: Y")]:
        assert identity_digests(HEADERS.replace(old, new))[0] != identity, new


def test_identity_ignores_the_date_and_size_servers_change() -> None:
    one = meta_from_fetch(1, 100, WHEN, (), HEADERS, None)
    two = meta_from_fetch(2, 102, WHEN + timedelta(days=3), (b"\\Seen",), HEADERS, None)
    assert one.fingerprint == two.fingerprint


def test_body_digest_survives_line_ends_trailing_blanks_and_header_munging() -> None:
    message = HEADERS + b"Hello\r\nworld\r\n"
    digest = body_digest(message)
    assert body_digest(message + b"\r\n") == digest
    assert body_digest(message.replace(b"\r\n", b"\n")) == digest
    assert body_digest(message.replace("Zürich €".encode(), b"ZXXrich XXX")) == digest
    assert body_digest(message.replace(b"world", b"World")) != digest
    # 8-bit bytes in the body are content: they count
    assert body_digest(message.replace(b"Hello", "Héllo".encode())) != digest


def test_meta_decodes_subject_for_reports() -> None:
    meta = meta_from_fetch(
        7, 5, WHEN, [b"\\Seen"], b"Message-ID: <m@x>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Thu, 4 Mar 2021\r\n\r\n", 42
    )
    assert meta.subject == "Grüße"
    assert meta.date == "Thu, 4 Mar 2021"
    assert meta.flags == {"\\Seen"}
    assert meta.modseq == 42
    raw = meta_from_fetch(8, 5, WHEN, (), "Subject: caf\u00e9\r\n\r\n".encode(), None)
    assert raw.subject == "café"


def _reference_fields(block: bytes) -> dict[bytes, bytes]:
    """A line-by-line reading of a header block, the plain way: lines split at LF (a CR before
    it dropped), a line starting with a blank continues the field, the first empty line ends."""
    out: dict[bytes, bytes] = {}
    name: bytes | None = None
    value: list[bytes] = []
    for line in block.split(b"\n"):
        line = line.removesuffix(b"\r")
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value.append(line)
            continue
        if name is not None:
            out.setdefault(name, b" ".join(value))
        name = None
        if not line:
            break
        head, colon, rest = line.partition(b":")
        if colon and head and all(33 <= c <= 126 for c in head):
            name, value = head.lower(), [rest]
    if name is not None:
        out.setdefault(name, b" ".join(value))
    return out


def test_random_header_blocks_read_as_the_plain_line_by_line_reading_does() -> None:
    """The fields (blanks folded) are what a plain reading gives, for any bytes a server sends."""
    rng = random.Random(20261208)
    pieces = [b"Message-ID", b"Subject", b"From", b"To", b"Date", b"subject", b"X-A", b":", b": ", b" ", b"\t",
              b"\r\n", b"\r", b"\n", b"value", b"<x@y>", b"\xc3\xa9", b"From ", b"\r\n ", b"\r\n\t", b"\r\n\r\n",
              b"X", b" X ", b"?"]
    for _ in range(20_000):
        block = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        ours = {k: b" ".join(v.split()) for k, v in _raw_fields(block).items()}
        plain = {k: b" ".join(v.split()) for k, v in _reference_fields(block).items()}
        assert ours == plain, block
        values = [plain.get(name, b"") for name in (b"message-id", b"date", b"from", b"to", b"subject")]
        unstable = bytes(range(0x80, 0x100)) + b"X?"
        tolerant = b"\n".join(b" ".join(v.translate(None, unstable).split()) for v in values)
        assert identity_digests(block) == (hashlib.sha256(tolerant).hexdigest()[:32],
                                           hashlib.sha256(b"\n".join(values)).hexdigest()[:32]), block
