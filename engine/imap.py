"""The IMAP side: connecting, logging in, and the few commands the sync needs.

Parsing and IO stay with imapclient; this module adds the migration's needs on top: the
login styles of super-user accounts, certificate policy, throttling and connection-loss
detection translated into :mod:`engine.errors`, and typed results. ``ImapSession.factory`` is
the one place a connection is created, which is the seam tests can replace.
"""

from __future__ import annotations

import functools
import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.datetime_util import datetime_to_INTERNALDATE, parse_to_datetime
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_fetch_response, parse_response

from engine import defaults
from engine.controls import refuse_controls
from engine.errors import (
    AuthenticationFailed,
    CertificateRejected,
    CommandRefused,
    ConfigurationError,
    ConnectionLost,
    FolderError,
    ItemRejected,
    MigrationError,
    TargetFull,
    Throttled,
)
from engine.folders import Namespace, RemoteFolder
from engine.messages import IDENTITY_HEADERS, MessageMeta, body_digest, meta_from_fetch
from engine.tls import client_context

__all__ = [
    "DEFAULT_MASTER_SEPARATOR",
    "LOGIN_PLACEHOLDER",
    "FolderStatus",
    "ImapEndpoint",
    "ImapSession",
    "LoginAttempt",
    "OutgoingMessage",
    "Security",
    "answered_now",
    "check_master_separator",
    "login_attempts",
    "probe_server",
    "throttle_pause",
]


log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Placeholder of a login template, replaced by each mailbox's e-mail address.
LOGIN_PLACEHOLDER = "{EmailAddress}"

#: What joins the two halves of a super-user login (``Admin*User``, seed 000; ``user*master``, Dovecot).
DEFAULT_MASTER_SEPARATOR = "*"


def check_master_separator(text: str) -> str:
    """Validate a super-user login separator: one character, not a letter, digit, space or control.

    Returns:
        ``text`` unchanged.

    Raises:
        ConfigurationError: ``text`` cannot separate the halves of a login.
    """
    if len(text) != 1 or text.isalnum() or text.isspace() or not text.isprintable():
        raise ConfigurationError(
            f"the master-user separator must be one character that is not a letter, a digit, "
            f"white space or a control character (such as '*' or '#'), not {text!r}"
        )
    return text


class Security(StrEnum):
    """Transport security, named as Exchange's ``IMAPSecurityMechanism``."""

    NONE = "None"
    SSL = "Ssl"
    TLS = "Tls"

    @classmethod
    def parse(cls, text: str) -> Security:
        """Parse a security name case-insensitively (``none``, ``SSL``, ``tls``)."""
        for member in cls:
            if member.value.lower() == text.strip().lower():
                return member
        raise ConfigurationError(
            f"unknown security {text!r}: use one of {', '.join(m.value for m in cls)}"
        )


@dataclass(frozen=True)
class ImapEndpoint:
    """Where and how to log in to one IMAP account.

    ``user`` is sent as written first (``Domain/Admin/User`` and ``user*master`` forms included).
    A super-user login ``A*B`` (``master_separator`` between two non-empty halves, seed 000's
    ``Admin_UserName*User_UserName``) that is refused is then tried as LOGIN ``B*A`` (Dovecot's
    order), then as AUTHENTICATE PLAIN with authcid ``A`` and authzid ``B`` where the server
    offers AUTH=PLAIN (see :func:`login_attempts`). With ``authzid`` set, the login is SASL PLAIN
    where ``user`` authenticates and acts as ``authzid`` (an administrator opening a user's mailbox).
    """

    host: str
    user: str
    password: str = field(repr=False)
    port: int | None = None
    security: Security = Security.SSL
    authzid: str | None = None
    accept_untrusted_certificates: bool = False
    timeout: float = defaults.CONNECT_TIMEOUT_SECONDS
    master_separator: str = DEFAULT_MASTER_SEPARATOR

    def __post_init__(self) -> None:
        check_master_separator(self.master_separator)

    @property
    def effective_port(self) -> int:
        """The port, defaulting to 993 for implicit TLS and 143 otherwise."""
        if self.port is not None:
            return self.port
        return 993 if self.security is Security.SSL else 143

    @property
    def display(self) -> str:
        """A description safe for logs and reports (never the password)."""
        who = f"{self.user} as {self.authzid}" if self.authzid else self.user
        return f"{who}@{self.host}:{self.effective_port} ({self.security.value})"

    def for_mailbox(self, email: str) -> ImapEndpoint:
        """This endpoint with ``{EmailAddress}`` in the login and authzid replaced by ``email``.

        An admin login template such as ``{EmailAddress}*master`` (Dovecot master user) or an
        authzid of ``{EmailAddress}`` serves every mailbox of a batch.
        """
        def fill(text: str | None) -> str | None:
            return text.replace(LOGIN_PLACEHOLDER, email) if text is not None else None

        return replace(self, user=fill(self.user) or "", authzid=fill(self.authzid))

    def ssl_context(self) -> ssl.SSLContext:
        """A context that verifies certificates unless the admin accepted untrusted ones."""
        return client_context(self.accept_untrusted_certificates)


