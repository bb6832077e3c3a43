"""The utility commands the interpreter runs itself (Select-Object, Format-Table, Write-Host, ...).

Each command declares its parameters once; :func:`bind` pairs ``-Name value`` the way
PowerShell's binder does for these commands (exact name, alias, or unique prefix), and the
implementation receives the named values and the positional arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from shim.errors import BindingError, ObjectNotFound, ScriptRefused, ShimError
from shim.host import NO_VALUE, CommandElement, HelpMode, ParameterToken
from shim.pslang import ast
from shim.pslang.formatting import Column, default_columns, render_list, render_table
from shim.pslang.records import WrittenError
from shim.pslang.timezones import TIME_ZONE_KEY, WINDOWS_TIME_ZONES
from shim.pslang.values import (
    VOID,
    FormattedText,
    PSHashtable,
    ScriptBlock,
    call_method,
    convert_to,
    enumerate_output,
    format_datetime,
    get_property,
    is_true,
    ps_compare,
    ps_equals,
    to_number,
    to_str,
    type_display_name,
    wildcard_match,
)
from shim.psobject import PSObject

if TYPE_CHECKING:
    from shim.pslang.interpreter import CommonParameters, Interpreter

__all__ = ["BUILTINS", "Builtin", "Call", "bind"]


@dataclass
class Call:
    """One call of a built-in command: bound parameters, positional arguments, pipeline input."""

    name: str
    named: dict[str, Any]
    positional: list[Any]
    input: list[Any] | None
    extent: ast.Extent
    common: CommonParameters

    def get(self, name: str, default: Any = None) -> Any:
        """A named parameter's value (canonical name, any case)."""
        return self.named.get(name.lower(), default)

    def has(self, name: str) -> bool:
        """Whether a parameter was given (a switch: given and true)."""
        value = self.named.get(name.lower(), NO_VALUE)
        return value is not NO_VALUE and (value is not False)

    def take(self, name: str) -> Any:
        """A parameter given by name, else the next positional argument (NO_VALUE when neither)."""
        if name.lower() in self.named:
            return self.named[name.lower()]
        if self.positional:
            return self.positional.pop(0)
        return NO_VALUE

    def no_more_positional(self) -> None:
        """Raise PowerShell's binding error when positional arguments are left over."""
        if self.positional:
            raise BindingError(
                f"A positional parameter cannot be found that accepts argument '{to_str(self.positional[0])}'.",
                command=self.name,
                error_id="PositionalParameterNotFound",
                target=to_str(self.positional[0]),
            )


Impl = Callable[["Interpreter", Call], list[Any]]


@dataclass(frozen=True)
class Builtin:
    """A built-in command: its name, aliases, parameters (name → is a switch) and implementation."""

    name: str
    aliases: tuple[str, ...]
    params: dict[str, bool]
    impl: Impl
    param_aliases: dict[str, str] = field(default_factory=dict)

    def call(
        self,
        interpreter: Interpreter,
        name: str,
        elements: Sequence[CommandElement],
        input_items: list[Any] | None,
        extent: ast.Extent,
        common: CommonParameters,
    ) -> list[Any]:
        """Bind the elements and run the command.

        Raises:
            ShimError: binding errors and the command's own errors.
        """
        named, positional = bind(self, elements)
        return self.impl(interpreter, Call(self.name, named, positional, input_items, extent, common))


def _resolve_param(builtin: Builtin, name: str) -> str:
    low = name.lower()
    canon = {p.lower(): p for p in builtin.params}
    if low in canon:
        return canon[low]
    if low in builtin.param_aliases:
        return builtin.param_aliases[low]
    matches = sorted({p for key, p in canon.items() if key.startswith(low)})
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise BindingError(
            f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. Possible matches include: "
            + " ".join("-" + m for m in matches)
            + ".",
            command=builtin.name,
            error_id="AmbiguousParameter",
            target=name,
        )
    raise BindingError(
        f"A parameter cannot be found that matches parameter name '{name}'.",
        command=builtin.name,
        error_id="NamedParameterNotFound",
        target=name,
    )


