"""Passwords at rest: encrypted with a key kept in the instance folder.

Passwords from CSV rows and endpoints are stored only as Fernet tokens (AES-128-CBC with an
HMAC-SHA256, from the ``cryptography`` package). The key file is created on first use with
mode 0600; a key file that is missing while the database holds tokens means the tokens cannot
be read, which is reported, never papered over.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.errors import StateError
from engine.private import private_folder

__all__ = ["KEY_FILE", "Vault"]

#: Name of the key file inside the instance folder.
KEY_FILE = "secret.key"


class Vault:
    """Encrypts and decrypts secrets with the instance's key."""

    def __init__(self, instance: str | Path) -> None:
        """Load the instance's key, creating it (mode 0600) when there is none.

        Raises:
            StateError: The key file exists but is not a valid key.
        """
        path = Path(instance) / KEY_FILE
        private_folder(path.parent)
        if not path.exists():
            key = Fernet.generate_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
        try:
            self._fernet = Fernet(path.read_bytes().strip())
        except ValueError as exc:
            raise StateError(f"{path} is not a valid Mailshift key file") from exc
        self.path = path

    def seal(self, secret: str) -> bytes:
        """The encrypted form of ``secret``."""
        return self._fernet.encrypt(secret.encode("utf-8"))

    def open(self, token: bytes) -> str:
        """The secret sealed in ``token``.

        Raises:
            StateError: The token was sealed with another key or is damaged.
        """
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken as exc:
            raise StateError(
                f"a stored password cannot be decrypted with {self.path}: the key file was replaced"
            ) from exc
