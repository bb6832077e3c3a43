"""en-US/Mailshift-help.xml: MAML command help for every cmdlet of the registry.

The layout is the one ``Get-Help`` reads for cmdlets and for functions marked
``.EXTERNALHELP``: per command ``command:details`` (name, verb, noun, synopsis),
``maml:description``, ``command:syntax`` (one ``syntaxItem`` per parameter set),
``command:parameters``, input and return types, notes, ``command:examples`` and related links.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from shim.cmdlets.help import parameter_default
from shim.cmdlets.model import ALL_SETS, SHOULD_PROCESS_PARAMETERS, Cmdlet, Parameter

__all__ = ["NAMESPACES", "render_maml"]

MAML = "http://schemas.microsoft.com/maml/2004/10"
COMMAND = "http://schemas.microsoft.com/maml/dev/command/2004/10"
DEV = "http://schemas.microsoft.com/maml/dev/2004/10"
MSHELP = "http://msdn.microsoft.com/mshelp"
NAMESPACES = {"maml": MAML, "command": COMMAND, "dev": DEV, "MSHelp": MSHELP}


def _q(prefix: str, tag: str) -> str:
    return f"{{{NAMESPACES[prefix]}}}{tag}"


def _sub(parent: etree._Element, prefix: str, tag: str, text: str | None = None,
         attributes: dict[str, str] | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(prefix, tag), attributes or {})
    if text is not None:
        element.text = text
    return element


def _description(parent: etree._Element, text: str, prefix: str = "maml") -> etree._Element:
    element = _sub(parent, prefix, "description")
    for paragraph in [p.strip() for p in text.split("\n") if p.strip()] or [""]:
        _sub(element, "maml", "para", paragraph)
    return element


def _pipeline_input(parameter: Parameter) -> str:
    kinds = []
    if parameter.from_pipeline:
        kinds.append("ByValue")
    if parameter.from_pipeline_by_property_name:
        kinds.append("ByPropertyName")
    return f"True ({', '.join(kinds)})" if kinds else "False"


def _parameter(parent: etree._Element, cmdlet: Cmdlet, parameter: Parameter, required: bool,
               in_syntax: bool) -> None:
    attributes = {
        "required": str(required).lower(),
        "variableLength": str(parameter.type.is_list).lower(),
        "globbing": "false",
        "pipelineInput": _pipeline_input(parameter),
        "position": str(parameter.position) if parameter.position is not None else "named",
        "aliases": ", ".join(parameter.aliases) or "none",
    }
    element = _sub(parent, "command", "parameter", attributes=attributes)
    _sub(element, "maml", "name", parameter.name)
    help_text = parameter.help
    if parameter.range is not None:
        help_text += f"\nAccepted range: {parameter.range[0]} to {parameter.range[1]}."
    _description(element, help_text)
    if parameter.type.values and in_syntax:
        group = _sub(element, "command", "parameterValueGroup")
        for value in parameter.type.values:
            _sub(group, "command", "parameterValue", value, {"required": "false", "variableLength": "false"})
    if not parameter.type.is_switch:
        _sub(element, "command", "parameterValue", parameter.type.name,
             {"required": "true", "variableLength": str(parameter.type.is_list).lower()})
    dev_type = _sub(element, "dev", "type")
    _sub(dev_type, "maml", "name", parameter.type.net_type)
    _sub(dev_type, "maml", "uri")
    _sub(element, "dev", "defaultValue", parameter_default(parameter))


def _syntax(command: etree._Element, cmdlet: Cmdlet) -> None:
    syntax = _sub(command, "command", "syntax")
    for set_name in cmdlet.set_names:
        item = _sub(syntax, "command", "syntaxItem")
        _sub(item, "maml", "name", cmdlet.name)
        members = [p for p in cmdlet.parameters if set_name == ALL_SETS or p.in_set(set_name)]
        members.sort(key=lambda p: (p.position is None, p.position or 0, not p.mandatory_in(set_name)))
        for parameter in members:
            _parameter(item, cmdlet, parameter, parameter.mandatory_in(set_name), in_syntax=True)
        if cmdlet.supports_should_process:
            for parameter in SHOULD_PROCESS_PARAMETERS:
                _parameter(item, cmdlet, parameter, False, in_syntax=True)


def _parameters(command: etree._Element, cmdlet: Cmdlet) -> None:
    parameters = _sub(command, "command", "parameters")
    extra = SHOULD_PROCESS_PARAMETERS if cmdlet.supports_should_process else ()
    for parameter in (*cmdlet.parameters, *extra):
        required = any(parameter.mandatory_in(s) for s in cmdlet.set_names)
        _parameter(parameters, cmdlet, parameter, required, in_syntax=False)


def _types(command: etree._Element, cmdlet: Cmdlet) -> None:
    inputs = _sub(command, "command", "inputTypes")
    piped = [p for p in cmdlet.parameters if p.from_pipeline]
    for parameter in piped:
        item = _sub(inputs, "command", "inputType")
        _sub(_sub(item, "dev", "type"), "maml", "name", parameter.type.net_type)
        _description(item, f"A value or an object with an Identity can be piped to -{parameter.name} (for "
                           "example the output of a Get- cmdlet).")
    if not piped:
        item = _sub(inputs, "command", "inputType")
        _sub(_sub(item, "dev", "type"), "maml", "name", "None")
        _description(item, "This cmdlet takes no pipeline input.")
    outputs = _sub(command, "command", "returnValues")
    item = _sub(outputs, "command", "returnValue")
    _sub(_sub(item, "dev", "type"), "maml", "name", cmdlet.output_type or "None")
    _description(item, "The objects the service returned, with their Exchange type names."
                 if cmdlet.output_type else "This cmdlet writes no objects.")


def _examples(command: etree._Element, cmdlet: Cmdlet) -> None:
    examples = _sub(command, "command", "examples")
    for number, example in enumerate(cmdlet.examples, 1):
        item = _sub(examples, "command", "example")
        _sub(item, "maml", "title", f"-------------------------- Example {number} --------------------------")
        _sub(item, "dev", "code", example.code)
        remarks = _sub(item, "dev", "remarks")
        for paragraph in [p.strip() for p in example.remarks.split("\n") if p.strip()]:
            _sub(remarks, "maml", "para", paragraph)


def _command(root: etree._Element, cmdlet: Cmdlet) -> None:
    command = _sub(root, "command", "command")
    details = _sub(command, "command", "details")
    _sub(details, "command", "name", cmdlet.name)
    _sub(details, "command", "verb", cmdlet.verb)
    _sub(details, "command", "noun", cmdlet.name.split("-", 1)[1])
    _description(details, cmdlet.synopsis)
    _description(command, cmdlet.description)
    _syntax(command, cmdlet)
    _parameters(command, cmdlet)
    _types(command, cmdlet)
    notes = cmdlet.notes or ("Mailshift sends this command to the service named by Connect-Mailshift (or the "
                             "MAILSHIFT_URI environment variable); see about_Mailshift.")
    alerts = _sub(command, "maml", "alertSet")
    _sub(_sub(alerts, "maml", "alert"), "maml", "para", notes)
    _examples(command, cmdlet)
    links = _sub(command, "command", "relatedLinks")
    for name in ("about_Mailshift", "Connect-Mailshift"):
        link = _sub(links, "maml", "navigationLink")
        _sub(link, "maml", "linkText", name)
        _sub(link, "maml", "uri")


def render_maml(cmdlets: Sequence[Cmdlet], marker: str) -> bytes:
    """The help file's bytes (UTF-8; the marker comment is the first line, so no XML declaration)."""
    nsmap: dict[str | None, str] = {None: "http://msh"}
    nsmap.update(NAMESPACES)
    # lxml-stubs leave out the None key that declares the default namespace.
    root = etree.Element("{http://msh}helpItems", {"schema": "maml"}, nsmap=nsmap)  # type: ignore[arg-type]
    for cmdlet in cmdlets:
        _command(root, cmdlet)
    text = etree.tostring(root, encoding="unicode", pretty_print=True)
    return f"<!-- {marker} -->\n{text}".encode()
