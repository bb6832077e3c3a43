"""The interpreter's own errors and how every error is printed on a PowerShell 5.1 console."""

from __future__ import annotations

from typing import Any

from shim.errors import ParseError, ShimError
from shim.pslang.ast import Extent
from shim.psobject import PSObject

__all__ = [
    "ErrorRecord",
    "PSParseError",
    "RuntimeFailure",
    "ThrownError",
    "WrittenError",
    "format_error",
    "make_error_record",
]


class PSParseError(ParseError):
    """Raised by :func:`shim.pslang.parse` with the position of the problem."""

    def __init__(self, reason: str, extent: Extent, error_id: str = "UnexpectedToken") -> None:
        self.reason = reason
        self.line = extent.line
        self.column = extent.column
        self.extent = extent
        super().__init__(
            f"At line:{self.line} char:{self.column}\n{_position_lines(extent)}\n{reason}",
            error_id=error_id,
        )


class RuntimeFailure(ShimError):
    """Raised when evaluating an expression fails (null method call, bad cast, division by zero...)."""

    category = "InvalidOperation"
    error_id = "RuntimeException"


class ThrownError(ShimError):
    """Raised by the ``throw`` statement; carries the thrown value."""

    category = "OperationStopped"
    terminating = True

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message, target=message, error_id=message)
        self.value = value


class WrittenError(ShimError):
    """Raised (or recorded) by ``Write-Error``."""

    category = "NotSpecified"
    error_id = "Microsoft.PowerShell.Commands.WriteErrorException"


class ErrorRecord(PSObject):
    """``$_`` in a catch block and each entry of ``$Error``: a PSObject that remembers its exception."""

    __slots__ = ("error", "extent")

    def __init__(self, error: ShimError, extent: Extent | None, properties: dict[str, Any]) -> None:
        super().__init__(["System.Management.Automation.ErrorRecord", "System.Object"], properties, text=error.message)
        self.error = error
        self.extent = extent


def _reason(error: ShimError) -> str:
    if isinstance(error, ThrownError):
        return "RuntimeException"
    if isinstance(error, WrittenError):
        return "WriteErrorException"
    return type(error).__name__


def _target_text(error: ShimError) -> str:
    if error.target is None:
        return ":"
    target = error.target
    type_name = "String" if isinstance(target, str) else type(target).__name__
    if isinstance(target, PSObject):
        type_name = target.type_name.rsplit(".", 1)[-1]
    return f"{target}:{type_name}"


def make_error_record(error: ShimError, extent: Extent | None) -> ErrorRecord:
    """Wrap an error as the ErrorRecord a script sees (``$_.Exception.Message``, ``$_.CategoryInfo``...)."""
    activity = error.command or ""
    category_text = f"{error.category}: ({_target_text(error)}) [{activity}], {_reason(error)}"
    exception = PSObject(
        ["Mailshift." + type(error).__name__, "System.Exception"],
        {"Message": error.message, "ErrorId": error.error_id},
        text=error.message,
    )
    category = PSObject(
        ["System.Management.Automation.ErrorCategoryInfo"],
        {
            "Category": error.category,
            "Activity": activity,
            "Reason": _reason(error),
            "TargetName": "" if error.target is None else str(error.target),
        },
        text=category_text,
    )
    return ErrorRecord(
        error,
        extent,
        {
            "Exception": exception,
            "TargetObject": error.target,
            "CategoryInfo": category,
            "FullyQualifiedErrorId": error.fully_qualified_error_id,
            "ErrorDetails": None,
            "InvocationInfo": None,
            "ScriptStackTrace": f"at <ScriptBlock>, <No file>: line {extent.line}" if extent else "",
        },
    )


def _position_lines(extent: Extent) -> str:
    line = extent.line_text()
    column = extent.column
    length = max(1, min(extent.end, extent.start + len(line) - column + 1) - extent.start)
    return f"+ {line}\n+ {' ' * (column - 1)}{'~' * length}"


def format_error(error: ShimError, extent: Extent | None) -> str:
    """The error as PowerShell 5.1 prints it on the console.

    Args:
        error: The error.
        extent: Where the failing command or statement was written, when known.

    Returns:
        ``Command : message``, the ``At line:`` position lines, ``+ CategoryInfo`` and
        ``+ FullyQualifiedErrorId``, ending with a line break.
    """
    if isinstance(error, PSParseError):
        return (
            f"{error.message}\n"
            f"    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException\n"
            f"    + FullyQualifiedErrorId : {error.error_id}\n"
        )
    activity = error.command or ("Write-Error" if isinstance(error, WrittenError) else "")
    head = f"{activity} : {error.message}" if activity else error.message
    lines = [head]
    if extent is not None:
        lines.append(f"At line:{extent.line} char:{extent.column}")
        lines.append(_position_lines(extent))
    lines.append(f"    + CategoryInfo          : {error.category}: ({_target_text(error)}) [{activity}], {_reason(error)}")
    lines.append(f"    + FullyQualifiedErrorId : {error.fully_qualified_error_id}")
    return "\n".join(lines) + "\n"
