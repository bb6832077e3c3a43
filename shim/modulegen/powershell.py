"""PowerShell text for the generated files: one advanced function per cmdlet, and the manifest.

Each function declares Exchange's surface (parameter names, sets, positions, pipeline binding,
validation, ShouldProcess) so PowerShell itself binds a script's arguments exactly as Exchange
would; its body hands the bound parameters to the private helpers of the module
(``InvokeMailshiftCmdlet``), which talk to the REST API. Only syntax that Windows PowerShell 5.1
and PowerShell 7 both parse is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shim.cmdlets.model import ALL_SETS, Cmdlet, Parameter
from shim.cmdlets.types import ParamType

__all__ = [
    "HELP_URI", "LICENSE_URI", "MODULE_GUID", "MODULE_VERSION", "PRELUDES_MODULE_GUID", "PROJECT_URI", "ManifestSpec",
    "parameter_type", "quote", "render_function", "render_manifest",
]

MODULE_VERSION = "0.1.0"
MODULE_GUID = "6b0f2c77-4d1e-4c59-9a3e-5a7d2f1c8e40"
#: The companion module Mailshift.ExchangePreludes.
PRELUDES_MODULE_GUID = "3f9d5a1e-8c27-4b6e-a0d4-71e2c5b98f13"
#: The project's home, its license and the help the manifests point the PowerShell Gallery to.
PROJECT_URI = "https://github.com/mailshift/mailshift"
LICENSE_URI = f"{PROJECT_URI}/blob/main/LICENSE"
HELP_URI = f"{PROJECT_URI}/blob/main/psmodule/README.md"

#: Exchange types that PowerShell does not have: what the generated parameter is typed as instead,
#: so that whatever a script passes (a name, an object from another cmdlet, "Unlimited") reaches
#: the service, which converts it the way Exchange would.
_TYPE_BY_NAME: dict[str, str] = {
    "SwitchParameter": "switch",
    "Byte[]": "byte[]",
    "String": "string",
    "Int32": "int",
    "Boolean": "bool",
    "DateTime": "datetime",
    "TimeSpan": "timespan",
    "Guid": "string",
    "Fqdn": "string",
    "SmtpAddress": "string",
    "PSCredential": "System.Management.Automation.PSCredential",
    "MultiValuedProperty": "string[]",
    "Unlimited": "object",
    "MigrationBatchIdParameter": "object",
    "MigrationEndpointIdParameter": "object",
    "MigrationUserIdParameter": "object",
    "MailboxIdParameter": "object",
}

_INDENT = "    "


def quote(text: str) -> str:
    """A single-quoted PowerShell string literal (quotes, including typographic ones, doubled)."""
    out = []
    for char in text:
        out.append(char)
        if char in "'\u2018\u2019\u201a\u201b":
            out.append(char)
    return "'" + "".join(out) + "'"


def parameter_type(param_type: ParamType) -> str:
    """The PowerShell type a generated parameter is declared with."""
    if param_type.values:
        return "string[]" if param_type.is_list else "string"
    found = _TYPE_BY_NAME.get(param_type.name)
    if found is not None:
        return found
    return "string[]" if param_type.is_list else "object"


def _parameter_attribute(parameter: Parameter, set_name: str | None, mandatory: bool) -> str:
    arguments: list[str] = []
    if mandatory:
        arguments.append("Mandatory = $true")
    if parameter.position is not None:
        arguments.append(f"Position = {parameter.position}")
    if parameter.from_pipeline:
        arguments.append("ValueFromPipeline = $true")
    if parameter.from_pipeline_by_property_name:
        arguments.append("ValueFromPipelineByPropertyName = $true")
    if set_name is not None:
        arguments.append(f"ParameterSetName = {quote(set_name)}")
    return f"[Parameter({', '.join(arguments)})]"


def _attributes(cmdlet: Cmdlet, parameter: Parameter) -> list[str]:
    sets = cmdlet.set_names
    lines: list[str] = []
    single = sets == [ALL_SETS]
    uniform = ALL_SETS in parameter.sets and (not parameter.mandatory or ALL_SETS in parameter.mandatory)
    if single or uniform:
        lines.append(_parameter_attribute(parameter, None, parameter.mandatory_in(sets[0])))
    else:
        for set_name in sets:
            if parameter.in_set(set_name):
                lines.append(_parameter_attribute(parameter, set_name, parameter.mandatory_in(set_name)))
    if parameter.aliases:
        lines.append(f"[Alias({', '.join(quote(a) for a in parameter.aliases)})]")
    if parameter.type.values:
        lines.append(f"[ValidateSet({', '.join(quote(v) for v in parameter.type.values)})]")
    if parameter.range is not None:
        lines.append(f"[ValidateRange({parameter.range[0]}, {parameter.range[1]})]")
    lines.append(f"[{parameter_type(parameter.type)}]")
    return lines


def _binding(cmdlet: Cmdlet) -> str:
    arguments: list[str] = []
    if cmdlet.supports_should_process:
        arguments.append("SupportsShouldProcess = $true")
        arguments.append(f"ConfirmImpact = {quote(cmdlet.confirm_impact or 'Medium')}")
    if cmdlet.set_names != [ALL_SETS]:
        arguments.append(f"DefaultParameterSetName = {quote(cmdlet.set_names[0])}")
    return f"[CmdletBinding({', '.join(arguments)})]"


def _array(items: Sequence[str]) -> str:
    return "@(" + ", ".join(quote(i) for i in items) + ")"


def render_function(cmdlet: Cmdlet, marker: str) -> str:
    """The file Public/<name>.ps1: the generated marker line, then the advanced function."""
    lines = [
        marker,
        f"function {cmdlet.name} {{",
        f"{_INDENT}<#",
        f"{_INDENT}.EXTERNALHELP Mailshift-help.xml",
        f"{_INDENT}#>",
        f"{_INDENT}{_binding(cmdlet)}",
    ]
    if cmdlet.output_type:
        lines.append(f"{_INDENT}[OutputType({quote(cmdlet.output_type)})]")
    lines.append(f"{_INDENT}param(")
    blocks: list[str] = []
    for parameter in cmdlet.parameters:
        body = [f"{_INDENT * 2}{line}" for line in _attributes(cmdlet, parameter)]
        body.append(f"{_INDENT * 2}${parameter.name}")
        blocks.append("\n".join(body))
    if blocks:
        lines.append(",\n\n".join(blocks))
    lines.append(f"{_INDENT})")
    names = _array([p.name for p in cmdlet.parameters])
    lines += [
        "",
        f"{_INDENT}begin {{",
        f"{_INDENT * 2}$mailshiftParameterNames = {names}",
        f"{_INDENT}}}",
        "",
        f"{_INDENT}process {{",
        f"{_INDENT * 2}$mailshiftParameters = ConvertToMailshiftParameters -BoundParameters $PSBoundParameters "
        f"-Names $mailshiftParameterNames",
    ]
    invoke = (f"InvokeMailshiftCmdlet -Cmdlet $PSCmdlet -Name {quote(cmdlet.name)} "
              f"-Parameters $mailshiftParameters")
    if cmdlet.supports_should_process:
        lines += [
            f"{_INDENT * 2}$mailshiftTarget = GetMailshiftTarget -BoundParameters $PSBoundParameters",
            f"{_INDENT * 2}if ($PSCmdlet.ShouldProcess($mailshiftTarget, {quote(cmdlet.what_if or cmdlet.name)})) {{",
            f"{_INDENT * 3}{invoke}",
            f"{_INDENT * 2}}}",
        ]
    else:
        lines.append(f"{_INDENT * 2}{invoke}")
    lines += [
        f"{_INDENT}}}",
        "",
        f"{_INDENT}end {{",
        f"{_INDENT}}}",
        "}",
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class ManifestSpec:
    """What differs between the manifests of the main module and its companion."""

    #: The module's name (the manifest is ``<name>.psd1``, the root module ``<name>.psm1``).
    name: str
    guid: str
    description: str
    #: The exported functions, in the order written.
    functions: Sequence[str]
    #: Every file of the module folder, relative to it, with forward slashes.
    files: Sequence[str]
    formats: Sequence[str] = ()
    #: Modules loaded first, each as (name, guid), at this release's version.
    required_modules: Sequence[tuple[str, str]] = ()
    tags: Sequence[str] = ()
    release_notes: str = ""


def _list(items: Sequence[str]) -> str:
    if not items:
        return "@()"
    return "@(\n" + ",\n".join(f"{_INDENT * 2}{quote(item)}" for item in items) + f"\n{_INDENT})"


def render_manifest(marker: str, spec: ManifestSpec) -> str:
    """A module manifest: explicit exports, the complete file list and the metadata the PowerShell Gallery reads."""
    required = ", ".join(
        f"@{{ ModuleName = {quote(name)}; RequiredVersion = {quote(MODULE_VERSION)}; GUID = {quote(guid)} }}"
        for name, guid in spec.required_modules)
    files = [name.replace("/", "\\") for name in spec.files]
    optional = ""
    if spec.required_modules:
        optional += f"    RequiredModules      = @({required})\n"
    if spec.formats:
        optional += f"    FormatsToProcess     = {_array(list(spec.formats))}\n"
    editions = ["PSEdition_Desktop", "PSEdition_Core", "Windows", "Linux", "MacOS"]
    return f"""{marker}
@{{
    RootModule           = {quote(spec.name + '.psm1')}
    ModuleVersion        = '{MODULE_VERSION}'
    GUID                 = '{spec.guid}'
    Author               = 'The Mailshift authors'
    CompanyName          = 'Mailshift'
    Copyright            = '(c) The Mailshift authors. Apache License 2.0.'
    Description          = {quote(spec.description)}
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
{optional}    FunctionsToExport    = {_list(list(spec.functions))}
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    FileList             = {_list(files)}
    HelpInfoURI          = {quote(HELP_URI)}
    PrivateData          = @{{
        PSData = @{{
            Tags         = {_array([*spec.tags, *editions])}
            LicenseUri   = {quote(LICENSE_URI)}
            ProjectUri   = {quote(PROJECT_URI)}
            ReleaseNotes = {quote(spec.release_notes)}
        }}
    }}
}}
"""
