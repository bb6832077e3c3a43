"""Parameter types as PowerShell and Exchange name them, with PowerShell-like conversions.

Each :class:`ParamType` knows its short name (as ``Get-Help`` prints it: ``String``,
``Unlimited``, ``MigrationBatchIdParameter``), its full .NET name (for command metadata and
the generated module), and how to convert what a caller passed into the Python value the
engine wants. Conversions are as forgiving as PowerShell's own (``"143"`` binds to an Int32,
``Unlimited`` to an Unlimited) and fail with the messages PowerShell's binder uses.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from engine.defaults import UNLIMITED
from shim.errors import BindingError
from shim.psobject import PSObject

__all__ = [
    "BOOLEAN",
    "BYTES",
    "DATETIME",
    "ENDPOINT_ID",
    "FQDN",
    "GUID",
    "INT32",
    "MULTI",
    "ParamType",
    "SMTP",
    "STRING",
    "SWITCH",
    "BATCH_ID",
    "TIMESPAN",
    "UNLIMITED_INT",
    "USER_ID",
    "enum",
    "identity_text",
]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class _Invalid(ValueError):
    """A value that cannot become the parameter's type; the message says why."""


@dataclass(frozen=True)
class ParamType:
    """A parameter type: names for help and metadata, and the conversion."""

    name: str
    net_type: str
    convert: Callable[[Any], Any] = field(repr=False)
    is_switch: bool = False
    #: The allowed values (ValidateSet), case-insensitive; empty for free values.
    values: tuple[str, ...] = ()
    #: True when the type is a collection (arguments ``a,b`` stay a list).
    is_list: bool = False

    def coerce(self, value: Any, parameter: str) -> Any:
        """Convert ``value`` for ``parameter``, or raise a :class:`BindingError` saying why."""
        try:
            return self.convert(value)
        except _Invalid as exc:
            shown = _shown(value)
            raise BindingError(
                f"Cannot process argument transformation on parameter '{parameter}'. "
                f"Cannot convert value \"{shown}\" to type \"{self.net_type}\". {exc}",
                error_id="ParameterArgumentTransformationError",
            ) from None
        except _NotInSet as exc:
            raise BindingError(
                f"Cannot validate argument on parameter '{parameter}'. The argument \"{_shown(value)}\" does not "
                f"belong to the set \"{','.join(self.values)}\" specified by the ValidateSet attribute. "
                f"Supply an argument that is in the set and then try the command again.",
                error_id="ParameterArgumentValidationError",
            ) from exc


class _NotInSet(ValueError):
    pass


