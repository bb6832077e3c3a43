"""The shim's exceptions: one root, each carrying what PowerShell's ErrorRecord needs.

Every door renders a :class:`ShimError` natively: REST as the JSON error shape, WinRS as CLIXML
on stderr, PSRP as an ErrorRecord. ``category`` is a PowerShell ``ErrorCategory`` name and
``error_id`` becomes the FullyQualifiedErrorId (``<error_id>,<command name>``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BindingError",
    "CommandNotFound",
    "InvocationFailed",
    "NotSupported",
    "ObjectNotFound",
    "ParseError",
    "ScriptRefused",
    "ShimError",
]


class ShimError(Exception):
    """Root of every error the shim raises on purpose."""

    category: str = "NotSpecified"
    error_id: str = "MailshiftError"
    #: Terminating errors stop the whole pipeline/statement even without -ErrorAction Stop
    #: (binding errors and parse errors are; a cmdlet's "not found" is not).
    terminating: bool = False

    def __init__(
        self,
        message: str,
        *,
        command: str | None = None,
        target: Any = None,
        category: str | None = None,
        error_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.command = command
        self.target = target
        if category is not None:
            self.category = category
        if error_id is not None:
            self.error_id = error_id

    @property
    def fully_qualified_error_id(self) -> str:
        """``ErrorId,Command`` as PowerShell prints it."""
        return f"{self.error_id},{self.command}" if self.command else self.error_id


class ParseError(ShimError):
    """Raised when script text is not valid in the supported PowerShell subset."""

    category = "ParserError"
    error_id = "ParseError"
    terminating = True


class ScriptRefused(ShimError):
    """Raised when a script uses something the restricted language does not allow (.NET, files...)."""

    category = "PermissionDenied"
    error_id = "ScriptRefused"
    terminating = True


class CommandNotFound(ShimError):
    """Raised when a script calls a command that Mailshift does not implement."""

    category = "ObjectNotFound"
    error_id = "CommandNotFoundException"
    terminating = True


class BindingError(ShimError):
    """Raised when arguments cannot be bound to a cmdlet's parameters (unknown, ambiguous, missing, wrong type)."""

    category = "InvalidArgument"
    error_id = "ParameterBindingException"
    terminating = True


class ObjectNotFound(ShimError):
    """Raised when a cmdlet's identity names no batch, user or endpoint."""

    category = "ObjectNotFound"
    error_id = "ManagementObjectNotFoundException"


class NotSupported(ShimError):
    """Raised for parameters or forms Mailshift accepts by name but cannot honour."""

    category = "NotImplemented"
    error_id = "NotSupportedException"


class InvocationFailed(ShimError):
    """Raised when the engine refuses an operation (illegal status, bad CSV, duplicate name...)."""

    category = "InvalidOperation"
    error_id = "InvalidOperationException"
