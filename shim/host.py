"""The contract between the script interpreter (``shim.pslang``) and the cmdlet registry.

The interpreter parses and evaluates script text; whenever a pipeline element names a command
that is not one of its own utility commands (Select-Object, Format-Table, ...), it asks the
host. The host binds the elements the way PowerShell's binder does (the interpreter never
decides whether ``-Imap`` takes the next token: ``-Imap`` is a switch only the binder knows
about) and runs the cmdlet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shim.psobject import PSObject

__all__ = [
    "NO_VALUE",
    "CommandElement",
    "CommandHost",
    "HelpMode",
    "ParameterToken",
    "ScriptOutcome",
    "TableView",
]


class _NoValue:
    """Marks a parameter token written without a colon value (``-Imap``, ``-Name``)."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()


@dataclass(frozen=True)
class ParameterToken:
    """A ``-Name`` (value ``NO_VALUE``) or ``-Name:value`` element as written, name without the dash.

    ``splatted`` is True when it came from a hashtable splat (``@params``), where a value is
    always attached (``@{Imap = $true}`` binds like ``-Imap:$true``).
    """

    name: str
    value: Any = NO_VALUE
    splatted: bool = False


#: One element of a command call, in order: a parameter token, or an evaluated argument value
#: (string, int, float, bool, None, bytes, list, dict, datetime, PSObject ...).
CommandElement = ParameterToken | Any

HelpMode = Literal["default", "examples", "detailed", "full", "parameter"]


@dataclass(frozen=True)
class TableView:
    """A type's default view: the columns ``Format-Table`` shows (or the properties of its list view)."""

    columns: Sequence[str]
    #: Column headings where they differ from the property names.
    labels: dict[str, str] = field(default_factory=dict)
    #: "table" or "list": what the object prints as when no Format-* command is given.
    default: Literal["table", "list"] = "table"


class CommandHost(Protocol):
    """What the interpreter needs from the service."""

    def resolve(self, name: str) -> str | None:
        """The canonical name of a cmdlet the host implements (case-insensitive), or None."""

    def invoke(self, name: str, elements: Sequence[CommandElement], input_object: Any = NO_VALUE) -> list[Any]:
        """Bind ``elements`` (and the pipeline input object, if any) and run the cmdlet once.

        Called once per pipeline input object when the command is downstream in a pipeline
        (``input_object`` is that object), or once with ``NO_VALUE`` when it starts a pipeline.
        Raises :class:`shim.errors.ShimError` subclasses; the interpreter applies
        ``-ErrorAction`` and ``$ErrorActionPreference`` (it strips the common parameters
        ``-ErrorAction``/``-EA``, ``-WarningAction``/``-WA``, ``-ErrorVariable``/``-EV``, ``-Verbose``/``-vb``,
        ``-Debug``/``-db``, ``-OutVariable``/``-OV``, ``-OutBuffer``/``-OB``, ``-InformationAction``/``-infa``
        before calling; ``-WhatIf`` and ``-Confirm`` go to the host).
        Returns the output objects (may be empty).
        """

    def warnings(self) -> list[str]:
        """Warnings written by the last ``invoke`` (printed as ``WARNING: ...``)."""

    def view(self, obj: PSObject) -> TableView | None:
        """The default view for an object's type names, or None (then: up to 4 properties as a table, else a list)."""

    def help(self, name: str, mode: HelpMode, parameter: str | None = None) -> str:
        """Get-Help text for a cmdlet (or an about_ topic), as PowerShell would print it."""

    def read_import_file(self, path: str) -> bytes:
        """The bytes of a file in the service's import folder; a Windows or POSIX path resolves by its file name.

        Raises :class:`shim.errors.ScriptRefused` for anything outside the folder.
        """


@dataclass
class ScriptOutcome:
    """What running a script produced, ready for a door to send.

    ``stdout`` is the text PowerShell would have printed (formatted output, Write-Host,
    warnings as ``WARNING: ...``). ``errors`` holds each error as PowerShell prints it on the
    console (``Cmdlet : message``, position lines, ``+ CategoryInfo``, ``+ FullyQualifiedErrorId``).
    ``exit_code`` is 0 when no error was written, else 1 (as ``powershell.exe -Command`` does).
    """

    stdout: str
    errors: list[str] = field(default_factory=list)
    exit_code: int = 0
