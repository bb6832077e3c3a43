"""The cmdlet registry: finds a cmdlet, binds its arguments, runs it on the engine, maps its errors.

A :class:`Registry` is built once per service (the declarations, the engine, the import
folder). Each door session gets a :class:`Session`, which is the :class:`shim.host.CommandHost`
the script interpreter talks to and the entry point of the REST door.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from engine.controls import control_character, describe_control
from engine.csvfile import CsvError
from engine.errors import AlreadyExists, ConfigurationError, MigrationError, NotFound
from engine.service import MigrationService
from engine.status import IllegalTransition
from shim.cmdlets.audit import audit_call
from shim.cmdlets.binder import Bound, bind
from shim.cmdlets.context import Context
from shim.cmdlets.declarations import CMDLETS
from shim.cmdlets.help import render_help, syntax_lines
from shim.cmdlets.model import Cmdlet
from shim.cmdlets.objects import VIEWS
from shim.errors import CommandNotFound, InvocationFailed, ObjectNotFound, ScriptRefused, ShimError
from shim.host import NO_VALUE, CommandElement, HelpMode, TableView
from shim.psobject import PSObject

__all__ = ["Registry", "Session", "engine_error"]

_ABOUT = """
TOPIC
    about_Mailshift

SHORT DESCRIPTION
    Exchange's IMAP migration cmdlets, served by Mailshift.

