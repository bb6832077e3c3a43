"""Status e-mails about a migration batch, sent over SMTP, with MigrationErrors.csv attached.

As in Outlook Live's IMAP migration, an administrator gets a status mail when a batch finishes
its initial sync, when it is stopped, when it is completed (and here also when it fails). The
mail gives the counts and durations and says what to do next; the mailboxes that need attention
are listed in the attached ``MigrationErrors.csv``, one row each, with the reason in its
``ErrorMessage`` column, so the admin can fix them and resubmit those rows.

The batch layer builds a :class:`BatchNotice` from plain data; :func:`build_message` turns it
into a message without any IO and :func:`send_notice` hands it to an SMTP server. Passwords
never reach the mail: :class:`ErrorRow` drops every column named like a password, and the SMTP
password stays out of reprs, logs and error messages.
"""

from __future__ import annotations

import base64
import csv
import io
import ipaddress
import logging
import smtplib
import socket
import ssl
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from types import MappingProxyType

from engine import defaults
from engine.controls import ControlCharacterError, control_character, describe_control, refuse_controls
from engine.errors import ConfigurationError, MigrationError
from engine.tls import client_context

__all__ = [
    "ERRORS_CSV_NAME",
    "BatchCounts",
    "BatchNotice",
    "ErrorRow",
    "NoticeKind",
    "NotificationError",
    "SmtpSecurity",
    "SmtpSettings",
    "build_message",
    "errors_csv",
    "send_notice",
]

log = logging.getLogger(__name__)

#: File name of the attached error report, as in Outlook Live.
ERRORS_CSV_NAME = "MigrationErrors.csv"

_EMAIL_COLUMN = "EmailAddress"
_USER_COLUMN = "UserName"
_ERROR_COLUMN = "ErrorMessage"

#: Extra columns dropped from error rows, compared case-insensitively: the fixed columns (the
#: row has them already) and, above all, secrets.
_RESERVED_COLUMNS = frozenset(c.casefold() for c in (_EMAIL_COLUMN, _USER_COLUMN, _ERROR_COLUMN))
_SECRET_MARK = "password"

#: First characters that make Excel, LibreOffice or Google Sheets read a cell as a formula
#: (OWASP "CSV injection"); such cells get a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_BODY_WIDTH = 76

#: Non-ASCII text goes out quoted-printable or base64, so no relay needs 8BITMIME.
_POLICY = policy.default.clone(cte_type="7bit")


