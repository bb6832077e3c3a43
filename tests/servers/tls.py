"""A self-signed certificate for the test servers (Dovecot, the SMTP listener, the service)."""

from __future__ import annotations

import functools

from engine.tls import self_signed_certificate

__all__ = ["self_signed"]


@functools.cache
def self_signed(server_name: str = "localhost") -> tuple[bytes, bytes]:
    """One self-signed certificate per process for ``server_name`` and 127.0.0.1 (see engine.tls)."""
    return self_signed_certificate(server_name)
