"""Every open PSRP shell, by id: per-administrator limits and idle expiry (sessions survive nothing, but are cheap).

The registry's lock guards only its table; each shell has its own lock. A shell idle longer than
the timeout (no request, no Receive waiting) is closed the next time the registry is used, so a
client that died without Delete frees its slot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shim.psrp import constants as k
from shim.psrp.pool import PSRPError, RunspaceShell

__all__ = ["RunspaceRegistry", "SessionLimitReached", "ShellUnknown"]

_log = logging.getLogger(__name__)


class ShellUnknown(PSRPError):
    """Raised when a ShellId names no runspace pool of the requesting administrator."""


class SessionLimitReached(PSRPError):
    """Raised by Create when the administrator already holds the maximum number of runspace pools."""


class RunspaceRegistry:
    """The open runspace pools.

    Args:
        idle_timeout: seconds without a request after which a pool is closed.
        max_per_user: pools one administrator may hold at once.
        clock: monotonic time in seconds (replaced in tests).
    """

    def __init__(self, *, idle_timeout: float = k.DEFAULT_POOL_IDLE_TIMEOUT_SECONDS,
                 max_per_user: int = k.DEFAULT_MAX_POOLS_PER_USER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout}")
        if max_per_user < 1:
            raise ValueError(f"max_per_user must be at least 1, not {max_per_user}")
        self.idle_timeout = idle_timeout
        self.max_per_user = max_per_user
        self._clock = clock
        self._lock = threading.Lock()
        self._shells: dict[str, RunspaceShell] = {}

    def add(self, shell: RunspaceShell) -> None:
        """Register a new shell.

        Raises:
            SessionLimitReached: when its owner holds ``max_per_user`` shells already.
            PSRPError: when a shell with the same id exists.
        """
        now = self._clock()
        with self._lock:
            reaped = self._reap_locked(now)
            held = sum(1 for s in self._shells.values() if s.owner == shell.owner)
            problem: PSRPError | None = None
            if held >= self.max_per_user:
                problem = SessionLimitReached(
                    f"The user {shell.owner} has reached the maximum of {self.max_per_user} open PowerShell sessions. "
                    "Close sessions with Remove-PSSession (or wait for idle ones to expire) and try again.")
            elif shell.shell_id in self._shells:
                problem = PSRPError(f"A shell with the ShellId {shell.shell_id} already exists.")
            else:
                shell.last_used = now
                self._shells[shell.shell_id] = shell
        self._close(reaped)
        if problem is not None:
            raise problem

    @contextmanager
    def use(self, shell_id: str, owner: str) -> Iterator[RunspaceShell]:
        """Hold ``owner``'s shell for one request (not reaped meanwhile).

        Raises:
            ShellUnknown: when there is no such shell, or it belongs to someone else.
        """
        now = self._clock()
        with self._lock:
            reaped = self._reap_locked(now)
            shell = self._shells.get(shell_id.upper())
            if shell is not None and shell.owner == owner:
                shell.active += 1
                shell.last_used = now
            else:
                shell = None
        self._close(reaped)
        if shell is None:
            raise ShellUnknown(_missing(shell_id))
        try:
            yield shell
        finally:
            with self._lock:
                shell.active -= 1
                shell.last_used = self._clock()

    def delete(self, shell_id: str, owner: str) -> None:
        """Close ``owner``'s shell.

        Raises:
            ShellUnknown: when there is no such shell, or it belongs to someone else.
        """
        with self._lock:
            shell = self._shells.get(shell_id.upper())
            if shell is None or shell.owner != owner:
                raise ShellUnknown(_missing(shell_id))
            del self._shells[shell.shell_id]
        shell.close()

    def get(self, shell_id: str) -> RunspaceShell | None:
        """The shell with this id, whoever owns it (for the door's routing only)."""
        with self._lock:
            return self._shells.get(shell_id.upper())

    def reap(self) -> int:
        """Close shells idle longer than ``idle_timeout``; returns how many."""
        with self._lock:
            reaped = self._reap_locked(self._clock())
        self._close(reaped)
        return len(reaped)

    def count(self, owner: str | None = None) -> int:
        """Open shells, of one owner or of everyone."""
        with self._lock:
            return sum(1 for s in self._shells.values() if owner is None or s.owner == owner)

    def _reap_locked(self, now: float) -> list[RunspaceShell]:
        idle = [s for s in self._shells.values() if s.active == 0 and now - s.last_used > self.idle_timeout]
        for shell in idle:
            del self._shells[shell.shell_id]
            _log.info("PSRP shell %s of %s closed after %.0f s idle", shell.shell_id, shell.owner, now - shell.last_used)
        return idle

    @staticmethod
    def _close(shells: list[RunspaceShell]) -> None:
        for shell in shells:
            shell.close()


def _missing(shell_id: str) -> str:
    return (f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
            "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
            "the server. Provide the correct ShellId or create a new shell and retry the operation.")