class NotificationError(MigrationError):
    """Raised when a status mail cannot be sent; names the server and why, never the password."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        #: True for network trouble and 4xx answers: the same mail may go through later.
        self.transient = transient


class NoticeKind(StrEnum):
    """Which event a status mail reports."""

    INITIAL_SYNC_FINISHED = "InitialSyncFinished"
    STOPPED = "Stopped"
    COMPLETED = "Completed"
    FAILED = "Failed"


class SmtpSecurity(StrEnum):
    """Transport security of the SMTP connection, named like the IMAP endpoint's ``Security``.

    ``Tls`` is STARTTLS (RFC 3207), by default on the submission port 587; ``Ssl`` is implicit
    TLS (RFC 8314), by default on 465; ``None`` is clear text, by default on 25.
    """

    NONE = "None"
    SSL = "Ssl"
    TLS = "Tls"


_DEFAULT_PORTS = {SmtpSecurity.NONE: 25, SmtpSecurity.SSL: 465, SmtpSecurity.TLS: 587}


def _checked_address(text: str, what: str) -> str:
    """The bare address ``text`` names, or ConfigurationError (catches header injection too)."""
    control = control_character(text.strip())
    if control is not None:
        raise ControlCharacterError(f"{what} {text!r} is not a valid e-mail address: it holds a control "
                                    f"character, {describe_control(control)}")
    try:
        address = Address(addr_spec=text.strip())
    except (ValueError, IndexError) as exc:  # email's header defects are ValueErrors
        raise ConfigurationError(f"{what} {text!r} is not a valid e-mail address: {exc}") from exc
    if not address.domain:
        raise ConfigurationError(f"{what} {text!r} is not a valid e-mail address: no domain")
    return address.addr_spec


def _is_loopback(host: str) -> bool:
    """True for ``localhost`` names and loopback IP literals; names are never resolved."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _security(value: str) -> SmtpSecurity:
    """The security mode ``value`` names, in any case (configuration files hold strings)."""
    for member in SmtpSecurity:
        if member.value.lower() == str(value).strip().lower():
            return member
    choices = ", ".join(m.value for m in SmtpSecurity)
    raise ConfigurationError(f"unknown SMTP security {value!r}: use one of {choices}")


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the SMTP server that relays the status mails.

    Defaults: STARTTLS (``Tls``) on the submission port 587, certificates verified against the
    system's trust store (host name included), no login. ``user`` and ``password`` go together;
    the password is sent only over TLS, or in clear text to a relay on this machine
    (``localhost`` or a loopback address, compared as written, never resolved).

    Attributes:
        host: Server name or IP address.
        sender: Address the mails come from (envelope and ``From``).
        port: TCP port; None picks the default of ``security`` (25, 465 or 587).
        security: ``None``, ``Ssl`` (implicit TLS) or ``Tls`` (STARTTLS, required: a server
            that does not offer it is an error, never a fallback to clear text). A string is
            accepted in any case and stored as the enum member.
        user: Login name for AUTH, or None to send without logging in.
        password: Password of ``user``; left out of ``repr``.
        accept_untrusted_certificates: Accept any certificate (self-signed, expired, other
            name). Off by default, like the IMAP endpoint's setting of the same name.
        timeout: Seconds to wait for the connection and for each server answer.
    """

    host: str
    sender: str
    port: int | None = None
    security: SmtpSecurity = SmtpSecurity.TLS
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    accept_untrusted_certificates: bool = False
    timeout: float = defaults.CONNECT_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        """Check the settings.

        Raises:
            ConfigurationError: A missing host, a port out of range, an unknown security mode,
                a user without password (or the reverse), a non-ASCII user or password, an
                invalid sender, or a password that would travel in clear text to another
                machine.
        """
        refuse_controls(self.host, "the SMTP host")
        if not self.host.strip() or any(c.isspace() for c in self.host):
            raise ConfigurationError(f"invalid SMTP host {self.host!r}")
        refuse_controls(self.user or "", "the SMTP user name")
        refuse_controls(self.password or "", "the SMTP password")
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigurationError(f"invalid SMTP port {self.port}: use 1 to 65535")
        if self.timeout <= 0:
            raise ConfigurationError(f"invalid SMTP timeout {self.timeout}: must be positive")
        object.__setattr__(self, "security", _security(self.security))
        if (self.user is None) != (self.password is None):
            raise ConfigurationError("SMTP user and password must be given together")
        if not (self.user or "").isascii() or not (self.password or "").isascii():
            # smtplib encodes AUTH data as ASCII; its UnicodeEncodeError would carry the password.
            raise ConfigurationError("the SMTP user name and password must be ASCII")
        object.__setattr__(self, "sender", _checked_address(self.sender, "sender"))
        if (
            self.user is not None
            and self.security is SmtpSecurity.NONE
            and not _is_loopback(self.host)
        ):
            raise ConfigurationError(
                f"refusing to send the password of SMTP user {self.user!r} in clear text to "
                f"{self.host}: use security Tls (STARTTLS) or Ssl, or a relay on this machine"
            )

    @property
    def effective_port(self) -> int:
        """The port, or the default one of the security mode."""
        return self.port if self.port is not None else _DEFAULT_PORTS[self.security]

    @property
    def display(self) -> str:
        """A description safe for logs and errors (never the password)."""
        who = f"{self.user}@" if self.user is not None else ""
        return f"SMTP server {who}{self.host}:{self.effective_port} ({self.security.value})"

    def ssl_context(self) -> ssl.SSLContext:
        """A context that verifies certificates unless the admin accepted untrusted ones."""
        return client_context(self.accept_untrusted_certificates)


@dataclass(frozen=True)
class ErrorRow:
    """One row of MigrationErrors.csv: a mailbox that needs attention, and why.

    ``extra`` may be the admin's whole CSV row: columns whose name contains "password" (any
    case) are dropped, and so are ``EmailAddress``, ``UserName`` and ``ErrorMessage``, which the
    row has already. What is left keeps its order.

    Attributes:
        email: The mailbox's ``EmailAddress``.
        user_name: The ``UserName`` used to log in to the source.
        error: What went wrong and how to fix it (the ``ErrorMessage`` column).
        extra: Other identifying columns of the CSV row (``UserRoot``, ...), read-only.
    """

    email: str
    user_name: str
    error: str
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        kept = {
            name: value
            for name, value in self.extra.items()
            if _SECRET_MARK not in name.casefold() and name.casefold() not in _RESERVED_COLUMNS
        }
        object.__setattr__(self, "extra", MappingProxyType(kept))


@dataclass(frozen=True)
class BatchCounts:
    """Mailbox counters of a batch, named as ``Get-MigrationBatch`` names them (``...Count``).

    Attributes:
        total: Mailboxes in the batch (``TotalCount``).
        synced: Mailboxes whose initial sync finished (``SyncedCount``).
        finalized: Mailboxes completed (``FinalizedCount``).
        failed: Mailboxes that failed (``FailedCount``).
        stopped: Mailboxes stopped before they finished (``StoppedCount``).
        pending: Mailboxes still waiting for their turn (``PendingCount``).
    """

    total: int
    synced: int = 0
    finalized: int = 0
    failed: int = 0
    stopped: int = 0
    pending: int = 0

    def __post_init__(self) -> None:
        if min(self.as_exchange().values()) < 0:
            raise ValueError(f"mailbox counts cannot be negative: {self}")

    def as_exchange(self) -> dict[str, int]:
        """The counters under their Exchange property names, in a fixed order."""
        return {
            "TotalCount": self.total,
            "SyncedCount": self.synced,
            "FinalizedCount": self.finalized,
            "FailedCount": self.failed,
            "StoppedCount": self.stopped,
            "PendingCount": self.pending,
        }


@dataclass(frozen=True)
class BatchNotice:
    """Everything one status mail says; built by the batch layer from plain data.

    Attributes:
        batch: The batch name.
        kind: The event reported.
        status: The batch status after it (``Synced``, ``SyncedWithErrors``, ``Stopped``...).
        counts: The batch's mailbox counters.
        started_at: When the reported phase began (timezone-aware; shown in its own zone).
        finished_at: When it ended (timezone-aware).
        recipients: Who gets the mail (the admin, plus ``-NotificationEmails``); duplicates are
            dropped, case-insensitively, keeping the first.
        error_rows: Mailboxes that need attention; they make up MigrationErrors.csv.
        user_lines: Optional one-line summaries per mailbox, listed in the body.
        failure_reason: Why the batch failed (for :attr:`NoticeKind.FAILED`).
    """

    batch: str
    kind: NoticeKind
    status: str
    counts: BatchCounts
    started_at: datetime
    finished_at: datetime
    recipients: Sequence[str]
    error_rows: Sequence[ErrorRow] = ()
    user_lines: Sequence[str] = ()
    failure_reason: str | None = None

    def __post_init__(self) -> None:
        """Check and normalise the notice.

        Raises:
            ConfigurationError: No recipient, or one that is not an e-mail address.
            TypeError: ``recipients`` is one string instead of a sequence.
            ValueError: A naive datetime, or ``finished_at`` before ``started_at``.
        """
        if isinstance(self.recipients, str):
            raise TypeError("recipients must be a sequence of addresses, not one string")
        for name in ("started_at", "finished_at"):
            value: datetime = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware, got {value!r}")
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        recipients: dict[str, str] = {}
        for text in self.recipients:
            address = _checked_address(text, "notification recipient")
            recipients.setdefault(address.casefold(), address)
        if not recipients:
            raise ConfigurationError("a status mail needs at least one recipient")
        object.__setattr__(self, "recipients", tuple(recipients.values()))
        object.__setattr__(self, "error_rows", tuple(self.error_rows))
        object.__setattr__(self, "user_lines", tuple(self.user_lines))

    @property
    def duration(self) -> timedelta:
        """How long the reported phase took."""
        return self.finished_at - self.started_at


# ------------------------------------------------------------------------------ the CSV report


def _is_formula(value: str) -> bool:
    return value.startswith(_FORMULA_STARTS)


def _cell(value: str) -> str:
    """``value``, with an apostrophe in front when a spreadsheet would run it as a formula."""
    return "'" + value if _is_formula(value) else value


def errors_csv(rows: Iterable[ErrorRow]) -> bytes:
    """Write MigrationErrors.csv.

    UTF-8 with a byte-order mark (so Excel detects the encoding), CRLF line ends, a header
    row ``EmailAddress, UserName, <extra columns>, ErrorMessage``. Extra columns come in the
    order they first appear in ``rows``; a row without one leaves it empty. Every cell
    (header included) that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a leading apostrophe, so that opening the file in a spreadsheet never runs a formula
    smuggled in through a user name or a server's error text.

    Args:
        rows: The mailboxes to list.

    Returns:
        The file's bytes.
    """
    rows = list(rows)
    extra_columns = list(dict.fromkeys(name for row in rows for name in row.extra))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = [_EMAIL_COLUMN, _USER_COLUMN, *extra_columns, _ERROR_COLUMN]
    writer.writerow([_cell(name) for name in header])
    for row in rows:
        extras = [row.extra.get(name, "") for name in extra_columns]
        writer.writerow([_cell(value) for value in (row.email, row.user_name, *extras, row.error)])
    return buffer.getvalue().encode("utf-8-sig")


# ------------------------------------------------------------------------------ the message


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space."""
    return " ".join(text.split())


