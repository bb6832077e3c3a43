"""Administrator accounts of the service: names, e-mail addresses, scrypt password hashes.

Kept in ``<instance>/admins.json`` (mode 0600). There is no default account and no default
password: ``mailshift admin add NAME`` creates one.

NTLM and Negotiate cannot check a password against a slow hash: the acceptor needs the NT hash
(MD4 of the UTF-16LE password), which is as good as the password for NTLM. It is stored only
encrypted with the instance's vault key (``secret.key``, as endpoint passwords are), written by
``set`` (so by ``mailshift admin add``); an account made before this existed has none, and NTLM
works for it once its password is set again. Plaintext passwords are never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigurationError, StateError
from engine.private import private_folder
from engine.vault import Vault

__all__ = ["Account", "Accounts"]

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_FILE = "admins.json"


@dataclass(frozen=True)
class Account:
    """An administrator: the name used to log in and where their status e-mails go."""

    name: str
    email: str | None


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)


def nt_hash(password: str) -> bytes:
    """The NT hash NTLM authenticates with: MD4 of the UTF-16LE password."""
    data = password.encode("utf-16-le")
    try:
        return hashlib.new("md4", data).digest()
    except ValueError:  # OpenSSL 3 without the legacy provider
        from spnego._ntlm_raw.md4 import md4

        return md4(data)


class Accounts:
    """The administrator accounts of one instance folder."""

    def __init__(self, instance: str | Path) -> None:
        self.path = Path(instance) / _FILE
        self._lock = threading.Lock()
        self._cache: tuple[float, dict[str, dict[str, str | None]]] | None = None
        # Recently verified logins, keyed by a keyed hash of name and password (this process only):
        # WinRM clients send Basic credentials on every request, and scrypt is slow on purpose.
        self._verified: dict[bytes, Account] = {}
        self._process_key = secrets.token_bytes(32)

    def _load(self) -> dict[str, dict[str, str | None]]:
        try:
            stamp = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{self.path} cannot be read: {exc}") from exc
        self._cache = (stamp, data)
        self._verified.clear()  # the file changed: passwords may have too
        return data  # type: ignore[no-any-return]

    def _save(self, data: dict[str, dict[str, str | None]]) -> None:
        private_folder(self.path.parent)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(temporary, self.path)
        self._cache = None
        self._verified.clear()

    def names(self) -> list[Account]:
        """Every account (without secrets)."""
        return [Account(name, entry.get("email")) for name, entry in sorted(self._load().items())]

    def set(self, name: str, password: str, *, email: str | None = None) -> Account:
        """Create the account, or change its password (and e-mail address when given)."""
        if not name or ":" in name or name != name.strip():
            raise ConfigurationError("an account name may not be empty, contain ':' or start or end with spaces")
        if len(password) < 12:
            raise ConfigurationError("use a password of at least 12 characters")
        salt = secrets.token_bytes(16)
        with self._lock:
            data = dict(self._load())
            previous = data.get(name, {})
            sealed = Vault(self.path.parent).seal(nt_hash(password).hex()).decode("ascii")
            data[name] = {"salt": salt.hex(), "hash": _hash(password, salt).hex(),
                          "email": email if email is not None else previous.get("email"), "nt_hash": sealed}
            self._save(data)
        return Account(name, data[name]["email"])

    def remove(self, name: str) -> None:
        """Delete the account."""
        with self._lock:
            data = dict(self._load())
            if name not in data:
                raise ConfigurationError(f"there is no account named {name!r}")
            del data[name]
            self._save(data)

    def nt_hash(self, name: str) -> bytes | None:
        """The account's NT hash for NTLM (name in any case), or None when there is no such account or no hash.

        Raises:
            StateError: when the stored hash cannot be decrypted with the instance's key.
        """
        data = self._load()
        entry = data.get(name) or next((e for n, e in data.items() if n.lower() == name.lower()), None)
        sealed = entry.get("nt_hash") if entry else None
        if not sealed:
            return None
        try:
            return bytes.fromhex(Vault(self.path.parent).open(sealed.encode("ascii")))
        except ValueError as exc:
            raise StateError(f"the NT hash of {name!r} in {self.path} is damaged") from exc

    def canonical(self, name: str) -> Account | None:
        """The account whose name matches ``name`` in any case (NTLM clients may change the case), or None."""
        wanted = name.lower()
        return next((a for a in self.names() if a.name.lower() == wanted), None)

    def verify(self, name: str, password: str) -> Account | None:
        """The account when the password is right, else None (in about the same time either way)."""
        data = self._load()
        key = hmac.new(self._process_key, f"{name}\0{password}".encode("utf-8"), "sha256").digest()
        remembered = self._verified.get(key)
        if remembered is not None:
            return remembered
        entry = data.get(name)
        salt = bytes.fromhex(entry["salt"] or "") if entry else b"\0" * 16
        digest = _hash(password, salt)
        if entry is None or not hmac.compare_digest(digest.hex(), entry["hash"] or ""):
            return None
        account = Account(name, entry.get("email"))
        if len(self._verified) > 1024:
            self._verified.clear()
        self._verified[key] = account
        return account
