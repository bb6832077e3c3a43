"""Values between the shim and psrpcore: arguments in, output objects and error records out.

Pure functions. Inbound, psrpcore's deserialized CLIXML (``PSString``, ``PSByteArray``, a
``SwitchParameter`` object, an ``object[]`` of ``<By>``...) becomes the plain values the
registry's binder takes; outbound, a :class:`shim.psobject.PSObject` becomes a psrpcore object
with the same type names and adapted properties (``<Props>``, as .NET objects are serialized),
so a PowerShell client sees ``Deserialized.<type name>`` with Exchange's property names.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from collections.abc import Sequence
from typing import Any

from psrpcore import types as pst

from shim.errors import BindingError, ShimError
from shim.host import ParameterToken
from shim.psobject import PSObject

__all__ = ["error_record", "from_wire", "parameter_elements", "to_wire"]

_DESERIALIZED = "Deserialized."
_SYSTEM_OBJECT = "System.Object"

#: .NET exception type names for the shim's error ids (the rest are reported as RuntimeException).
_EXCEPTION_TYPES: dict[str, list[str]] = {
    "CommandNotFoundException": ["System.Management.Automation.CommandNotFoundException",
                                 "System.Management.Automation.RuntimeException", "System.SystemException"],
    "ParameterBindingException": ["System.Management.Automation.ParameterBindingException",
                                  "System.Management.Automation.RuntimeException", "System.SystemException"],
    "ScriptsNotAllowed": ["System.Management.Automation.PSNotSupportedException", "System.NotSupportedException",
                          "System.SystemException"],
    "ManagementObjectNotFoundException": ["Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                                          "Microsoft.Exchange.Data.LocalizedException", "System.Exception"],
    "ManagementObjectAlreadyExistsException": [
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAlreadyExistsException",
        "Microsoft.Exchange.Data.LocalizedException", "System.Exception"],
}
_DEFAULT_EXCEPTION_TYPES = ["System.Management.Automation.RuntimeException", "System.SystemException"]


def from_wire(value: Any) -> Any:
    """A deserialized PSRP value as the plain value the binder and interpreter take.

    ``byte[]`` and an ``object[]`` of bytes become ``bytes``; a SwitchParameter stays an object
    with ``IsPresent`` (the binder reads it); other objects become :class:`PSObject` with their
    type names (``Deserialized.`` removed) and properties.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, pst.PSSecureString):
        return value.decrypt()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str):
        return str(value)
    if isinstance(value, pst.PSByte):
        return int(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (float, decimal.Decimal)):
        return float(value)
    if isinstance(value, datetime.datetime):
        return datetime.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                                 value.microsecond, value.tzinfo)
    if isinstance(value, datetime.timedelta):
        return datetime.timedelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {from_wire(k): from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, pst.PSByte) for v in value):
            return bytes(int(v) for v in value)
        return [from_wire(v) for v in value]
    if isinstance(value, pst.PSObject):
        return _object_from_wire(value)
    return str(value)


def _object_from_wire(value: pst.PSObject) -> PSObject:
    meta = value.PSObject
    names = [n[len(_DESERIALIZED):] if n.startswith(_DESERIALIZED) else n for n in meta.type_names]
    properties = [(p.name, from_wire(p.get_value(value))) for p in (*meta.adapted_properties, *meta.extended_properties)]
    return PSObject(names, properties, text=meta.to_string)


def to_wire(value: Any) -> Any:
    """A shim value as psrpcore serializes it (a PSObject keeps its type names, properties and ToString)."""
    if value is None or isinstance(value, (bool, bytes, datetime.datetime, datetime.timedelta)):
        return value
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return pst.PSDouble(value)
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, PSObject):
        out = pst.PSObject()
        names = list(value.type_names) or ["System.Management.Automation.PSCustomObject"]
        if _SYSTEM_OBJECT not in names:
            names.append(_SYSTEM_OBJECT)
        out.PSObject.type_names = names
        for name, item in value.properties.items():
            out.PSObject.adapted_properties.append(pst.PSNoteProperty(name, to_wire(item)))
        out.PSObject.to_string = str(value)
        return out
    return str(value)


def parameter_elements(parameters: Sequence[tuple[str | None, Any]]) -> list[Any]:
    """A PSRP command's parameters as the flat element list the binder pairs.

    Implicit remoting sends ``-Name:`` keys (dash and colon kept) with their value; pypsrp
    sends ``Name`` with a value, or with Nil for a switch given without one; a Nil name is a
    positional argument.
    """
    elements: list[Any] = []
    for name, raw in parameters:
        value = from_wire(raw)
        if name is None:
            elements.append(value)
            continue
        written = name.strip()
        colon = written.endswith(":")
        written = written.rstrip(":").lstrip("-")
        if value is None and not colon:
            elements.append(ParameterToken(written))
        else:
            elements.append(ParameterToken(written, value))
    return elements


def error_record(error: ShimError, command: str | None = None) -> pst.ErrorRecord:
    """The ErrorRecord a PowerShell client gets for a shim error: message, category, target and FullyQualifiedErrorId."""
    exception = pst.NETException(Message=error.message)
    chain = _EXCEPTION_TYPES.get(error.error_id)
    if chain is None:  # every binding refusal is a ParameterBindingException, whatever its error id
        chain = _EXCEPTION_TYPES["ParameterBindingException"] if isinstance(error, BindingError) else _DEFAULT_EXCEPTION_TYPES
    names = [*chain, "System.Exception", _SYSTEM_OBJECT]
    exception.PSObject.type_names = list(dict.fromkeys(names))  # Exchange's chains end in System.Exception already
    try:
        category = pst.ErrorCategory[error.category]
    except KeyError:
        category = pst.ErrorCategory.NotSpecified
    target = error.target
    info = pst.ErrorCategoryInfo(
        Category=category,
        Activity=error.command or command or "",
        Reason=exception.PSObject.type_names[0].rsplit(".", 1)[-1],
        TargetName="" if target is None else str(target),
        TargetType="" if target is None else ("String" if isinstance(target, str) else type(target).__name__),
    )
    fqid = error.fully_qualified_error_id
    if not error.command and command:
        fqid = f"{error.error_id},{command}"
    return pst.ErrorRecord(Exception=exception, CategoryInfo=info, TargetObject=to_wire(target),
                           FullyQualifiedErrorId=fqid)