def _mailboxes(count: int) -> str:
    return f"{count} mailbox" if count == 1 else f"{count} mailboxes"


def _format_time(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    zone = f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}" if minutes else "UTC"
    return f"{moment:%Y-%m-%d %H:%M:%S} {zone}"


def _format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size or parts:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    parts.append(f"{seconds} s")
    return " ".join(parts)


def _subject(notice: BatchNotice) -> str:
    counts = notice.counts
    failed = f", {counts.failed} failed" if counts.failed else ""
    of_total = f"of {_mailboxes(counts.total)}"
    if notice.kind is NoticeKind.INITIAL_SYNC_FINISHED:
        event = f"initial sync finished, {counts.synced} {of_total} synced{failed}"
    elif notice.kind is NoticeKind.STOPPED:
        unfinished = counts.stopped + counts.pending
        event = f"stopped, {counts.synced} {of_total} synced before the stop{failed}"
        if unfinished:
            event += f", {unfinished} not finished"
    elif notice.kind is NoticeKind.COMPLETED:
        event = f"completed, {counts.finalized} {of_total} finalized{failed}"
    else:
        event = f"failed, {counts.synced} {of_total} synced"
    return f'Migration batch "{_one_line(notice.batch)}": {event}'


def _next_steps(notice: BatchNotice) -> list[str]:
    """Paragraphs telling the admin what happened and what to do next, for each kind."""
    counts = notice.counts
    rows = len(notice.error_rows)
    if notice.kind is NoticeKind.INITIAL_SYNC_FINISHED:
        steps = [f"{counts.synced} of {_mailboxes(counts.total)} finished the initial sync."]
        if counts.synced:
            steps[0] += (
                " Synced mailboxes keep being synchronized with the source until you complete "
                "the migration."
            )
        if counts.failed:
            steps.append(
                f"{_mailboxes(counts.failed)} failed. Fix the problem given in the ErrorMessage "
                f"column of {ERRORS_CSV_NAME}, then run Start-MigrationBatch again to retry the "
                "failed mailboxes, or submit the fixed rows in a new CSV file."
            )
        if counts.synced:
            steps.append(
                "When the mailboxes you need are synced, point your domain's MX record at the "
                "new mail server, wait at least 24 hours, check that new mail arrives in the "
                "new mailboxes, then run Complete-Migration."
            )
    elif notice.kind is NoticeKind.STOPPED:
        steps = [
            f"{counts.synced} of {_mailboxes(counts.total)} finished the initial sync before the "
            "batch was stopped; the stop does not affect them."
        ]
        if counts.stopped or counts.pending:
            steps.append(
                f"{_mailboxes(counts.stopped + counts.pending)} did not finish: {counts.stopped} "
                f"in progress and {counts.pending} waiting when the batch stopped. Run "
                "Start-MigrationBatch to resume them."
            )
        if counts.failed:
            steps.append(f"{_mailboxes(counts.failed)} failed before the stop.")
    elif notice.kind is NoticeKind.COMPLETED:
        steps = [
            f"Final counts: {counts.finalized} of {_mailboxes(counts.total)} completed, "
            f"{counts.failed} failed."
        ]
        if counts.failed:
            steps.append(
                f"Fix the problem given in the ErrorMessage column of {ERRORS_CSV_NAME}, then run "
                "Complete-Migration again to retry the failed mailboxes."
            )
        else:
            steps.append("The migration of this batch is complete.")
    else:
        reason = _one_line(notice.failure_reason) if notice.failure_reason else "no reason given"
        steps = [
            f"The batch failed: {reason}.",
            "Mail already copied stays in the new mailboxes. Fix the problem, then run "
            "Start-MigrationBatch to retry the batch.",
        ]
    if rows:
        steps.append(
            f"The attached {ERRORS_CSV_NAME} lists {_mailboxes(rows)}, one row per mailbox, "
            "with the reason in its ErrorMessage column. It holds no passwords: to resubmit "
            "rows in a new CSV file, add the Password column back and remove the ErrorMessage "
            "column."
        )
        if any(_is_formula(cell) for row in notice.error_rows for cell in _cells(row)):
            steps.append(
                "Values that begin with =, +, - or @ start with an apostrophe (') in the file, "
                "so that spreadsheet programs show them as text; remove it before reusing them."
            )
    else:
        steps.append(f"No mailbox needs attention, so no {ERRORS_CSV_NAME} is attached.")
    return steps