def bind(builtin: Builtin, elements: Sequence[CommandElement]) -> tuple[dict[str, Any], list[Any]]:
    """Pair ``-Name value`` elements for a built-in command.

    Args:
        builtin: The command and its parameter declarations.
        elements: The evaluated elements.

    Returns:
        Named values by lower-case canonical name, and the positional values in order.

    Raises:
        BindingError: for an unknown or ambiguous name, or a missing value.
    """
    named: dict[str, Any] = {}
    positional: list[Any] = []
    i = 0
    while i < len(elements):
        el = elements[i]
        if isinstance(el, ParameterToken):
            canon = _resolve_param(builtin, el.name)
            if builtin.params[canon]:
                named[canon.lower()] = True if el.value is NO_VALUE else is_true(el.value)
            elif el.value is not NO_VALUE:
                named[canon.lower()] = el.value
            elif i + 1 < len(elements) and not isinstance(elements[i + 1], ParameterToken):
                i += 1
                named[canon.lower()] = elements[i]
            else:
                raise BindingError(
                    f"Missing an argument for parameter '{canon}'. Specify a parameter of type 'System.Object' and try again.",
                    command=builtin.name,
                    error_id="MissingArgument",
                    target=canon,
                )
        else:
            positional.append(el)
        i += 1
    return named, positional


BUILTINS: dict[str, Builtin] = {}


def _builtin(
    name: str,
    aliases: Sequence[str] = (),
    *,
    values: Sequence[str] = (),
    switches: Sequence[str] = (),
    param_aliases: dict[str, str] | None = None,
) -> Callable[[Impl], Impl]:
    def register(fn: Impl) -> Impl:
        params = {v: False for v in values}
        params.update({s: True for s in switches})
        builtin = Builtin(name, tuple(aliases), params, fn, {k.lower(): v for k, v in (param_aliases or {}).items()})
        for key in (name, *aliases):
            BUILTINS[key.lower()] = builtin
        return fn

    return register


# -- property specifications (Select-Object, Format-*, Sort-Object, Group-Object) -----------------------------


def _hash_entry(table: dict[Any, Any], *names: str) -> Any:
    for key, value in table.items():
        low = to_str(key).lower()
        if any(n.startswith(low) and len(low) >= 1 for n in names):
            return value
    return NO_VALUE


def _getter(interpreter: Interpreter, expression: Any) -> Callable[[Any], Any]:
    if isinstance(expression, ScriptBlock):

        def run(obj: Any) -> Any:
            out = interpreter.invoke_block(expression, obj)
            return None if not out else out[0] if len(out) == 1 else out

        return run
    name = to_str(expression)
    return lambda obj: get_property(obj, name)


def _property_names(objects: Sequence[Any]) -> list[str]:
    names: dict[str, str] = {}
    for obj in objects:
        props = list(obj.names()) if isinstance(obj, PSObject) else [to_str(k) for k in obj] if isinstance(obj, dict) else []
        for n in props:
            names.setdefault(n.lower(), n)
    return list(names.values())


def property_columns(interpreter: Interpreter, specs: Any, objects: Sequence[Any], command: str) -> list[Column]:
    """Columns for ``-Property`` values: names, wildcards, script blocks, calculated-property hashtables.

    Raises:
        ShimError: for a calculated property without an Expression.
    """
    columns: list[Column] = []
    for spec in enumerate_output(specs):
        if isinstance(spec, dict):
            expression = _hash_entry(spec, "expression")
            if expression is NO_VALUE:
                raise ShimError(
                    "The Expression key is missing from the calculated property hashtable.",
                    command=command,
                    category="InvalidArgument",
                    error_id="DictionaryKeyMissingExpression",
                )
            label = _hash_entry(spec, "name", "label")
            columns.append(Column(to_str(expression if label is NO_VALUE else label), _getter(interpreter, expression)))
        elif isinstance(spec, ScriptBlock):
            columns.append(Column(str(spec).strip(), _getter(interpreter, spec)))
        else:
            name = to_str(spec)
            if any(c in name for c in "*?["):
                columns.extend(Column.of(n) for n in _property_names(objects) if wildcard_match(name, n))
            else:
                # Headings use the property's declared spelling (fl pschildname shows PSChildName).
                declared = {n.lower(): n for n in _property_names(objects)}
                columns.append(Column.of(declared.get(name.lower(), name)))
    return columns