@dataclass(frozen=True)
class FolderStatus:
    """What SELECT reported about a folder."""

    name: str
    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None
    #: Keywords the folder stores, or None when it accepts any new keyword (``\\*``).
    keywords_allowed: frozenset[str] | None


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to append, with the key that names it in the uncertain window."""

    key: str
    body: bytes
    flags: frozenset[str]
    internaldate: datetime
    fingerprint: str


_BACKOFF_MS = re.compile(r"Suggested Backoff Time:\s*(\d+)\s*milliseconds", re.IGNORECASE)
_THROTTLE_TEXTS = (
    "[THROTTLED]",
    "too many simultaneous connections",
    "too many connections",
    "bandwidth limits",
    "request is throttled",
    "[UNAVAILABLE] temporarily",
)
_TOO_LARGE_TEXTS = (
    "[LIMIT]",
    "too large",
    "too big",
    "maximum size",
    "message size",
    "size exceeded",
    "exceeds",
)


def throttle_pause(text: str) -> float | None:
    """The pause a server asks for, or None when ``text`` is not a throttling answer.

    Args:
        text: A server response or error text.

    Returns:
        Seconds to wait: the server's suggestion capped at
        :data:`engine.defaults.THROTTLE_MAX_PAUSE_SECONDS`, or the default pause.
    """
    match = _BACKOFF_MS.search(text)
    if match:
        return min(int(match.group(1)) / 1000.0, defaults.THROTTLE_MAX_PAUSE_SECONDS)
    lowered = text.lower()
    if any(t.lower() in lowered for t in _THROTTLE_TEXTS):
        return defaults.THROTTLE_DEFAULT_PAUSE_SECONDS
    return None


def _is_too_large(text: str) -> bool:
    lowered = text.lower()
    return any(t.lower() in lowered for t in _TOO_LARGE_TEXTS)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return str(value)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn transport and server failures into engine errors."""
    try:
        yield
    except MigrationError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise CertificateRejected(
            f"{what}: the server's certificate is not trusted ({exc.verify_message}); "
            "install a trusted certificate or accept untrusted certificates explicitly"
        ) from exc
    except LoginError as exc:
        pause = throttle_pause(_text(exc.args))
        if pause is not None:
            raise Throttled(f"{what}: {_text(exc.args)}", pause) from exc
        raise AuthenticationFailed(f"{what}: the server refused the credentials") from exc
    except (IMAPClientAbortError, imaplib.IMAP4.abort, OSError, EOFError) as exc:
        message = _text(exc.args) or type(exc).__name__
        pause = throttle_pause(message)
        if pause is not None:
            raise Throttled(f"{what}: {message}", pause) from exc
        raise ConnectionLost(f"{what}: {message}") from exc
    except (IMAPClientError, imaplib.IMAP4.error) as exc:
        message = _text(exc.args)
        pause = throttle_pause(message)
        if pause is not None:
            raise Throttled(f"{what}: {message}", pause) from exc
        raise CommandRefused(f"{what}: {message}") from exc


def _no_delay(client: IMAPClient) -> None:
    """Send each write at once (TCP_NODELAY).

    imaplib writes a SASL continuation and its CRLF separately; with Nagle's algorithm the second
    write waits for the server's delayed ACK, about 40 ms per AUTHENTICATE on Linux. Bodies are
    already gathered into large writes, so nothing else gets chattier.
    """
    try:
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):  # a test double without a real socket
        pass