LONG DESCRIPTION
    Mailshift runs the migration cmdlets of Exchange (New-MigrationBatch, Start-MigrationBatch,
    Get-MigrationUserStatistics, Complete-Migration, ...) against any IMAP server. A typical run:

        Test-MigrationServerAvailability -RemoteServer imap.contoso.edu -Port 143
        New-MigrationBatch -Imap -Name Batch1 -CSVData ([System.IO.File]::ReadAllBytes("C:\\batch1.csv")) `
            -RemoteServer imap.contoso.edu -Port 143 -MaxConcurrentMigrations 3
        Start-MigrationBatch
        Get-MigrationBatch
        Complete-Migration

    Files named in ReadAllBytes are read from the service's import folder by file name.

    Cmdlets: {names}
"""


def engine_error(exc: MigrationError, command: str, target: Any = None) -> ShimError:
    """The ShimError (with PowerShell's category and error id) for an engine refusal."""
    message = str(exc)
    if isinstance(exc, CsvError):
        return InvocationFailed(f"The CSV data is not valid:\n{message}", command=command, target=target,
                                category="InvalidData", error_id="MigrationCsvValidationException")
    if isinstance(exc, NotFound):
        return ObjectNotFound(message, command=command, target=target)
    if isinstance(exc, AlreadyExists):
        return InvocationFailed(message, command=command, target=target, category="ResourceExists",
                                error_id="ManagementObjectAlreadyExistsException")
    if isinstance(exc, IllegalTransition):
        return InvocationFailed(_sentence(message), command=command, target=target,
                                error_id="MigrationBatchStatusException")
    if isinstance(exc, ConfigurationError):
        return InvocationFailed(_sentence(message), command=command, target=target, category="InvalidArgument",
                                error_id="ArgumentException")
    return InvocationFailed(_sentence(message), command=command, target=target)


def _sentence(text: str) -> str:
    text = text.strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class Registry:
    """Every cmdlet by name, the engine behind them, and the folder scripts may read files from."""

    def __init__(self, service: MigrationService, *, import_folder: str | Path,
                 cmdlets: Sequence[Cmdlet] = CMDLETS) -> None:
        self.service = service
        self.import_folder = Path(import_folder)
        self.cmdlets = tuple(cmdlets)
        self._by_name = {c.name.lower(): c for c in self.cmdlets}

    def find(self, name: str) -> Cmdlet | None:
        """The cmdlet with this name, any case."""
        return self._by_name.get(name.lower())

    def session(self, user: str, *, email: str | None = None, door: str = "Console") -> Session:
        """A door session acting for the administrator ``user``; ``door`` names it in the audit lines."""
        return Session(self, user, email, door)

    def describe(self) -> list[dict[str, Any]]:
        """Every cmdlet's full metadata as plain data (what the REST door lists and the module generator reads)."""
        return [_describe(c) for c in self.cmdlets]


def _describe(cmdlet: Cmdlet) -> dict[str, Any]:
    return {
        "name": cmdlet.name,
        "synopsis": cmdlet.synopsis,
        "description": cmdlet.description,
        "defaultParameterSet": cmdlet.set_names[0],
        "parameterSets": cmdlet.set_names,
        "syntax": syntax_lines(cmdlet),
        "outputType": cmdlet.output_type,
        "supportsShouldProcess": cmdlet.supports_should_process,
        "confirmImpact": cmdlet.confirm_impact,
        "examples": [{"code": e.code, "remarks": e.remarks} for e in cmdlet.examples],
        "parameters": [
            {
                "name": p.name,
                "type": p.type.name,
                "netType": p.type.net_type,
                "isSwitch": p.type.is_switch,
                "isList": p.type.is_list,
                "validValues": list(p.type.values),
                "range": list(p.range) if p.range else None,
                "help": p.help,
                "aliases": list(p.aliases),
                "position": p.position,
                "valueFromPipeline": p.from_pipeline,
                "valueFromPipelineByPropertyName": p.from_pipeline_by_property_name,
                "ignored": p.ignored,
                "sets": [
                    {"name": s, "mandatory": p.mandatory_in(s)}
                    for s in cmdlet.set_names if p.in_set(s)
                ],
            }
            for p in cmdlet.parameters
        ],
    }


class Session:
    """One administrator's session: a :class:`shim.host.CommandHost` over the registry."""

    def __init__(self, registry: Registry, user: str, email: str | None = None, door: str = "Console") -> None:
        self.registry = registry
        self.user = user
        self.email = email
        self.door = door
        self._warnings: list[str] = []

    def resolve(self, name: str) -> str | None:
        """The canonical name of a registered cmdlet, or None."""
        cmdlet = self.registry.find(name)
        return cmdlet.name if cmdlet else None

    def bind(self, name: str, elements: Sequence[CommandElement], input_object: Any = NO_VALUE) -> Bound:
        """Bind arguments to the named cmdlet without running it."""
        cmdlet = self.registry.find(name)
        if cmdlet is None:
            raise self.not_found(name)
        return bind(cmdlet, elements, input_object)

    def invoke(self, name: str, elements: Sequence[CommandElement], input_object: Any = NO_VALUE) -> list[Any]:
        """Bind and run a cmdlet once, writing its audit line; raises ShimError subclasses.

        Every door calls cmdlets through here, so each call is audited exactly once.
        """
        self._warnings = []
        started = time.monotonic()
        bound: Bound | None = None
        error: BaseException | None = None
        try:
            bound = self.bind(name, elements, input_object)
            return self.run(bound)
        except BaseException as exc:
            error = exc
            raise
        finally:
            audit_call(admin=self.user, door=self.door, cmdlet=self.resolve(name) or name, bound=bound, error=error,
                       duration_ms=(time.monotonic() - started) * 1000)

    def run(self, bound: Bound) -> list[Any]:
        """Run a bound cmdlet (honouring -WhatIf); returns its output objects."""
        cmdlet = bound.cmdlet
        target = _target(bound)
        if bound.what_if:
            return [f'What if: Performing the operation "{cmdlet.what_if}" on target "{target}".']
        context = Context(self.registry.service, self.user, self.email)
        try:
            result = cmdlet.handler(context, bound)
        except MigrationError as exc:
            raise engine_error(exc, cmdlet.name, target) from exc
        finally:
            self._warnings = list(context.warnings)
        if result is None:
            return []
        return list(result) if isinstance(result, (list, tuple)) else [result]

    def warnings(self) -> list[str]:
        """Warnings written by the last invocation."""
        return list(self._warnings)

    def view(self, obj: PSObject) -> TableView | None:
        """The default view of an object's type."""
        for name in obj.type_names:
            found = VIEWS.get(name)
            if found is not None:
                return found
        return None

    def help(self, name: str, mode: HelpMode, parameter: str | None = None) -> str:
        """Get-Help text for a cmdlet or ``about_Mailshift``."""
        if name.lower() in ("about_mailshift", "mailshift"):
            return _ABOUT.format(names=", ".join(c.name for c in self.registry.cmdlets))
        cmdlet = self.registry.find(name)
        if cmdlet is None:
            raise ShimError(
                f"Get-Help could not find {name} in a help file in this session. The cmdlets Mailshift serves are: "
                f"{', '.join(c.name for c in self.registry.cmdlets)}; see also about_Mailshift.",
                command="Get-Help", target=name, category="ResourceUnavailable",
                error_id="HelpNotFound,Microsoft.PowerShell.Commands.GetHelpCommand",
            )
        return render_help(cmdlet, mode, parameter)

    def read_import_file(self, path: str) -> bytes:
        """A file of the import folder: Windows paths and bare names resolve by file name there."""
        folder = self.registry.import_folder.resolve()
        control = control_character(path)
        if control is not None:
            raise ScriptRefused(
                f"Illegal characters in path: it holds a control character, {describe_control(control)}. "
                f"Mailshift reads files by name from its import folder ({folder}).",
                target=path.replace("\x00", ""), category="InvalidArgument", error_id="ArgumentException")
        if "\\" in path or PureWindowsPath(path).drive:
            name = PureWindowsPath(path).name
        elif PurePosixPath(path).is_absolute():
            candidate = Path(path).resolve()
            if not candidate.is_relative_to(folder):
                raise ScriptRefused(
                    f"Access to '{path}' is denied: scripts may only read files in the Mailshift import folder "
                    f"({folder}).", target=path, error_id="UnauthorizedAccessException")
            name = str(candidate.relative_to(folder))
        else:
            name = path
        candidate = (folder / name).resolve()
        if not candidate.is_relative_to(folder) or name in ("", ".", ".."):
            raise ScriptRefused(
                f"Access to '{path}' is denied: scripts may only read files in the Mailshift import folder ({folder}).",
                target=path, error_id="UnauthorizedAccessException")
        if not candidate.is_file():
            raise ObjectNotFound(
                f"Could not find file '{path}'. Mailshift reads files by name from its import folder ({folder}); "
                f"copy '{PureWindowsPath(name).name}' there.", target=path, category="ObjectNotFound",
                error_id="FileNotFoundException")
        try:
            return candidate.read_bytes()
        except OSError:
            raise ObjectNotFound(
                f"Could not read file '{path}' from the import folder ({folder}); check that the service's account "
                "may read it.", target=path, category="ReadError", error_id="IOException") from None

    def not_found(self, name: str) -> CommandNotFound:
        """The error for a command this service does not implement, with a suggestion when one is close."""
        names = [c.name for c in self.registry.cmdlets]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        return CommandNotFound(
            f"The term '{name}' is not recognized as the name of a cmdlet supported by this Mailshift service. "
            f"Mailshift serves the migration cmdlets (see Get-Help about_Mailshift).{hint}",
            command=name, target=name,
        )


def _target(bound: Bound) -> str:
    for key in ("Identity", "Name", "RemoteServer", "Endpoint"):
        value = bound.get(key)
        if value:
            return str(value)
    return "Mailshift"