def _shown(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"System.Byte[] ({len(value)} bytes)"
    if isinstance(value, list):
        return "System.Object[]"
    if value is None:
        return ""
    return str(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


# -- conversions ---------------------------------------------------------------------------


def _to_string(value: Any) -> str | None:
    value = _scalar(value)
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (bytes, bytearray)):
        raise _Invalid("Give text, not bytes.")
    return str(value)


def _to_int(value: Any) -> int:
    value = _scalar(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _Invalid("Give a whole number.")
        number = round(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            try:
                number = round(float(text))
            except ValueError:
                raise _Invalid("Input string was not in a correct format.") from None
    else:
        raise _Invalid("Give a whole number.")
    if not _INT32_MIN <= number <= _INT32_MAX:
        raise _Invalid("Value was either too large or too small for an Int32.")
    return number


def _to_bool(value: Any) -> bool:
    value = _scalar(value)
    if isinstance(value, PSObject) and "IsPresent" in value:  # a SwitchParameter object
        return bool(value["IsPresent"])
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "$true", "$false", "1", "0"):
        return value.strip().lower() in ("true", "$true", "1")
    raise _Invalid("Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.")


def _to_switch(value: Any) -> bool:
    return True if value is None else _to_bool(value)


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        try:
            return bytes(value)
        except ValueError:
            raise _Invalid("Each element must be a number from 0 to 255.") from None
    if isinstance(value, PSObject) and "$base64" in value:
        return base64.b64decode(str(value["$base64"]), validate=True)
    raise _Invalid("Give the file's bytes, e.g. ([System.IO.File]::ReadAllBytes(\"C:\\path\\file.csv\")).")


def _to_multi(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, (bytes, bytearray, dict)):
            raise _Invalid("Give text values.")
        text = identity_text(item)
        out.append(text)
    return out


def _to_unlimited(value: Any) -> int:
    value = _scalar(value)
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return UNLIMITED
    if isinstance(value, PSObject) and value.get("IsUnlimited"):
        return UNLIMITED
    number = _to_int(value.get("Value") if isinstance(value, PSObject) else value)
    if number < 0:
        raise _Invalid("Give Unlimited or a number from 0 to 2147483647.")
    return number


_DATE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M%p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)
_ZONE_SUFFIX = re.compile(r"\s*(Z|[+-]\d{1,2}:?\d{2})$", re.IGNORECASE)


def _to_datetime(value: Any) -> datetime | None:
    value = _scalar(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise _Invalid("Give a date such as \"7/30/2026 9:00 PM\" or \"2026-07-30T21:00:00Z\".")
    text = value.strip()
    zone = timezone.utc
    match = _ZONE_SUFFIX.search(text)
    if match and not re.search(r"T\d", text):
        suffix = match.group(1).upper()
        text = text[: match.start()].strip()
        if suffix != "Z":
            sign = -1 if suffix.startswith("-") else 1
            digits = suffix[1:].replace(":", "").rjust(4, "0")
            zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    text = text.replace("Z", "+0000") if text.endswith("Z") else text
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    raise _Invalid("Give a date such as \"7/30/2026 9:00 PM\" or \"2026-07-30T21:00:00Z\".")


_TIMESPAN = re.compile(r"^(?:(?P<d>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}(?:\.\d+)?))?$")


def _to_timespan(value: Any) -> timedelta:
    value = _scalar(value)
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _TIMESPAN.match(value.strip())
        if match:
            return timedelta(days=int(match["d"] or 0), hours=int(match["h"]), minutes=int(match["m"]),
                             seconds=float(match["s"] or 0))
        try:
            return timedelta(days=int(value.strip()))
        except ValueError:
            pass
    raise _Invalid("Give a time span such as \"1.00:00:00\" (one day) or \"12:00:00\".")


def identity_text(value: Any) -> str:
    """The identity a value stands for: a string as is; an object by its Identity (or its text).

    This is what lets ``$batch``, ``$batch.Identity``, ``$batch.Identity.Name`` and ``"name"``
    all name the same batch.
    """
    value = _scalar(value)
    if isinstance(value, PSObject):
        if "Identity" in value and value["Identity"] is not None:
            return identity_text(value["Identity"])
        if value.text is not None:
            return value.text
        for key in ("Name", "Id", "EmailAddress"):
            if key in value and value[key] is not None:
                return str(value[key])
        raise _Invalid("The object has no Identity.")
    if value is None:
        raise _Invalid("Give a name.")
    if isinstance(value, (bytes, bytearray, list, dict)):
        raise _Invalid("Give a name.")
    return str(value)


def _to_identity(value: Any) -> str | None:
    if value is None:
        return None
    return identity_text(value)


#: Labels joined by dots, one optional trailing dot (each dot required: an optional one between labels made
#: the pattern backtrack exponentially on a long non-matching value), or an IP literal.
_FQDN_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_FQDN = re.compile(rf"^(?=.{{1,253}}$){_FQDN_LABEL}(?:\.{_FQDN_LABEL})*\.?$|^\[?[0-9A-Fa-f:.]+\]?$")


def _to_fqdn(value: Any) -> str:
    text = _to_string(value)
    if not text or not _FQDN.match(text.strip()):
        raise _Invalid("Give a host name such as imap.contoso.edu.")
    return text.strip().strip("[]")


_SMTP = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _to_smtp(value: Any) -> str:
    text = _to_string(value)
    if not text or not _SMTP.match(text.strip()):
        raise _Invalid("Give an e-mail address such as terrya@contoso.edu.")
    return text.strip()


def _to_guid(value: Any) -> str:
    text = _to_string(value) or ""
    if not re.match(r"^\{?[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?$", text.strip()):
        raise _Invalid("Give a GUID such as 6f1c0a8e-3c2b-4a57-9a4e-2f0d7e5b1c3d.")
    return text.strip().strip("{}").lower()


def enum(name: str, net_type: str, values: Sequence[str]) -> ParamType:
    """An enumeration type: any case in, the declared spelling out."""
    canonical = {v.lower(): v for v in values}

    def convert(value: Any) -> str | None:
        value = _scalar(value)
        if value is None:
            return None
        found = canonical.get(str(value).strip().lower())
        if found is None:
            raise _NotInSet(str(value))
        return found

    return ParamType(name, net_type, convert, values=tuple(values))


STRING = ParamType("String", "System.String", _to_string)
INT32 = ParamType("Int32", "System.Int32", _to_int)
BOOLEAN = ParamType("Boolean", "System.Boolean", _to_bool)
SWITCH = ParamType("SwitchParameter", "System.Management.Automation.SwitchParameter", _to_switch, is_switch=True)
BYTES = ParamType("Byte[]", "System.Byte[]", _to_bytes)
MULTI = ParamType("MultiValuedProperty", "Microsoft.Exchange.Data.MultiValuedProperty", _to_multi, is_list=True)
UNLIMITED_INT = ParamType("Unlimited", "Microsoft.Exchange.Data.Unlimited", _to_unlimited)
DATETIME = ParamType("DateTime", "System.DateTime", _to_datetime)
TIMESPAN = ParamType("TimeSpan", "System.TimeSpan", _to_timespan)
FQDN = ParamType("Fqdn", "Microsoft.Exchange.Data.Fqdn", _to_fqdn)
SMTP = ParamType("SmtpAddress", "Microsoft.Exchange.Data.SmtpAddress", _to_smtp)
GUID = ParamType("Guid", "System.Guid", _to_guid)
BATCH_ID = ParamType("MigrationBatchIdParameter",
                     "Microsoft.Exchange.Management.Migration.MigrationService.Batch.MigrationBatchIdParameter",
                     _to_identity)
ENDPOINT_ID = ParamType("MigrationEndpointIdParameter",
                        "Microsoft.Exchange.Management.Migration.MigrationService.Endpoint.MigrationEndpointIdParameter",
                        _to_identity)
USER_ID = ParamType("MigrationUserIdParameter",
                    "Microsoft.Exchange.Management.Migration.MigrationService.User.MigrationUserIdParameter",
                    _to_identity)