class ImapSession:
    """One logged-in IMAP connection with the operations the sync uses."""

    #: Creates the underlying client; replace in tests to inject a fake transport.
    factory: Callable[..., IMAPClient] = IMAPClient

    def __init__(self, endpoint: ImapEndpoint, *, condstore: bool = True) -> None:
        """Connect, secure and log in.

        Args:
            endpoint: Where and how to log in.
            condstore: Enable CONDSTORE where offered (a source needs it to find flag changes;
                a target does not, and enabling it there makes every append track MODSEQs).

        Raises:
            ConnectionLost, CertificateRejected, AuthenticationFailed, Throttled.
        """
        self.endpoint = endpoint
        where = f"connecting to {endpoint.display}"
        with _translated(where):
            use_ssl = endpoint.security is Security.SSL
            self.client = self.factory(
                endpoint.host,
                port=endpoint.effective_port,
                ssl=use_ssl,
                ssl_context=endpoint.ssl_context() if use_ssl else None,
                timeout=endpoint.timeout,
            )
        _quiet(self.client)
        _no_delay(self.client)
        try:
            with _translated(where):
                self.client.normalise_times = False
                if endpoint.security is Security.TLS:
                    self.client.starttls(endpoint.ssl_context())
                self._login()
                self.capabilities = frozenset(
                    _text(c).upper() for c in self.client.capabilities()
                )
                if condstore and "CONDSTORE" in self.capabilities:
                    self.client.enable("CONDSTORE")
        except BaseException:
            self._drop()
            raise

    def _login(self) -> None:
        endpoint = self.endpoint
        _check_credentials(endpoint)
        # Read before the login (after STARTTLS, imapclient asks the server again).
        caps = {_text(c).upper() for c in self.client.capabilities()}
        if endpoint.authzid or "LOGINDISABLED" in caps:
            self.client.plain_login(endpoint.user, endpoint.password, endpoint.authzid)
            return
        attempts = login_attempts(endpoint.user, endpoint.master_separator, offers_plain="AUTH=PLAIN" in caps)
        refused: LoginError | None = None
        for number, attempt in enumerate(attempts):
            try:
                if attempt.authzid is None:
                    self.client.login(attempt.user, endpoint.password)
                else:
                    self.client.plain_login(attempt.user, endpoint.password, attempt.authzid)
            except LoginError as exc:
                # Each refusal may count toward a lockout: a throttled server gets no more tries.
                if len(attempts) == 1 or throttle_pause(_text(exc.args)) is not None:
                    raise
                refused = exc
                continue
            if number:
                log.warning("logged in with %s after the server refused %s", attempt.describe(),
                            ", ".join(a.describe() for a in attempts[:number]))
            return
        tried = ", ".join(a.describe() for a in attempts)
        raise AuthenticationFailed(
            f"connecting to {endpoint.display}: the server refused the credentials (tried {tried})"
        ) from refused

    def _drop(self) -> None:
        try:
            self.client.shutdown()
        except (OSError, IMAPClientError, imaplib.IMAP4.error, AttributeError):
            pass

    def _wire_folder(self, name: str) -> bytes:
        """``name`` as a command argument (modified UTF-7, quoted), refused if it would hold a control byte.

        Modified UTF-7 encodes every control character (CR is ``&AA0-``), so a folder name cannot
        end a command line; this check keeps it so whatever the client library does.

        Raises:
            FolderError: The encoded name holds a control byte; nothing was sent.
        """
        normalised = self.client._normalise_folder(name)
        wire = normalised if isinstance(normalised, bytes) else str(normalised).encode("utf-8")
        if any(byte < 0x20 or byte == 0x7F for byte in wire):
            raise FolderError(name, "the name would put a control character on the IMAP command line; not sent")
        return wire

    def close(self) -> None:
        """Log out, ignoring a connection that is already gone."""
        try:
            self.client.logout()
        except (OSError, IMAPClientError, imaplib.IMAP4.error, imaplib.IMAP4.abort):
            self._drop()

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- folders -------------------------------------------------------------------------

    def namespace(self) -> Namespace:
        """The personal namespace (prefix and delimiter); the LIST delimiter if no NAMESPACE."""
        with _translated("NAMESPACE"):
            if "NAMESPACE" in self.capabilities:
                personal = self.client.namespace().personal
                if personal:
                    prefix, delimiter = personal[0]
                    return Namespace(prefix=_text(prefix), delimiter=_text(delimiter) if delimiter else None)
            listed = self.client.list_folders("", "")
        delimiter = _text(listed[0][1]) if listed and listed[0][1] else None
        return Namespace(prefix="", delimiter=delimiter)

    def list_folders(self) -> list[RemoteFolder]:
        """Every folder with its delimiter and attributes (names decoded to Unicode)."""
        with _translated("LIST"):
            listed = self.client.list_folders()
        return [
            RemoteFolder(
                name=_text(name),
                delimiter=_text(delim) if delim else None,
                flags=frozenset(_text(f) for f in flags),
            )
            for flags, delim, name in listed
        ]

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        """CREATE a folder (without subscribing it); an 'already exists' answer is not an error.

        Args:
            name: The folder's full name.
            special_use: An RFC 6154 attribute (``\\Sent``) to create it with, sent as
                CREATE-SPECIAL-USE's ``USE`` where the server offers that extension (ignored
                elsewhere). A server that refuses the attribute gets a plain CREATE.

        Raises:
            CommandRefused: The server refused the name.
        """
        self._wire_folder(name)
        with _translated(f"CREATE {name!r}"):
            try:
                if special_use and "CREATE-SPECIAL-USE" in self.capabilities:
                    typ, data = self.client._imap._simple_command(
                        "CREATE", self._wire_folder(name), f"(USE ({special_use}))"
                    )
                    if _text(typ).upper() == "OK":
                        return
                    if "USEATTR" not in _text(data).upper():
                        raise IMAPClientError(f"create failed: {_text(data)}")
                    log.warning("%s refused the attribute %s for %r; created without it", self.endpoint.display, special_use, name)
                self.client.create_folder(name)
            except IMAPClientAbortError:
                raise
            except IMAPClientError as exc:
                if "ALREADYEXISTS" not in _text(exc.args).upper().replace(" ", "") and not self.client.folder_exists(name):
                    raise

    def list_subscribed(self) -> set[str]:
        """The names of every subscribed folder (LSUB), decoded to Unicode."""
        with _translated("LSUB"):
            listed = self.client.list_sub_folders()
        return {_text(name) for _, _, name in listed}

    def subscribe(self, name: str, subscribed: bool) -> None:
        """SUBSCRIBE (``subscribed`` True) or UNSUBSCRIBE a folder."""
        verb = "SUBSCRIBE" if subscribed else "UNSUBSCRIBE"
        self._wire_folder(name)
        with _translated(f"{verb} {name!r}"):
            if subscribed:
                self.client.subscribe_folder(name)
            else:
                self.client.unsubscribe_folder(name)

    def folder_status(self, name: str, what: Sequence[str]) -> dict[bytes, Any]:
        """STATUS of a folder without selecting it."""
        self._wire_folder(name)
        with _translated(f"STATUS {name!r}"):
            return dict(self.client.folder_status(name, list(what)))

    def folder_statuses(self, names: Sequence[str], what: Sequence[str]) -> dict[str, dict[bytes, int]]:
        """STATUS of many folders in one round trip (the commands are pipelined).

        A no-change re-sync asks this of every folder and then opens only the folders that
        changed, so its cost is one exchange with the server instead of several per folder.

        Args:
            names: Folder names (Unicode).
            what: STATUS items, e.g. ``("MESSAGES", "UIDNEXT", "UIDVALIDITY")``.

        Returns:
            The items of each folder the server answered OK, by name; a folder it refused
            (NO or BAD) is absent.
        """
        if not names:
            return {}
        imap = self.client._imap
        items = b"(" + " ".join(what).encode("ascii") + b")"
        tags: list[bytes] = []
        lines: list[bytes] = []
        with _translated("STATUS"):
            imap.untagged_responses.pop("STATUS", None)
            for name in names:
                tag = imap._new_tag()
                tags.append(tag)
                lines.append(tag + b" STATUS " + self._wire_folder(name) + b" " + items + b"\r\n")
            imap.send(b"".join(lines))
            for tag in tags:
                try:
                    imap._command_complete("STATUS", tag)  # a NO leaves no STATUS line behind
                except imaplib.IMAP4.abort:
                    raise
                except imaplib.IMAP4.error as exc:  # BAD: this folder only
                    log.info("STATUS refused: %s", exc)
            answers = imap.untagged_responses.pop("STATUS", [])
        out: dict[str, dict[bytes, int]] = {}
        for answer in answers:
            parsed = parse_response([answer])
            if len(parsed) < 2:
                continue
            raw, pairs = parsed[0], parsed[-1]
            name = decode_utf7(raw) if isinstance(raw, bytes) else str(raw)
            out[name] = {
                _text(pairs[i]).upper().encode("ascii"): int(pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)
            }
        return out

    def select(self, name: str, *, readonly: bool) -> FolderStatus:
        """SELECT (or EXAMINE) a folder and report its status."""
        self._wire_folder(name)
        with _translated(f"SELECT {name!r}"):
            info = self.client.select_folder(name, readonly=readonly)
        perm = info.get(b"PERMANENTFLAGS")
        keywords: frozenset[str] | None
        if perm is None or b"\\*" in perm:
            keywords = None
        else:
            keywords = frozenset(_text(f) for f in perm if not _text(f).startswith("\\"))
        modseq = info.get(b"HIGHESTMODSEQ")
        return FolderStatus(
            name=name,
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            exists=int(info.get(b"EXISTS", 0)),
            highestmodseq=int(modseq) if modseq is not None else None,
            keywords_allowed=keywords,
        )

    def unselect(self) -> bool:
        """Leave the selected folder without expunging anything, where the server has UNSELECT.

        Returns:
            False when the server lacks UNSELECT and the folder stays selected (CLOSE would
            expunge messages flagged \\Deleted, so it is never used for this).
        """
        if "UNSELECT" not in self.capabilities:
            return False
        with _translated("UNSELECT"):
            self.client.unselect_folder()
        return True

    # -- messages ------------------------------------------------------------------------

    def uids_above(self, uid: int) -> list[int]:
        """UIDs greater than ``uid`` in the selected folder, ascending."""
        with _translated("UID SEARCH"):
            found = self.client.search(["UID", f"{uid + 1}:*"]) if uid else self.client.search("ALL")
        return sorted(u for u in found if u > uid)

    def present(self, uids: Sequence[int]) -> list[int]:
        """Which of ``uids`` still exist in the selected folder, ascending."""
        if not uids:
            return []
        wanted = set(uids)
        with _translated("UID SEARCH"):
            found = self.client.search(["UID", _uid_set(sorted(wanted))])
        return sorted(u for u in found if u in wanted)

    def fetch_meta(self, uids: Sequence[int]) -> list[MessageMeta]:
        """Size, date, flags and identifying headers of ``uids`` (missing ones are omitted).

        The answer is read by :func:`_fast_meta` when it has the usual shape (one FETCH line per
        message with the items in the order asked, as Dovecot answers), otherwise by
        imapclient's general parser; both give the same values. Many UIDs are asked for in
        commands of :data:`engine.defaults.METADATA_BATCH_MESSAGES`.
        """
        batch = defaults.METADATA_BATCH_MESSAGES
        if len(uids) > batch:
            ordered = sorted(uids)
            return [meta for start in range(0, len(ordered), batch) for meta in self.fetch_meta(ordered[start : start + batch])]
        if not uids:
            return []
        section = f"BODY.PEEK[HEADER.FIELDS ({' '.join(IDENTITY_HEADERS)})]"
        items = ["RFC822.SIZE", "INTERNALDATE", "FLAGS", section]
        if "CONDSTORE" in self.capabilities:
            items.append("MODSEQ")
        wanted = set(uids)
        with _translated("FETCH metadata"):
            imap = self.client._imap
            tag = imap._command("UID", "FETCH", _uid_set(sorted(wanted)), "(" + " ".join(items) + ")")
            typ, data = imap._command_complete("FETCH", tag)
            if typ != "OK":
                raise IMAPClientError(f"fetch failed: {_text(data)}")
            typ, data = imap._untagged_response(typ, data, "FETCH")
            rows = _fast_meta(data)
            if rows is None:
                rows = _parsed_meta(parse_fetch_response(data, False, True))
        by_uid = {row[0]: row for row in rows if row[0] in wanted}  # unsolicited answers dropped
        return [meta_from_fetch(*by_uid[uid]) for uid in sorted(by_uid)]

    def fetch_sizes(self, uids: Sequence[int]) -> dict[int, tuple[int, datetime]]:
        """RFC822.SIZE and INTERNALDATE of ``uids`` (what a server keeps in its index)."""
        out: dict[int, tuple[int, datetime]] = {}
        batch = defaults.METADATA_BATCH_MESSAGES
        imap = self.client._imap
        with _translated("FETCH sizes"):
            for start in range(0, len(uids), batch):
                part = sorted(uids[start : start + batch])
                tag = imap._command("UID", "FETCH", _uid_set(part), "(RFC822.SIZE INTERNALDATE)")
                typ, data = imap._command_complete("FETCH", tag)
                if typ != "OK":
                    raise IMAPClientError(f"fetch failed: {_text(data)}")
                typ, data = imap._untagged_response(typ, data, "FETCH")
                rows = _fast_sizes(data)
                if rows is None:
                    rows = {uid: (int(row[b"RFC822.SIZE"]), row[b"INTERNALDATE"])
                            for uid, row in parse_fetch_response(data, False, True).items()
                            if b"RFC822.SIZE" in row and b"INTERNALDATE" in row}
                wanted = set(part)
                out.update((uid, row) for uid, row in rows.items() if uid in wanted)
        return out

    def fetch_bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """Full bodies of ``uids``; a UID the server does not deliver is absent from the result."""
        if not uids:
            return {}
        with _translated("FETCH bodies"):
            try:
                imap = self.client._imap
                tag = imap._command("UID", "FETCH", _uid_set(sorted(uids)), "(BODY.PEEK[])")
                typ, data = imap._command_complete("FETCH", tag)
                if typ != "OK":
                    raise IMAPClientError(f"fetch failed: {_text(data)}")
            except IMAPClientAbortError:
                raise
            except IMAPClientError:
                if len(uids) == 1:
                    return {}
                out: dict[int, bytes] = {}
                for uid in uids:
                    out.update(self.fetch_bodies([uid]))
                return out
            typ, data = imap._untagged_response(typ, data, "FETCH")
            bodies = _fast_bodies(data)
            if bodies is None:
                parsed = parse_fetch_response(data, False, True)
                bodies = {uid: row[b"BODY[]"] for uid, row in parsed.items() if isinstance(row.get(b"BODY[]"), bytes)}
        wanted = set(uids)
        return {uid: body for uid, body in bodies.items() if uid in wanted}

    def body_digests(self, uids: Sequence[int]) -> dict[int, str]:
        """:func:`engine.messages.body_digest` of each message of ``uids`` that can be read, its
        bodies read :data:`engine.defaults.DIGEST_BATCH_MESSAGES` at a time."""
        ordered, batch = sorted(uids), defaults.DIGEST_BATCH_MESSAGES
        return {
            uid: body_digest(body)
            for start in range(0, len(ordered), batch)
            for uid, body in self.fetch_bodies(ordered[start : start + batch]).items()
        }

    def fetch_flags(self, uids: Sequence[int], changed_since: int | None) -> dict[int, Any]:
        """FLAGS of ``uids``, only of those changed since a MODSEQ when one is given."""
        modifiers = [f"CHANGEDSINCE {changed_since}"] if changed_since is not None else None
        out: dict[int, Any] = {}
        batch = defaults.METADATA_BATCH_MESSAGES
        with _translated("FETCH flags"):
            for start in range(0, len(uids), batch):
                data = self.client.fetch(list(uids[start : start + batch]), ["FLAGS"], modifiers)
                out.update((uid, row.get(b"FLAGS", ())) for uid, row in data.items())
        return out

    def append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> list[int | None]:
        """Append messages in one transaction (MULTIAPPEND when offered, else one by one).

        ``on_sent`` is called right before the bytes that complete the command are written:
        from then on the server may commit the messages even if this process dies.

        Returns:
            The target UIDs in order (from APPENDUID), or None entries when the server has no
            UIDPLUS.

        Raises:
            ItemRejected: The server refused the messages (the whole transaction when several).
        """
        return self.start_append(folder, messages, on_sent=on_sent)()

    def start_append(
        self, folder: str, messages: Sequence[OutgoingMessage], *, on_sent: Callable[[], None] | None = None
    ) -> Callable[[], list[int | None]]:
        """Send an append as :meth:`append` does and return what reads its answer.

        Where the server takes non-synchronizing literals (LITERAL+) the whole command is
        written now, and the caller may do other work (record the previous chunk, prepare the
        next) while the server stores the messages; the returned callable then waits for the
        answer. Otherwise the append runs here, and the callable gives its outcome.

        The returned callable returns the UIDs as :meth:`append` does, or raises
        ItemRejected.
        """
        pipelined = "LITERAL+" in self.capabilities and (len(messages) == 1 or "MULTIAPPEND" in self.capabilities)
        if not pipelined:
            return answered_now(lambda: self._append_now(folder, messages, on_sent))
        try:
            with _translated(f"APPEND to {folder!r}"):
                tag = self._write_append(folder, messages, on_sent)
        except CommandRefused as exc:  # BAD: the server could not take this message as sent
            raise _append_refusal(folder, str(exc)) from exc

        def answer() -> list[int | None]:
            try:
                with _translated(f"APPEND to {folder!r}"):
                    typ, data = self.client._imap._command_complete("APPEND", tag)
            except CommandRefused as exc:
                raise _append_refusal(folder, str(exc)) from exc
            if _text(typ).upper() != "OK":
                raise _append_refusal(folder, _text(data))
            return _appenduids(_text(data), len(messages))

        return answer

    def _append_now(
        self, folder: str, messages: Sequence[OutgoingMessage], on_sent: Callable[[], None] | None
    ) -> list[int | None]:
        """The append of a server without LITERAL+ (or MULTIAPPEND), answered before returning."""
        if len(messages) > 1 and "MULTIAPPEND" not in self.capabilities:
            out: list[int | None] = []
            for number, message in enumerate(messages):
                try:
                    out.extend(self._append_now(folder, [message], on_sent if number == 0 else None))
                except ItemRejected as exc:  # the messages before this one are stored
                    exc.stored = [str(u) if u is not None else None for u in out]
                    raise
            return out
        try:
            with _translated(f"APPEND to {folder!r}"):
                typ, text = self._send_append(folder, messages, on_sent)
        except CommandRefused as exc:  # BAD: the server could not take this message as sent
            raise _append_refusal(folder, str(exc)) from exc
        if typ != "OK":
            raise _append_refusal(folder, text)
        return _appenduids(text, len(messages))

    def _write_append(
        self, folder: str, messages: Sequence[OutgoingMessage], on_sent: Callable[[], None] | None
    ) -> bytes:
        """Write one APPEND with non-synchronizing literals (LITERAL+) and return its tag.

        imapclient joins each literal with its announcement before sending, which costs two
        copies of every message; here each body goes to the socket as it is, so memory stays
        at one copy of the chunk however large a message is.
        """
        imap = self.client._imap
        tag: bytes = imap._new_tag()
        pending: list[bytes] = [tag + b" APPEND " + self._wire_folder(folder)]
        size = 0
        for message in messages:
            pending.append(_literal_announcement(message, b"+"))
            if len(message.body) >= _SEND_DIRECT_BYTES:
                imap.send(b"".join(pending))  # a large body goes out as it is, never copied
                imap.send(message.body)
                pending, size = [], 0
            else:
                # Small messages are gathered into few large writes: far fewer system calls
                # and segments for the server to read.
                pending.append(message.body)
                size += len(message.body)
                if size >= _SEND_DIRECT_BYTES:
                    imap.send(b"".join(pending))
                    pending, size = [], 0
        pending.append(b"\r\n")
        if on_sent is not None:
            on_sent()
        _send_last(imap, b"".join(pending), folder)
        return tag

    def _send_append(
        self, folder: str, messages: Sequence[OutgoingMessage], on_sent: Callable[[], None] | None = None
    ) -> tuple[str, str]:
        """Send one APPEND (MULTIAPPEND when several), each literal after the server's go-ahead
        (a server without LITERAL+), and read the answer.

        Returns:
            The tagged status (OK, NO) and the response text.
        """
        imap = self.client._imap
        tag = imap._new_tag()
        prefix = tag + b" APPEND " + self._wire_folder(folder)
        for number, message in enumerate(messages):
            imap.send((prefix if number == 0 else b"") + _literal_announcement(message, b""))
            # Wait for the go-ahead; a server refusing early answers the command instead.
            while imap._get_response() is not None:
                if imap.tagged_commands.get(tag):
                    typ, data = imap._command_complete("APPEND", tag)
                    return _text(typ).upper(), _text(data)
            imap.send(message.body)
        if on_sent is not None:
            on_sent()
        _send_last(imap, b"\r\n", folder)
        typ, data = imap._command_complete("APPEND", tag)
        return _text(typ).upper(), _text(data)

    def store_flags(self, uids: Sequence[int], flags: Iterable[str]) -> None:
        """Replace the flags of messages in the selected folder (one STORE per batch of UIDs)."""
        batch = defaults.METADATA_BATCH_MESSAGES
        with _translated("STORE FLAGS"):
            for start in range(0, len(uids), batch):
                self.client.set_flags(_uid_set(sorted(uids[start : start + batch])), sorted(flags), silent=True)

    def delete(self, uids: Sequence[int]) -> None:
        """Mark messages deleted and expunge them (UID EXPUNGE when UIDPLUS is offered)."""
        if not uids:
            return
        batch = defaults.METADATA_BATCH_MESSAGES
        with _translated("delete"):
            for start in range(0, len(uids), batch):
                part = list(uids[start : start + batch])
                self.client.add_flags(part, ["\\Deleted"], silent=True)
                if "UIDPLUS" in self.capabilities:
                    self.client.uid_expunge(part)
            if "UIDPLUS" not in self.capabilities:
                self.client.expunge()

    def appendlimit(self) -> int | None:
        """The server-wide APPENDLIMIT in bytes, if the server announces one."""
        for cap in self.capabilities:
            if cap.startswith("APPENDLIMIT="):
                try:
                    return int(cap.split("=", 1)[1])
                except ValueError:
                    return None
        return None


