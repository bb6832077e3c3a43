"""Status mails through a real SMTP listener: content, MigrationErrors.csv, TLS, AUTH, failures."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest

from engine.errors import ConfigurationError, MigrationError
from engine.notify import (
    BatchCounts,
    BatchNotice,
    ErrorRow,
    NoticeKind,
    NotificationError,
    SmtpSecurity,
    SmtpSettings,
    build_message,
    errors_csv,
    send_notice,
)
from tests.servers.smtp import ReceivedMessage, SmtpListener

pytestmark = pytest.mark.integration

#: ``smtp_listener(**SmtpListener options) -> SmtpListener`` (stopped after the test)
NewListener = Callable[..., SmtpListener]

SENDER = "mailshift@contoso.edu"
ADMINS = ("super-user@contoso.edu", "helpdesk@contoso.edu")
SMTP_USER = "relay-user"
SMTP_PASSWORD = "Sm7p-S3cret!pw"
CSV_PASSWORD = "Pa$$word1"
STARTED = datetime(2024, 5, 1, 9, 0, 0, tzinfo=timezone(timedelta(hours=2)))
FINISHED = STARTED + timedelta(hours=1, minutes=2, seconds=5)
HEADER = ["EmailAddress", "UserName", "ErrorMessage"]
SIGN_IN_ERROR = (
    "We couldn't sign in to the IMAP account. Check the user name and password, "
    'then resubmit the row. Server said: "NO [AUTHENTICATIONFAILED] Authentication failed."'
)


@pytest.fixture
def smtp_listener() -> Iterator[NewListener]:
    """Factory of :class:`SmtpListener` instances, all stopped when the test ends."""
    listeners: list[SmtpListener] = []

    def make(**options: Any) -> SmtpListener:
        listener = SmtpListener(**options)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.stop()


def settings_for(listener: SmtpListener, **overrides: Any) -> SmtpSettings:
    """Settings pointing at ``listener``: clear text on loopback unless overridden."""
    options: dict[str, Any] = {
        "host": listener.host,
        "port": listener.port,
        "sender": SENDER,
        "security": SmtpSecurity.NONE,
        "timeout": 5.0,
    }
    options.update(overrides)
    return SmtpSettings(**options)


def failed_row(email: str = "chrisc@contoso.edu", **extra: str) -> ErrorRow:
    return ErrorRow(
        email=email, user_name=f"administrator*{email.split('@')[0]}", error=SIGN_IN_ERROR,
        extra=extra,
    )


def initial_sync_notice(**overrides: Any) -> BatchNotice:
    """Seed 000's batch: three users, two synced, Chris Cannon failed to sign in."""
    options: dict[str, Any] = {
        "batch": "MigrationBatch1",
        "kind": NoticeKind.INITIAL_SYNC_FINISHED,
        "status": "SyncedWithErrors",
        "counts": BatchCounts(total=3, synced=2, failed=1),
        "started_at": STARTED,
        "finished_at": FINISHED,
        "recipients": ADMINS,
        "error_rows": [failed_row()],
    }
    options.update(overrides)
    return BatchNotice(**options)


def only_message(listener: SmtpListener) -> ReceivedMessage:
    [received] = listener.messages
    return received


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def subject_of(message: EmailMessage) -> str:
    """The subject as a mail client shows it.

    Python folds a long subject that holds a quoted name by moving it whole to a continuation
    line (``Subject:\r\n Migration...``), which is valid, and its parser then keeps the
    continuation's leading space, which clients drop.
    """
    return str(message["Subject"]).strip()


def attachments_of(message: EmailMessage) -> list[EmailMessage]:
    return list(message.iter_attachments())


def csv_rows(payload: bytes) -> list[list[str]]:
    assert payload.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(payload.decode("utf-8-sig"), newline="")))


def summary_fields(body: str) -> dict[str, str]:
    """The ``Name: value`` lines of the body's summary block."""
    fields = {}
    for line in body.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.isalpha() and value.startswith(" "):
            fields[name] = value.strip()
    return fields


