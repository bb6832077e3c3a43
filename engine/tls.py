"""TLS helpers: client contexts that verify certificates unless the administrator accepted untrusted
ones, and self-signed certificates for a service (or a test server) that has none configured."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

__all__ = ["client_context", "self_signed_certificate"]


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


def self_signed_certificate(server_name: str = "localhost", *, days: int = 30) -> tuple[bytes, bytes]:
    """A self-signed certificate (P-256) for ``server_name`` and 127.0.0.1; it is its own CA.

    Returns:
        The PEM certificate and the PEM (unencrypted PKCS#8) private key.
    """
    # Imported here: cryptography costs ~20 ms of every ``mailshift sync`` start, which only
    # needs client contexts.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(server_name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