def _quiet(client: IMAPClient) -> None:
    """Stop imaplib from formatting every response for a debug log nobody reads.

    imapclient turns imaplib's debug level up to route its protocol log; imaplib then builds the
    repr of each FETCH literal (every message body) before calling the logger, which costs more
    CPU and memory than the copy itself. Unless that log is really wanted, turn it back down.
    """
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def _send_last(imap: imaplib.IMAP4, data: bytes, folder: str) -> None:
    """Write the bytes that end an APPEND; a failure here means the server never got it whole."""
    try:
        imap.send(data)
    except (OSError, imaplib.IMAP4.abort) as exc:
        raise ConnectionLost(f"APPEND to {folder!r}: {_text(exc.args) or type(exc).__name__}", unsent=True) from exc


def _append_refusal(folder: str, text: str) -> MigrationError:
    """The error for an APPEND the server answered with NO."""
    pause = throttle_pause(text)
    if pause is not None:
        return Throttled(f"APPEND to {folder!r}: {text}", pause)
    if "[OVERQUOTA]" in text.upper():
        return TargetFull(f"the target mailbox is full (APPEND to {folder!r}: {text})")
    return ItemRejected(text, too_large=_is_too_large(text))


def _master_halves(user: str, separator: str = DEFAULT_MASTER_SEPARATOR) -> tuple[str, str] | None:
    """``(a, b)`` for a super-user login ``a*b`` (exactly one separator, both halves non-empty)."""
    first, found, second = user.partition(separator)
    if not found or not first or not second or separator in second:
        return None
    return first, second