def everything_readable(received: ReceivedMessage) -> str:
    """The raw message plus every part decoded, to search for leaked secrets."""
    parts = [received.raw.decode("utf-8", "replace")]
    for part in received.message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            parts.append(payload.decode("utf-8", "replace"))
    return "\n".join(parts)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def error_text(exc: BaseException) -> str:
    """What an admin or a log could ever see of ``exc``: message, repr, whole traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


# ----------------------------------------------------------------------------- content


def test_initial_sync_mail_reaches_every_recipient_with_subject_and_summary(
    smtp_listener: NewListener,
) -> None:
    listener = smtp_listener()
    notice = initial_sync_notice(user_lines=["terrya@contoso.edu: Synced, 1204 items"])

    send_notice(settings_for(listener), notice)

    received = only_message(listener)
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ADMINS
    assert received.login is None and not received.tls
    message = received.message
    assert message["From"] == SENDER
    assert [a.addr_spec for a in message["To"].addresses] == list(ADMINS)
    assert subject_of(message) == (
        'Migration batch "MigrationBatch1": initial sync finished, 2 of 3 mailboxes synced, '
        "1 failed"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    body = body_of(message)
    assert summary_fields(body) == {
        "Status": "SyncedWithErrors",
        "Started": "2024-05-01 09:00:00 UTC+02:00",
        "Finished": "2024-05-01 10:02:05 UTC+02:00",
        "Duration": "1 h 2 min 5 s",
        "TotalCount": "3",
        "SyncedCount": "2",
        "FinalizedCount": "0",
        "FailedCount": "1",
        "StoppedCount": "0",
        "PendingCount": "0",
    }
    assert "  terrya@contoso.edu: Synced, 1204 items" in body.splitlines()
    flat = " ".join(body.split())
    assert "run Start-MigrationBatch again to retry the failed mailboxes" in flat
    assert "The attached MigrationErrors.csv lists 1 mailbox" in flat
    assert "run Complete-Migration" in flat


def test_errors_csv_holds_exactly_the_rows_given_and_never_a_password(
    smtp_listener: NewListener,
) -> None:
    listener = smtp_listener()
    rows = [
        failed_row(Password=CSV_PASSWORD, UserRoot="/users/chris.cannon"),
        ErrorRow(
            email="zoë@contoso.edu",
            user_name="administrator*zoë.müller",
            error='Mailbox "zoë" not found,\r\nsecond line; a "quoted" word',
            extra={"PASSWORD": CSV_PASSWORD, "AdminPassword": "admin-" + CSV_PASSWORD},
        ),
        failed_row("annb@contoso.edu", password=CSV_PASSWORD, UserRoot="/users/ann.beebe"),
    ]
    notice = initial_sync_notice(counts=BatchCounts(total=5, synced=2, failed=3), error_rows=rows)

    send_notice(settings_for(listener), notice)

    received = only_message(listener)
    [attachment] = attachments_of(received.message)
    assert attachment.get_filename() == "MigrationErrors.csv"
    assert attachment.get_content_type() == "text/csv"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.count(b"\r\n") == 4 + 1  # 4 lines, and one CRLF inside a quoted cell
    assert payload.endswith(b"\r\n")
    assert csv_rows(payload) == [
        ["EmailAddress", "UserName", "UserRoot", "ErrorMessage"],
        ["chrisc@contoso.edu", "administrator*chrisc", "/users/chris.cannon", SIGN_IN_ERROR],
        [
            "zoë@contoso.edu",
            "administrator*zoë.müller",
            "",
            'Mailbox "zoë" not found,\r\nsecond line; a "quoted" word',
        ],
        ["annb@contoso.edu", "administrator*annb", "/users/ann.beebe", SIGN_IN_ERROR],
    ]
    assert CSV_PASSWORD not in everything_readable(received)


def test_error_row_drops_password_and_fixed_columns_whatever_their_case() -> None:
    row = ErrorRow(
        email="a@contoso.edu",
        user_name="a",
        error="e",
        extra={
            "EmailAddress": "a@contoso.edu",
            "username": "a",
            "PassWord": CSV_PASSWORD,
            "UserRoot": "/users/a",
            "errormessage": "old",
        },
    )

    assert dict(row.extra) == {"UserRoot": "/users/a"}
    with pytest.raises(TypeError):
        row.extra["Password"] = CSV_PASSWORD  # type: ignore[index]
    assert CSV_PASSWORD not in repr(row)


def test_formula_looking_values_are_neutralised_and_the_body_says_so(
    smtp_listener: NewListener,
) -> None:
    listener = smtp_listener()
    dangerous = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    rows = [
        ErrorRow(email=f"u{i}@contoso.edu", user_name=value, error=value, extra={"Note": value})
        for i, value in enumerate(dangerous)
    ]
    rows.append(ErrorRow(email="safe@contoso.edu", user_name="a=b", error="x-1 @ 2", extra={}))

    send_notice(settings_for(listener), initial_sync_notice(error_rows=rows))

    received = only_message(listener)
    [attachment] = attachments_of(received.message)
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    parsed = csv_rows(payload)
    assert parsed[0] == ["EmailAddress", "UserName", "Note", "ErrorMessage"]
    for value, row in zip(dangerous, parsed[1:], strict=False):
        assert row[1:] == ["'" + value] * 3
    assert parsed[-1] == ["safe@contoso.edu", "a=b", "", "x-1 @ 2"]
    assert "start with an apostrophe" in " ".join(body_of(received.message).split())


def test_errors_csv_has_bom_crlf_and_stable_extra_columns() -> None:
    rows = [
        ErrorRow("a@contoso.edu", "a", "first", {"UserRoot": "/a"}),
        ErrorRow("b@contoso.edu", "b", "second", {"Department": "Sales", "UserRoot": "/b"}),
    ]

    payload = errors_csv(rows)

    assert payload == errors_csv(rows)
    header = b"EmailAddress,UserName,UserRoot,Department,ErrorMessage\r\n"
    assert payload.startswith(b"\xef\xbb\xbf" + header)
    assert b"\n" not in payload.replace(b"\r\n", b"")
    assert csv_rows(payload)[1:] == [
        ["a@contoso.edu", "a", "/a", "", "first"],
        ["b@contoso.edu", "b", "/b", "Sales", "second"],
    ]
    assert csv_rows(errors_csv([])) == [HEADER]


def test_stopped_mail_counts_finished_mailboxes_and_lists_the_rest(
    smtp_listener: NewListener,
) -> None:
    listener = smtp_listener()
    stopped = "The batch was stopped before this mailbox finished; start the batch to resume it."
    notice = initial_sync_notice(
        kind=NoticeKind.STOPPED,
        status="Stopped",
        counts=BatchCounts(total=3, synced=1, stopped=1, pending=1),
        error_rows=[
            ErrorRow("annb@contoso.edu", "administrator*ann.beebe", stopped),
            ErrorRow("chrisc@contoso.edu", "administrator*chris.cannon", stopped),
        ],
    )

    send_notice(settings_for(listener), notice)

    message = only_message(listener).message
    assert subject_of(message) == (
        'Migration batch "MigrationBatch1": stopped, 1 of 3 mailboxes synced before the stop, '
        "2 not finished"
    )
    flat = " ".join(body_of(message).split())
    assert "1 of 3 mailboxes finished the initial sync before the batch was stopped" in flat
    assert "2 mailboxes did not finish: 1 in progress and 1 waiting" in flat
    assert "Run Start-MigrationBatch to resume them" in flat
    [attachment] = attachments_of(message)
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert [row[0] for row in csv_rows(payload)[1:]] == ["annb@contoso.edu", "chrisc@contoso.edu"]


def test_completed_mail_without_errors_has_no_attachment_and_says_so(
    smtp_listener: NewListener,
) -> None:
    listener = smtp_listener()
    notice = initial_sync_notice(
        kind=NoticeKind.COMPLETED,
        status="Completed",
        counts=BatchCounts(total=3, synced=3, finalized=3),
        error_rows=[],
    )

    send_notice(settings_for(listener), notice)

    message = only_message(listener).message
    assert subject_of(message) == (
        'Migration batch "MigrationBatch1": completed, 3 of 3 mailboxes finalized'
    )
    assert not message.is_multipart()
    assert attachments_of(message) == []
    flat = " ".join(body_of(message).split())
    assert "Final counts: 3 of 3 mailboxes completed, 0 failed." in flat
    assert "no MigrationErrors.csv is attached" in flat


def test_failed_mail_gives_the_reason_on_one_line() -> None:
    notice = initial_sync_notice(
        kind=NoticeKind.FAILED,
        status="Failed",
        counts=BatchCounts(total=3),
        error_rows=[],
        failure_reason="the IMAP server imap.contoso.edu:993\r\ncannot be reached",
    )

    message = build_message(notice, SENDER)

    assert subject_of(message) == (
        'Migration batch "MigrationBatch1": failed, 0 of 3 mailboxes synced'
    )
    flat = " ".join(body_of(message).split())
    assert "The batch failed: the IMAP server imap.contoso.edu:993 cannot be reached." in flat


def test_notice_validates_recipients_and_times() -> None:
    notice = initial_sync_notice(recipients=[" Super-User@contoso.edu", "super-user@CONTOSO.edu"])
    assert notice.recipients == ("Super-User@contoso.edu",)
    assert notice.duration == FINISHED - STARTED

    with pytest.raises(ConfigurationError, match="at least one recipient"):
        initial_sync_notice(recipients=[])
    with pytest.raises(ConfigurationError, match="not a valid e-mail address"):
        initial_sync_notice(recipients=["admin@contoso.edu\r\nBcc: spy@evil.example"])
    with pytest.raises(ConfigurationError, match="not a valid e-mail address"):
        initial_sync_notice(recipients=["admin"])
    with pytest.raises(ValueError, match="timezone-aware"):
        initial_sync_notice(started_at=STARTED.replace(tzinfo=None))
    with pytest.raises(ValueError, match="before"):
        initial_sync_notice(finished_at=STARTED - timedelta(seconds=1))
    with pytest.raises(ValueError, match="negative"):
        BatchCounts(total=3, failed=-1)


def test_batch_name_cannot_inject_headers(smtp_listener: NewListener) -> None:
    listener = smtp_listener()

    send_notice(settings_for(listener), initial_sync_notice(batch="Batch\r\nBcc: spy@evil.example"))

    received = only_message(listener)
    assert received.rcpt_tos == ADMINS
    assert received.message["Bcc"] is None
    assert subject_of(received.message).startswith('Migration batch "Batch Bcc: spy@evil.example":')


def test_non_ascii_text_travels_as_seven_bit(smtp_listener: NewListener) -> None:
    listener = smtp_listener()
    notice = initial_sync_notice(
        batch="Bätch Zoë", user_lines=["zoë@contoso.edu: Synced, 12 items"]
    )

    send_notice(settings_for(listener), notice)

    received = only_message(listener)
    assert received.raw.isascii()
    assert subject_of(received.message).startswith('Migration batch "Bätch Zoë": initial sync')
    assert "  zoë@contoso.edu: Synced, 12 items" in body_of(received.message).splitlines()


# ----------------------------------------------------------------------------- settings


def test_settings_defaults_are_starttls_on_587_with_verified_certificates() -> None:
    settings = SmtpSettings(host="smtp.contoso.edu", sender=SENDER)

    assert settings.security is SmtpSecurity.TLS
    assert settings.effective_port == 587
    assert dataclasses.replace(settings, security=SmtpSecurity.SSL).effective_port == 465
    assert dataclasses.replace(settings, security=SmtpSecurity.NONE).effective_port == 25
    context = settings.ssl_context()
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"


def test_password_never_in_repr_and_never_sent_in_clear_text_to_another_host() -> None:
    settings = SmtpSettings(
        host="smtp.contoso.edu", sender=SENDER, user=SMTP_USER, password=SMTP_PASSWORD
    )
    assert SMTP_PASSWORD not in repr(settings)
    assert SMTP_PASSWORD not in settings.display

    with pytest.raises(ConfigurationError, match="refusing to send the password") as refused:
        dataclasses.replace(settings, security=SmtpSecurity.NONE)
    assert "smtp.contoso.edu" in str(refused.value)
    assert SMTP_PASSWORD not in error_text(refused.value)
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST."):
        dataclasses.replace(settings, host=loopback, security=SmtpSecurity.NONE)

    with pytest.raises(ConfigurationError, match="ASCII") as non_ascii:
        dataclasses.replace(settings, password="pässwörd-" + SMTP_PASSWORD)
    assert SMTP_PASSWORD not in error_text(non_ascii.value)
    with pytest.raises(ConfigurationError, match="refusing to send the password"):
        SmtpSettings(
            host="smtp.contoso.edu",
            sender=SENDER,
            security="none",  # type: ignore[arg-type]  # as a configuration file gives it
            user=SMTP_USER,
            password=SMTP_PASSWORD,
        )
    with pytest.raises(ConfigurationError, match="unknown SMTP security 'StartTls'"):
        SmtpSettings(
            host="smtp.contoso.edu", sender=SENDER, security="StartTls"  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigurationError, match="together"):
        SmtpSettings(host="smtp.contoso.edu", sender=SENDER, user=SMTP_USER)
    with pytest.raises(ConfigurationError, match="port"):
        SmtpSettings(host="smtp.contoso.edu", sender=SENDER, port=70000)
    with pytest.raises(ConfigurationError, match="sender"):
        SmtpSettings(host="smtp.contoso.edu", sender="not an address")


# ----------------------------------------------------------------------------- TLS


@pytest.mark.parametrize(
    ("listener_security", "security"),
    [("starttls", SmtpSecurity.TLS), ("ssl", SmtpSecurity.SSL)],
)
def test_self_signed_certificate_is_refused_by_default(
    smtp_listener: NewListener, listener_security: str, security: SmtpSecurity
) -> None:
    listener = smtp_listener(security=listener_security)

    with pytest.raises(NotificationError) as refused:
        send_notice(settings_for(listener, security=security), initial_sync_notice())

    text = str(refused.value)
    assert f"{listener.host}:{listener.port} ({security.value})" in text
    assert "certificate is not trusted (self-signed certificate)" in text
    assert "accept untrusted certificates" in text
    assert not refused.value.transient
    assert isinstance(refused.value, MigrationError)
    assert listener.messages == []


@pytest.mark.parametrize(
    ("listener_security", "security"),
    [("starttls", SmtpSecurity.TLS), ("ssl", SmtpSecurity.SSL)],
)
def test_self_signed_certificate_works_when_accepted(
    smtp_listener: NewListener, listener_security: str, security: SmtpSecurity
) -> None:
    listener = smtp_listener(security=listener_security)
    settings = settings_for(listener, security=security, accept_untrusted_certificates=True)

    send_notice(settings, initial_sync_notice())

    received = only_message(listener)
    assert received.tls
    assert received.rcpt_tos == ADMINS


def test_starttls_never_falls_back_to_clear_text(smtp_listener: NewListener) -> None:
    listener = smtp_listener()  # offers no STARTTLS
    settings = settings_for(listener, security=SmtpSecurity.TLS, accept_untrusted_certificates=True)

    expected = "while starting TLS: STARTTLS extension not supported"
    with pytest.raises(NotificationError, match=expected):
        send_notice(settings, initial_sync_notice())

    assert listener.messages == []


# ----------------------------------------------------------------------------- AUTH


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_auth_over_starttls(smtp_listener: NewListener, mechanism: str) -> None:
    listener = smtp_listener(
        security="starttls", credentials=(SMTP_USER, SMTP_PASSWORD), auth_mechanisms=[mechanism]
    )
    settings = settings_for(
        listener,
        security=SmtpSecurity.TLS,
        accept_untrusted_certificates=True,
        user=SMTP_USER,
        password=SMTP_PASSWORD,
    )

    send_notice(settings, initial_sync_notice())

    received = only_message(listener)
    assert received.login == SMTP_USER and received.tls


def test_auth_in_clear_text_is_allowed_on_loopback(smtp_listener: NewListener) -> None:
    listener = smtp_listener(credentials=(SMTP_USER, SMTP_PASSWORD))

    send_notice(
        settings_for(listener, user=SMTP_USER, password=SMTP_PASSWORD), initial_sync_notice()
    )

    received = only_message(listener)
    assert received.login == SMTP_USER and not received.tls


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_refused_credentials_never_show_the_password(
    smtp_listener: NewListener, mechanism: str
) -> None:
    listener = smtp_listener(
        security="starttls", credentials=(SMTP_USER, "the-right-one"), auth_mechanisms=[mechanism]
    )
    settings = settings_for(
        listener,
        security=SmtpSecurity.TLS,
        accept_untrusted_certificates=True,
        user=SMTP_USER,
        password=SMTP_PASSWORD,
    )

    with pytest.raises(NotificationError) as refused:
        send_notice(settings, initial_sync_notice())

    text = error_text(refused.value)
    assert str(refused.value) == (
        f'status mail for batch "MigrationBatch1" not sent through SMTP server '
        f"{SMTP_USER}@{listener.host}:{listener.port} (Tls), while logging in: the server "
        f"refused the credentials of '{SMTP_USER}' (535 5.7.8 Authentication credentials invalid)"
    )
    assert refused.value.__cause__ is None
    for secret in (
        SMTP_PASSWORD,
        base64.b64encode(SMTP_PASSWORD.encode()).decode(),
        base64.b64encode(f"\0{SMTP_USER}\0{SMTP_PASSWORD}".encode()).decode(),
    ):
        assert secret not in text
    assert listener.messages == []


def test_no_login_without_a_configured_user(smtp_listener: NewListener) -> None:
    listener = smtp_listener(credentials=(SMTP_USER, SMTP_PASSWORD))

    expected = f"while sending: the server refused the sender {SENDER} \\(530 5.7.0 Authentication"
    with pytest.raises(NotificationError, match=expected):
        send_notice(settings_for(listener), initial_sync_notice())

    assert listener.messages == []


# ----------------------------------------------------------------------------- failures


def test_unreachable_server_raises_a_clear_transient_error() -> None:
    port = closed_port()
    settings = SmtpSettings(
        host="127.0.0.1", port=port, sender=SENDER, security=SmtpSecurity.NONE, timeout=5.0
    )

    with pytest.raises(NotificationError) as refused:
        send_notice(settings, initial_sync_notice())

    assert str(refused.value) == (
        f'status mail for batch "MigrationBatch1" not sent through SMTP server 127.0.0.1:{port} '
        "(None), while connecting: connection refused (is an SMTP server listening on that port?)"
    )
    assert refused.value.transient


def test_silent_server_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never greets
        port = int(silent.getsockname()[1])
        settings = SmtpSettings(
            host="127.0.0.1", port=port, sender=SENDER, security=SmtpSecurity.NONE, timeout=0.3
        )
        began = time.monotonic()

        expected = "while connecting: no answer within 0.3 s"
        with pytest.raises(NotificationError, match=expected) as late:
            send_notice(settings, initial_sync_notice())

        assert time.monotonic() - began < 3
        assert late.value.transient


def test_recipients_refused_by_the_server_are_named(smtp_listener: NewListener) -> None:
    listener = smtp_listener(refused_recipients=["helpdesk@contoso.edu"])

    with pytest.raises(NotificationError) as partly:
        send_notice(settings_for(listener), initial_sync_notice())

    assert "but the server refused helpdesk@contoso.edu (550 5.1.1 No such user here)" in str(
        partly.value
    )
    assert "the other recipients got it" in str(partly.value)
    assert not partly.value.transient
    assert only_message(listener).rcpt_tos == ("super-user@contoso.edu",)

    everyone = smtp_listener(refused_recipients=ADMINS)
    expected = "while sending: the server refused every recipient"
    with pytest.raises(NotificationError, match=expected):
        send_notice(settings_for(everyone), initial_sync_notice())
    assert everyone.messages == []
