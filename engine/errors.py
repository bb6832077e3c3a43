"""The engine's exceptions: one root, small subclasses, each knowing its blast radius.

The scope of an error decides what it costs: an ``ITEM`` error skips one message, a ``FOLDER``
error skips one folder and lets the mailbox finish with errors, a ``MAILBOX`` error fails the
mailbox, a ``BATCH`` error refuses one operation on a batch (or endpoint, or user), and a
``SERVICE`` error stops the engine (an unreadable state database, say).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AuthenticationFailed",
    "CertificateRejected",
    "CommandRefused",
    "ConfigurationError",
    "ConnectionLost",
    "FolderError",
    "Interrupted",
    "ItemRejected",
    "LimitExceeded",
    "MigrationError",
    "NotFound",
    "AlreadyExists",
    "Refused",
    "Scope",
    "StateError",
    "TargetFull",
    "Throttled",
]


class Scope(StrEnum):
    """How much of the work an error spoils."""

    ITEM = "Item"
    FOLDER = "Folder"
    MAILBOX = "Mailbox"
    BATCH = "Batch"
    SERVICE = "Service"


class MigrationError(Exception):
    """Root of every error the engine raises on purpose."""

    scope: Scope = Scope.MAILBOX
    #: True when the same step may succeed if tried again later (network, throttling).
    transient: bool = False


class ConfigurationError(MigrationError):
    """Raised when settings given to the engine are invalid (bad port, unknown security...)."""


class ConnectionLost(MigrationError):
    """Raised when a server cannot be reached or drops the connection mid-command.

    ``unsent`` is True when the connection failed while a command's last bytes were being
    written: the server never received it whole, so it cannot have acted on it.
    """

    transient = True

    def __init__(self, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class Throttled(MigrationError):
    """Raised when a server asks the client to slow down; carries the pause it suggested."""

    transient = True

    def __init__(self, message: str, pause_seconds: float) -> None:
        super().__init__(message)
        self.pause_seconds = pause_seconds


class AuthenticationFailed(MigrationError):
    """Raised when a server refuses the credentials (never includes the password)."""


class CertificateRejected(MigrationError):
    """Raised when a server's TLS certificate fails verification and untrusted ones are not accepted."""


class CommandRefused(MigrationError):
    """Raised when a server answers NO or BAD to a command (most often about one folder)."""

    scope = Scope.FOLDER


class FolderError(MigrationError):
    """Raised when one folder cannot be read or created; the rest of the mailbox goes on."""

    scope = Scope.FOLDER

    def __init__(self, folder: str, message: str) -> None:
        super().__init__(f"folder {folder!r}: {message}")
        self.folder = folder


class ItemRejected(MigrationError):
    """Raised when a target refuses a message (a refused MULTIAPPEND stores none of its messages).

    A target that appends one message at a time may have stored the leading messages of a
    transaction before refusing one: ``stored`` holds their references, in order.
    """

    scope = Scope.ITEM

    def __init__(self, message: str, *, too_large: bool = False, stored: list[str | None] | None = None) -> None:
        super().__init__(message)
        self.too_large = too_large
        self.stored: list[str | None] = stored or []


class Interrupted(MigrationError):
    """Raised inside a sync asked to stop, at the next safe point (after a recorded chunk)."""


class LimitExceeded(MigrationError):
    """Raised when skipped items pass the mailbox's BadItemLimit or LargeItemLimit."""


class TargetFull(MigrationError):
    """Raised when the target mailbox is over its quota: nothing more can be copied into it."""


class NotFound(MigrationError):
    """Raised when a batch, endpoint or migration user named in a request does not exist."""

    scope = Scope.BATCH


class AlreadyExists(MigrationError):
    """Raised when creating a batch or endpoint whose name is taken."""

    scope = Scope.BATCH


class Refused(MigrationError):
    """Raised when a request is valid but not allowed now (a user in another active batch...)."""

    scope = Scope.BATCH


class StateError(MigrationError):
    """Raised when the state database is unreadable, corrupt or written by a newer version."""

    scope = Scope.SERVICE