def _swapped_master_login(user: str, separator: str = DEFAULT_MASTER_SEPARATOR) -> str | None:
    """``b*a`` for a ``a*b`` master-user login, or None when ``user`` is not one."""
    halves = _master_halves(user, separator)
    return f"{halves[1]}{separator}{halves[0]}" if halves else None


def _check_credentials(endpoint: ImapEndpoint) -> None:
    """Refuse a login name, authzid or password holding a control character before anything is sent.

    A CR or LF would end the LOGIN line and start a command of the value's choosing; NUL
    separates SASL PLAIN's fields. A TAB is allowed in the password only (see engine.controls).

    Raises:
        ControlCharacterError: A value holds a control character (the message never quotes it).
    """
    where = f"logging in to {endpoint.host}:{endpoint.effective_port}"
    refuse_controls(endpoint.user, f"{where}: the login name")
    if endpoint.authzid is not None:
        refuse_controls(endpoint.authzid, f"{where}: the user to act as (authzid)")
    refuse_controls(endpoint.password, f"{where}: the password", allow_tab=True)


@dataclass(frozen=True)
class LoginAttempt:
    """One way of logging in: LOGIN as ``user``, or AUTHENTICATE PLAIN as ``user`` for ``authzid``."""

    user: str
    authzid: str | None = None

    def describe(self) -> str:
        """The attempt as an error message names it (never with the password)."""
        if self.authzid is None:
            return f"LOGIN {self.user!r}"
        return f"AUTHENTICATE PLAIN as {self.user!r} for {self.authzid!r}"


