"""The audit trail: one log line per cmdlet call, whichever door it came through.

Each line names the administrator, the door (REST, WinRS, PSRP, Console), the cmdlet, its
parameters with every secret masked, the outcome (``ok`` or the error's category and message)
and the duration. A parameter whose name or type says password, credential or secure string is
written as ``***``; byte arrays (``-CSVData``) as their size, never their contents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shim.cmdlets.binder import Bound
from shim.errors import ShimError

__all__ = ["MASK", "audit_call", "masked_parameters"]

#: What a secret parameter's value is written as.
MASK = "***"

#: The logger of the audit lines.
log = logging.getLogger("mailshift.audit")

_SECRET_WORDS = ("password", "credential", "secret", "securestring")
_LONGEST_TEXT = 200


def _secret(name: str) -> bool:
    return any(word in name.lower().replace("_", "") for word in _SECRET_WORDS)


def _plain(value: Any) -> Any:
    """A value as the log may show it: scalars as they are, bytes as a size, the rest as short text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): MASK if _secret(str(k)) else _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    text = str(value)
    return text if len(text) <= _LONGEST_TEXT else text[:_LONGEST_TEXT] + "..."


def masked_parameters(bound: Bound) -> dict[str, Any]:
    """The cmdlet's given parameters, fit for a log: secrets masked, byte arrays as their size."""
    shown: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        parameter = bound.cmdlet.parameter(name)
        type_names = (parameter.type.name, parameter.type.net_type) if parameter is not None else ()
        if _secret(name) or any(_secret(t) for t in type_names):
            shown[name] = MASK
        elif parameter is not None and parameter.type.net_type == "System.Byte[]" and isinstance(value, (list, tuple)):
            shown[name] = f"<{len(value)} bytes>"
        else:
            shown[name] = _plain(value)
    return shown


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, ShimError):
        return f"{error.category}: {error.message}"
    return f"InternalError: {type(error).__name__}"


def audit_call(*, admin: str, door: str, cmdlet: str, bound: Bound | None, error: BaseException | None,
               duration_ms: float) -> None:
    """Write the audit line of one cmdlet call.

    Args:
        admin: The administrator who called it.
        door: The door it came through.
        cmdlet: The cmdlet's name as called (canonical when it was found).
        bound: Its bound parameters, or None when binding failed (no value is written then).
        error: What it raised, or None when it succeeded.
        duration_ms: How long binding and running took, in milliseconds.
    """
    parameters = masked_parameters(bound) if bound is not None else None
    outcome = _outcome(error)
    shown = " ".join(f"-{k} {v!r}" for k, v in (parameters or {}).items())
    level = logging.INFO if error is None or isinstance(error, ShimError) else logging.ERROR
    log.log(level, "%s by %s via %s%s: %s (%.0f ms)", cmdlet, admin, door, f" {shown}" if shown else "", outcome,
            duration_ms, extra={"admin": admin, "door": door, "cmdlet": cmdlet, "parameters": parameters,
                                "outcome": outcome, "duration_ms": round(duration_ms, 1)})
