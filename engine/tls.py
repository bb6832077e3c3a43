"""TLS client contexts: certificates verified unless the administrator accepted untrusted ones."""

from __future__ import annotations

import ssl

__all__ = ["client_context"]


def client_context(accept_untrusted_certificates: bool) -> ssl.SSLContext:
    """A client context that verifies the server's certificate and host name.

    Args:
        accept_untrusted_certificates: The administrator's explicit opt-out (self-signed test
            servers): no verification at all.
    """
    context = ssl.create_default_context()
    if accept_untrusted_certificates:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