def login_attempts(user: str, separator: str, *, offers_plain: bool) -> list[LoginAttempt]:
    """The logins to try in order for a login name, stopping at the first the server accepts.

    ``user`` as written comes first. A super-user login ``A*B`` (one ``separator``, both halves
    non-empty) adds LOGIN ``B*A`` (Outlook Live documented Admin*User, Dovecot expects
    User*Admin), then, when the server offers AUTH=PLAIN, AUTHENTICATE PLAIN with authcid ``A``
    and authzid ``B`` (seed 000's form on SASL servers such as Cyrus). Nothing else: every
    refused attempt may count toward a lockout.

    Args:
        user: The login name as written (CSV UserName, ``--source-user``).
        separator: The super-user separator (see :func:`check_master_separator`).
        offers_plain: Whether the server's capabilities before login include AUTH=PLAIN.

    Returns:
        One to three attempts.
    """
    attempts = [LoginAttempt(user)]
    halves = _master_halves(user, separator)
    if halves is not None:
        admin, target = halves
        attempts.append(LoginAttempt(f"{target}{separator}{admin}"))
        if offers_plain:
            attempts.append(LoginAttempt(admin, target))
    return attempts


def probe_server(host: str, port: int, security: Security, *, accept_untrusted_certificates: bool = False,
                 timeout: float = defaults.CONNECT_TIMEOUT_SECONDS) -> str:
    """Connect, secure the connection as asked, and read the server's greeting; no login.

    This is what Test-MigrationServerAvailability checks for an IMAP server.

    Returns:
        The capabilities the server announced, space-separated.

    Raises:
        ConnectionLost, CertificateRejected, Throttled: The server cannot be used.
    """
    endpoint = ImapEndpoint(host=host, port=port, security=security, user="", password="",
                            accept_untrusted_certificates=accept_untrusted_certificates, timeout=timeout)
    where = f"connecting to {host}:{port} ({security.value})"
    with _translated(where):
        use_ssl = security is Security.SSL
        client = ImapSession.factory(host, port=port, ssl=use_ssl,
                                     ssl_context=endpoint.ssl_context() if use_ssl else None, timeout=timeout)
        _quiet(client)
        try:
            if security is Security.TLS:
                client.starttls(endpoint.ssl_context())
            return " ".join(_text(c) for c in client.capabilities())
        finally:
            try:
                client.logout()
            except (OSError, IMAPClientError, imaplib.IMAP4.error):
                pass


