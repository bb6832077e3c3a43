"""Shells by id, each owned by the administrator who opened it: a per-owner limit and idle expiry.

Both WS-Management doors keep their shells here: the WinRS door its command shells, the PSRP
door its runspace pools. The table's lock guards only the table; each shell has its own state
and locks. A shell idle longer than the timeout (no request, no Receive waiting on it) is
released the next time the table is used, so a client that died without Delete frees its slot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from shim.errors import ShimError

__all__ = ["OwnedShell", "ShellTable"]

_log = logging.getLogger(__name__)


class OwnedShell(Protocol):
    """What the table needs of a shell."""

    shell_id: str
    owner: str
    #: Monotonic time of the last request that used the shell.
    last_used: float
    #: Requests using it right now (a long-polling Receive keeps it from expiring).
    active: int

    def release(self) -> None:
        """Give up what the shell holds; it has left the table (deleted or expired)."""


S = TypeVar("S", bound=OwnedShell)


class ShellTable(Generic[S]):
    """Open shells by id.

    Args:
        kind: What the shells are, for the log ("WinRS shell", "PSRP runspace pool").
        idle_timeout: Seconds without a request after which a shell is released.
        max_per_owner: Shells one administrator may hold at once.
        unknown: The error for an id that names no shell of the asking administrator.
        over_limit: The error for an administrator who holds ``max_per_owner`` shells already.
        duplicate: The error for a new shell whose id is taken (clients may choose the id).
        clock: Monotonic time in seconds (replaced in tests).
    """

    def __init__(self, *, kind: str, idle_timeout: float, max_per_owner: int, unknown: Callable[[str], ShimError],
                 over_limit: Callable[[str, int], ShimError], duplicate: Callable[[str], ShimError] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout}")
        if max_per_owner < 1:
            raise ValueError(f"the shell limit per user must be at least 1, not {max_per_owner}")
        self.kind = kind
        self.idle_timeout = idle_timeout
        self.max_per_owner = max_per_owner
        self._unknown = unknown
        self._over_limit = over_limit
        self._duplicate = duplicate or (lambda shell_id: ShimError(
            f"A shell with the ShellId {shell_id} already exists.", category="ResourceExists", error_id="ShellExists"))
        self._clock = clock
        self._lock = threading.Lock()
        self._shells: dict[str, S] = {}

    @staticmethod
    def _key(shell_id: str) -> str:
        return shell_id.upper()  # ids are GUIDs; clients may echo them in either case

    def now(self) -> float:
        """The table's clock."""
        return self._clock()

    def add(self, shell: S) -> None:
        """Register a new shell (its ``last_used`` becomes now).

        Raises:
            ShimError: ``over_limit``'s error when the owner holds ``max_per_owner`` shells, or
                when a shell with the same id is open.
        """
        now = self._clock()
        with self._lock:
            released = self._expire_locked(now)
            held = sum(1 for s in self._shells.values() if s.owner == shell.owner)
            problem: ShimError | None = None
            if held >= self.max_per_owner:
                problem = self._over_limit(shell.owner, self.max_per_owner)
            elif self._key(shell.shell_id) in self._shells:
                problem = self._duplicate(shell.shell_id)
            else:
                shell.last_used = now
                self._shells[self._key(shell.shell_id)] = shell
        self._release(released)
        if problem is not None:
            raise problem

    @contextmanager
    def use(self, shell_id: str, owner: str) -> Iterator[S]:
        """Hold ``owner``'s shell for the duration of one request (it does not expire meanwhile).

        Raises:
            ShimError: ``unknown``'s error when no shell has this id or it belongs to someone else.
        """
        now = self._clock()
        with self._lock:
            released = self._expire_locked(now)
            shell = self._shells.get(self._key(shell_id))
            if shell is not None and shell.owner == owner:
                shell.active += 1
                shell.last_used = now
            else:
                shell = None
        self._release(released)
        if shell is None:
            raise self._unknown(shell_id)
        try:
            yield shell
        finally:
            with self._lock:
                shell.active -= 1
                shell.last_used = self._clock()

    def delete(self, shell_id: str, owner: str) -> None:
        """Take ``owner``'s shell out of the table and release it.

        Raises:
            ShimError: ``unknown``'s error when no shell has this id or it belongs to someone else.
        """
        with self._lock:
            shell = self._shells.get(self._key(shell_id))
            if shell is None or shell.owner != owner:
                raise self._unknown(shell_id)
            del self._shells[self._key(shell_id)]
        shell.release()

    def get(self, shell_id: str) -> S | None:
        """The shell with this id, whoever owns it (for routing a request to its door only)."""
        with self._lock:
            return self._shells.get(self._key(shell_id))

    def reap(self) -> int:
        """Release shells idle longer than ``idle_timeout``; returns how many went."""
        with self._lock:
            released = self._expire_locked(self._clock())
        self._release(released)
        return len(released)

    def listing(self) -> list[tuple[str, str, float]]:
        """``(shell id, owner, seconds idle)`` of every open shell (0 idle while a request uses it)."""
        now = self._clock()
        with self._lock:
            return [(s.shell_id, s.owner, 0.0 if s.active else max(0.0, now - s.last_used))
                    for s in self._shells.values()]

    def close(self, owner: str, shell_id: str | None = None) -> list[str]:
        """Release ``owner``'s shells (all, or the one with ``shell_id``) at an administrator's request; returns their ids.

        A Receive waiting on a closed shell ends with the door's unknown-shell or unknown-command fault.
        """
        with self._lock:
            closing = [s for s in self._shells.values()
                       if s.owner == owner and (shell_id is None or self._key(s.shell_id) == self._key(shell_id))]
            for shell in closing:
                del self._shells[self._key(shell.shell_id)]
        for shell in closing:
            _log.warning("%s %s of %s closed by an administrator", self.kind, shell.shell_id, owner)
        self._release(closing)
        return [shell.shell_id for shell in closing]

    def count(self, owner: str | None = None) -> int:
        """Open shells, of one owner or of everyone."""
        with self._lock:
            return sum(1 for s in self._shells.values() if owner is None or s.owner == owner)

    def _expire_locked(self, now: float) -> list[S]:
        idle = [s for s in self._shells.values() if s.active == 0 and now - s.last_used > self.idle_timeout]
        for shell in idle:
            del self._shells[self._key(shell.shell_id)]
            _log.info("%s %s of %s closed after %.0f s idle", self.kind, shell.shell_id, shell.owner,
                      now - shell.last_used)
        return idle

    @staticmethod
    def _release(shells: list[S]) -> None:
        for shell in shells:
            shell.release()
