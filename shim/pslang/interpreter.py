"""The evaluator: statements, pipelines, command calls, errors and ErrorAction, output."""

from __future__ import annotations

import enum
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shim.errors import BindingError, CommandNotFound, ParseError, ScriptRefused, ShimError
from shim.host import NO_VALUE, CommandElement, CommandHost, ParameterToken, ScriptOutcome
from shim.pslang import ast
from shim.pslang.formatting import format_objects
from shim.pslang.limits import (
    CHARACTERS_PER_STEP,
    ELEMENTS_PER_STEP,
    Budget,
    BudgetExceeded,
    LimitExceeded,
    ScriptLimits,
    collection_too_large,
    range_too_large,
    string_too_long,
)
from shim.pslang.parser import parse
from shim.pslang.records import (
    ErrorRecord,
    PSParseError,
    RuntimeFailure,
    ThrownError,
    WrittenError,
    format_error,
    make_error_record,
)
from shim.pslang.values import (
    VOID,
    PSHashtable,
    ScriptBlock,
    TypeRef,
    call_method,
    convert_to,
    dotnet_regex,
    dotnet_replacement,
    enumerate_output,
    format_operator,
    get_property,
    index_value,
    is_enumerable,
    is_instance,
    is_true,
    ps_compare,
    ps_equals,
    to_number,
    to_str,
    wildcard_match,
)
from shim.psobject import PSObject

__all__ = ["CommonParameters", "Interpreter", "unwrap"]

#: Common parameters the interpreter strips before calling a command, by lower-case name.
COMMON_PARAMETERS = {
    name.lower(): name
    for name in (
        "ErrorAction",
        "WarningAction",
        "InformationAction",
        "ErrorVariable",
        "WarningVariable",
        "InformationVariable",
        "OutVariable",
        "OutBuffer",
        "PipelineVariable",
        "Verbose",
        "Debug",
    )
}
COMMON_ALIASES = {
    "ea": "ErrorAction",
    "wa": "WarningAction",
    "infa": "InformationAction",
    "ev": "ErrorVariable",
    "wv": "WarningVariable",
    "iv": "InformationVariable",
    "ov": "OutVariable",
    "ob": "OutBuffer",
    "pv": "PipelineVariable",
    "vb": "Verbose",
    "db": "Debug",
}
_log = logging.getLogger(__name__)

_COMMON_SWITCHES = {"Verbose", "Debug"}

def _unanticipated(error: Exception) -> str:
    """The message a script sees for a value the subset's conversions did not anticipate."""
    if isinstance(error, ZeroDivisionError):
        return "Attempted to divide by zero."
    if isinstance(error, OverflowError):
        return "A value is too large or too small for this operation."
    if isinstance(error, MemoryError):
        return "The statement needed more memory than the service can give one script."
    return "A value in this statement cannot be used here (wrong kind, out of range, or holding a control character)."


#: Said when a script nests parentheses, arrays or blocks deeper than the parser or evaluator goes.
_TOO_DEEP = ("The script nests expressions, arrays or blocks more deeply than Mailshift reads; "
             "write it with fewer levels (assign inner values to variables).")
#: ActionPreference values, with their numeric forms (``-EA 0``).
ACTIONS = {
    "silentlycontinue": "silentlycontinue",
    "stop": "stop",
    "continue": "continue",
    "inquire": "continue",
    "ignore": "ignore",
    "suspend": "ignore",
    "0": "silentlycontinue",
    "1": "stop",
    "2": "continue",
    "3": "continue",
    "4": "ignore",
    "5": "ignore",
}

_FILES = (
    "scripts cannot read, write or list files on the server (a CSV file in the import folder can be "
    "read with [System.IO.File]::ReadAllBytes(path) or Get-Content -Encoding Byte)"
)
_REFUSALS: dict[str, tuple[str, str]] = {}
for _commands, _reason in (
    (("Invoke-Expression iex",), "scripts cannot run code built from strings"),
    (("Invoke-Command icm",), "scripts cannot run code on other computers or in other sessions"),
    (("Start-Process saps start",), "the service does not start programs"),
    (("Start-Job sajb", "Receive-Job rcjb"), "the service does not run background jobs"),
    (("Stop-Process kill spps", "Get-Process gps ps"), "the service does not manage processes"),
    (("New-Object",), ".NET and COM objects cannot be created in a restricted session"),
    (("Add-Type",), ".NET code cannot be compiled or loaded in a restricted session"),
    (("Import-Module ipmo",), "modules cannot be loaded into the service"),
    (("Invoke-WebRequest iwr curl wget", "Invoke-RestMethod irm"), "the service does not make web requests"),
    (("Set-Location cd sl chdir", "Push-Location pushd", "Pop-Location popd"), _FILES),
    (("Set-Content sc", "Add-Content ac", "Clear-Content clc", "Out-File"), _FILES),
    (("Remove-Item rm del ri rd erase rmdir", "Get-Item gi", "Set-Item si"), _FILES),
    (("New-Item ni md mkdir", "Copy-Item cp copy cpi", "Move-Item mv move mi", "Rename-Item ren rni"), _FILES),
    (("Export-Csv epcsv", "Export-Clixml", "Import-Clixml", "Tee-Object tee", "Test-Path"), _FILES),
    (("Get-WmiObject gwmi", "Get-CimInstance gcim", "Invoke-WmiMethod"), "WMI/CIM is not available in a Mailshift session"),
    (("Set-Variable set sv", "New-Variable nv", "Remove-Variable rv"), "assign variables with '$name = value' instead"),
):
    for _command in _commands:
        _canonical, *_aliases = _command.split()
        for _name in (_canonical, *_aliases):
            _REFUSALS[_name.lower()] = (_canonical, _reason)
_REFUSALS["get-credential"] = (
    "Get-Credential",
    "the service cannot prompt for credentials (put the IMAP logins in the migration CSV file's UserName and Password columns)",
)


class _Flow(Exception):
    """Control flow carried through Python's stack (break, continue, return, exit)."""


class _Break(_Flow):
    pass


class _Continue(_Flow):
    pass


class _Return(_Flow):
    pass