#: One message's answer to the metadata FETCH as Dovecot sends it: ``UID``, ``RFC822.SIZE``,
#: ``INTERNALDATE``, ``FLAGS``, optionally ``MODSEQ``, and the header section as a literal.
_META_LINE = re.compile(
    rb'\d+ \(UID (\d+) RFC822\.SIZE (\d+) INTERNALDATE "([^"\\]*)" FLAGS \(([^"(){}\[\]]*)\)'
    rb"(?: MODSEQ \((\d+)\))? BODY\[HEADER\.FIELDS \([A-Z0-9 -]*\)\] \{(\d+)\}",
    re.IGNORECASE,
)

_MetaRow = tuple[int, int, datetime, tuple[bytes, ...], bytes, "int | None"]

#: One message's answer to the body FETCH as Dovecot sends it: ``UID``, then the body as a literal.
_BODY_LINE = re.compile(rb"\d+ \(UID (\d+) BODY\[\] \{(\d+)\}", re.IGNORECASE)


def _literal_answers(data: list[Any], pattern: re.Pattern[bytes], size_group: int) -> list[tuple[re.Match[bytes], bytes]] | None:
    """Each message's FETCH answer as ``(match of its line, its literal)``, when every answer is
    one line matching ``pattern`` that ends with a literal of the size in ``size_group``, then
    the closing parenthesis; None when any part has another shape (items in another order, a
    section sent as a quoted string, an unsolicited FETCH)."""
    answers: list[tuple[re.Match[bytes], bytes]] = []
    position, count = 0, len(data)
    while position < count:
        item = data[position]
        if not (isinstance(item, tuple) and len(item) == 2 and position + 1 < count and data[position + 1] == b")"):
            return None
        head, literal = item
        match = pattern.fullmatch(head) if isinstance(head, bytes) and isinstance(literal, bytes) else None
        if match is None or int(match.group(size_group)) != len(literal):
            return None
        answers.append((match, literal))
        position += 2
    return answers


