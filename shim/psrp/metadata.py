"""GET_COMMAND_METADATA answers, built from the cmdlet registry (what Import-PSSession asks for first).

The reply is a count object followed by one object per matching cmdlet with ``Name``,
``CommandType``, ``OutputType`` and ``Parameters`` (name -> ParameterMetadata with adapted
``Name``, ``ParameterType``, ``Aliases``, ``SwitchParameter``, ``IsDynamic``). Every cmdlet
lists all common parameters, so the proxies Import-PSSession generates are advanced functions.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from psrpcore import types as pst

from shim.cmdlets.model import Cmdlet

__all__ = ["command_metadata", "matching_cmdlets"]

#: Namespace reported for the cmdlets (Exchange's snap-in name).
NAMESPACE = "Microsoft.Exchange.Management.PowerShell.E2010"
_CMDLET_TYPE = "Selected.System.Management.Automation.CmdletInfo"
_COUNT_TYPE = "Selected.Microsoft.PowerShell.Commands.GenericMeasureInfo"
_PARAMETER_TYPE = "System.Management.Automation.ParameterMetadata"


def _wildcard(pattern: str) -> str:
    """A PowerShell wildcard (``*``, ``?``, ``[a-z]``, backtick escapes) as an fnmatch pattern."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(f"[{char}]" if char in "*?[]" else char)
            escaped = False
        elif char == "`":
            escaped = True
        else:
            out.append(char)
    return "".join(out).lower()


def matching_cmdlets(cmdlets: Sequence[Cmdlet], names: Sequence[str] | None, command_type: int) -> list[Cmdlet]:
    """The cmdlets whose names match any of ``names`` (PowerShell wildcards, any case; none means ``*``).

    ``command_type`` is a CommandTypes flag set: the registry holds only cmdlets, so nothing
    matches unless it includes Cmdlet.
    """
    if not int(command_type) & int(pst.CommandTypes.Cmdlet):
        return []
    patterns = [_wildcard(n) for n in (names or ["*"]) if n] or ["*"]
    return [c for c in cmdlets if any(fnmatch.fnmatchcase(c.name.lower(), p) for p in patterns)]


def _parameter(name: str, net_type: str, aliases: Sequence[str], switch: bool) -> pst.PSObject:
    meta = pst.PSObject()
    meta.PSObject.type_names = [_PARAMETER_TYPE, "System.Object"]
    for prop, value in (("Name", name), ("ParameterType", net_type), ("Aliases", list(aliases)),
                        ("IsDynamic", False), ("SwitchParameter", switch)):
        meta.PSObject.adapted_properties.append(pst.PSNoteProperty(prop, value))
    meta.PSObject.to_string = name
    return meta


def _cmdlet(cmdlet: Cmdlet) -> pst.PSCustomObject:
    parameters: dict[str, Any] = {}
    for parameter in cmdlet.all_parameters():
        parameters[parameter.name] = _parameter(parameter.name, parameter.type.net_type, parameter.aliases,
                                                parameter.type.is_switch)
    return pst.PSCustomObject(
        PSTypeName=_CMDLET_TYPE,
        Name=cmdlet.name,
        Namespace=NAMESPACE,
        HelpUri="",
        CommandType=pst.CommandTypes.Cmdlet,
        ResolvedCommandName=None,
        OutputType=[cmdlet.output_type] if cmdlet.output_type else [],
        Parameters=parameters,
    )


def command_metadata(cmdlets: Sequence[Cmdlet], names: Sequence[str] | None, command_type: int) -> list[Any]:
    """The output objects of a GET_COMMAND_METADATA pipeline: the count, then one object per cmdlet."""
    found = matching_cmdlets(cmdlets, names, command_type)
    return [pst.PSCustomObject(PSTypeName=_COUNT_TYPE, Count=len(found)), *(_cmdlet(c) for c in found)]
