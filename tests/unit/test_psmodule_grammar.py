"""The PowerShell module under the PowerShell grammar (tree-sitter-powershell).

No PowerShell runs on the build machines, so these tests stand in for it: every .ps1, .psm1
and .psd1 must parse without error, use only what Windows PowerShell 5.1 and PowerShell 7
both have, and call only commands that exist (the module's own functions, or built-in cmdlets
with parameters both editions accept). The helpers here are also used by the other
``test_psmodule_*`` tests to read functions out of the parse trees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import tree_sitter
import tree_sitter_powershell

PSMODULE = Path(__file__).parents[2] / "psmodule"
#: The main module, and its opt-in companion that redirects Exchange preludes.
MODULE = PSMODULE / "Mailshift"
PRELUDES = PSMODULE / "Mailshift.ExchangePreludes"
MODULES = (MODULE, PRELUDES)
SCRIPT_FILES = sorted(p for p in PSMODULE.rglob("*") if p.suffix in (".ps1", ".psm1", ".psd1"))

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


@cache
def parse(path: Path) -> tree_sitter.Tree:
    """The parse tree of a file (cached: the files do not change during a run)."""
    return _PARSER.parse(path.read_bytes())


def parse_text(text: str) -> tree_sitter.Tree:
    """The parse tree of PowerShell text."""
    return _PARSER.parse(text.encode())


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node below ``node``, depth first, ``node`` included."""
    yield node
    for child in node.children:
        yield from walk(child)


def text(node: tree_sitter.Node) -> str:
    """The source text of a node."""
    assert node.text is not None
    return node.text.decode()


def problems(tree: tree_sitter.Tree) -> list[str]:
    """ERROR and MISSING nodes, with their line numbers."""
    return [f"line {n.start_point[0] + 1}: {n.type} {text(n)[:60]!r}" for n in walk(tree.root_node)
            if n.type == "ERROR" or n.is_missing]


def literal(node: tree_sitter.Node) -> Any:
    """The value of a constant expression: $true/$false/$null, a number or a quoted string."""
    source = text(node).strip()
    if source.lower() in ("$true", "$false"):
        return source.lower() == "$true"
    if source.lower() == "$null":
        return None
    if re.fullmatch(r"-?\d+", source):
        return int(source)
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1].replace("''", "'")
    if len(source) >= 2 and source[0] == source[-1] == '"':
        return source[1:-1]
    return source


@dataclass
class Attribute:
    """``[Name(positional..., Named = value ...)]`` as written."""

    name: str
    positional: list[Any] = field(default_factory=list)
    named: dict[str, Any] = field(default_factory=dict)


def attribute(node: tree_sitter.Node) -> Attribute:
    """Read an ``attribute`` node (not a type literal)."""
    name_node = next(c for c in node.children if c.type == "attribute_name")
    result = Attribute(text(name_node))
    arguments = next((c for c in node.children if c.type == "attribute_arguments"), None)
    for argument in arguments.children if arguments else []:
        if argument.type != "attribute_argument":
            continue
        parts = [c for c in argument.children if c.type != "="]
        if parts[0].type == "simple_name":
            result.named[text(parts[0])] = literal(parts[1]) if len(parts) > 1 else True
        else:
            result.positional.append(literal(parts[0]))
    return result


@dataclass
class ScriptParameter:
    """One parameter of a param block: its name, declared type and attributes."""

    name: str
    type: str | None
    attributes: list[Attribute]

    def all(self, name: str) -> list[Attribute]:
        """The attributes with this name (any case)."""
        return [a for a in self.attributes if a.name.lower() == name.lower()]


@dataclass
class Function:
    """A function definition: name, CmdletBinding/OutputType attributes and parameters."""

    name: str
    attributes: list[Attribute]
    parameters: list[ScriptParameter]
    node: tree_sitter.Node

    def binding(self) -> Attribute | None:
        """The [CmdletBinding()] attribute, if any."""
        return next((a for a in self.attributes if a.name.lower() == "cmdletbinding"), None)

    def parameter(self, name: str) -> ScriptParameter:
        """The parameter with this name."""
        return next(p for p in self.parameters if p.name == name)


