"""PowerShell text for the generated files: one advanced function per cmdlet, and the manifest.

Each function declares Exchange's surface (parameter names, sets, positions, pipeline binding,
validation, ShouldProcess) so PowerShell itself binds a script's arguments exactly as Exchange
would; its body hands the bound parameters to the private helpers of the module
(``InvokeMailshiftCmdlet``), which talk to the REST API. Only syntax that Windows PowerShell 5.1
and PowerShell 7 both parse is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from shim.cmdlets.model import ALL_SETS, Cmdlet, Parameter
from shim.cmdlets.types import ParamType

__all__ = ["MODULE_GUID", "MODULE_VERSION", "parameter_type", "quote", "render_function", "render_manifest"]

MODULE_VERSION = "0.1.0"
MODULE_GUID = "6b0f2c77-4d1e-4c59-9a3e-5a7d2f1c8e40"

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


def render_manifest(marker: str, functions: Sequence[str]) -> str:
    """Mailshift.psd1: explicit exports and the metadata the PowerShell Gallery reads."""
    exports = ",\n".join(f"{_INDENT * 2}{quote(name)}" for name in functions)
    return f"""{marker}
@{{
    RootModule           = 'Mailshift.psm1'
    ModuleVersion        = '{MODULE_VERSION}'
    GUID                 = '{MODULE_GUID}'
    Author               = 'The Mailshift authors'
    CompanyName          = 'Mailshift'
    Copyright            = '(c) The Mailshift authors. Apache License 2.0.'
    Description          = 'Exchange-style mailbox migration cmdlets (New-MigrationBatch, Start-MigrationBatch, Get-MigrationUserStatistics, ...) that run unchanged scripts against a Mailshift service migrating from any IMAP server.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('Mailshift.Format.ps1xml')
    FunctionsToExport    = @(
{exports}
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    FileList             = @('Mailshift.psd1', 'Mailshift.psm1', 'Mailshift.Format.ps1xml', 'en-US\\Mailshift-help.xml', 'en-US\\about_Mailshift.help.txt')
    PrivateData          = @{{
        PSData = @{{
            Tags         = @('Exchange', 'Migration', 'IMAP', 'MigrationBatch', 'Mail', 'PSEdition_Desktop', 'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            LicenseUri   = 'https://www.apache.org/licenses/LICENSE-2.0'
            ReleaseNotes = 'Generated from the Mailshift cmdlet registry; see about_Mailshift.'
        }}
    }}
}}
"""