def _objects_of(call: Call) -> list[Any]:
    if "inputobject" in call.named:
        return [call.named["inputobject"]]
    return list(call.input or [])


# -- Select-Object / Where-Object / ForEach-Object / Sort-Object / Measure-Object / Group-Object -----------------


@_builtin(
    "Select-Object",
    ["select"],
    values=["Property", "ExpandProperty", "ExcludeProperty", "First", "Last", "Skip", "Index", "InputObject"],
    switches=["Unique", "Wait"],
)
def _select_object(interpreter: Interpreter, call: Call) -> list[Any]:
    specs = call.take("Property")
    call.no_more_positional()
    items = _objects_of(call)
    if "index" in call.named:
        wanted = [int(to_number(i)) for i in enumerate_output(call.get("Index"))]
        items = [items[i] for i in wanted if -len(items) <= i < len(items)]
    skip = int(to_number(call.get("Skip", 0)))
    items = items[skip:]
    if "first" in call.named:
        items = items[: int(to_number(call.get("First")))]
    if "last" in call.named:
        last = int(to_number(call.get("Last")))
        items = items[-last:] if last else []
    expand = call.get("ExpandProperty")
    out: list[Any] = []
    if expand is not None:
        name = to_str(expand)
        for obj in items:
            if isinstance(obj, PSObject) and name not in obj or isinstance(obj, dict) and name not in obj:
                raise ShimError(
                    f'Property "{name}" cannot be found.', command=call.name, category="InvalidArgument", error_id="ExpandPropertyNotFound"
                )
            out.extend(enumerate_output(get_property(obj, name)))
    elif specs is not NO_VALUE and specs is not None:
        excluded = [to_str(x) for x in enumerate_output(call.get("ExcludeProperty"))] if "excludeproperty" in call.named else []
        for obj in items:
            columns = [c for c in property_columns(interpreter, specs, [obj], call.name) if not any(wildcard_match(x, c.label) for x in excluded)]
            type_name = type_display_name(obj)
            out.append(
                PSObject(
                    ["Selected." + type_name, "System.Management.Automation.PSCustomObject", "System.Object"],
                    [(c.label, c.getter(obj)) for c in columns],
                )
            )
    else:
        out = items
    if call.has("Unique"):
        unique: list[Any] = []
        for obj in out:
            if not any(_same(obj, seen) for seen in unique):
                unique.append(obj)
        out = unique
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, PSObject) and isinstance(b, PSObject):
        return [to_str(v).lower() for v in a.properties.values()] == [to_str(v).lower() for v in b.properties.values()] and a.text == b.text
    return ps_equals(a, b)


_WHERE_OPERATORS = "EQ NE GT GE LT LE Like NotLike Match NotMatch Contains NotContains In NotIn".split()


@_builtin(
    "Where-Object",
    ["where", "?"],
    values=["FilterScript", "Property", "Value", "InputObject"],
    switches=[p + op for op in _WHERE_OPERATORS for p in ("", "C", "I")] + ["Is", "IsNot", "Not"],
)
def _where_object(interpreter: Interpreter, call: Call) -> list[Any]:
    items = _objects_of(call)
    script = call.get("FilterScript")
    if script is None and call.positional and isinstance(call.positional[0], ScriptBlock):
        script = call.positional.pop(0)
    if isinstance(script, ScriptBlock):
        call.no_more_positional()
        return [obj for obj in items if is_true(interpreter.invoke_block(script, obj))]
    prop = call.take("Property")
    value = call.take("Value")
    call.no_more_positional()
    if prop is NO_VALUE:
        raise BindingError("Where-Object needs a script block or a property name.", command=call.name, error_id="MissingArgument")
    ops = [k for k, v in call.named.items() if v is True and k not in ("filterscript", "property", "value", "inputobject")]
    out: list[Any] = []
    for obj in items:
        left = get_property(obj, to_str(prop))
        if not ops:
            keep = is_true(left)
        else:
            op = ops[0]
            if op == "not":
                keep = not is_true(left)
            elif op in ("is", "isnot"):
                keep = is_true(interpreter.binary(op, left, value))
            else:
                case = op.startswith("c") and op[1:] in {o.lower() for o in _WHERE_OPERATORS}
                base = op[1:] if op[0] in "ci" and op[1:] in {o.lower() for o in _WHERE_OPERATORS} else op
                keep = is_true(interpreter.compare(base, left, None if value is NO_VALUE else value, case))
        if keep:
            out.append(obj)
    return out


