"""Binding arguments to a cmdlet's parameters the way PowerShell's parameter binder does.

Input is the flat list of elements a door produced (``-Name`` tokens, ``-Name:value`` tokens
and plain values, see :mod:`shim.host`) plus, downstream in a pipeline, one input object.
The binder matches names case-insensitively by full name, alias or unique prefix, pairs a
non-switch parameter with the element after it, binds the rest by position, then pipeline
input by value and by property name, and finally picks the parameter set whose mandatory
parameters are all present. Every refusal says which parameter and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shim.cmdlets.model import COMMON_PARAMETERS, SHOULD_PROCESS_PARAMETERS, Cmdlet, Parameter
from shim.errors import BindingError
from shim.host import NO_VALUE, ParameterToken
from shim.psobject import PSObject

__all__ = ["Bound", "bind", "match_parameter"]

_COMMON = {p.name for p in COMMON_PARAMETERS} | {p.name for p in SHOULD_PROCESS_PARAMETERS}


@dataclass
class Bound:
    """The outcome of binding: the chosen parameter set and each given parameter's converted value."""

    cmdlet: Cmdlet
    set_name: str
    values: dict[str, Any] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        """Whether the parameter was given."""
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        """The parameter's value, or ``default`` when it was not given."""
        return self.values.get(name, default)

    @property
    def what_if(self) -> bool:
        """True when -WhatIf was given (and not as ``-WhatIf:$false``)."""
        return bool(self.values.get("WhatIf"))

    @property
    def arguments(self) -> dict[str, Any]:
        """The cmdlet's own parameters (no common ones), for display and logging."""
        return {k: v for k, v in self.values.items() if k not in _COMMON}


def match_parameter(cmdlet: Cmdlet, written: str) -> Parameter:
    """The parameter a written name means: exact name or alias first, then a unique prefix.

    Raises:
        BindingError: No parameter matches, or the prefix fits several (the error lists them).
    """
    exact = cmdlet.parameter(written)
    if exact is not None:
        return exact
    wanted = written.lower()
    candidates: list[Parameter] = []
    for parameter in cmdlet.all_parameters():
        names = (parameter.name, *parameter.aliases)
        if any(n.lower().startswith(wanted) for n in names) and parameter not in candidates:
            candidates.append(parameter)
    if len(candidates) > 1:
        listed = ", ".join(p.name for p in candidates)
        raise BindingError(
            f"Parameter cannot be processed because the parameter name '{written}' is ambiguous. "
            f"Possible matches include: {listed}.",
            command=cmdlet.name, target=written, error_id="AmbiguousParameter",
        )
    if not candidates:
        raise BindingError(
            f"A parameter cannot be found that matches parameter name '{written}'.",
            command=cmdlet.name, target=written, error_id="NamedParameterNotFound",
        )
    return candidates[0]