def _cells(row: ErrorRow) -> list[str]:
    """What ``row`` puts into the CSV: its values and the names of its extra columns."""
    return [row.email, row.user_name, *row.extra, *row.extra.values(), row.error]


def _body(notice: BatchNotice) -> str:
    lines = [
        _subject(notice) + ".",
        "",
        f"{'Status:':<16}{notice.status}",
        f"{'Started:':<16}{_format_time(notice.started_at)}",
        f"{'Finished:':<16}{_format_time(notice.finished_at)}",
        f"{'Duration:':<16}{_format_duration(notice.duration)}",
        "",
        *(f"{name + ':':<16}{value}" for name, value in notice.counts.as_exchange().items()),
    ]
    if notice.user_lines:
        lines += ["", "Mailboxes:", *(f"  {_one_line(line)}" for line in notice.user_lines)]
    lines += ["", "What to do next:"]
    for paragraph in _next_steps(notice):
        lines += ["", textwrap.fill(paragraph, _BODY_WIDTH)]
    return "\n".join(lines) + "\n"


def build_message(notice: BatchNotice, sender: str) -> EmailMessage:
    """Build the status mail for ``notice``; no IO.

    The subject sums the event up, e.g. ``Migration batch "MigrationBatch1": initial sync
    finished, 2 of 3 mailboxes synced, 1 failed``. The plain-text body gives the status, start,
    end and duration, the mailbox counters, the optional per-mailbox lines and what to do next.
    MigrationErrors.csv (``text/csv``) is attached when there are error rows, and only then;
    the body says which.

    Args:
        notice: What to report.
        sender: The ``From`` address.

    Returns:
        The message, with ``From``, ``To``, ``Subject``, ``Date``, ``Message-ID`` and
        ``Auto-Submitted: auto-generated`` (RFC 3834: no auto-replies to it).

    Raises:
        ConfigurationError: ``sender`` is not an e-mail address.
    """
    sender = _checked_address(sender, "sender")
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(notice.recipients)
    message["Subject"] = _subject(notice)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_body(notice))
    if notice.error_rows:
        message.add_attachment(
            errors_csv(notice.error_rows),
            maintype="text",
            subtype="csv",
            filename=ERRORS_CSV_NAME,
            params={"charset": "utf-8"},
        )
    return message