@_builtin(
    "ForEach-Object",
    ["foreach", "%"],
    values=["Process", "Begin", "End", "MemberName", "ArgumentList", "InputObject", "RemainingScripts"],
)
def _foreach_object(interpreter: Interpreter, call: Call) -> list[Any]:
    items = _objects_of(call) if call.input is not None or "inputobject" in call.named else [None]
    member = call.get("MemberName")
    if member is None and call.positional and not isinstance(call.positional[0], ScriptBlock):
        member = call.positional.pop(0)
    out: list[Any] = []
    if member is not None:
        name = to_str(member)
        args = list(enumerate_output(call.get("ArgumentList"))) if "argumentlist" in call.named else list(call.positional)
        for obj in items:
            has_property = isinstance(obj, PSObject) and name in obj or isinstance(obj, dict) and name in obj
            if has_property or (not args and get_property(obj, name) is not None):
                out.extend(enumerate_output(get_property(obj, name)))
            else:
                out.extend(enumerate_output(call_method(obj, name, args)))
        return out
    blocks = [b for b in call.positional if isinstance(b, ScriptBlock)]
    if len(blocks) != len(call.positional):
        call.positional = [b for b in call.positional if not isinstance(b, ScriptBlock)]
        call.no_more_positional()
    begin, end = call.get("Begin"), call.get("End")
    process = call.get("Process")
    if process is None:
        if len(blocks) == 1:
            process = blocks[0]
        elif len(blocks) >= 2:
            begin, process = blocks[0], blocks[1]
            end = blocks[2] if len(blocks) > 2 else end
    if isinstance(begin, ScriptBlock):
        out.extend(interpreter.invoke_block(begin))
    if isinstance(process, ScriptBlock):
        for obj in items:
            out.extend(interpreter.invoke_block(process, obj))
    if isinstance(end, ScriptBlock):
        out.extend(interpreter.invoke_block(end))
    return [o for o in out if o is not VOID]


@_builtin("Sort-Object", ["sort"], values=["Property", "InputObject", "Top", "Bottom"], switches=["Descending", "Unique", "CaseSensitive", "Stable"])
def _sort_object(interpreter: Interpreter, call: Call) -> list[Any]:
    specs = call.take("Property")
    call.no_more_positional()
    items = _objects_of(call)
    descending = call.has("Descending")
    case = call.has("CaseSensitive")
    keys: list[tuple[Callable[[Any], Any], bool]] = []
    if specs is NO_VALUE or specs is None:
        keys.append((lambda obj: obj.text if isinstance(obj, PSObject) and obj.text is not None else obj, descending))
    else:
        for spec in enumerate_output(specs):
            if isinstance(spec, dict):
                expression = _hash_entry(spec, "expression")
                desc_value = _hash_entry(spec, "descending")
                asc_value = _hash_entry(spec, "ascending")
                desc = is_true(desc_value) if desc_value is not NO_VALUE else (not is_true(asc_value)) if asc_value is not NO_VALUE else descending
                keys.append((_getter(interpreter, expression), desc))
            else:
                for column in property_columns(interpreter, [spec], items, call.name):
                    keys.append((column.getter, descending))
    decorated = [([getter(obj) for getter, _ in keys], obj) for obj in items]

    def compare(a: tuple[list[Any], Any], b: tuple[list[Any], Any]) -> int:
        for (va, vb), (_, desc) in zip(zip(a[0], b[0]), keys):
            c = ps_compare(va, vb, case)
            if c:
                return -c if desc else c
        return 0

    decorated.sort(key=functools.cmp_to_key(compare))
    if call.has("Unique"):
        unique: list[tuple[list[Any], Any]] = []
        for entry in decorated:
            if not unique or compare(unique[-1], entry) != 0:
                unique.append(entry)
        decorated = unique
    result = [obj for _, obj in decorated]
    if "top" in call.named:
        result = result[: int(to_number(call.get("Top")))]
    if "bottom" in call.named:
        result = result[-int(to_number(call.get("Bottom"))) :]
    return result


