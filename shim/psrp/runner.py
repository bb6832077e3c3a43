"""Running a PSRP pipeline: plain commands bound by the cmdlet registry, as Exchange's restricted endpoint does.

No protocol here: :func:`run_pipeline` takes the commands psrpcore decoded, the pipeline input
and a :class:`PipelineHost`, and reports through a :class:`PipelineSink`. Scripts
(``IsScript``) are refused with Exchange's no-language error. Besides the registry's cmdlets it
answers what remoting clients send on their own: ``Get-FormatData`` (nothing),
``Measure-Object`` (the count), ``Out-String [-Stream]`` and ``Invoke-Expression`` (the WinRS
door's restricted interpreter), which is what ``pypsrp.Client.execute_ps`` sends.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from shim.cmdlets import Session
from shim.errors import BindingError, ScriptRefused, ShimError
from shim.host import NO_VALUE, CommandElement, HelpMode, ParameterToken, TableView
from shim.psobject import PSObject
from shim.psrp.values import parameter_elements

__all__ = ["NO_LANGUAGE_MESSAGE", "PipelineHost", "PipelineSink", "PipelineStopped", "StopToken", "run_pipeline"]

NO_LANGUAGE_MESSAGE = (
    "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode. "
    "Mailshift, like Exchange's endpoint, runs plain commands only: call the cmdlets through Import-PSSession, "
    "or Invoke-Command with one command and its parameters."
)
_MEASURE_TYPES = ["Microsoft.PowerShell.Commands.GenericMeasureInfo", "Microsoft.PowerShell.Commands.MeasureInfo"]
#: Longest single Start-Sleep honoured (a pipeline can be stopped at any time meanwhile).
_MAX_SLEEP_SECONDS = 3600.0


class PipelineStopped(Exception):  # noqa: N818 - named like PowerShell's PipelineStoppedException
    """Raised in a pipeline's thread once the client stopped it; not a ShimError, so no script can catch it."""


class StopToken:
    """Set when the client stops a pipeline; the running commands check it between calls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Stop: the next check raises :class:`PipelineStopped`."""
        self._event.set()

    @property
    def is_set(self) -> bool:
        """True once stopped."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`PipelineStopped` when stopped."""
        if self._event.is_set():
            raise PipelineStopped()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or until stopped (then raise :class:`PipelineStopped`)."""
        if self._event.wait(max(0.0, min(seconds, _MAX_SLEEP_SECONDS))):
            raise PipelineStopped()


class PipelineSink(Protocol):
    """Where a running pipeline reports (the runspace pool turns these into PSRP messages)."""

    def output(self, value: Any) -> None:
        """An output object."""

    def error(self, error: ShimError, command: str | None) -> None:
        """A non-terminating error (an ErrorRecord in the error stream)."""

    def warning(self, text: str) -> None:
        """A warning record."""

    def information(self, text: str) -> None:
        """Text a script wrote to the host (Write-Host), as an information record."""


class PipelineHost:
    """The registry session seen by one pipeline: every call first checks whether the client stopped it.

    Also the :class:`shim.host.CommandHost` of the interpreter behind Invoke-Expression, with
    ``Start-Sleep`` added (it waits on the stop token, so polling loops stop at once).
    """

    def __init__(self, session: Session, stop: StopToken) -> None:
        self.session = session
        self.stop = stop

    def resolve(self, name: str) -> str | None:
        """The canonical name of a cmdlet (or Start-Sleep), or None."""
        self.stop.check()
        if name.lower() == "start-sleep":
            return "Start-Sleep"
        return self.session.resolve(name)

    def invoke(self, name: str, elements: Sequence[CommandElement], input_object: Any = NO_VALUE) -> list[Any]:
        """Run a cmdlet unless the pipeline was stopped."""
        self.stop.check()
        if name.lower() == "start-sleep":
            self.stop.sleep(_sleep_seconds(elements))
            return []
        result = self.session.invoke(name, elements, input_object)
        self.stop.check()
        return result

    def warnings(self) -> list[str]:
        """Warnings of the last invocation."""
        return self.session.warnings()

    def view(self, obj: PSObject) -> TableView | None:
        """The default view of an object's type."""
        return self.session.view(obj)

    def help(self, name: str, mode: HelpMode, parameter: str | None = None) -> str:
        """Get-Help text."""
        return self.session.help(name, mode, parameter)

    def read_import_file(self, path: str) -> bytes:
        """A file of the import folder."""
        return self.session.read_import_file(path)


def _sleep_seconds(elements: Sequence[CommandElement]) -> float:
    scale, value = 1.0, None
    items = list(elements)
    for index, element in enumerate(items):
        if isinstance(element, ParameterToken):
            name = element.name.lower()
            if "milliseconds".startswith(name) or name == "ms":
                scale = 0.001
            elif not "seconds".startswith(name):
                raise BindingError(f"A parameter cannot be found that matches parameter name '{element.name}'.",
                                   command="Start-Sleep", error_id="NamedParameterNotFound")
            if element.value is not NO_VALUE:
                value = element.value
            elif index + 1 < len(items):
                value = items[index + 1]
        elif value is None:
            value = element
    try:
        return float(str(value)) * scale
    except (TypeError, ValueError):
        raise BindingError("Start-Sleep needs -Seconds or -Milliseconds with a number.", command="Start-Sleep",
                           error_id="MissingArgument") from None


