"""NTLM and Negotiate (SPNEGO-wrapped NTLM) for the WS-Management door, with MS-WSMV message encryption.

pyspnego's NTLM acceptor reads credentials from the file named by ``NTLM_USER_FILE``. Mailshift
keeps no such file on disk: the store is an anonymous in-memory file (``memfd``), and just
before each AUTHENTICATE token is checked it holds exactly one line, for the domain and user the
client named, with that administrator's NT hash (kept encrypted in ``admins.json``, see
:mod:`shim.accounts`). Contexts are per TCP connection (``REMOTE_ADDR``, ``REMOTE_PORT``): the
handshake and later requests must use one keep-alive connection, as WinRM clients do.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import spnego

from shim.errors import ShimError

__all__ = ["AuthFailed", "ENCRYPTED_PROTOCOLS", "Handshake", "NegotiateAuthenticator", "connection_key", "token_user"]

#: Encrypted-body protocols accepted (the Content-Type's ``protocol=``).
ENCRYPTED_PROTOCOLS = ("application/HTTP-SPNEGO-session-encrypted",)
_BOUNDARY = "Encrypted Boundary"
_NTLMSSP_AUTHENTICATE = b"NTLMSSP\x00\x03\x00\x00\x00"
_NTLMSSP = b"NTLMSSP\x00"
#: Connections whose contexts are remembered (the oldest are forgotten first).
MAX_CONTEXTS = 1024

#: ``nt_hash_of(user) -> 16 bytes or None``: the NT hash of an administrator (any case), None when unknown.
HashLookup = Callable[[str], "bytes | None"]


log = logging.getLogger(__name__)


class AuthFailed(ShimError):
    """Raised when an NTLM/Negotiate token is malformed or the credentials are wrong."""

    category = "SecurityError"
    error_id = "AuthenticationFailed"


@dataclass
class Handshake:
    """The outcome of one handshake step: the token to send back, and the user once the context is complete."""

    token: bytes | None
    user: str | None
    scheme: str


@dataclass
class _Connection:
    context: Any
    scheme: str
    user: str | None = None


def connection_key(environ: dict[str, Any]) -> tuple[str, str]:
    """The TCP connection a request came on (the server must set ``REMOTE_PORT``, as cheroot and waitress do)."""
    return str(environ.get("REMOTE_ADDR", "")), str(environ.get("REMOTE_PORT", ""))


def token_user(token_text: str) -> str | None:
    """The user an NTLM AUTHENTICATE token (raw or in SPNEGO) names, or None for any other or malformed token.

    The app checks login throttling for this name before the token's password proof is checked.
    """
    from spnego._ntlm_raw.messages import Authenticate

    try:
        token = base64.b64decode(token_text.strip(), validate=True)
        if _NTLMSSP_AUTHENTICATE not in token:
            return None
        return Authenticate.unpack(token[token.index(_NTLMSSP_AUTHENTICATE):]).user_name or ""
    except (binascii.Error, ValueError, struct.error, IndexError, UnicodeDecodeError):
        return None


class NegotiateAuthenticator:
    """Accepts NTLM and Negotiate handshakes and wraps/unwraps encrypted WS-Management messages.

    Args:
        nt_hash_of: the NT hash of an administrator, or None.
    """

    def __init__(self, nt_hash_of: HashLookup) -> None:
        self._nt_hash_of = nt_hash_of
        self._lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._connections: OrderedDict[tuple[str, str], _Connection] = OrderedDict()
        self._store_fd = os.memfd_create("mailshift-ntlm", os.MFD_CLOEXEC)
        os.environ["NTLM_USER_FILE"] = f"/proc/self/fd/{self._store_fd}"

    def step(self, key: tuple[str, str], scheme: str, token_text: str) -> Handshake:
        """One handshake step on a connection (``Authorization: NTLM|Negotiate <base64>``).

        Raises:
            AuthFailed: when the token is malformed or the password is wrong.
        """
        try:
            token = base64.b64decode(token_text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise AuthFailed("The authorization token is not base64.") from None
        with self._lock:
            connection = self._connections.get(key)
        if connection is None or connection.user is not None or _is_first(token):
            protocol = "ntlm" if scheme.lower() == "ntlm" or token.startswith(_NTLMSSP) else "negotiate"
            try:
                context = spnego.server(protocol=protocol)
            except spnego.exceptions.SpnegoError as exc:
                log.error("NTLM/Negotiate cannot be offered: %s", exc)
                raise AuthFailed("NTLM is not available on this service.") from None
            connection = _Connection(context, scheme)
            self._remember(key, connection)
        try:
            if _NTLMSSP_AUTHENTICATE in token:
                with self._store_lock:
                    self._prepare_store(token)
                    reply = connection.context.step(token)
                    self._clear_store()
            else:
                reply = connection.context.step(token)
        except (spnego.exceptions.SpnegoError, ValueError, struct.error) as exc:
            self._forget(key)
            log.info("NTLM/Negotiate handshake refused: %s", exc)
            raise AuthFailed("The credentials were refused.") from None
        if connection.context.complete:
            principal = str(connection.context.client_principal or "")
            connection.user = principal.rsplit("\\", 1)[-1].split("@", 1)[0]
        return Handshake(reply, connection.user, scheme)

    def user_of(self, key: tuple[str, str]) -> str | None:
        """The administrator authenticated on this connection, or None."""
        with self._lock:
            connection = self._connections.get(key)
            return connection.user if connection is not None else None

    def unwrap(self, key: tuple[str, str], content_type: str, body: bytes) -> bytes:
        """The SOAP envelope inside an encrypted body (``multipart/encrypted``).

        Raises:
            AuthFailed: when the connection has no context or the message does not decrypt.
        """
        context = self._context(key)
        boundary = _boundary(content_type)
        parts = [p for p in re.split(rb"--\s*" + re.escape(boundary.encode()) + rb"(?:--)?\r\n", body) if p]
        message = b""
        try:
            for index in range(0, len(parts) - 1, 2):
                header, payload = parts[index].strip(), parts[index + 1]
                expected = int(header.split(b"Length=")[1].split(b"\r")[0].strip())
                payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
                length = struct.unpack("<i", payload[:4])[0]
                data = context.unwrap_winrm(payload[4:4 + length], payload[4 + length:])
                if len(data) != expected:
                    raise AuthFailed(f"The decrypted message has {len(data)} bytes, not {expected}.")
                message += data
        except (IndexError, ValueError, struct.error, spnego.exceptions.SpnegoError) as exc:
            log.info("an encrypted WS-Management message could not be decrypted: %s", exc)
            raise AuthFailed("The encrypted message could not be decrypted.") from None
        return message

    def wrap(self, key: tuple[str, str], body: bytes, protocol: str = ENCRYPTED_PROTOCOLS[0]) -> tuple[str, bytes]:
        """``(content type, encrypted body)`` for a response on an encrypting connection."""
        context = self._context(key)
        header, data, padding = context.wrap_winrm(body)
        lines = [f"--{_BOUNDARY}", f"\tContent-Type: {protocol}",
                 f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(body) + padding}",
                 f"--{_BOUNDARY}", "\tContent-Type: application/octet-stream", ""]
        payload = "\r\n".join(lines).encode() + struct.pack("<i", len(header)) + header + data
        payload += f"--{_BOUNDARY}--\r\n".encode()
        content_type = f'multipart/encrypted;protocol="{protocol}";boundary="{_BOUNDARY}"'
        return content_type, payload

    # --- internals ------------------------------------------------------------------------------

    def _context(self, key: tuple[str, str]) -> Any:
        with self._lock:
            connection = self._connections.get(key)
        if connection is None or connection.user is None:
            raise AuthFailed("This connection has not authenticated with NTLM or Negotiate.")
        return connection.context

    def _remember(self, key: tuple[str, str], connection: _Connection) -> None:
        with self._lock:
            self._connections[key] = connection
            self._connections.move_to_end(key)
            while len(self._connections) > MAX_CONTEXTS:
                self._connections.popitem(last=False)

    def _forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._connections.pop(key, None)

    def _prepare_store(self, token: bytes) -> None:
        """Write the one store line the AUTHENTICATE message needs: its domain and user, the account's NT hash."""
        from spnego._ntlm_raw.messages import Authenticate

        auth = Authenticate.unpack(token[token.index(_NTLMSSP_AUTHENTICATE):])
        user = auth.user_name or ""
        nt_hash = self._nt_hash_of(user)
        if nt_hash is None:
            nt_hash = os.urandom(16)  # an unknown user fails like a wrong password
        name = f"{auth.domain_name}\\{user}" if auth.domain_name else user
        line = f"{name}:0:{'0' * 32}:{nt_hash.hex().upper()}:[U]:LCT-0\n".encode()
        os.ftruncate(self._store_fd, 0)
        os.pwrite(self._store_fd, line, 0)

    def _clear_store(self) -> None:
        os.ftruncate(self._store_fd, 0)


def _is_first(token: bytes) -> bool:
    """True for a NEGOTIATE message (raw NTLM type 1, or the SPNEGO NegTokenInit that carries one)."""
    return b"NTLMSSP\x00\x01\x00\x00\x00" in token


def _boundary(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    return match.group(1) if match else _BOUNDARY
