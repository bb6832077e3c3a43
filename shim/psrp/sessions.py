"""Every open PSRP shell, by id: per-administrator limits and idle expiry (sessions survive nothing, but are cheap).

The registry's lock guards only its table; each shell has its own lock. A shell idle longer than
the timeout (no request, no Receive waiting) is closed the next time the registry is used, so a
client that died without Delete frees its slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shim.psrp import constants as k
from shim.psrp.pool import PSRPError, RunspaceShell
from shim.shelltable import ShellTable

__all__ = ["RunspaceRegistry", "SessionLimitReached", "ShellUnknown"]


class ShellUnknown(PSRPError):
    """Raised when a ShellId names no runspace pool of the requesting administrator."""


class SessionLimitReached(PSRPError):
    """Raised by Create when the administrator already holds the maximum number of runspace pools."""


class RunspaceRegistry(ShellTable[RunspaceShell]):
    """The open runspace pools.

    Args:
        idle_timeout: seconds without a request after which a pool is closed.
        max_per_user: pools one administrator may hold at once.
        clock: monotonic time in seconds (replaced in tests).
    """

    def __init__(self, *, idle_timeout: float = k.DEFAULT_POOL_IDLE_TIMEOUT_SECONDS,
                 max_per_user: int = k.DEFAULT_MAX_POOLS_PER_USER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(
            kind="PSRP runspace pool", idle_timeout=idle_timeout, max_per_owner=max_per_user,
            unknown=lambda shell_id: ShellUnknown(_missing(shell_id)),
            over_limit=lambda owner, limit: SessionLimitReached(
                f"The user {owner} has reached the maximum of {limit} open PowerShell sessions. "
                "Close sessions with Remove-PSSession (or wait for idle ones to expire) and try again."),
            duplicate=lambda shell_id: PSRPError(f"A shell with the ShellId {shell_id} already exists."),
            clock=clock,
        )

    @property
    def max_per_user(self) -> int:
        """Pools one administrator may hold at once."""
        return self.max_per_owner


def _missing(shell_id: str) -> str:
    return (f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
            "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
            "the server. Provide the correct ShellId or create a new shell and retry the operation.")