class _Exit(_Flow):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Raised(Exception):
    """An error travelling to the nearest try/catch (or to the statement loop that reports it)."""

    def __init__(self, error: ShimError, extent: ast.Extent | None, record: ErrorRecord, stop: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.extent = extent
        self.record = record
        self.stop = stop
        self.reported = False


class _Scope:
    __slots__ = ("vars", "parent")

    def __init__(self, parent: _Scope | None) -> None:
        self.vars: dict[str, Any] = {}
        self.parent = parent


@dataclass
class CommonParameters:
    """The common parameters given to one command call."""

    error_action: str | None = None
    warning_action: str | None = None
    error_variable: str | None = None
    out_variable: str | None = None
    verbose: bool = False
    debug: bool = False


@dataclass
class _Sink:
    """Where top-level output goes: buffered objects formatted per statement, text printed in order."""

    interpreter: Interpreter
    collect: list[Any] | None = None
    pending: list[Any] = field(default_factory=list)

    def write(self, obj: Any) -> None:
        (self.collect if self.collect is not None else self.pending).append(obj)

    def text(self, text: str) -> None:
        self.flush()
        self.interpreter.print_text(text)

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, []
            self.interpreter.print_text(format_objects(pending, self.interpreter.host))


def unwrap(items: list[Any]) -> Any:
    """Collected pipeline output as a value: nothing → None, one object → it, more → an array."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def _common_name(name: str) -> str | None:
    low = name.lower()
    if low in COMMON_ALIASES:
        return COMMON_ALIASES[low]
    if low in COMMON_PARAMETERS:
        return COMMON_PARAMETERS[low]
    matches = [canon for key, canon in COMMON_PARAMETERS.items() if key.startswith(low)]
    return matches[0] if len(low) >= 3 and len(matches) == 1 else None


def action_value(value: Any, parameter: str, command: str) -> str:
    """An ActionPreference given as text or number, normalised (``stop``, ``continue``, ...).

    Raises:
        BindingError: for a value that is not an ActionPreference.
    """
    key = to_str(value).strip().lower()
    if key in ACTIONS:
        return ACTIONS[key]
    raise BindingError(
        f"Cannot bind parameter '{parameter}'. Cannot convert value \"{to_str(value)}\" to type "
        '"System.Management.Automation.ActionPreference". Error: "Unable to match the identifier name '
        f"{to_str(value)} to a valid enumerator name. Specify one of the following enumerator names and try again: "
        'SilentlyContinue, Stop, Continue, Inquire, Ignore, Suspend"',
        command=command,
        error_id="CannotConvertArgumentNoMessage",
    )


def _is_path_like(name: str) -> bool:
    low = name.lower()
    return any(c in name for c in "\\/") or low.endswith((".ps1", ".exe", ".bat", ".cmd", ".psm1", ".vbs", ".com"))


class Interpreter:
    """Runs script text against a :class:`CommandHost`; one instance is one shell session.

    Args:
        host: Implements the cmdlets the interpreter does not (resolve, invoke, views, help, import files).
        variables: Initial variables (name → value) of the session.
        now: The clock Get-Date reads (a timezone-aware local time); tests pass a fixed one.
        limits: The bounds on each run's steps, CPU time, call depth and value sizes
            (default: the constants of :mod:`shim.pslang.limits`).
    """

    def __init__(
        self,
        host: CommandHost,
        *,
        variables: dict[str, Any] | None = None,
        now: Callable[[], datetime] | None = None,
        limits: ScriptLimits | None = None,
    ) -> None:
        from shim.pslang.builtins import BUILTINS

        self.host = host
        self._builtins = BUILTINS
        self._now = now or (lambda: datetime.now().astimezone())
        self._global = _Scope(None)
        self._scope = self._global
        self._functions: dict[str, ast.FunctionDef] = {}
        self._error_list: list[ErrorRecord] = []
        self._last_ok = True
        self._try_depth = 0
        self.limits = limits or ScriptLimits()
        self._budget = Budget(self.limits)
        self._call_depth = 0
        self.stdout_parts: list[str] = []
        self.error_texts: list[str] = []
        #: Errors written (not raised) by the last run/evaluate, in order.
        self.last_errors: list[ShimError] = []
        self._sink = _Sink(self)
        defaults: dict[str, Any] = {
            "ErrorActionPreference": "Continue",
            "WarningPreference": "Continue",
            "VerbosePreference": "SilentlyContinue",
            "DebugPreference": "SilentlyContinue",
            "ConfirmPreference": "High",
            "FormatEnumerationLimit": 4,
            "OFS": " ",
            "LASTEXITCODE": 0,
            "PSVersionTable": PSHashtable(
                [
                    ("PSVersion", PSObject(["System.Version"], {"Major": 5, "Minor": 1, "Build": 17763, "Revision": 1}, text="5.1.17763.1")),
                    ("PSEdition", "Desktop"),
                ]
            ),
        }
        for name, value in {**defaults, **(variables or {})}.items():
            self._global.vars[name.lower()] = value

    # -- public API --------------------------------------------------------------------------

    def run(self, text: str) -> ScriptOutcome:
        """Run a script as ``powershell.exe -Command`` would and capture what it prints.

        Args:
            text: The script text.

        Returns:
            The printed output, the errors as the console shows them and the exit code. Script
            errors never raise.
        """
        self._begin(_Sink(self))
        code, _ = self._execute(text)
        self._sink.flush()
        exit_code = code if code is not None else (1 if self.error_texts else 0)
        return ScriptOutcome("".join(self.stdout_parts), list(self.error_texts), exit_code)

    def evaluate(self, text: str) -> list[Any]:
        """Run a script and return its output objects, unformatted.

        Args:
            text: The script text.

        Returns:
            The objects the script wrote to its output. Text written with Write-Host or as
            warnings is in :attr:`host_text`; errors written but not raised in :attr:`last_errors`.

        Raises:
            ShimError: the error that stopped the script (parse error, refusal, terminating or
                ``-ErrorAction Stop`` error, ``throw``).
        """
        out: list[Any] = []
        self._begin(_Sink(self, out))
        _, stop = self._execute(text)
        if stop is not None:
            raise stop
        return out

    @property
    def host_text(self) -> str:
        """Text the last run/evaluate printed directly (Write-Host, warnings)."""
        return "".join(self.stdout_parts)

    def variable(self, name: str) -> Any:
        """A session variable's value (None when unset)."""
        return self.get_var(name)

    # -- top level -----------------------------------------------------------------------------

    def _begin(self, sink: _Sink) -> None:
        self.stdout_parts = []
        self.error_texts = []
        self.last_errors = []
        self._sink = sink
        self._try_depth = 0
        self._call_depth = 0
        self._budget = Budget(self.limits)
        self._scope = self._global

    def _execute(self, text: str) -> tuple[int | None, ShimError | None]:
        try:
            try:
                script = parse(text)
            except RecursionError:
                raise ParseError(_TOO_DEEP) from None
            except (ValueError, ArithmeticError, MemoryError) as e:
                _log.info("script text failed to parse on an unanticipated value: %r", e)
                raise ParseError(_unanticipated(e)) from None
        except ShimError as e:
            extent = e.extent if isinstance(e, PSParseError) else None
            self._add_error_record(make_error_record(e, extent))
            self._write_error_text(e, extent)
            return None, e
        for stmt in script.statements:
            try:
                self._exec_guarded(stmt, self._sink.write)
            except _Raised as r:
                self._report(r)
                return None, r.error
            except BudgetExceeded as e:
                self._report(self._raised(e.failure, stmt.extent, True))
                return None, e.failure
            except _Exit as e:
                return e.code, None
            except (_Return, _Break, _Continue):
                return None, None
            finally:
                self._sink.flush()
        return None, None

    # -- variables -------------------------------------------------------------------------------

    def get_var(self, name: str, scope: str = "") -> Any:
        """A variable's value, looked up through the scopes (None when unset)."""
        low = name.lower()
        if scope == "env":
            return None
        if low == "psitem":
            low = "_"
        if low == "error":
            return self._error_list
        if low == "?":
            return self._last_ok
        s: _Scope | None = self._global if scope in ("global", "script") else self._scope
        while s is not None:
            if low in s.vars:
                return s.vars[low]
            s = s.parent
        return None

    def set_var(self, name: str, value: Any, scope: str = "") -> None:
        """Set a variable in the current scope (or the global one for ``$global:``/``$script:``)."""
        low = name.lower()
        if low == "psitem":
            low = "_"
        if scope == "env":
            raise ScriptRefused("Environment variables cannot be changed in a Mailshift session.", error_id="EnvNotAllowed")
        if low in ("error", "?", "true", "false", "null"):
            raise RuntimeFailure(f"Cannot overwrite variable {name} because it is read-only or constant.", error_id="VariableNotWritable", category="WriteError")
        (self._global if scope in ("global", "script") else self._scope).vars[low] = value

    def preference(self, name: str = "ErrorActionPreference") -> str:
        """A preference variable's value, normalised (``stop``, ``continue``, ...)."""
        return ACTIONS.get(to_str(self.get_var(name)).strip().lower(), "continue")

    # -- errors ------------------------------------------------------------------------------------

    def _add_error_record(self, record: ErrorRecord) -> None:
        self._error_list.insert(0, record)
        del self._error_list[256:]

    def _write_error_text(self, error: ShimError, extent: ast.Extent | None) -> None:
        text = format_error(error, extent)
        self._budget.printed(len(text))  # written even past the limit: the next step ends the run
        self.error_texts.append(text)
        self.last_errors.append(error)
        self._last_ok = False

    def _raised(self, error: ShimError, extent: ast.Extent | None, stop: bool) -> _Raised:
        record = make_error_record(error, extent)
        self._add_error_record(record)
        self._last_ok = False
        return _Raised(error, extent, record, stop)

    def _report(self, raised: _Raised) -> None:
        if not raised.reported:
            raised.reported = True
            self._write_error_text(raised.error, raised.extent)

    def command_error(self, error: ShimError, command: str, extent: ast.Extent, common: CommonParameters) -> None:
        """Apply ErrorAction to an error a command reported: write it, record it, or stop.

        Raises:
            _Raised: when the error is terminating or the action is Stop.
        """
        if error.command is None and not isinstance(error, (CommandNotFound, WrittenError)):
            error.command = command
        action = common.error_action or self.preference()
        if error.terminating or action == "stop":
            # A terminating error ends its statement; only ErrorAction Stop ends the script (as in PowerShell).
            raise self._raised(error, extent, stop=action == "stop" or isinstance(error, ScriptRefused))
        self._last_ok = False
        if action == "ignore":
            return
        record = make_error_record(error, extent)
        self._add_error_record(record)
        if common.error_variable:
            name = common.error_variable.lstrip("+")
            current = self.get_var(name)
            self.set_var(name, (list(current) if isinstance(current, list) else []) + [record])
        if action == "continue":
            self._write_error_text(error, extent)

    # -- output helpers for built-in commands -----------------------------------------------------------

    def print_text(self, text: str) -> None:
        """Add text to what the run prints, within the run's output limit."""
        if self._budget.printed(len(text)):
            self.stdout_parts.append(text)

    def write_host(self, text: str) -> None:
        """Print text directly (Write-Host), after any pending formatted output."""
        self._sink.text(text)

    def write_warning(self, message: str, common: CommonParameters) -> None:
        """Print ``WARNING: message`` unless -WarningAction / $WarningPreference silences it."""
        action = common.warning_action or self.preference("WarningPreference")
        if action == "stop":
            raise self._raised(ShimError(f"The running command stopped because the preference variable \"WarningPreference\" or common parameter is set to Stop: {message}", error_id="ActionPreferenceStop"), None, True)
        if action == "continue":
            self._sink.text(f"WARNING: {message}\n")

    def now(self) -> datetime:
        """The current local time (Get-Date)."""
        return self._now()

    # -- statements ----------------------------------------------------------------------------------

    def _exec_block(self, statements: Sequence[ast.Statement], emit: Callable[[Any], None]) -> None:
        for stmt in statements:
            self._exec_guarded(stmt, emit)

    def _exec_guarded(self, stmt: ast.Statement, emit: Callable[[Any], None]) -> None:
        self._budget.step()
        try:
            try:
                self._exec(stmt, emit)
            except ShimError as e:
                # throw and refusals end the script; other terminating errors end only this statement.
                raise self._raised(e, stmt.extent, isinstance(e, (ThrownError, ScriptRefused, LimitExceeded))) from None
            except RecursionError:
                overflow = RuntimeFailure("The script failed due to call depth overflow.", error_id="CallDepthOverflow")
                raise self._raised(overflow, stmt.extent, True) from None
            except (ValueError, TypeError, ArithmeticError, LookupError, re.error, MemoryError) as e:
                # A value the subset's conversions did not anticipate: fail the statement, not the service.
                # Python's own text stays in the service log; the script gets a message of ours.
                _log.info("statement failed on an unanticipated value: %r", e)
                failure = RuntimeFailure(_unanticipated(e), error_id="RuntimeException")
                raise self._raised(failure, stmt.extent, False) from None
        except _Raised as r:
            if r.stop or self._try_depth > 0 or self.preference() == "stop":
                raise
            self._report(r)

    def _exec(self, stmt: ast.Statement, emit: Callable[[Any], None]) -> None:
        if isinstance(stmt, ast.Pipeline):
            first = stmt.elements[0]
            if len(stmt.elements) == 1 and isinstance(first, ast.Unary) and first.op in ("++", "--", "post++", "post--"):
                self._eval(first)
                return
            for item in self._run_pipeline(stmt):
                emit(item)
        elif isinstance(stmt, ast.Assignment):
            self._assign(stmt)
        elif isinstance(stmt, ast.If):
            for cond, body in stmt.clauses:
                if is_true(self._value(cond)):
                    self._exec_block(body, emit)
                    return
            if stmt.else_body is not None:
                self._exec_block(stmt.else_body, emit)
        elif isinstance(stmt, ast.ForEach):
            collection = self._value(stmt.collection)
            for item in [] if collection is None else enumerate_output(collection):
                self._budget.step()
                self.set_var(stmt.variable, item)
                try:
                    self._exec_block(stmt.body, emit)
                except _Break:
                    break
                except _Continue:
                    continue
        elif isinstance(stmt, ast.For):
            if stmt.init is not None:
                self._value(stmt.init)
            while stmt.condition is None or is_true(self._value(stmt.condition)):
                self._budget.step()
                try:
                    self._exec_block(stmt.body, emit)
                except _Break:
                    break
                except _Continue:
                    pass
                if stmt.iterator is not None:
                    self._value(stmt.iterator)
        elif isinstance(stmt, ast.While):
            while is_true(self._value(stmt.condition)):
                self._budget.step()
                try:
                    self._exec_block(stmt.body, emit)
                except _Break:
                    break
                except _Continue:
                    continue
        elif isinstance(stmt, ast.DoLoop):
            while True:
                self._budget.step()
                try:
                    self._exec_block(stmt.body, emit)
                except _Break:
                    break
                except _Continue:
                    pass
                if is_true(self._value(stmt.condition)) == stmt.until:
                    break
        elif isinstance(stmt, ast.Try):
            self._exec_try(stmt, emit)
        elif isinstance(stmt, ast.Throw):
            self._exec_throw(stmt)
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                for item in self._outputs(stmt.value):
                    emit(item)
            raise _Return()
        elif isinstance(stmt, ast.Exit):
            code = 0 if stmt.value is None else self._value(stmt.value)
            raise _Exit(int(to_number(code)) if code is not None else 0)
        elif isinstance(stmt, ast.Break):
            raise _Break()
        elif isinstance(stmt, ast.Continue):
            raise _Continue()
        elif isinstance(stmt, ast.FunctionDef):
            if stmt.name.lower() in self._builtins or stmt.name.lower() in _REFUSALS:
                raise ScriptRefused(f"A function cannot replace the command '{stmt.name}' in a Mailshift session.", error_id="FunctionNameNotAllowed")
            self._functions[stmt.name.lower()] = stmt
        else:  # pragma: no cover - the parser builds only the nodes above
            raise RuntimeFailure(f"Unsupported statement {type(stmt).__name__}.")

    def _exec_try(self, stmt: ast.Try, emit: Callable[[Any], None]) -> None:
        # The catch and finally blocks run outside Python's exception handling: an error raised
        # in them then carries no chain of every error handled before it (such a chain grew with
        # each turn of a script that catches in a loop and made every turn slower).
        leaving: BaseException | None = None
        try:
            caught = self._try_body(stmt, emit)
        except BaseException as e:  # re-raised after the finally block
            caught, leaving = None, e
        if caught is not None:
            clause, record = caught
            saved = self._scope.vars.get("_", VOID)
            self._scope.vars["_"] = record
            try:
                self._exec_block(clause.body, emit)
            except BaseException as e:  # re-raised after the finally block
                leaving = e
            if saved is VOID:
                self._scope.vars.pop("_", None)
            else:
                self._scope.vars["_"] = saved
        try:
            if stmt.finally_body is not None:
                self._exec_block(stmt.finally_body, emit)
            if leaving is not None:
                raise leaving
        finally:
            # Not kept alive by this frame (which the error's traceback holds): a script that
            # fails over and over in finally blocks would otherwise keep every error it replaced.
            leaving = None

    def _try_body(self, stmt: ast.Try, emit: Callable[[Any], None]) -> tuple[ast.CatchClause, ErrorRecord] | None:
        """Run a try block: None when it ends normally, else the catch clause that takes its error."""
        try:
            self._try_depth += 1
            try:
                self._exec_block(stmt.body, emit)
            finally:
                self._try_depth -= 1
        except _Raised as r:
            clause = next((c for c in stmt.catches if _catch_matches(c, r.error)), None)
            if clause is None:
                raise
            return clause, r.record
        return None

    def _exec_throw(self, stmt: ast.Throw) -> None:
        value = None if stmt.value is None else self._value(stmt.value)
        if value is None and stmt.value is None:
            current = self.get_var("_")
            if isinstance(current, ErrorRecord):
                raise _Raised(current.error, current.extent, current, stop=True)
        if isinstance(value, ErrorRecord):
            raise _Raised(value.error, value.extent, value, stop=True)
        message = to_str(value) if value is not None else "ScriptHalted"
        raise self._raised(ThrownError(message, value), stmt.extent, stop=True)

    # -- values of statements -----------------------------------------------------------------------

    def _outputs(self, stmt: ast.Statement) -> list[Any]:
        out: list[Any] = []
        self._exec(stmt, out.append)
        return out

    def _value(self, stmt: ast.Statement) -> Any:
        """A statement used as a value: a lone expression keeps its value, commands are collected."""
        if isinstance(stmt, ast.Pipeline) and len(stmt.elements) == 1 and isinstance(stmt.elements[0], ast.Expr):
            value = self._eval(stmt.elements[0])
            return None if stmt.discard_output else value
        if isinstance(stmt, ast.Assignment):
            return self._assign(stmt)
        return unwrap(self._outputs(stmt))

    def _assign(self, stmt: ast.Assignment) -> Any:
        value = self._value(stmt.value)
        if value is VOID:
            value = None
        if stmt.op != "=":
            value = self._arith(stmt.op[0], self._eval(stmt.target), value)
        self._store(stmt.target, value)
        return value

    def _store(self, target: ast.Expr, value: Any) -> None:
        if isinstance(target, ast.Constant):
            return  # $null = ...
        if isinstance(target, ast.Variable):
            self.set_var(target.name, value, target.scope)
        elif isinstance(target, ast.Cast) and isinstance(target.operand, ast.Variable):
            self.set_var(target.operand.name, convert_to(target.type_name, value), target.operand.scope)
        elif isinstance(target, ast.Member) and not target.static:
            obj = self._eval(target.target)
            if isinstance(obj, (PSObject, dict)):
                obj[target.name] = value
            else:
                raise RuntimeFailure(f"The property '{target.name}' cannot be found on this object. Verify that the property exists and can be set.", error_id="PropertyAssignmentException")
        elif isinstance(target, ast.Index):
            obj = self._eval(target.target)
            key = self._eval(target.index)
            if isinstance(obj, dict):
                obj[key] = value
            elif isinstance(obj, list):
                i = int(to_number(key))
                if not -len(obj) <= i < len(obj):
                    raise RuntimeFailure("Index was outside the bounds of the array.", error_id="IndexOutOfRange")
                obj[i] = value
            else:
                raise RuntimeFailure(f"Unable to index into an object of type {type(obj).__name__}.", error_id="CannotIndex")
        else:
            raise RuntimeFailure("The assignment expression is not valid.", error_id="InvalidLeftHandSide")

    # -- pipelines and commands ---------------------------------------------------------------------

    def _run_pipeline(self, stmt: ast.Pipeline) -> list[Any]:
        self._last_ok = True
        first = stmt.elements[0]
        if isinstance(first, ast.Command):
            items = self._invoke_command(first, None)
        else:
            items = enumerate_output(self._eval(first))
        for element in stmt.elements[1:]:
            assert isinstance(element, ast.Command)
            items = self._invoke_command(element, items)
        return [] if stmt.discard_output else items

    def command_elements(self, cmd: ast.Command) -> list[CommandElement]:
        """Evaluate a command's arguments into the flat element list the host binds."""
        elements: list[CommandElement] = []
        for el in cmd.elements:
            if isinstance(el, ast.CmdParam):
                elements.append(ParameterToken(el.name, NO_VALUE if el.value is None else self._argument(el.value)))
            elif isinstance(el, ast.CmdArg):
                elements.append(self._argument(el.value))
            else:
                value = self.get_var(el.variable)
                if isinstance(value, dict):
                    elements.extend(ParameterToken(to_str(k), v, splatted=True) for k, v in value.items())
                elif isinstance(value, (list, tuple)):
                    elements.extend(value)
                elif value is not None:
                    elements.append(value)
        return elements

    def _argument(self, node: ast.Expr) -> Any:
        value = self._eval(node)
        return None if value is VOID else value

    def resolve_command(self, name: str) -> tuple[str, str]:
        """What a command name runs: ("function" | "builtin" | "host", canonical name).

        Raises:
            ScriptRefused: for refused commands and script paths.
            CommandNotFound: for anything else unknown.
        """
        low = name.lower()
        if low in _REFUSALS:
            canonical, reason = _REFUSALS[low]
            raise ScriptRefused(f"{canonical} is not allowed in a Mailshift session: {reason}.", command=canonical, target=name)
        if low in self._functions:
            return "function", self._functions[low].name
        if low in self._builtins:
            return "builtin", self._builtins[low].name
        resolved = self.host.resolve(name)
        if resolved:
            return "host", resolved
        if _is_path_like(name):
            raise ScriptRefused(f"Running scripts or programs ('{name}') is not allowed in a Mailshift session.", target=name, error_id="ScriptFileNotAllowed")
        raise CommandNotFound(
            f"The term '{name}' is not recognized as a cmdlet supported by this Mailshift service. Check the spelling "
            "of the name; this service runs the Exchange migration cmdlets (New-MigrationBatch, Get-MigrationBatch, "
            "Start-MigrationBatch, ...) and a restricted set of PowerShell utility commands.",
            target=name,
        )

    def _invoke_command(self, cmd: ast.Command, input_items: list[Any] | None) -> list[Any]:
        try:
            if cmd.invocation:
                target = self._eval(cmd.name_expr) if cmd.name_expr is not None else None
                if isinstance(target, ScriptBlock):
                    return self.call_block(target, self.command_elements(cmd), input_items)
                name = to_str(target) if isinstance(target, str) else ""
                if not name or _is_path_like(name) or cmd.invocation == ".":
                    raise ScriptRefused(
                        f"Running scripts or programs ('{cmd.name_expr.extent.text if cmd.name_expr else ''}') is not allowed in a Mailshift session.",
                        error_id="ScriptFileNotAllowed",
                        target=name or None,
                    )
            else:
                name = cmd.name
            kind, canonical = self.resolve_command(name)
        except ShimError as e:
            raise self._raised(e, cmd.extent, stop=e.terminating) from None
        elements = self.command_elements(cmd)
        if len(elements) == 1 and isinstance(elements[0], ParameterToken) and elements[0].name == "?" and kind != "function":
            return self._builtins["get-help"].call(self, "Get-Help", [canonical], None, cmd.extent, CommonParameters())
        try:
            common, elements = self._strip_common(elements, canonical)
        except ShimError as e:
            raise self._raised(e, cmd.extent, stop=True) from None
        if common.error_variable and not common.error_variable.startswith("+"):
            self.set_var(common.error_variable, [])
        if kind == "function":
            outputs = self._call_function(self._functions[name.lower()], elements, input_items, common)
        elif kind == "builtin":
            try:
                outputs = self._builtins[name.lower()].call(self, canonical, elements, input_items, cmd.extent, common)
            except ShimError as e:
                self.command_error(e, canonical, cmd.extent, common)
                outputs = []
        else:
            outputs = []
            for obj in [NO_VALUE] if input_items is None else input_items:
                try:
                    outputs.extend(self.host.invoke(canonical, list(elements), obj))
                except ShimError as e:
                    self.command_error(e, canonical, cmd.extent, common)
                finally:
                    for message in self.host.warnings():
                        self.write_warning(message, common)
        if common.out_variable:
            self.set_var(common.out_variable.lstrip("+"), list(outputs))
        return outputs

    def _strip_common(self, elements: list[CommandElement], command: str) -> tuple[CommonParameters, list[CommandElement]]:
        common = CommonParameters()
        kept: list[CommandElement] = []
        i = 0
        while i < len(elements):
            el = elements[i]
            canon = _common_name(el.name) if isinstance(el, ParameterToken) else None
            if canon is None:
                kept.append(el)
                i += 1
                continue
            assert isinstance(el, ParameterToken)
            if canon in _COMMON_SWITCHES:
                value: Any = True if el.value is NO_VALUE else is_true(el.value)
            elif el.value is not NO_VALUE:
                value = el.value
            elif i + 1 < len(elements) and not isinstance(elements[i + 1], ParameterToken):
                i += 1
                value = elements[i]
            else:
                raise BindingError(
                    f"Missing an argument for parameter '{canon}'. Specify a parameter of type "
                    f"'{'System.Management.Automation.ActionPreference' if canon.endswith('Action') else 'System.String'}' and try again.",
                    command=command,
                    error_id="MissingArgument",
                )
            if canon == "ErrorAction":
                common.error_action = action_value(value, canon, command)
            elif canon == "WarningAction":
                common.warning_action = action_value(value, canon, command)
            elif canon == "ErrorVariable":
                common.error_variable = to_str(value)
            elif canon == "OutVariable":
                common.out_variable = to_str(value)
            elif canon == "Verbose":
                common.verbose = bool(value)
            elif canon == "Debug":
                common.debug = bool(value)
            i += 1
        return common, kept

    # -- functions and script blocks ------------------------------------------------------------------

    def call_block(self, block: ScriptBlock, elements: Sequence[CommandElement], input_items: list[Any] | None) -> list[Any]:
        """Invoke a script block with ``&`` (its own scope, parameters bound like a function's)."""
        fn = ast.FunctionDef(block.node.extent, "<ScriptBlock>", block.node.params, block.node.body)
        return self._call_function(fn, list(elements), input_items, CommonParameters())

    def _call_function(self, fn: ast.FunctionDef, elements: list[CommandElement], input_items: list[Any] | None, common: CommonParameters) -> list[Any]:
        scope = _Scope(self._scope)
        params = {p.name.lower(): p for p in fn.params}
        bound: dict[str, Any] = {}
        positional: list[Any] = []
        i = 0
        while i < len(elements):
            el = elements[i]
            if isinstance(el, ParameterToken):
                matches = [p for key, p in params.items() if key == el.name.lower()] or [p for key, p in params.items() if key.startswith(el.name.lower())]
                if len(matches) != 1:
                    raise self._raised(
                        BindingError(f"A parameter cannot be found that matches parameter name '{el.name}'.", command=fn.name, error_id="NamedParameterNotFound", target=el.name),
                        fn.extent,
                        stop=True,
                    )
                param = matches[0]
                if param.type_name and param.type_name.lower() in ("switch", "switchparameter"):
                    bound[param.name.lower()] = True if el.value is NO_VALUE else is_true(el.value)
                elif el.value is not NO_VALUE:
                    bound[param.name.lower()] = el.value
                elif i + 1 < len(elements) and not isinstance(elements[i + 1], ParameterToken):
                    i += 1
                    bound[param.name.lower()] = elements[i]
                else:
                    raise self._raised(BindingError(f"Missing an argument for parameter '{param.name}'.", command=fn.name, error_id="MissingArgument"), fn.extent, stop=True)
            else:
                positional.append(el)
            i += 1
        remaining = [p for p in fn.params if p.name.lower() not in bound and not (p.type_name or "").lower().startswith("switch")]
        while positional and remaining:
            bound[remaining.pop(0).name.lower()] = positional.pop(0)
        saved = self._scope
        self._enter_call(fn.extent)
        self._scope = scope
        out: list[Any] = []
        try:
            if common.error_action:
                scope.vars["erroractionpreference"] = common.error_action
            scope.vars["args"] = positional
            scope.vars["input"] = list(input_items) if input_items is not None else []
            for p in fn.params:
                if p.name.lower() in bound:
                    value = bound[p.name.lower()]
                elif p.default is not None:
                    value = self._eval(p.default)
                elif (p.type_name or "").lower().startswith("switch"):
                    value = False
                else:
                    value = None
                if p.type_name and value is not None:
                    value = convert_to(p.type_name, value)
                scope.vars[p.name.lower()] = value
            if input_items is not None:
                scope.vars["_"] = input_items[-1] if input_items else None
            self._exec_block(fn.body, out.append)
        except _Return:
            pass
        finally:
            self._scope = saved
            self._call_depth -= 1
        return out

    def _enter_call(self, extent: ast.Extent) -> None:
        """Count one more active call; past the limit, PowerShell's call depth overflow (ends the script)."""
        if self._call_depth >= self.limits.max_call_depth:
            overflow = RuntimeFailure("The script failed due to call depth overflow.", error_id="CallDepthOverflow")
            raise self._raised(overflow, extent, True)
        self._call_depth += 1

    def invoke_block(self, block: ScriptBlock, dollar_under: Any = NO_VALUE, args: Sequence[Any] = ()) -> list[Any]:
        """Run a script block in the current scope (Where-Object, ForEach-Object, calculated properties).

        Args:
            block: The script block.
            dollar_under: The value of ``$_`` / ``$PSItem`` while it runs.
            args: Values for its ``param()`` parameters (and ``$args``).

        Returns:
            Its output objects. ``return`` ends the block; ``break``/``continue`` propagate as in PowerShell.
        """
        vars_ = self._scope.vars
        saved = {k: vars_.get(k, VOID) for k in ("_", "args")}
        if dollar_under is not NO_VALUE:
            vars_["_"] = dollar_under
        vars_["args"] = list(args)
        for p, value in zip(block.node.params, args):
            vars_[p.name.lower()] = value
        out: list[Any] = []
        self._enter_call(block.node.extent)
        try:
            self._exec_block(block.node.body, out.append)
        except _Return:
            pass
        finally:
            self._call_depth -= 1
            for k, v in saved.items():
                if v is VOID:
                    vars_.pop(k, None)
                else:
                    vars_[k] = v
        return out

    # -- expressions ----------------------------------------------------------------------------------

    def _eval(self, node: ast.Expr) -> Any:
        self._budget.step()
        method = getattr(self, "_eval_" + type(node).__name__)
        result: Any = method(node)
        if isinstance(result, str):
            self._check_string(len(result), built=False)
        elif isinstance(result, list):
            self._check_collection(len(result), built=False)
        return result

    def _check_string(self, length: int, built: bool = True) -> None:
        """Refuse a string of ``length`` characters past the limit; count building it against the budget."""
        if length > self.limits.max_string_length:
            raise string_too_long(length, self.limits.max_string_length)
        if built and length >= CHARACTERS_PER_STEP:
            self._budget.step(length // CHARACTERS_PER_STEP)

    def _check_collection(self, length: int, built: bool = True) -> None:
        """Refuse an array of ``length`` elements past the limit; count building it against the budget."""
        if length > self.limits.max_collection_length:
            raise collection_too_large(length, self.limits.max_collection_length)
        if built and length >= ELEMENTS_PER_STEP:
            self._budget.step(length // ELEMENTS_PER_STEP)

    def _check_format(self, fmt: str) -> None:
        """Refuse a ``-f`` format whose alignment (``{0,N}``) pads beyond the string limit."""
        for width in _FORMAT_WIDTH.findall(fmt):
            if len(width) > 9 or int(width) > self.limits.max_string_length:
                raise string_too_long(int(width[:18]), self.limits.max_string_length)

    def _check_joined(self, parts: Sequence[Any], separator: str) -> None:
        """Refuse to join ``parts`` when the string would be too long (before building it)."""
        length = len(separator) * max(0, len(parts) - 1)
        for part in parts:
            length += len(part) if isinstance(part, str) else 24
            self._check_string(length, built=False)
        self._check_string(length)

    def _eval_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _eval_ExpandableString(self, node: ast.ExpandableString) -> str:
        parts: list[str] = []
        for part in node.parts:
            if isinstance(part, str):
                parts.append(part)
            else:
                parts.append(to_str(self._eval(part)))
        return "".join(parts)

    def _eval_Variable(self, node: ast.Variable) -> Any:
        return self.get_var(node.name, node.scope)

    def _collect(self, body: Sequence[ast.Statement]) -> list[Any]:
        out: list[Any] = []
        self._exec_block(body, out.append)
        return out

    def _eval_SubExpression(self, node: ast.SubExpression) -> Any:
        return unwrap(self._collect(node.body))

    def _eval_ArrayExpression(self, node: ast.ArrayExpression) -> list[Any]:
        return self._collect(node.body)

    def _eval_Paren(self, node: ast.Paren) -> Any:
        return self._value(node.pipeline)

    def _eval_HashLiteral(self, node: ast.HashLiteral) -> PSHashtable:
        table = PSHashtable()
        for key_node, value_stmt in node.pairs:
            key = self._eval(key_node)
            if key in table:
                raise RuntimeFailure(f"Duplicate keys '{to_str(key)}' are not allowed in hash literals.", error_id="DuplicateKeyInHashLiteral")
            value = self._value(value_stmt)
            table[key] = None if value is VOID else value
        return table

    def _eval_ArrayLiteral(self, node: ast.ArrayLiteral) -> list[Any]:
        return [self._eval(item) for item in node.items]

    def _eval_ScriptBlockExpr(self, node: ast.ScriptBlockExpr) -> ScriptBlock:
        return ScriptBlock(node)

    def _eval_TypeLiteral(self, node: ast.TypeLiteral) -> TypeRef:
        return TypeRef(node.name)

    def _eval_Cast(self, node: ast.Cast) -> Any:
        return convert_to(node.type_name, self._eval(node.operand))

    def _eval_Member(self, node: ast.Member) -> Any:
        if node.static:
            raise _static_refusal(node.target, node.name)
        return get_property(self._eval(node.target), node.name)

    def _eval_Invoke(self, node: ast.Invoke) -> Any:
        if node.static:
            assert isinstance(node.target, ast.TypeLiteral)
            type_name = node.target.name.lower().replace(" ", "")
            if type_name in ("system.io.file", "io.file") and node.name.lower() == "readallbytes" and len(node.args) == 1:
                return self.host.read_import_file(to_str(self._eval(node.args[0])))
            raise _static_refusal(node.target, node.name)
        target = self._eval(node.target)
        args = [self._eval(a) for a in node.args]
        if isinstance(target, ScriptBlock) and node.name.lower() in ("invoke", "invokereturnasis"):
            return unwrap(self.call_block(target, args, None))
        return call_method(target, node.name, args)

    def _eval_Index(self, node: ast.Index) -> Any:
        return index_value(self._eval(node.target), self._eval(node.index))

    def _eval_Unary(self, node: ast.Unary) -> Any:
        op = node.op
        if op in ("++", "--", "post++", "post--"):
            old = self._eval(node.operand)
            new = to_number(old) + (1 if op.endswith("++") else -1)
            self._store(node.operand, new)
            return old if op.startswith("post") else new
        value = self._eval(node.operand)
        if op == "-not":
            return not is_true(value)
        if op == "-":
            return -to_number(value)
        if op == "+":
            return to_number(value)
        if op == ",":
            return [value]
        if op == "-split":
            words: list[str] = []
            for v in enumerate_output(value):
                words.extend(self._bounded_pieces(len(words), lambda room: to_str(v).split(None, room)))
            return words
        if op == "-join":
            items = enumerate_output(value)
            self._check_joined(items, "")
            return "".join(to_str(v) for v in items)
        if op == "-bnot":
            return ~int(to_number(value))
        raise RuntimeFailure(f"Unsupported operator '{op}'.")

    def _eval_Binary(self, node: ast.Binary) -> Any:
        op = node.op
        if op in ("and", "or"):
            left_true = is_true(self._eval(node.left))
            if op == "and":
                return left_true and is_true(self._eval(node.right))
            return left_true or is_true(self._eval(node.right))
        left = self._eval(node.left)
        right = self._eval(node.right)
        return self.binary(op, left, right, node.case_sensitive)

    def binary(self, op: str, left: Any, right: Any, case_sensitive: bool = False) -> Any:
        """Apply a binary operator to two values (also used by Where-Object's simplified form)."""
        if op == "xor":
            return is_true(left) != is_true(right)
        if op in ("+", "-", "*", "/", "%"):
            return self._arith(op, left, right)
        if op == "f":
            fmt = to_str(left)
            self._check_format(fmt)
            return format_operator(fmt, list(right) if isinstance(right, (list, tuple)) else [right])
        if op == "..":
            first, last = to_number(left), to_number(right)
            if not abs(last - first) < self.limits.max_collection_length:
                raise range_too_large()
            start, stop = int(first), int(last)
            self._check_collection(abs(stop - start) + 1)
            step = 1 if stop >= start else -1
            return list(range(start, stop + step, step))
        if op == "join":
            separator = to_str(right)
            items = enumerate_output(left)
            self._check_joined(items, separator)
            return separator.join(to_str(v) for v in items)
        if op == "split":
            return self._split(left, right, case_sensitive)
        if op == "replace":
            return self._replace(left, right, case_sensitive)
        if op in ("is", "isnot"):
            name = right.name if isinstance(right, TypeRef) else to_str(right)
            return is_instance(left, name) == (op == "is")
        if op == "as":
            try:
                return convert_to(right.name if isinstance(right, TypeRef) else to_str(right), left)
            except ShimError:
                return None
        if op in ("band", "bor", "bxor"):
            a, b = int(to_number(left)), int(to_number(right))
            return a & b if op == "band" else a | b if op == "bor" else a ^ b
        return self.compare(op, left, right, case_sensitive)

    def compare(self, op: str, left: Any, right: Any, case_sensitive: bool = False) -> Any:
        """A comparison operator; an array on the left filters it, as in PowerShell."""
        if op in ("contains", "notcontains"):
            found = any(ps_equals(v, right, case_sensitive) for v in _items(left))
            return found == (op == "contains")
        if op in ("in", "notin"):
            found = any(ps_equals(v, left, case_sensitive) for v in _items(right))
            return found == (op == "in")
        if isinstance(left, (list, tuple)):
            return [v for v in left if self._compare_one(op, v, right, case_sensitive, set_matches=False)]
        return self._compare_one(op, left, right, case_sensitive, set_matches=True)

    def _compare_one(self, op: str, left: Any, right: Any, case: bool, set_matches: bool) -> bool:
        if op == "eq":
            return ps_equals(left, right, case)
        if op == "ne":
            return not ps_equals(left, right, case)
        if op in ("gt", "ge", "lt", "le"):
            c = ps_compare(left, right, case)
            return {"gt": c > 0, "ge": c >= 0, "lt": c < 0, "le": c <= 0}[op]
        if op in ("like", "notlike"):
            return wildcard_match(to_str(right), to_str(left), case) == (op == "like")
        if op in ("match", "notmatch"):
            try:
                m = re.search(dotnet_regex(to_str(right)), to_str(left), 0 if case else re.I)
            except re.error as e:
                raise RuntimeFailure(f"The regular expression pattern {to_str(right)} is not valid: {e}.", error_id="InvalidRegularExpression") from None
            if m and set_matches and op == "match":
                groups = PSHashtable([(0, m.group(0))])
                for i, g in enumerate(m.groups(), 1):
                    if g is not None:
                        groups[i] = g
                for name, g in m.groupdict().items():
                    if g is not None:
                        groups[name] = g
                self.set_var("Matches", groups)
            return (m is not None) == (op == "match")
        raise RuntimeFailure(f"Unsupported operator '-{op}'.")

    def _split(self, left: Any, right: Any, case: bool) -> list[str]:
        parts = list(right) if isinstance(right, (list, tuple)) else [right]
        pattern = to_str(parts[0]) if parts else " "
        limit = int(to_number(parts[1])) if len(parts) > 1 else 0
        out: list[str] = []
        for v in enumerate_output(left):
            text = to_str(v)
            out.extend(self._bounded_pieces(
                len(out),
                lambda room: re.split(dotnet_regex(pattern), text, maxsplit=limit - 1 if 0 < limit <= room else room,
                                      flags=0 if case else re.I),
            ))
        return out

    def _bounded_pieces(self, have: int, split: Callable[[int], list[str]]) -> list[str]:
        """``split(room)`` splits at most ``room`` times; more pieces than the array bound allows is an error."""
        room = self.limits.max_collection_length - have
        pieces = split(max(room, 1))
        if have + len(pieces) > self.limits.max_collection_length:
            raise collection_too_large(have + len(pieces), self.limits.max_collection_length)
        return pieces

    def _replace(self, left: Any, right: Any, case: bool) -> Any:
        parts = list(right) if isinstance(right, (list, tuple)) else [right]
        pattern = dotnet_regex(to_str(parts[0]))
        replacement = dotnet_replacement(to_str(parts[1])) if len(parts) > 1 else ""
        compiled = re.compile(pattern, 0 if case else re.I)
        if isinstance(left, (list, tuple)):
            return [self._bounded_sub(compiled, replacement, to_str(v)) for v in left]
        return self._bounded_sub(compiled, replacement, to_str(left))

    def _bounded_sub(self, pattern: re.Pattern[str], replacement: str, text: str) -> str:
        """``pattern.sub``, refused when the result could pass the string bound.

        A first pass counts the matches and their longest length; each replacement is at most the
        template's length plus, per group reference, that longest match.
        """
        limit = self.limits.max_string_length
        references = replacement.count("\\g<")
        if len(text) + (len(text) + 1) * (len(replacement) + references * len(text)) > limit:
            matches = longest = 0
            for match in pattern.finditer(text):
                matches += 1
                longest = max(longest, match.end() - match.start())
            bound = len(text) + matches * (len(replacement) + references * longest)
            if bound > limit:
                raise string_too_long(bound, limit)
        return pattern.sub(replacement, text)

    def _arith(self, op: str, left: Any, right: Any) -> Any:
        if isinstance(left, enum.Enum):
            left = to_str(left)
        if op == "+":
            if left is None:
                return right
            if isinstance(left, str):
                text = to_str(right)
                self._check_string(len(left) + len(text))
                return left + text
            if isinstance(left, (list, tuple, bytes, bytearray)):
                added = list(right) if isinstance(right, (list, tuple, bytes, bytearray)) else [right]
                self._check_collection(len(left) + len(added))
                return list(left) + added
            if isinstance(left, dict):
                if not isinstance(right, dict):
                    raise RuntimeFailure("A hash table can only be added to another hash table.", error_id="AddHashTableToNonHashTable")
                merged = PSHashtable(left.items())
                for k, v in right.items():
                    if k in merged:
                        raise RuntimeFailure(f"Item has already been added. Key in dictionary: '{to_str(k)}'", error_id="DuplicateKey")
                    merged[k] = v
                return merged
            if isinstance(left, datetime) and isinstance(right, timedelta):
                return left + right
            if isinstance(left, timedelta) and isinstance(right, timedelta):
                return left + right
        if op == "-":
            if isinstance(left, datetime) and isinstance(right, datetime):
                return call_method(left, "Subtract", [right])
            if isinstance(left, datetime) and isinstance(right, timedelta):
                return left - right
            if isinstance(left, timedelta) and isinstance(right, timedelta):
                return left - right
        if op == "*" and isinstance(left, (str, list, tuple)):
            times = to_number(right)
            length = int(min(len(left) * max(times, 0), 10**18))
            if isinstance(left, str):
                self._check_string(length)
                return left * int(times)
            self._check_collection(length)
            return list(left) * int(times)
        a, b = to_number(left), to_number(right)
        if op == "+":
            return _widen(a + b)
        if op == "-":
            return _widen(a - b)
        if op == "*":
            return _widen(a * b)
        if b == 0:
            raise RuntimeFailure("Attempted to divide by zero.", error_id="RuntimeException")
        if op == "/":
            if isinstance(a, int) and isinstance(b, int) and a % b == 0:
                return a // b
            return a / b
        return a % b if isinstance(a, int) and isinstance(b, int) else a - b * int(a / b)

    def format(self, objects: Sequence[Any]) -> str:
        """Format objects as Out-Default would (used by Out-String)."""
        return format_objects(objects, self.host)


#: The alignment of a ``-f`` format item (``{0,-30}``).
_FORMAT_WIDTH = re.compile(r"\{\s*\d+\s*,\s*-?\s*(\d+)")

#: System.Int64's range: integer results beyond it become doubles, as PowerShell widens them.
_INT64_MAX = (1 << 63) - 1


def _widen(value: Any) -> Any:
    """An integer result beyond Int64 as a double (infinity past a double's range), as in PowerShell."""
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def _items(value: Any) -> list[Any]:
    return list(value) if is_enumerable(value) else [value]


def _static_refusal(target: ast.Expr, name: str) -> ScriptRefused:
    type_name = target.name if isinstance(target, ast.TypeLiteral) else target.extent.text
    return ScriptRefused(
        f"[{type_name}]::{name} is not allowed in a Mailshift session: the only .NET call scripts may make is "
        "[System.IO.File]::ReadAllBytes(path), to read a file from the service's import folder.",
        error_id="StaticMemberNotAllowed",
        target=f"[{type_name}]::{name}",
    )


def _catch_matches(clause: ast.CatchClause, error: ShimError) -> bool:
    if not clause.types:
        return True
    names = {error.error_id.lower(), "exception", "systemexception", "runtimeexception"}
    names.update(cls.__name__.lower() for cls in type(error).__mro__)
    return any(type_name.rsplit(".", 1)[-1].lower() in names for type_name in clause.types)