@_builtin(
    "Measure-Object",
    ["measure"],
    values=["Property", "InputObject"],
    switches=["Sum", "Average", "Maximum", "Minimum", "Line", "Word", "Character", "IgnoreWhiteSpace", "AllStats"],
)
def _measure_object(interpreter: Interpreter, call: Call) -> list[Any]:
    specs = call.take("Property")
    call.no_more_positional()
    items = [o for o in _objects_of(call) if o is not None]
    if call.has("Line") or call.has("Word") or call.has("Character"):
        texts = [to_str(o) for o in items]
        return [
            PSObject(
                ["Microsoft.PowerShell.Commands.TextMeasureInfo"],
                {
                    "Lines": sum(len(t.splitlines()) for t in texts) if call.has("Line") else None,
                    "Words": sum(len(t.split()) for t in texts) if call.has("Word") else None,
                    "Characters": sum(len(t) for t in texts) if call.has("Character") else None,
                    "Property": None,
                },
            )
        ]
    names: list[str | None] = [None] if specs is NO_VALUE or specs is None else [to_str(s) for s in enumerate_output(specs)]
    every = call.has("AllStats")
    out: list[Any] = []
    for name in names:
        values = items if name is None else [v for v in (get_property(o, name) for o in items) if v is not None]
        if name is not None and not values and items:
            raise ShimError(
                f'The property "{name}" cannot be found in the input for any objects.',
                command=call.name,
                category="InvalidArgument",
                error_id="GenericMeasurePropertyNotFound",
            )
        wanted = {stat: every or call.has(stat) for stat in ("Sum", "Average", "Maximum", "Minimum")}
        numbers = [float(to_number(v)) for v in values] if any(wanted.values()) else []
        stats: dict[str, Any] = {"Count": len(values)}
        stats["Average"] = (sum(numbers) / len(numbers) if numbers else None) if wanted["Average"] else None
        stats["Sum"] = sum(numbers) if wanted["Sum"] else None
        stats["Maximum"] = (max(numbers) if numbers else None) if wanted["Maximum"] else None
        stats["Minimum"] = (min(numbers) if numbers else None) if wanted["Minimum"] else None
        stats["Property"] = name
        out.append(PSObject(["Microsoft.PowerShell.Commands.GenericMeasureInfo"], stats))
    return out


@_builtin("Group-Object", ["group"], values=["Property", "InputObject"], switches=["NoElement", "AsHashTable", "AsString", "CaseSensitive"])
def _group_object(interpreter: Interpreter, call: Call) -> list[Any]:
    specs = call.take("Property")
    call.no_more_positional()
    items = _objects_of(call)
    getters: list[Callable[[Any], Any]] = [lambda obj: obj]
    if specs is not NO_VALUE and specs is not None:
        getters = [c.getter for c in property_columns(interpreter, specs, items, call.name)]
    groups: dict[str, tuple[str, list[Any], list[Any]]] = {}
    for obj in items:
        values = [g(obj) for g in getters]
        name = ", ".join(to_str(v) for v in values)
        key = name if call.has("CaseSensitive") else name.lower()
        groups.setdefault(key, (name, values, []))[2].append(obj)
    if call.has("AsHashTable"):
        table = PSHashtable()
        for name, values, members in groups.values():
            table[name if call.has("AsString") or len(values) != 1 else values[0]] = members
        return [table]
    out: list[Any] = []
    for name, _values, members in groups.values():
        props: dict[str, Any] = {"Count": len(members), "Name": name}
        if not call.has("NoElement"):
            props["Group"] = members
        out.append(PSObject(["Microsoft.PowerShell.Commands.GroupInfo"], props))
    return out


# -- formatting and output -----------------------------------------------------------------------------------


