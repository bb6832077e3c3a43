"""Login throttling: failed logins per account and per client address lead to growing temporary lockouts.

Pure logic over an injected clock; the app asks :meth:`LoginThrottle.check` before it verifies a
password and reports the outcome with :meth:`LoginThrottle.failed` or :meth:`LoginThrottle.succeeded`.

The rule, per key (an account name in any case, or a client address: an IPv4 address or an
IPv6 /64 network, since one IPv6 client owns a whole /64):

- The first :data:`LOGIN_FREE_FAILURES` failures cost nothing (both numbers are settings of the service). Each further failure locks the
  key for ``LOGIN_LOCKOUT_BASE_SECONDS * 2 ** (failures - LOGIN_FREE_FAILURES - 1)`` seconds,
  at most :data:`LOGIN_LOCKOUT_MAX_SECONDS`, counted from that failure. While a key is locked,
  attempts are refused without checking the password (and are not counted): a lockout never
  outlasts the maximum after the last checked guess, so no one can lock an account for good.
- A key's failures are forgotten :data:`LOGIN_FAILURE_MEMORY_SECONDS` after its last failure,
  and at once when a login on it succeeds (both the account and the address).
- A locked account refuses only addresses that have failed a login lately; an address with no
  recent failure still has its password checked, so the real administrator gets in at once
  while someone else guesses the account's password. The trade-off: a guesser with many
  addresses gets one guess per fresh address while the account is locked (each such address is
  then locked out of that account as well, and throttled on its own after its free failures).
- Each table keeps at most :data:`LOGIN_TRACKED_KEYS` keys; the one least recently failed is
  forgotten first, so spraying names or addresses cannot grow memory without bound.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "LOGIN_FAILURE_MEMORY_SECONDS",
    "LOGIN_FREE_FAILURES",
    "LOGIN_LOCKOUT_BASE_SECONDS",
    "LOGIN_LOCKOUT_MAX_SECONDS",
    "LOGIN_TRACKED_KEYS",
    "LoginThrottle",
    "Refusal",
    "address_key",
]

_log = logging.getLogger(__name__)

#: Failed logins a key may have before it is locked (count).
LOGIN_FREE_FAILURES = 5
#: Lockout after the first failure beyond the free ones, doubled for each further one (seconds).
LOGIN_LOCKOUT_BASE_SECONDS = 1.0
#: The longest lockout (seconds).
LOGIN_LOCKOUT_MAX_SECONDS = 300.0
#: A key's failures are forgotten this long after its last failure (seconds).
LOGIN_FAILURE_MEMORY_SECONDS = 900.0
#: Keys each table (accounts, addresses) remembers at most (count).
LOGIN_TRACKED_KEYS = 10_000


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused before its password is checked, and when to try again."""

    #: ``"account"`` or ``"address"``.
    scope: str
    #: The locked key (account name in lower case, or the address key).
    key: str
    #: Whole seconds until the lockout ends (at least 1), for ``Retry-After``.
    retry_after: int


@dataclass
class _Record:
    failures: int
    last_failure: float
    locked_until: float


def address_key(address: str | None) -> str:
    """The throttling key of a client address: an IPv4 address as is, an IPv6 address's /64 network."""
    text = (address or "").split("%")[0]
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class _Table:
    """Failure records of one kind of key, bounded, least recently failed forgotten first."""

    def __init__(self, limit: int, free_failures: int, max_lockout: float) -> None:
        self._limit = limit
        self._free = free_failures
        self._max_lockout = max_lockout
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def get(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last_failure > LOGIN_FAILURE_MEMORY_SECONDS:
            del self._records[key]
            return None
        return record

    def fail(self, key: str, now: float) -> _Record:
        record = self.get(key, now) or _Record(0, now, now)
        record.failures += 1
        record.last_failure = now
        beyond = record.failures - self._free
        if beyond > 0:
            lockout = LOGIN_LOCKOUT_BASE_SECONDS * 2 ** min(beyond - 1, 62)
            record.locked_until = now + min(lockout, self._max_lockout)
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self._limit:
            self._records.popitem(last=False)
        return record

    def forget(self, key: str) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


class LoginThrottle:
    """Failed logins by account and by client address, and the lockouts they earn (thread-safe).

    Args:
        free_failures: Failures a key may have before it is locked (setting ``LOGIN_FREE_FAILURES``).
        max_lockout: The longest lockout in seconds (setting ``LOGIN_LOCKOUT_MAX_SECONDS``).
        clock: Monotonic time in seconds (replaced in tests).
        max_keys: Keys each table remembers at most.

    Raises:
        ValueError: when ``free_failures`` is negative or ``max_lockout`` is below one second.
    """

    def __init__(self, *, free_failures: int = LOGIN_FREE_FAILURES, max_lockout: float = LOGIN_LOCKOUT_MAX_SECONDS,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = LOGIN_TRACKED_KEYS) -> None:
        if free_failures < 0 or max_lockout < LOGIN_LOCKOUT_BASE_SECONDS:
            raise ValueError(f"free_failures must be 0 or more ({free_failures}) and max_lockout at least "
                             f"{LOGIN_LOCKOUT_BASE_SECONDS} s ({max_lockout})")
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts = _Table(max_keys, free_failures, max_lockout)
        self._addresses = _Table(max_keys, free_failures, max_lockout)

    def check(self, account: str | None, address: str | None) -> Refusal | None:
        """The refusal of a login attempt before its password is checked, or None to go on and check it.

        Args:
            account: The account name given (None when the protocol has not named it yet).
            address: The client's address.
        """
        now = self._clock()
        where = address_key(address)
        with self._lock:
            by_address = self._addresses.get(where, now)
            refusal = _locked("address", where, by_address, now)
            if refusal is None and account is not None and by_address is not None:
                refusal = _locked("account", account.lower(), self._accounts.get(account.lower(), now), now)
        if refusal is not None:
            _log.warning("login of %r from %s refused for %d s: too many failed logins for this %s",
                         account or "(not yet named)", address, refusal.retry_after, refusal.scope)
        return refusal

    def failed(self, account: str | None, address: str | None) -> None:
        """Count a failed login (wrong password, unknown account, malformed credentials) and log it."""
        now = self._clock()
        where = address_key(address)
        with self._lock:
            by_address = self._addresses.fail(where, now)
            by_account = self._accounts.fail(account.lower(), now) if account is not None else None
        _log.warning("failed login of %r from %s (%d recent failures from this address%s)",
                     account or "(no name)", address, by_address.failures,
                     f", {by_account.failures} for this account" if by_account is not None else "")
        for scope, key, record in (("address", where, by_address), ("account", (account or "").lower(), by_account)):
            if record is not None and record.locked_until > now:
                _log.warning("%s %s locked for %d s after %d failed logins", scope, key,
                             math.ceil(record.locked_until - now), record.failures)

    def succeeded(self, account: str, address: str | None) -> None:
        """Forget the failures of the account and of the address after a successful login."""
        with self._lock:
            self._accounts.forget(account.lower())
            self._addresses.forget(address_key(address))

    def tracked(self) -> tuple[int, int]:
        """``(accounts, addresses)`` with failure records (for tests and diagnostics)."""
        with self._lock:
            return len(self._accounts), len(self._addresses)


def _locked(scope: str, key: str, record: _Record | None, now: float) -> Refusal | None:
    if record is None or record.locked_until <= now:
        return None
    return Refusal(scope, key, max(1, math.ceil(record.locked_until - now)))