#: One message's answer to the size FETCH as Dovecot sends it.
_SIZE_LINE = re.compile(rb'\d+ \(UID (\d+) RFC822\.SIZE (\d+) INTERNALDATE "([^"\\]*)"\)', re.IGNORECASE)


def _fast_sizes(data: list[Any]) -> dict[int, tuple[int, datetime]] | None:
    """The size FETCH answer read with one pattern per message, or None for another shape (the
    caller then uses imapclient's general parser)."""
    out: dict[int, tuple[int, datetime]] = {}
    for item in data:
        match = _SIZE_LINE.fullmatch(item) if isinstance(item, bytes) else None
        if match is None:
            return None
        try:
            out[int(match.group(1))] = (int(match.group(2)), internaldate(match.group(3)))
        except ValueError:
            return None
    return out


def _fast_bodies(data: list[Any]) -> dict[int, bytes] | None:
    """The body FETCH answer read with one pattern per message, or None for another shape (UID
    after the body, an unsolicited FETCH): the caller then uses imapclient's general parser for
    all of it, which gives the same UIDs and bytes."""
    answers = _literal_answers(data, _BODY_LINE, 2)
    return None if answers is None else {int(match.group(1)): literal for match, literal in answers}


_MONTHS = {name.encode(): n for n, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


@functools.lru_cache(maxsize=128)
def _zone(text: bytes) -> timezone:
    sign = -1 if text[:1] == b"-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5])))


def internaldate(raw: bytes) -> datetime:
    """An INTERNALDATE (``dd-Mon-yyyy hh:mm:ss +zzzz``) as an aware datetime, read directly (ten
    times faster than the general parser, which it falls back to for any other spelling).

    Raises:
        ValueError: Not a date.
    """
    try:
        day, month, rest = raw.strip().split(b"-", 2)
        year, clock, zone = rest.split(b" ")
        hour, minute, second = clock.split(b":")
        if len(zone) != 5 or zone[:1] not in b"+-":
            raise ValueError(raw)
        return datetime(int(year), _MONTHS[month.title()], int(day), int(hour), int(minute), int(second),
                        tzinfo=_zone(zone))
    except (ValueError, KeyError):
        parsed: datetime = parse_to_datetime(raw, normalise=False)
        return parsed


def _fast_meta(data: list[Any]) -> list[_MetaRow] | None:
    """The metadata FETCH answer read with one pattern per message, or None for another shape:
    the caller then uses imapclient's general parser for all of it.

    Yields exactly what the general parser gives: the same integers, the INTERNALDATE parsed by
    the same imapclient function, the flags as the atoms between the parentheses, and the
    literal's bytes.
    """
    answers = _literal_answers(data, _META_LINE, 6)
    if answers is None:
        return None
    rows: list[_MetaRow] = []
    for match, literal in answers:
        try:
            date = internaldate(match.group(3))
        except ValueError:
            return None
        modseq = match.group(5)
        rows.append((int(match.group(1)), int(match.group(2)), date, tuple(match.group(4).split()), literal,
                     int(modseq) if modseq is not None else None))
    return rows


def _parsed_meta(parsed: dict[int, dict[bytes, Any]]) -> list[_MetaRow]:
    """The metadata rows from imapclient's parse of a FETCH answer (messages lacking a size or
    date are left out)."""
    rows: list[_MetaRow] = []
    for uid, row in parsed.items():
        if b"RFC822.SIZE" not in row or b"INTERNALDATE" not in row:
            continue
        headers = next((v for k, v in row.items() if k.startswith(b"BODY[HEADER")), b"")
        modseq = row.get(b"MODSEQ")
        rows.append((uid, int(row[b"RFC822.SIZE"]), row[b"INTERNALDATE"], row.get(b"FLAGS", ()), headers or b"",
                     int(modseq[0]) if modseq else None))
    return rows


def answered_now(append: Callable[[], _T]) -> Callable[[], _T]:
    """Run an append here and now; return what gives its outcome later, as a pipelined append's
    answer does: its result, or the ItemRejected it raised."""
    try:
        result = append()
    except ItemRejected as exc:
        refusal = exc

        def refused() -> _T:
            raise refusal

        return refused
    return lambda: result


def _literal_announcement(message: OutgoingMessage, plus: bytes) -> bytes:
    """`` (flags) "date" {size}`` and the line end that precede a message's literal in APPEND."""
    flags = " ".join(sorted(message.flags))
    date = datetime_to_INTERNALDATE(message.internaldate)
    return b' (%s) "%s" {%d%s}\r\n' % (flags.encode("ascii"), date.encode("ascii"), len(message.body), plus)


def _uid_set(uids: Sequence[int]) -> str:
    """A compact UID set (``1:5,9``) of ascending UIDs."""
    parts: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        parts.append(f"{start}:{previous}" if previous != start else str(start))
        start = previous = uid
    parts.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(parts)


#: Bodies at least this large are written to the socket on their own; smaller ones are gathered
#: into writes of about this size.
_SEND_DIRECT_BYTES = 256 * 1024

_APPENDUID = re.compile(r"\[APPENDUID \d+ ([0-9:,]+)\]", re.IGNORECASE)


def _appenduids(text: str, count: int) -> list[int | None]:
    match = _APPENDUID.search(text)
    if not match:
        return [None] * count
    uids: list[int] = []
    for part in match.group(1).split(","):
        if ":" in part:
            lo, hi = (int(x) for x in part.split(":"))
            uids.extend(range(min(lo, hi), max(lo, hi) + 1))
        else:
            uids.append(int(part))
    if len(uids) != count:
        return [None] * count
    return list(uids)