def bind(cmdlet: Cmdlet, elements: Sequence[Any], input_object: Any = NO_VALUE) -> Bound:
    """Bind ``elements`` (and a pipeline ``input_object``) to ``cmdlet``'s parameters.

    Raises:
        BindingError: With PowerShell's reason: unknown or ambiguous name, missing argument,
            a parameter given twice, a positional argument nobody takes, no parameter set
            fits, a mandatory parameter missing, or a value of the wrong type.
    """
    raw: dict[str, Any] = {}
    positional: list[Any] = []
    items = list(elements)
    index = 0
    while index < len(items):
        element = items[index]
        index += 1
        if not isinstance(element, ParameterToken):
            positional.append(element)
            continue
        parameter = match_parameter(cmdlet, element.name)
        if parameter.name in raw:
            raise BindingError(
                f"Cannot bind parameter because parameter '{parameter.name}' is specified more than once. "
                f"To provide multiple values to parameters that can accept multiple values, use the array syntax. "
                f"For example, \"-parameter value1,value2,value3\".",
                command=cmdlet.name, target=parameter.name, error_id="ParameterAlreadyBound",
            )
        if element.value is not NO_VALUE:
            raw[parameter.name] = element.value
        elif parameter.type.is_switch:
            raw[parameter.name] = True
        elif index < len(items) and not isinstance(items[index], ParameterToken):
            raw[parameter.name] = items[index]
            index += 1
        else:
            raise BindingError(
                f"Missing an argument for parameter '{parameter.name}'. Specify a parameter of type "
                f"'{parameter.type.net_type}' and try again.",
                command=cmdlet.name, target=parameter.name, error_id="MissingArgument",
            )

    candidates = [s for s in cmdlet.set_names if all(_in(cmdlet, name, s) for name in raw)]
    if not candidates:
        raise BindingError(
            "Parameter set cannot be resolved using the specified named parameters. "
            f"These can't be used together: {', '.join('-' + n for n in raw if n not in _COMMON)}.",
            command=cmdlet.name, error_id="AmbiguousParameterSet",
        )

    fitting: list[tuple[str, dict[str, Any]]] = []
    first_problem: BindingError | None = None
    for set_name in candidates:
        try:
            values = _complete_set(cmdlet, set_name, dict(raw), positional, input_object)
        except BindingError as problem:
            first_problem = first_problem or problem
            continue
        fitting.append((set_name, values))
    if not fitting:
        assert first_problem is not None
        raise first_problem
    chosen = fitting[0]  # set_names lists the default set first
    set_name, values = chosen
    converted: dict[str, Any] = {}
    for name, value in values.items():
        declared = cmdlet.parameter(name)
        assert declared is not None
        parameter = declared
        try:
            result = parameter.type.coerce(value, parameter.name)
        except BindingError as problem:
            problem.command = cmdlet.name
            raise
        if parameter.range is not None and isinstance(result, int) and result >= 0 and not (
                parameter.range[0] <= result <= parameter.range[1]):
            raise BindingError(
                f"Cannot validate argument on parameter '{parameter.name}'. The {result} argument is "
                f"{'less' if result < parameter.range[0] else 'greater'} than the "
                f"{'minimum' if result < parameter.range[0] else 'maximum'} allowed range of "
                f"{parameter.range[0] if result < parameter.range[0] else parameter.range[1]}. Supply an argument "
                f"that is {'greater' if result < parameter.range[0] else 'less'} than or equal to "
                f"{parameter.range[0] if result < parameter.range[0] else parameter.range[1]} and then try the command again.",
                command=cmdlet.name, target=parameter.name, error_id="ParameterArgumentValidationError",
            )
        converted[parameter.name] = result
    return Bound(cmdlet, set_name, converted)


def _in(cmdlet: Cmdlet, name: str, set_name: str) -> bool:
    if name in _COMMON:
        return True
    parameter = cmdlet.parameter(name)
    return parameter is not None and parameter.in_set(set_name)


def _complete_set(cmdlet: Cmdlet, set_name: str, values: dict[str, Any], positional: list[Any],
                  input_object: Any) -> dict[str, Any]:
    own = [p for p in cmdlet.parameters if p.in_set(set_name)]
    slots = sorted((p for p in own if p.position is not None and p.name not in values), key=lambda p: p.position or 0)
    for value in positional:
        if not slots:
            raise BindingError(
                f"A positional parameter cannot be found that accepts argument '{_shown(value)}'.",
                command=cmdlet.name, target=value, error_id="PositionalParameterNotFound",
            )
        values[slots.pop(0).name] = value
    if input_object is not NO_VALUE:
        _bind_pipeline(cmdlet, own, values, input_object)
    missing = [p.name for p in own if p.mandatory_in(set_name) and p.name not in values]
    if missing:
        raise BindingError(
            f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
            command=cmdlet.name, target=missing, error_id="MissingMandatoryParameter",
        )
    return values


def _bind_pipeline(cmdlet: Cmdlet, own: list[Parameter], values: dict[str, Any], input_object: Any) -> None:
    by_value = [p for p in own if p.from_pipeline and p.name not in values]
    by_name = [p for p in own if p.from_pipeline_by_property_name and p.name not in values]
    bound = False
    for parameter in by_name:
        if isinstance(input_object, PSObject):
            for key in (parameter.name, *parameter.aliases):
                if key in input_object:
                    values[parameter.name] = input_object[key]
                    bound = True
                    break
    if by_value and not any(p.name in values for p in by_value):
        values[by_value[0].name] = input_object
        bound = True
    if not bound:
        raise BindingError(
            f"The input object cannot be bound to any parameters for the command either because the command does "
            f"not take pipeline input or the input and its properties do not match any of the parameters that "
            f"take pipeline input.",
            command=cmdlet.name, target=input_object, error_id="InputObjectNotBound",
        )


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


