"""Message identity and flag rules."""

from datetime import datetime, timedelta, timezone

from engine.messages import fingerprint, meta_from_fetch, normalize_flags, target_flags

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
