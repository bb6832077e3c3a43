"""NTLM/Negotiate refusals say what happened in our words, never the library's exception text."""

import base64

import pytest

from shim.wsman.auth import AuthFailed, NegotiateAuthenticator


@pytest.mark.parametrize("token", [
    b"NTLMSSP\x00\x03\x00\x00\x00" + b"\xff" * 40,  # an AUTHENTICATE message cut short and garbled
    b"NTLMSSP\x00\x01\x00\x00\x00",                  # a NEGOTIATE message cut short
    b"\x60\x82\x00\x10garbage-spnego",              # a broken SPNEGO wrapper
])
def test_a_garbled_handshake_is_refused_with_our_message_only(token: bytes) -> None:
    auth = NegotiateAuthenticator(lambda user: None)
    with pytest.raises(AuthFailed) as refused:
        auth.step(("127.0.0.1", "1"), "Negotiate", base64.b64encode(token).decode())
    assert str(refused.value) in ("The credentials were refused.", "The authorization token is not base64.")
    assert "Error" not in str(refused.value) and "spnego" not in str(refused.value).lower()