def functions(tree: tree_sitter.Tree) -> dict[str, Function]:
    """Every function defined in a file, by name."""
    found: dict[str, Function] = {}
    for node in walk(tree.root_node):
        if node.type != "function_statement":
            continue
        name = text(next(c for c in node.children if c.type == "function_name"))
        block = next(c for c in node.children if c.type == "script_block")
        param_block = next((c for c in block.children if c.type == "param_block"), None)
        attributes: list[Attribute] = []
        parameters: list[ScriptParameter] = []
        if param_block is not None:
            for child in param_block.children:
                if child.type == "attribute_list":
                    attributes += [attribute(a) for a in child.children if a.type == "attribute"
                                   and any(c.type == "attribute_name" for c in a.children)]
            parameter_list = next((c for c in param_block.children if c.type == "parameter_list"), None)
            for item in parameter_list.children if parameter_list else []:
                if item.type != "script_parameter":
                    continue
                variable = text(next(c for c in item.children if c.type == "variable"))
                declared: list[Attribute] = []
                type_name: str | None = None
                for attribute_list in (c for c in item.children if c.type == "attribute_list"):
                    for entry in attribute_list.children:
                        if entry.type != "attribute":
                            continue
                        type_literal = next((c for c in entry.children if c.type == "type_literal"), None)
                        if type_literal is not None:
                            type_name = text(type_literal)[1:-1]
                        else:
                            declared.append(attribute(entry))
                parameters.append(ScriptParameter(variable[1:], type_name, declared))
        found[name] = Function(name, attributes, parameters, node)
    return found


@dataclass
class Call:
    """A command call: the command's name and the parameter names written (without the dash)."""

    name: str
    parameters: list[str]
    line: int
    path: Path


def calls(path: Path) -> list[Call]:
    """Every command call in a file."""
    result = []
    for node in walk(parse(path).root_node):
        if node.type != "command":
            continue
        name_node = next((c for c in node.children if c.type == "command_name"), None)
        if name_node is None:
            continue
        elements = next((c for c in node.children if c.type == "command_elements"), None)
        parameters = [text(c)[1:] for c in elements.children if c.type == "command_parameter"] if elements else []
        result.append(Call(text(name_node), parameters, node.start_point[0] + 1, path))
    return result


# -- the tests ------------------------------------------------------------------------------

#: Built-in commands the module may call, with the parameters it may pass: each exists with
#: that parameter in Windows PowerShell 5.1 and in PowerShell 7.
BUILT_INS: dict[str, set[str]] = {
    "Get-ChildItem": {"Path", "Filter", "File"},
    "Join-Path": set(),
    "Export-ModuleMember": {"Function"},
    "ForEach-Object": set(),
    "Where-Object": set(),
    "Select-Object": {"Property"},
    "Add-Type": {"TypeDefinition", "Language"},
    "Invoke-WebRequest": set(),  # only ever splatted: see test_invoke_webrequest_splat_is_portable
    "ConvertTo-Json": {"InputObject", "Depth", "Compress"},
    "ConvertFrom-Json": {"InputObject"},
    "New-Object": {"ArgumentList"},
    "Add-Member": {"InputObject", "MemberType", "Name", "Value", "Force"},
    "Test-Path": {"LiteralPath", "PathType"},
    "Import-Clixml": {"LiteralPath"},
    "Export-Clixml": {"LiteralPath", "InputObject", "Force"},
    "Split-Path": {"Path", "Parent"},
    "New-Item": {"ItemType", "Path", "Force"},
    "Remove-Item": {"LiteralPath", "Force"},
    "Write-Verbose": set(),
    "Write-Warning": set(),
    "Write-Error": {"ErrorRecord"},
    "Get-Module": {"ListAvailable", "Name"},
}

#: Module-qualified calls of the commands the prelude functions pass through to.
PASS_THROUGH = {
    "Microsoft.PowerShell.Core\\New-PSSession",
    "Microsoft.PowerShell.Core\\Remove-PSSession",
    "Microsoft.PowerShell.Utility\\Import-PSSession",
    "ExchangeOnlineManagement\\Connect-ExchangeOnline",
    "ExchangeOnlineManagement\\Disconnect-ExchangeOnline",
    "ExchangeOnlineManagement\\Get-ConnectionInformation",
}

#: Parameters only PowerShell 6+/7 has: never written as a command parameter.
CORE_ONLY_PARAMETERS = {"AsHashtable", "SkipCertificateCheck", "SkipHttpErrorCheck", "Parallel",
                        "StatusCodeVariable", "ResponseHeadersVariable", "Authentication", "AllowUnencryptedAuthentication",
                        "NoProxy", "SslProtocol", "Resume", "EscapeHandling", "AsArray", "DateKind"}


def all_functions() -> dict[str, Function]:
    """Every function the two modules define, from every file (the companion calls into Mailshift's scope)."""
    found: dict[str, Function] = {}
    for path in SCRIPT_FILES:
        found.update(functions(parse(path)))
    return found


