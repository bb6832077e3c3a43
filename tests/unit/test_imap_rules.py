"""Pure rules of the IMAP adapter: throttling texts and APPENDUID parsing."""

import pytest

from engine import defaults
from engine.errors import ConfigurationError
from imapclient.response_parser import parse_fetch_response

from engine.imap import (
    ImapEndpoint,
    Security,
    _appenduids,
    _fast_bodies,
    _fast_meta,
    _parsed_meta,
    _swapped_master_login,
    throttle_pause,
)


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


def _general_bodies(data: list[object]) -> dict[int, bytes]:
    parsed = parse_fetch_response(data, False, True)
    return {uid: row[b"BODY[]"] for uid, row in parsed.items()}


def test_body_fetch_answers_in_dovecot_shape_read_like_the_general_parser() -> None:
    data: list[object] = [(b"1 (UID 17 BODY[] {5}", b"hello"), b")", (b"2 (UID 19 BODY[] {0}", b""), b")",
                          (b"3 (uid 20 body[] {8}", b"a)\r\nb{1}"), b")"]
    assert _fast_bodies(data) == _general_bodies(data) == {17: b"hello", 19: b"", 20: b"a)\r\nb{1}"}


@pytest.mark.parametrize("data", [
    [(b"1 (BODY[] {5}", b"hello"), b" UID 17)"],                             # UID after the body
    [(b"1 (UID 17 BODY[] {5}", b"hello"), b")", b"2 (FLAGS (\\Seen))"],      # unsolicited FETCH
    [(b"1 (UID 17 BODY[] {6}", b"hello"), b")"],                             # length does not match
], ids=["uid-last", "unsolicited", "length"])
def test_other_body_fetch_shapes_go_to_the_general_parser(data: list[object]) -> None:
    assert _fast_bodies(data) is None


def test_metadata_answers_in_dovecot_shape_read_like_the_general_parser() -> None:
    headers = b"Message-ID: <a@b>\r\nSubject: hi\r\n\r\n"
    data: list[object] = [
        (b'4 (UID 40 RFC822.SIZE 1234 INTERNALDATE "02-Mar-2021 10:11:12 +0100" FLAGS (\\Seen $Work) MODSEQ (77) '
         b"BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)] {%d}" % len(headers), headers), b")",
        (b'5 (UID 41 RFC822.SIZE 9 INTERNALDATE "03-Mar-2021 00:00:00 -0500" FLAGS () '
         b"BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)] {2}", b"\r\n"), b")",
    ]
    fast = _fast_meta(data)
    assert fast is not None and fast == _parsed_meta(parse_fetch_response(data, False, True))
    assert [row[0] for row in fast] == [40, 41] and fast[0][5] == 77 and fast[1][5] is None
    reordered: list[object] = [(b'4 (FLAGS (\\Seen) UID 40 RFC822.SIZE 1234 INTERNALDATE "02-Mar-2021 10:11:12 +0100" '
                                b"BODY[HEADER.FIELDS (MESSAGE-ID)] {2}", b"\r\n"), b")"]
    assert _fast_meta(reordered) is None


def test_internaldates_read_directly_equal_imapclients_reading() -> None:
    import random
    from datetime import datetime as dt
    from datetime import timedelta as td
    from datetime import timezone as tz

    from imapclient.datetime_util import datetime_to_INTERNALDATE, parse_to_datetime

    from engine.imap import internaldate

    rng = random.Random(8)
    for _ in range(2000):
        offset = tz(td(minutes=rng.choice([-1, 1]) * rng.randrange(0, 14 * 60, 15)))
        when = dt(2000, 1, 1, tzinfo=offset) + td(seconds=rng.randrange(0, 30 * 365 * 86400))
        raw = datetime_to_INTERNALDATE(when).encode()
        for spelling in (raw, raw.lstrip(b"0"), b" " + raw.lstrip(b"0") if raw.startswith(b"0") else raw):
            ours, theirs = internaldate(spelling), parse_to_datetime(spelling, normalise=False)
            assert ours == theirs and ours.utcoffset() == theirs.utcoffset(), spelling
    assert internaldate(b"1-Jan-2020 00:00:00 GMT") == parse_to_datetime(b"1-Jan-2020 00:00:00 GMT", normalise=False)