def _format(interpreter: Interpreter, call: Call, view: Literal["table", "list"]) -> list[Any]:
    specs = call.take("Property")
    call.no_more_positional()
    items = [o for o in _objects_of(call) if o is not None]
    hide = call.has("HideTableHeaders")
    fixed = property_columns(interpreter, specs, items, call.name) if specs is not NO_VALUE and specs is not None else None
    out: list[Any] = []
    run: list[tuple[Any, list[Column]]] = []
    run_key: tuple[Any, ...] | None = None

    def flush() -> None:
        if not run:
            return
        objects = [obj for obj, _ in run]
        if view == "table":
            out.append(FormattedText(render_table(objects, run[0][1], hide)))
        else:
            by_id = {id(obj): columns for obj, columns in run}
            out.append(FormattedText(render_list(objects, lambda obj: by_id[id(obj)])))
        run.clear()

    for obj in items:
        if not isinstance(obj, (PSObject, dict)) or (isinstance(obj, PSObject) and not obj.properties):
            flush()
            run_key = None
            out.append(FormattedText(to_str(obj) + "\n"))
            continue
        columns = fixed if fixed is not None else default_columns(obj, interpreter.host, view)[1]
        key: tuple[Any, ...] = ("same",) if fixed is not None or view == "list" else (type_display_name(obj), tuple(c.label for c in columns))
        if key != run_key:
            flush()
            run_key = key
        run.append((obj, columns))
    flush()
    return out


@_builtin(
    "Format-Table",
    ["ft"],
    values=["Property", "GroupBy", "View", "InputObject", "Expand"],
    switches=["AutoSize", "HideTableHeaders", "Wrap", "ShowError", "DisplayError", "Force", "RepeatHeader"],
)
def _format_table(interpreter: Interpreter, call: Call) -> list[Any]:
    return _format(interpreter, call, "table")


@_builtin("Format-List", ["fl"], values=["Property", "GroupBy", "View", "InputObject", "Expand"], switches=["ShowError", "DisplayError", "Force"])
def _format_list(interpreter: Interpreter, call: Call) -> list[Any]:
    return _format(interpreter, call, "list")


@_builtin("Out-String", ["oss"], values=["Width", "InputObject"], switches=["Stream"])
def _out_string(interpreter: Interpreter, call: Call) -> list[Any]:
    call.no_more_positional()
    text = interpreter.format(_objects_of(call))
    if call.has("Stream"):
        return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    return [text]


@_builtin("Out-Null", values=["InputObject"])
def _out_null(interpreter: Interpreter, call: Call) -> list[Any]:
    return []


@_builtin("Out-Default", ["Out-Host", "oh"], values=["InputObject"], switches=["Paging", "Transcript"])
def _out_default(interpreter: Interpreter, call: Call) -> list[Any]:
    text = interpreter.format(_objects_of(call))
    if text:
        interpreter.write_host(text)
    return []


@_builtin("Write-Host", values=["Object", "Separator", "ForegroundColor", "BackgroundColor"], switches=["NoNewline"])
def _write_host(interpreter: Interpreter, call: Call) -> list[Any]:
    objects = ([call.get("Object")] if "object" in call.named else []) + call.positional
    if call.input is not None:
        objects = list(call.input) + objects
    separator = to_str(call.get("Separator", " "))
    pieces: list[str] = []
    for obj in objects:
        pieces.extend(to_str(v) for v in (obj if isinstance(obj, (list, tuple)) else [obj]))
    interpreter.write_host(separator.join(pieces) + ("" if call.has("NoNewline") else "\n"))
    return []


@_builtin("Write-Output", ["echo", "write"], values=["InputObject"], switches=["NoEnumerate"])
def _write_output(interpreter: Interpreter, call: Call) -> list[Any]:
    values = ([call.get("InputObject")] if "inputobject" in call.named else []) + call.positional
    out: list[Any] = list(call.input or [])
    for value in values:
        out.extend([value] if call.has("NoEnumerate") else enumerate_output(value))
    return out


def _message(call: Call) -> str:
    parts = ([call.get("Message")] if "message" in call.named else []) + call.positional
    if not parts and call.input:
        parts = list(call.input)
    return " ".join(to_str(p) for p in parts)


@_builtin("Write-Warning", values=["Message"])
def _write_warning(interpreter: Interpreter, call: Call) -> list[Any]:
    interpreter.write_warning(_message(call), call.common)
    return []


def _stream_writer(prefix: str, preference: str, flag: str) -> Impl:
    def write(interpreter: Interpreter, call: Call) -> list[Any]:
        shown = getattr(call.common, flag, False) or interpreter.preference(preference) == "continue"
        if shown:
            interpreter.write_host(f"{prefix}{_message(call)}\n")
        return []

    return write