def run_pipeline(commands: Sequence[Any], pipeline_input: list[Any] | None, host: PipelineHost,
                 sink: PipelineSink) -> None:
    """Run psrpcore ``Command`` objects: statements split at ``end_of_statement``, objects passed along.

    Args:
        commands: ``psrpcore.PowerShell.commands`` (``command_text``, ``is_script``, ``parameters``, ``end_of_statement``).
        pipeline_input: the client's input objects (shim values), or None when the pipeline takes none.
        host: the stoppable registry session.
        sink: where output, errors and warnings go.

    Raises:
        ShimError: a terminating error (script refused, unknown command, binding failure...).
        PipelineStopped: the client stopped the pipeline.
    """
    statement: list[Any] = []
    first = True
    for command in commands:
        statement.append(command)
        if command.end_of_statement:
            _run_statement(statement, pipeline_input if first else None, host, sink)
            statement, first = [], False
    if statement:
        _run_statement(statement, pipeline_input if first else None, host, sink)


def _run_statement(commands: Sequence[Any], pipeline_input: list[Any] | None, host: PipelineHost,
                   sink: PipelineSink) -> None:
    objects = pipeline_input
    for command in commands:
        host.stop.check()
        name = str(command.command_text or "").strip()
        if command.is_script:
            raise ScriptRefused(NO_LANGUAGE_MESSAGE, target=name[:200], category="ParserError",
                                error_id="ScriptsNotAllowed")
        objects = _run_command(name, parameter_elements(command.parameters), objects, host, sink)
    for obj in objects or []:
        sink.output(obj)


def _run_command(name: str, elements: list[Any], inputs: list[Any] | None, host: PipelineHost,
                 sink: PipelineSink) -> list[Any]:
    builtin = _BUILTINS.get(name.lower())
    if builtin is not None:
        return list(builtin(elements, inputs, host, sink))
    canonical = host.resolve(name)
    if canonical is None:
        raise host.session.not_found(name)
    calls: list[Any] = [NO_VALUE] if inputs is None else list(inputs)
    out: list[Any] = []
    for obj in calls:
        try:
            out.extend(host.invoke(canonical, elements, obj))
        except ShimError as error:
            if error.terminating:
                raise
            sink.error(error, canonical)
        finally:
            for text in host.warnings():
                sink.warning(text)
    return out


def _switch(elements: Sequence[Any], name: str) -> bool:
    for element in elements:
        if isinstance(element, ParameterToken) and name.startswith(element.name.lower()) and element.name:
            return element.value is NO_VALUE or bool(element.value)
    return False


def _named_or_first(elements: Sequence[Any], name: str) -> Any:
    items = list(elements)
    for index, element in enumerate(items):
        if isinstance(element, ParameterToken) and name.startswith(element.name.lower()) and element.name:
            if element.value is not NO_VALUE:
                return element.value
            return items[index + 1] if index + 1 < len(items) else None
    return next((e for e in items if not isinstance(e, ParameterToken)), None)


def _get_format_data(elements: list[Any], inputs: list[Any] | None, host: PipelineHost,
                     sink: PipelineSink) -> list[Any]:
    return []  # no format data: clients show the objects' properties


def _measure_object(elements: list[Any], inputs: list[Any] | None, host: PipelineHost,
                    sink: PipelineSink) -> list[Any]:
    count = len(inputs or [])
    return [PSObject(_MEASURE_TYPES, {"Count": count, "Average": None, "Sum": None, "Maximum": None,
                                      "Minimum": None, "Property": None})]


def _out_string(elements: list[Any], inputs: list[Any] | None, host: PipelineHost,
                sink: PipelineSink) -> list[Any]:
    from shim.pslang import format_objects

    text = format_objects(list(inputs or []), host)
    if not _switch(elements, "stream"):
        return [text]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _invoke_expression(elements: list[Any], inputs: list[Any] | None, host: PipelineHost,
                       sink: PipelineSink) -> list[Any]:
    from shim.pslang import Interpreter

    script = _named_or_first(elements, "command")
    if not isinstance(script, str):
        raise BindingError("Invoke-Expression needs -Command with the text to run.", command="Invoke-Expression",
                           error_id="MissingArgument")
    interpreter = Interpreter(host)
    try:
        return interpreter.evaluate(script)
    finally:
        for error in interpreter.last_errors:
            sink.error(error, "Invoke-Expression")
        text = interpreter.host_text
        if text:
            sink.information(text.rstrip("\n"))


_Builtin = Any
_BUILTINS: dict[str, _Builtin] = {
    "get-formatdata": _get_format_data,
    "measure-object": _measure_object,
    "out-string": _out_string,
    "invoke-expression": _invoke_expression,
    "iex": _invoke_expression,
}