def test_the_module_has_its_files() -> None:
    names = {p.relative_to(PSMODULE).as_posix() for p in SCRIPT_FILES}
    assert {"Mailshift/Mailshift.psd1", "Mailshift/Mailshift.psm1", "Mailshift/Public/New-MigrationBatch.ps1",
            "Mailshift/Private/RequestHelper.ps1", "Mailshift/Private/ErrorRecord.ps1",
            "Mailshift/Private/ConnectionState.ps1", "Mailshift/Private/Transport.ps1",
            "Mailshift.ExchangePreludes/Mailshift.ExchangePreludes.psd1",
            "Mailshift.ExchangePreludes/Mailshift.ExchangePreludes.psm1",
            "Mailshift.ExchangePreludes/Public/New-PSSession.ps1"} <= names
    assert len(SCRIPT_FILES) > 30


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.relative_to(PSMODULE).as_posix())
def test_parses_without_errors(path: Path) -> None:
    tree = parse(path)
    assert problems(tree) == []
    assert tree.root_node.type == "program"


def test_the_grammar_rejects_what_windows_powershell_cannot_parse() -> None:
    """The parse test can fail: PowerShell 7-only operators are errors under this grammar."""
    for source in ("$a = $b ? 1 : 2", "$a = $b ?? 3", "$x?.Name", "function f { param([int]$a) ) }"):
        assert problems(parse_text(source)), source
    assert problems(parse_text("$a = if ($b) { 1 } else { 2 }")) == []


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.relative_to(PSMODULE).as_posix())
def test_only_syntax_both_editions_have(path: Path) -> None:
    tree = parse(path)
    types = {n.type for n in walk(tree.root_node)}
    assert "pipeline_chain_tail" not in types, "&& and || pipeline chains are PowerShell 7 only"
    source = path.read_text()
    assert "??" not in source and "?." not in source
    assert not re.search(r"^\s*clean\s*\{", source, re.MULTILINE), "clean blocks are PowerShell 7.3+"
    assert "using namespace" not in source.lower()
    own = all_functions()
    for call in calls(path):
        if call.name in own:
            continue
        used = {p.rstrip(":") for p in call.parameters} & CORE_ONLY_PARAMETERS
        assert not used, f"{path.name}:{call.line}: {call.name} -{used.pop()} does not exist in Windows PowerShell 5.1"


def test_every_command_called_exists() -> None:
    """A typo in a helper's name, or a cmdlet 5.1 lacks, fails here instead of on a Windows machine."""
    defined = set(all_functions())
    for path in SCRIPT_FILES:
        for call in calls(path):
            if call.name in defined or call.name in PASS_THROUGH:
                continue
            assert call.name in BUILT_INS, f"{path.name}:{call.line}: unknown command {call.name}"
            allowed = {p.lower() for p in BUILT_INS[call.name]}
            for parameter in call.parameters:
                assert parameter.rstrip(":").lower() in allowed, \
                    f"{path.name}:{call.line}: {call.name} -{parameter} is not in the portable set"


def test_calls_to_module_functions_use_their_parameters() -> None:
    defined = all_functions()
    for path in SCRIPT_FILES:
        for call in calls(path):
            function = defined.get(call.name)
            if function is None or not function.parameters:
                continue
            names = {p.name.lower() for p in function.parameters}
            for parameter in call.parameters:
                assert parameter.rstrip(":").lower() in names, \
                    f"{path.name}:{call.line}: {call.name} has no parameter -{parameter}"


def test_invoke_webrequest_splat_is_portable() -> None:
    """Invoke-WebRequest gets only parameters 5.1 has, plus the 7-only ones added behind a version check."""
    source = (MODULE / "Private" / "RequestHelper.ps1").read_text()
    table = re.search(r"\$request = @\{(.*?)\n    \}\n", source, re.DOTALL)
    assert table is not None
    keys = set(re.findall(r"^\s{8}(\w+)\s*=", table.group(1), re.MULTILINE))
    assert keys == {"Uri", "Method", "Headers", "UseBasicParsing", "ErrorAction"}
    assert set(re.findall(r"\$request\['(\w+)'\]", source)) == {"Body", "ContentType"}
    transport = (MODULE / "Private" / "Transport.ps1").read_text()
    guarded = re.search(r"if \(\$PSVersionTable\.PSVersion\.Major -ge 7\) \{\s*#[^\n]*\n\s*\$Request\['SkipHttpErrorCheck'\]",
                        transport)
    assert guarded is not None
    assert "if ((TestMailshiftCoreEdition) -and $Connection.SkipCertificateCheck) {\n        $Request['SkipCertificateCheck']" \
        in transport
    assert "Invoke-WebRequest @request" in source and "Invoke-RestMethod" not in source


def test_private_helpers_are_named_without_a_hyphen() -> None:
    for path in sorted(p for module in MODULES for p in (module / "Private").glob("*.ps1")):
        assert "-" not in path.stem
        defined = functions(parse(path))
        assert defined, path.name
        for name in defined:
            assert "-" not in name, f"{path.name}: private function {name} has a hyphen"


def test_public_files_define_one_function_named_like_the_file() -> None:
    for path in sorted(p for module in MODULES for p in (module / "Public").glob("*.ps1")):
        assert list(functions(parse(path))) == [path.stem]