_builtin("Write-Verbose", values=["Message"])(_stream_writer("VERBOSE: ", "VerbosePreference", "verbose"))
_builtin("Write-Debug", values=["Message"])(_stream_writer("DEBUG: ", "DebugPreference", "debug"))
_builtin("Write-Information", values=["MessageData", "Tags"], param_aliases={"Msg": "MessageData", "Message": "MessageData"})(
    _stream_writer("", "InformationPreference", "information")
)


@_builtin("Write-Progress", values=["Activity", "Status", "Id", "PercentComplete", "SecondsRemaining", "CurrentOperation", "ParentId", "SourceId"], switches=["Completed"])
def _write_progress(interpreter: Interpreter, call: Call) -> list[Any]:
    return []


@_builtin("Clear-Host", ["cls", "clear"])
def _clear_host(interpreter: Interpreter, call: Call) -> list[Any]:
    return []


@_builtin(
    "Write-Error",
    values=["Message", "Category", "ErrorId", "TargetObject", "Exception", "ErrorRecord", "RecommendedAction", "CategoryActivity", "CategoryReason", "CategoryTargetName", "CategoryTargetType"],
)
def _write_error(interpreter: Interpreter, call: Call) -> list[Any]:
    record = call.get("ErrorRecord")
    if record is not None and hasattr(record, "error"):
        raise record.error
    message = _message(call) or to_str(call.get("Exception"))
    raise WrittenError(
        message,
        category=to_str(call.get("Category")) if "category" in call.named else None,
        error_id=to_str(call.get("ErrorId")) if "errorid" in call.named else None,
        target=call.get("TargetObject"),
    )


# -- dates, files, help ------------------------------------------------------------------------------------


@_builtin(
    "Get-Date",
    values=["Date", "Format", "UFormat", "Year", "Month", "Day", "Hour", "Minute", "Second", "Millisecond", "DisplayHint"],
    param_aliases={"LastWriteTime": "Date"},
)
def _get_date(interpreter: Interpreter, call: Call) -> list[Any]:
    base = call.take("Date")
    call.no_more_positional()
    value: datetime = interpreter.now() if base is NO_VALUE or base is None else convert_to("datetime", base)
    def part(name: str, current: int) -> int:
        return int(to_number(call.get(name))) if name.lower() in call.named else current

    value = value.replace(
        year=part("Year", value.year),
        month=part("Month", value.month),
        day=part("Day", value.day),
        hour=part("Hour", value.hour),
        minute=part("Minute", value.minute),
        second=part("Second", value.second),
    )
    if "format" in call.named:
        return [format_datetime(value, to_str(call.get("Format")))]
    if "uformat" in call.named:
        return [value.strftime(to_str(call.get("UFormat")))]
    return [value]


_ENCODINGS = {
    "utf8": "utf-8-sig",
    "utf8bom": "utf-8-sig",
    "utf8nobom": "utf-8",
    "ascii": "ascii",
    "unicode": "utf-16",
    "bigendianunicode": "utf-16-be",
    "utf32": "utf-32",
    "utf7": "utf-7",
    "oem": "cp437",
    "default": "utf-8-sig",
    "string": "utf-16",
    "unknown": "utf-16",
}


@_builtin(
    "Get-Content",
    ["gc", "cat", "type"],
    values=["Path", "LiteralPath", "Encoding", "ReadCount", "TotalCount", "Tail", "Delimiter"],
    switches=["Raw", "AsByteStream", "Force", "Wait"],
    param_aliases={"First": "TotalCount", "Head": "TotalCount", "Last": "Tail", "PSPath": "LiteralPath", "LP": "LiteralPath"},
)
def _get_content(interpreter: Interpreter, call: Call) -> list[Any]:
    path = call.get("LiteralPath") if "literalpath" in call.named else call.take("Path")
    call.no_more_positional()
    if path is NO_VALUE or path is None:
        raise BindingError("Cannot bind argument to parameter 'Path' because it is null.", command=call.name, error_id="ParameterArgumentValidationErrorNullNotAllowed")
    out: list[Any] = []
    for one in enumerate_output(path):
        data = interpreter.host.read_import_file(to_str(one))
        encoding = to_str(call.get("Encoding", "default")).lower()
        if call.has("AsByteStream") or encoding == "byte":
            out.append(data)
            continue
        codec = _ENCODINGS.get(encoding, "utf-8-sig")
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
        if call.has("Raw"):
            out.append(text)
            continue
        lines = text.splitlines()
        if "totalcount" in call.named:
            lines = lines[: int(to_number(call.get("TotalCount")))]
        if "tail" in call.named:
            tail = int(to_number(call.get("Tail")))
            lines = lines[-tail:] if tail else []
        out.extend(lines)
    return out