# ------------------------------------------------------------------------------ sending


def _answer(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {_one_line(text)}"


def _reason(exc: OSError, settings: SmtpSettings) -> tuple[str, bool]:
    """What went wrong, for the admin, and whether trying again later may help."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the server's certificate is not trusted ({exc.verify_message}); install a "
            "certificate this machine trusts or accept untrusted certificates explicitly",
            False,
        )
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or exc})", False
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"the server refused the credentials of {settings.user!r} "
            f"({_answer(exc.smtp_code, exc.smtp_error)})",
            False,
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        return f"the server refused the sender {exc.sender} ({answer})", 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{a} ({_answer(c, m)})" for a, (c, m) in exc.recipients.items())
        transient = all(400 <= code < 500 for code, _ in exc.recipients.values())
        return f"the server refused every recipient: {refused}", transient
    if isinstance(exc, smtplib.SMTPResponseException):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        return f"the server answered {answer}", 400 <= exc.smtp_code < 500
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"no answer within {settings.timeout:g} s", True  # smtplib wraps some timeouts
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({exc})", True
    if isinstance(exc, smtplib.SMTPException):
        return str(exc), False
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is an SMTP server listening on that port?)", True
    if isinstance(exc, socket.gaierror):
        return f"the host name cannot be resolved ({exc.strerror})", True
    return exc.strerror or str(exc) or type(exc).__name__, True


def _redacted(text: str, settings: SmtpSettings) -> str:
    """``text`` without the password, raw or in the base64 forms AUTH PLAIN and LOGIN send."""
    if not settings.password:
        return text
    secrets = {
        settings.password,
        base64.b64encode(settings.password.encode()).decode(),
        base64.b64encode(f"\0{settings.user}\0{settings.password}".encode()).decode(),
    }
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


def _connect(settings: SmtpSettings, context: ssl.SSLContext) -> smtplib.SMTP:
    """Connect and read the greeting (TLS first for ``Ssl``).

    smtplib closes the socket itself when this fails (refused greeting, timeout, handshake).
    """
    if settings.security is SmtpSecurity.SSL:
        return smtplib.SMTP_SSL(
            settings.host, settings.effective_port, timeout=settings.timeout, context=context
        )
    return smtplib.SMTP(settings.host, settings.effective_port, timeout=settings.timeout)


def send_notice(settings: SmtpSettings, notice: BatchNotice) -> None:
    """Build the status mail for ``notice`` and send it through the configured server.

    With ``Tls`` the connection must switch to TLS before anything else is said; the login
    happens only when ``settings.user`` is set. A mail refused for some recipients but taken
    for others is an error too: the message names the refused ones.

    Args:
        settings: The SMTP server.
        notice: What to report.

    Raises:
        NotificationError: The mail was not sent to every recipient. The message names the
            server, the step and the reason (never the password); ``transient`` tells whether
            trying again later may help.
    """
    message = build_message(notice, settings.sender)
    batch = _one_line(notice.batch)
    failure = f'status mail for batch "{batch}" not sent through {settings.display}'
    context = settings.ssl_context()
    step = "connecting"
    try:
        smtp = _connect(settings, context)
        try:
            if settings.security is SmtpSecurity.TLS:
                step = "starting TLS"
                smtp.starttls(context=context)
            if settings.user is not None and settings.password is not None:
                step = "logging in"
                smtp.login(settings.user, settings.password)
            step = "sending"
            refused = smtp.send_message(message)
        except BaseException:
            smtp.close()  # no QUIT: after a timeout it would wait as long again
            raise
    except smtplib.SMTPAuthenticationError as exc:
        # No exception chain here: a server's answer to AUTH could echo what it was sent.
        reason, transient = _reason(exc, settings)
        raise NotificationError(
            _redacted(f"{failure}, while {step}: {reason}", settings), transient=transient
        ) from None
    except OSError as exc:  # socket, TLS and every smtplib error
        reason, transient = _reason(exc, settings)
        raise NotificationError(
            _redacted(f"{failure}, while {step}: {reason}", settings), transient=transient
        ) from exc
    try:
        smtp.quit()
    except OSError:  # the server took the mail already; a failed goodbye changes nothing
        smtp.close()
    if refused:
        listed = "; ".join(f"{a} ({_answer(c, m)})" for a, (c, m) in refused.items())
        raise NotificationError(
            f'status mail for batch "{batch}" sent through {settings.display}, but the server '
            f"refused {listed}; the other recipients got it",
            transient=all(400 <= code < 500 for code, _ in refused.values()),
        )
    log.info(
        'status mail for batch "%s" (%s) sent to %s through %s',
        batch,
        notice.kind.value,
        ", ".join(notice.recipients),
        settings.display,
    )
