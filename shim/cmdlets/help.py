"""Get-Help text rendered from the cmdlet declarations, laid out as PowerShell prints help."""

from __future__ import annotations

import textwrap

from shim.cmdlets.model import ALL_SETS, SHOULD_PROCESS_PARAMETERS, Cmdlet, Parameter
from shim.host import HelpMode

__all__ = ["parameter_default", "render_help", "syntax_lines"]

_WIDTH = 100
_COMMON_TEXT = (
    "This cmdlet supports the common parameters: Verbose, Debug, ErrorAction, ErrorVariable, WarningAction, "
    "WarningVariable, OutBuffer, PipelineVariable, and OutVariable."
)


def _wrap(text: str, indent: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        wrapped = textwrap.wrap(paragraph, _WIDTH - indent) or [""]
        lines += [" " * indent + line if line else "" for line in wrapped]
    return lines


def _token(parameter: Parameter, set_name: str) -> str:
    name = f"-{parameter.name}"
    if parameter.position is not None:
        name = f"[{name}]"
    text = name if parameter.type.is_switch else f"{name} <{parameter.type.name}>"
    if not parameter.mandatory_in(set_name):
        text = f"[{text}]"
    return text


def syntax_lines(cmdlet: Cmdlet) -> list[str]:
    """One line per parameter set: ``Name [-Identity] <T> [-Switch] [<CommonParameters>]``."""
    lines = []
    for set_name in cmdlet.set_names:
        members = [p for p in cmdlet.parameters if p.in_set(set_name) or set_name == ALL_SETS]
        members.sort(key=lambda p: (p.position is None, p.position or 0, not p.mandatory_in(set_name)))
        tokens = [_token(p, set_name) for p in members]
        if cmdlet.supports_should_process:
            tokens += ["[-WhatIf]", "[-Confirm]"]
        lines.append(" ".join([cmdlet.name, *tokens, "[<CommonParameters>]"]))
    return lines


def parameter_default(parameter: Parameter) -> str:
    """The "Default value" line of full help."""
    return "False" if parameter.type.is_switch else "None"


def _parameter_block(cmdlet: Cmdlet, parameter: Parameter, full: bool) -> list[str]:
    head = f"    -{parameter.name}" + ("" if parameter.type.is_switch else f" <{parameter.type.name}>")
    lines = [head, *_wrap(parameter.help, 8)]
    if parameter.type.values:
        lines += _wrap("Possible values: " + ", ".join(parameter.type.values), 8)
    if full:
        mandatory = any(parameter.mandatory_in(s) for s in cmdlet.set_names)
        pipeline = []
        if parameter.from_pipeline:
            pipeline.append("ByValue")
        if parameter.from_pipeline_by_property_name:
            pipeline.append("ByPropertyName")
        lines += [
            "",
            f"        Required?                    {str(mandatory).lower()}",
            f"        Position?                    {parameter.position + 1 if parameter.position is not None else 'named'}",
            f"        Default value                {parameter_default(parameter)}",
            f"        Accept pipeline input?       {'true (' + ', '.join(pipeline) + ')' if pipeline else 'false'}",
            f"        Aliases                      {', '.join(parameter.aliases) or 'none'}",
            "        Accept wildcard characters?  false",
        ]
    return [*lines, ""]


def _examples(cmdlet: Cmdlet) -> list[str]:
    lines: list[str] = []
    for number, example in enumerate(cmdlet.examples, 1):
        lines += [f"    -------------------------- Example {number} --------------------------", ""]
        code = example.code.split("\n")
        lines += [f"    PS C:\\>{code[0]}", *(f"    {line}" for line in code[1:]), ""]
        lines += [*_wrap(example.remarks, 4), "", ""]
    return lines


def render_help(cmdlet: Cmdlet, mode: HelpMode, parameter: str | None = None) -> str:
    """The help of ``cmdlet`` in one of Get-Help's modes (default, -Examples, -Detailed, -Full, -Parameter)."""
    if mode == "parameter":
        wanted = (parameter or "").lower()
        found = [p for p in cmdlet.all_parameters() if p.name.lower() == wanted or
                 (wanted and p.name.lower().startswith(wanted))]
        if not found:
            return f"Get-Help : No parameter matches criteria {parameter}."
        return "\n".join(line for p in found for line in _parameter_block(cmdlet, p, full=True)) + "\n"
    lines = ["", "NAME", f"    {cmdlet.name}", "", "SYNOPSIS", *_wrap(cmdlet.synopsis, 4), ""]
    if mode == "examples":
        return "\n".join([*lines, "", *_examples(cmdlet)]) + "\n"
    lines += ["", "SYNTAX"]
    for line in syntax_lines(cmdlet):
        lines += [*_wrap(line, 4), ""]
    lines += ["", "DESCRIPTION", *_wrap(cmdlet.description, 4), ""]
    if mode in ("detailed", "full"):
        lines += ["", "PARAMETERS"]
        for p in cmdlet.parameters:
            lines += _parameter_block(cmdlet, p, full=mode == "full")
        if cmdlet.supports_should_process:
            for p in SHOULD_PROCESS_PARAMETERS:
                lines += _parameter_block(cmdlet, p, full=mode == "full")
        lines += ["    <CommonParameters>", *_wrap(_COMMON_TEXT, 8), ""]
        if mode == "full":
            lines += ["INPUTS"]
            piped = [p for p in cmdlet.parameters if p.from_pipeline]
            lines += [f"    {p.type.net_type}" for p in piped] or ["    None"]
            lines += ["", "", "OUTPUTS", f"    {cmdlet.output_type or 'None'}", ""]
            if cmdlet.notes:
                lines += ["", "NOTES", *_wrap(cmdlet.notes, 4), ""]
        lines += ["", *_examples(cmdlet)]
    lines += [
        "REMARKS",
        f"    To see the examples, type: \"get-help {cmdlet.name} -examples\".",
        f"    For more information, type: \"get-help {cmdlet.name} -detailed\".",
        f"    For technical information, type: \"get-help {cmdlet.name} -full\".",
        "",
    ]
    return "\n".join(lines) + "\n"
