"""A real SMTP listener on loopback (aiosmtpd) that keeps every message it receives.

Optionally it requires TLS (STARTTLS or implicit) with a throwaway self-signed certificate, AUTH
LOGIN/PLAIN with one user name and password, and refuses chosen recipients. Everything ends in
:meth:`SmtpListener.stop`: the listening socket, the event loop and its thread.

Example::

    with SmtpListener(security="starttls", credentials=("mailer", "s3cret")) as listener:
        ...  # send to listener.host:listener.port
        [received] = listener.messages
        assert received.tls and received.login == "mailer"
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Collection
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from ssl import PROTOCOL_TLS_SERVER, SSLContext
from types import TracebackType
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from tests.servers.tls import self_signed

__all__ = ["ListenerSecurity", "ReceivedMessage", "SmtpListener"]

#: ``none``: clear text; ``starttls``: STARTTLS offered and required; ``ssl``: implicit TLS.
ListenerSecurity = Literal["none", "starttls", "ssl"]

#: AUTH mechanisms aiosmtpd implements itself.
_BUILTIN_MECHANISMS = frozenset({"LOGIN", "PLAIN"})

#: Name the listener gives itself in its greeting and EHLO answer (no DNS look-up).
_SERVER_NAME = "localhost"

#: Answer to MAIL FROM before a successful AUTH, when credentials are required (RFC 4954).
_AUTH_REQUIRED = "530 5.7.0 Authentication required"

#: Answer to RCPT TO for a refused recipient.
_NO_SUCH_USER = "550 5.1.1 No such user here"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the listener accepted.

    Attributes:
        mail_from: Envelope sender (MAIL FROM).
        rcpt_tos: Envelope recipients (RCPT TO), in the order given.
        message: The parsed message.
        raw: The message exactly as received after DATA.
        login: The user name that authenticated, or None without AUTH.
        tls: True when the message came over TLS (STARTTLS or implicit).
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    login: str | None
    tls: bool


def _server_tls_context() -> SSLContext:
    """A server-side context holding the self-signed certificate (no client certificates)."""
    cert, key = self_signed(_SERVER_NAME)
    context = SSLContext(PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only; the context keeps the key in memory afterwards.
    with tempfile.TemporaryDirectory(prefix="smtp-listener-") as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(cert)
        key_file.write_bytes(key)
        context.load_cert_chain(cert_file, key_file)
    return context


class _LoopbackController(Controller):
    """aiosmtpd's threaded controller, bound to a port the kernel picks.

    ``Controller`` connects to ``self.port`` once to check the server answers; with port 0
    that would fail, so the real port is read from the bound socket (the documented
    ``server.sockets``) just before that check. No free-port guess, so no race.
    """

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _Handler:
    """aiosmtpd hooks: AUTH policy, the AUTH advertisement, and keeping accepted messages."""

    def __init__(
        self, credentials: tuple[str, str] | None, refused_recipients: Collection[str]
    ) -> None:
        self._credentials = credentials
        self._refused = frozenset(r.casefold() for r in refused_recipients)
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        """aiosmtpd ``authenticator``: accept exactly the configured user name and password."""
        if self._credentials is not None and isinstance(auth_data, LoginPassword):
            user, password = self._credentials
            if auth_data.login == user.encode() and auth_data.password == password.encode():
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Advertise AUTH only when credentials are configured, like a real relay."""
        session.host_name = hostname
        if self._credentials is None:
            return [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """Refuse the sender until AUTH succeeded, when credentials are configured."""
        if self._credentials is not None and not session.authenticated:
            return _AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuse the recipients the listener was told to refuse."""
        if address.casefold() in self._refused:
            return _NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Parse and keep the message."""
        raw = envelope.original_content or b""
        auth: object = session.auth_data
        login = (
            auth.login.decode()
            if session.authenticated and isinstance(auth, LoginPassword)
            else None
        )
        transport = server.transport
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=BytesParser(_class=EmailMessage, policy=policy.default).parsebytes(raw),
            raw=raw,
            login=login,
            tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
        )
        with self._lock:
            self._messages.append(received)
        return "250 Message accepted for delivery"


class SmtpListener:
    """An aiosmtpd server on a free loopback port, running in its own thread until stopped.

    AUTH policy: with ``credentials`` the listener advertises the chosen mechanisms and refuses
    MAIL FROM until AUTH succeeded; without, it offers no AUTH. With ``starttls`` AUTH is
    offered only after STARTTLS, and every command but EHLO/HELO/NOOP/QUIT is refused before
    it. With ``none`` AUTH is accepted in clear text, which clients should only do on loopback.
    The "AUTH before MAIL" rule is enforced in the MAIL hook rather than with aiosmtpd's
    ``auth_required``, which warns (rightly, for a real server) when combined with clear-text
    AUTH; the tests run with warnings as errors and need the clear-text case to test the
    loopback exemption. (aiosmtpd's ``auth_require_tls`` only recognises STARTTLS, so it is on
    for ``starttls`` alone; an implicit-TLS connection is encrypted from the start anyway.)

    Attributes:
        host: ``"127.0.0.1"``.
        port: The listener's port (free, picked by the kernel).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        security: ListenerSecurity = "none",
        credentials: tuple[str, str] | None = None,
        auth_mechanisms: Collection[str] = _BUILTIN_MECHANISMS,
        refused_recipients: Collection[str] = (),
    ) -> None:
        """Start listening; messages are accepted right away.

        Args:
            security: Clear text, STARTTLS (offered and required) or implicit TLS, the last two
                with a self-signed certificate for localhost and 127.0.0.1.
            credentials: ``(user, password)`` that AUTH must present before MAIL FROM; None
                offers no AUTH at all.
            auth_mechanisms: The mechanisms offered with ``credentials``: LOGIN, PLAIN or both.
            refused_recipients: Addresses RCPT TO answers 550 for (any case).

        Raises:
            ValueError: A mechanism other than LOGIN or PLAIN was asked for.
        """
        mechanisms = {m.upper() for m in auth_mechanisms}
        unknown = mechanisms - _BUILTIN_MECHANISMS
        if unknown:
            raise ValueError(f"unsupported AUTH mechanisms: {sorted(unknown)}")
        self._handler = _Handler(credentials, refused_recipients)
        starttls = security == "starttls"
        context = _server_tls_context() if security != "none" else None
        self._controller = _LoopbackController(
            self._handler,
            hostname=self.host,
            port=0,
            ssl_context=context if security == "ssl" else None,
            server_hostname=_SERVER_NAME,
            tls_context=context if starttls else None,
            require_starttls=starttls,
            auth_require_tls=starttls,
            authenticator=self._handler.authenticate,
            auth_exclude_mechanism=_BUILTIN_MECHANISMS - mechanisms,
        )
        try:
            self._controller.start()
        except BaseException:
            # A failed start can leave the loop thread running or the loop open: end both.
            self._controller.stop(no_assert=True)
            self._controller.loop.close()
            raise
        self.port: int = self._controller.port
        self._running = True

    @property
    def messages(self) -> list[ReceivedMessage]:
        """The messages accepted so far, oldest first (a copy)."""
        return self._handler.messages

    def stop(self) -> None:
        """Stop the server, its event loop and its thread; calling it again does nothing."""
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> SmtpListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