@_builtin(
    "Get-ChildItem",
    ["gci", "ls", "dir"],
    values=["Path", "LiteralPath", "Filter", "Include", "Exclude", "Depth"],
    switches=["Recurse", "Force", "Name", "File", "Directory"],
)
def _get_child_item(interpreter: Interpreter, call: Call) -> list[Any]:
    """Only the registry listing seed 000 uses to find time zone names; nothing else is listed."""
    path = call.get("LiteralPath") if "literalpath" in call.named else call.take("Path")
    call.no_more_positional()
    text = "" if path is NO_VALUE or path is None else to_str(path)
    key = text.strip().rstrip("\\")
    for prefix in ("hklm:\\", "registry::hkey_local_machine\\", "registry::hklm\\"):
        if key.lower().startswith(prefix):
            key = key[len(prefix):]
            break
    else:
        key = ""
    if key.lower() != TIME_ZONE_KEY:
        raise ScriptRefused(
            f"Get-ChildItem '{text}' is not allowed in a Mailshift session: scripts cannot list files or the "
            "registry on the server (only the Windows time zone names under "
            "HKLM:\\Software\\Microsoft\\Windows NT\\CurrentVersion\\Time zones can be listed).",
            command=call.name, target=text, error_id="FileSystemAccessRefused")
    parent = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Time Zones"
    if call.has("Name"):
        return list(WINDOWS_TIME_ZONES)
    return [PSObject(["Microsoft.Win32.RegistryKey"], [("Name", f"{parent}\\{zone}"), ("PSChildName", zone)],
                     text=f"{parent}\\{zone}") for zone in WINDOWS_TIME_ZONES]


@_builtin(
    "Get-Help",
    ["help", "man"],
    values=["Name", "Parameter", "Category", "Component", "Functionality", "Role", "Path"],
    switches=["Examples", "Detailed", "Full", "Online", "ShowWindow"],
)
def _get_help(interpreter: Interpreter, call: Call) -> list[Any]:
    name = call.take("Name")
    call.no_more_positional()
    topic = "Get-Help" if name is NO_VALUE or name is None else to_str(name)
    mode: HelpMode = "default"
    parameter: str | None = None
    if "parameter" in call.named:
        mode, parameter = "parameter", to_str(call.get("Parameter"))
    elif call.has("Full"):
        mode = "full"
    elif call.has("Detailed"):
        mode = "detailed"
    elif call.has("Examples"):
        mode = "examples"
    text = interpreter.host.help(topic, mode, parameter)
    return [FormattedText(text if text.endswith("\n") else text + "\n")]


@_builtin("Get-Command", ["gcm"], values=["Name", "Module", "Noun", "Verb", "CommandType"], switches=["All", "ListImported", "Syntax"])
def _get_command(interpreter: Interpreter, call: Call) -> list[Any]:
    names = call.take("Name")
    call.no_more_positional()
    out: list[Any] = []
    for name in [to_str(n) for n in enumerate_output(names)] if names is not NO_VALUE and names is not None else ["*"]:
        if any(c in name for c in "*?["):
            seen = sorted({b.name for b in BUILTINS.values() if wildcard_match(name, b.name)})
            out.extend(_command_info(n, "Cmdlet") for n in seen)
            continue
        try:
            kind, canonical = interpreter.resolve_command(name)
        except ShimError:
            raise ObjectNotFound(
                f"The term '{name}' is not recognized as a cmdlet supported by this Mailshift service.",
                target=name,
                error_id="CommandNotFoundException",
            ) from None
        out.append(_command_info(canonical, "Function" if kind == "function" else "Cmdlet"))
    return out


def _command_info(name: str, kind: str) -> PSObject:
    return PSObject(
        ["System.Management.Automation.CmdletInfo"],
        {"CommandType": kind, "Name": name, "Version": "", "Source": "Mailshift"},
        text=name,
    )
