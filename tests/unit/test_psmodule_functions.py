"""The generated functions against the cmdlet registry, read back from their parse trees.

The expectations come from ``shim.cmdlets.registry._describe`` (the plain metadata the REST
door also serves), not from the generator's own code, and a few names are pinned to the Exchange
reference, so a rename in either place fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shim.cmdlets import CMDLETS
from shim.cmdlets.registry import _describe
from shim.modulegen import (
    GENERATED_MARKER,
    HAND_WRITTEN_FUNCTIONS,
    PRELUDE_FUNCTIONS,
    REDIRECTED_PRELUDES,
    build,
    render_all,
)
from shim.modulegen.powershell import LICENSE_URI, PROJECT_URI
from tests.unit.test_psmodule_grammar import (
    MODULE,
    MODULES,
    PRELUDES,
    PSMODULE,
    Function,
    ScriptParameter,
    functions,
    literal,
    parse,
    text,
    walk,
)

DESCRIBED = [_describe(c) for c in CMDLETS]
ALL_SETS = "__AllParameterSets"

#: Parameter names that scripts written for Exchange use (shared/reference/cmdlets.md §1, §9, seed 000).
REFERENCE_NAMES = {
    "New-MigrationBatch": {"Imap", "Name", "CSVData", "MaxConcurrentMigrations", "RemoteServer", "Port", "TimeZone",
                           "ExcludeFolders", "SourceEndpoint", "AutoStart", "AutoComplete", "NotificationEmails",
                           "BadItemLimit", "LargeItemLimit", "StartAfter", "CompleteAfter", "AllowUnknownColumnsInCsv"},
    "Start-MigrationBatch": {"Identity", "NotificationEmails"},
    "Stop-MigrationBatch": {"Identity"},
    "Complete-Migration": {"NotificationEmails"},
    "Complete-MigrationBatch": {"Identity", "NotificationEmails"},
    "Get-MigrationBatch": {"Identity", "Status", "Endpoint", "IncludeReport", "ResultSize", "Diagnostic"},
    "Set-MigrationBatch": {"Identity", "BadItemLimit", "LargeItemLimit", "NotificationEmails", "CompleteAfter"},
    "Remove-MigrationBatch": {"Identity"},
    "Get-MigrationUser": {"Identity", "BatchId", "Status", "EmailAddress", "ResultSize"},
    "Get-MigrationUserStatistics": {"Identity", "IncludeSkippedItems", "IncludeReport", "LimitSkippedItemsTo"},
    "Remove-MigrationUser": {"Identity"},
    "Test-MigrationServerAvailability": {"Imap", "RemoteServer", "Port", "Security", "Endpoint"},
    "New-MigrationEndpoint": {"IMAP", "Name", "RemoteServer", "Port", "Security", "MaxConcurrentMigrations",
                              "MaxConcurrentIncrementalSyncs", "AcceptUntrustedCertificates"},
    "Get-MigrationEndpoint": {"Identity", "Type"},
    "Set-MigrationEndpoint": {"Identity", "MaxConcurrentMigrations", "MaxConcurrentIncrementalSyncs"},
    "Remove-MigrationEndpoint": {"Identity"},
    "Get-MigrationStatus": set(),
    "Get-MigrationStatistics": set(),
    "Get-MigrationConfig": set(),
    "Set-MigrationConfig": {"MaxNumberOfBatches", "MaxConcurrentMigrations"},
}

#: How Exchange's types are declared in the module (ValidateSet types are strings).
EXPECTED_TYPES = {
    "SwitchParameter": "switch", "Byte[]": "byte[]", "String": "string", "Int32": "int", "Boolean": "bool",
    "DateTime": "datetime", "TimeSpan": "timespan", "Fqdn": "string", "SmtpAddress": "string",
    "MultiValuedProperty": "string[]", "Unlimited": "object", "MigrationBatchIdParameter": "object",
    "MigrationEndpointIdParameter": "object", "MigrationUserIdParameter": "object", "MailboxIdParameter": "object",
    "PSCredential": "System.Management.Automation.PSCredential",
}


def generated(name: str) -> Function:
    path = MODULE / "Public" / f"{name}.ps1"
    found = functions(parse(path))
    assert list(found) == [name]
    return found[name]


def effective(parameter: ScriptParameter, set_name: str) -> dict[str, Any] | None:
    """What PowerShell would make of the [Parameter()] attributes for one parameter set (None: not in it)."""
    attributes = parameter.all("Parameter")
    assert attributes, parameter.name
    specific = [a for a in attributes if a.named.get("ParameterSetName") == set_name]
    general = [a for a in attributes if "ParameterSetName" not in a.named]
    assert len(specific) + len(general) <= 1, f"{parameter.name}: two attributes for {set_name}"
    chosen = (specific or general or [None])[0]
    if chosen is None:
        return None
    return {
        "mandatory": bool(chosen.named.get("Mandatory", False)),
        "position": chosen.named.get("Position"),
        "valueFromPipeline": bool(chosen.named.get("ValueFromPipeline", False)),
        "valueFromPipelineByPropertyName": bool(chosen.named.get("ValueFromPipelineByPropertyName", False)),
    }


def test_every_cmdlet_of_the_registry_has_a_generated_file() -> None:
    public = {p.stem for p in (MODULE / "Public").glob("*.ps1")}
    assert public == {d["name"] for d in DESCRIBED} | set(HAND_WRITTEN_FUNCTIONS)
    assert len(DESCRIBED) == 20


@pytest.mark.parametrize("described", DESCRIBED, ids=lambda d: d["name"])
def test_binding_attributes(described: dict[str, Any]) -> None:
    function = generated(described["name"])
    binding = function.binding()
    assert binding is not None and binding.positional == []
    assert binding.named.get("SupportsShouldProcess", False) is described["supportsShouldProcess"]
    assert binding.named.get("ConfirmImpact") == described["confirmImpact"]
    if described["parameterSets"] == [ALL_SETS]:
        assert "DefaultParameterSetName" not in binding.named
    else:
        assert binding.named["DefaultParameterSetName"] == described["defaultParameterSet"]
    output = [a for a in function.attributes if a.name == "OutputType"]
    assert [a.positional for a in output] == ([[described["outputType"]]] if described["outputType"] else [])


@pytest.mark.parametrize("described", DESCRIBED, ids=lambda d: d["name"])
def test_parameters_match_the_registry(described: dict[str, Any]) -> None:
    function = generated(described["name"])
    assert [p.name for p in function.parameters] == [p["name"] for p in described["parameters"]]
    assert REFERENCE_NAMES[described["name"]] <= {p.name for p in function.parameters}
    declared_sets = {a.named["ParameterSetName"] for p in function.parameters for a in p.all("Parameter")
                     if "ParameterSetName" in a.named}
    assert declared_sets == set(described["parameterSets"]) - {ALL_SETS}
    for meta in described["parameters"]:
        parameter = function.parameter(meta["name"])
        membership = {s["name"]: s["mandatory"] for s in meta["sets"]}
        for set_name in described["parameterSets"]:
            seen = effective(parameter, set_name)
            if set_name not in membership:
                assert seen is None, f"{meta['name']} should not be in set {set_name}"
                continue
            assert seen == {
                "mandatory": membership[set_name],
                "position": meta["position"],
                "valueFromPipeline": meta["valueFromPipeline"],
                "valueFromPipelineByPropertyName": meta["valueFromPipelineByPropertyName"],
            }, f"{meta['name']} in {set_name}"
        aliases = parameter.all("Alias")
        assert [a.positional for a in aliases] == ([meta["aliases"]] if meta["aliases"] else [])
        validate_set = parameter.all("ValidateSet")
        assert [a.positional for a in validate_set] == ([meta["validValues"]] if meta["validValues"] else [])
        validate_range = parameter.all("ValidateRange")
        assert [a.positional for a in validate_range] == ([meta["range"]] if meta["range"] else [])
        expected_type = "string" if meta["validValues"] else EXPECTED_TYPES[meta["type"]]
        assert parameter.type == expected_type, meta["name"]


@pytest.mark.parametrize("described", DESCRIBED, ids=lambda d: d["name"])
def test_body_streams_and_honours_should_process(described: dict[str, Any]) -> None:
    function = generated(described["name"])
    blocks = {text(n.children[0]).lower(): n for n in walk(function.node) if n.type == "named_block"}
    assert set(blocks) == {"begin", "process", "end"}
    names = next(n for n in walk(blocks["begin"]) if n.type == "array_expression")
    listed = [literal(n) for n in walk(names) if n.type == "string_literal"]
    assert listed == [p["name"] for p in described["parameters"]]
    invoke = [n for n in walk(blocks["process"]) if n.type == "command"
              and text(n.children[0]) == "InvokeMailshiftCmdlet"]
    assert len(invoke) == 1
    assert f"-Name '{described['name']}'" in text(invoke[0])
    guard = invoke[0].parent
    while guard is not None and guard.type != "if_statement":
        guard = guard.parent
    if described["supportsShouldProcess"]:
        assert guard is not None and "$PSCmdlet.ShouldProcess(" in text(guard).split("{")[0]
    else:
        assert guard is None and "ShouldProcess" not in text(function.node)


def test_pipeline_identity_is_untyped_so_objects_bind_by_value() -> None:
    for described in DESCRIBED:
        for meta in described["parameters"]:
            if meta["valueFromPipeline"]:
                assert generated(described["name"]).parameter(meta["name"]).type == "object"


def test_generated_files_say_so_on_their_first_line() -> None:
    for name in render_all():
        first = (PSMODULE / name).read_text(encoding="utf-8").splitlines()[0]
        assert "Generated by mailshift module build from the cmdlet registry; do not edit." in first, name
        if name.endswith((".ps1", ".psd1")):
            assert first == GENERATED_MARKER
    for name in HAND_WRITTEN_FUNCTIONS:
        assert "Generated" not in (MODULE / "Public" / f"{name}.ps1").read_text().splitlines()[0]
    for name in PRELUDE_FUNCTIONS:
        assert "Generated" not in (PRELUDES / "Public" / f"{name}.ps1").read_text().splitlines()[0]


def test_committed_module_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = build(tmp_path)
    assert written
    for path in written:
        relative = path.relative_to(tmp_path)
        committed = PSMODULE / relative
        assert committed.is_file(), f"{relative} is missing: run make module"
        assert committed.read_bytes() == path.read_bytes(), f"{relative} is stale: run make module"
    generated_on_disk = {p.relative_to(PSMODULE).as_posix() for module in MODULES for p in (module / "Public").glob("*.ps1")
                         if p.read_text().startswith(GENERATED_MARKER)}
    assert generated_on_disk == {n for n in render_all() if "/Public/" in n}


def test_build_removes_generated_files_of_vanished_cmdlets_only(tmp_path: Path) -> None:
    public = tmp_path / "Mailshift" / "Public"
    public.mkdir(parents=True)
    (public / "Get-Gone.ps1").write_text(GENERATED_MARKER + "\nfunction Get-Gone {}\n")
    (public / "Connect-Mailshift.ps1").write_text("function Connect-Mailshift {}\n")
    build(tmp_path)
    assert not (public / "Get-Gone.ps1").exists()
    assert (public / "Connect-Mailshift.ps1").read_text() == "function Connect-Mailshift {}\n"


def manifest(module: Path = MODULE) -> dict[str, Any]:
    """A manifest's top-level hashtable: keys to literal values (lists for @(...))."""
    tree = parse(module / f"{module.name}.psd1")
    top = next(n for n in walk(tree.root_node) if n.type == "hash_literal_body")
    values: dict[str, Any] = {}
    for entry in (c for c in top.children if c.type == "hash_entry"):
        key = text(entry.children[0])
        value = entry.children[-1]
        strings = [literal(n) for n in walk(value) if n.type == "string_literal"]
        if "@(" in text(value):
            values[key] = strings
        elif strings:
            values[key] = strings[0]
    return values


def test_manifest_exports_exactly_the_registry_and_the_helpers() -> None:
    values = manifest()
    assert values["FunctionsToExport"] == [d["name"] for d in DESCRIBED] + list(HAND_WRITTEN_FUNCTIONS)
    assert values["CmdletsToExport"] == [] and values["AliasesToExport"] == [] and values["VariablesToExport"] == []
    assert values["PowerShellVersion"] == "5.1"
    assert values["CompatiblePSEditions"] == ["Desktop", "Core"]
    assert values["FormatsToProcess"] == ["Mailshift.Format.ps1xml"]
    assert values["RootModule"] == "Mailshift.psm1"
    for name in ("ModuleVersion", "GUID", "Author", "Description", "Copyright"):
        assert values[name], name
    assert "RequiredModules" not in values


#: Commands PowerShell itself ships (Microsoft.PowerShell.Core and the modules loaded with it),
#: and Exchange Online's connection commands: names the main module must never export.
POWERSHELL_COMMANDS = {
    "New-PSSession", "Import-PSSession", "Remove-PSSession", "Get-PSSession", "Enter-PSSession", "Exit-PSSession",
    "Export-PSSession", "Connect-PSSession", "Disconnect-PSSession", "Invoke-Command", "Import-Module",
    "Get-Command", "Get-Help", "Get-Credential", "Get-Module", "New-Module", "Remove-Module", "Get-Member",
    "Invoke-WebRequest", "Invoke-RestMethod", "Format-List", "Format-Table", "Select-Object", "Where-Object",
    "ForEach-Object", "Sort-Object", "Measure-Object", "Out-String", "Write-Host", "Get-Content", "Set-Content",
    "Get-Date", "Get-Item", "Remove-Item", "New-Item", "Test-Path", "Start-Process", "Stop-Process",
    "Connect-ExchangeOnline", "Disconnect-ExchangeOnline", "Get-ConnectionInformation",
}


def test_main_module_exports_no_command_of_powershell_or_exchange_online() -> None:
    exported = manifest()["FunctionsToExport"]
    assert not set(exported) & POWERSHELL_COMMANDS
    on_disk = {p.stem for p in (MODULE / "Public").glob("*.ps1")}
    assert not on_disk & POWERSHELL_COMMANDS
    assert all(name.split("-", 1)[1].startswith(("Migration", "Mailshift")) for name in exported)


def test_companion_module_exports_the_preludes_and_needs_mailshift() -> None:
    values = manifest(PRELUDES)
    assert values["FunctionsToExport"] == list(PRELUDE_FUNCTIONS)
    assert set(REDIRECTED_PRELUDES) == {"New-PSSession", "Import-PSSession", "Remove-PSSession", "Connect-ExchangeOnline",
                                        "Disconnect-ExchangeOnline", "Get-ConnectionInformation"}
    assert {p.stem for p in (PRELUDES / "Public").glob("*.ps1")} == set(PRELUDE_FUNCTIONS)
    assert values["RootModule"] == "Mailshift.ExchangePreludes.psm1"
    assert values["RequiredModules"] == ["Mailshift", values["ModuleVersion"], manifest()["GUID"]]
    assert values["ModuleVersion"] == manifest()["ModuleVersion"] and values["GUID"] != manifest()["GUID"]
    assert values["CmdletsToExport"] == [] and values["AliasesToExport"] == [] and values["VariablesToExport"] == []


def gallery_data(module: Path) -> dict[str, Any]:
    """PrivateData.PSData of a manifest, where the PowerShell Gallery reads its links and tags."""
    entry = next(n for n in walk(parse(module / f"{module.name}.psd1").root_node)
                 if n.type == "hash_entry" and text(n.children[0]) == "PSData")
    body = next(n for n in walk(entry.children[-1]) if n.type == "hash_literal_body")
    values: dict[str, Any] = {}
    for item in (c for c in body.children if c.type == "hash_entry"):
        strings = [literal(n) for n in walk(item.children[-1]) if n.type == "string_literal"]
        values[text(item.children[0])] = strings if "@(" in text(item.children[-1]) else strings[0]
    return values


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_gallery_fields(module: Path) -> None:
    psdata = gallery_data(module)
    assert psdata["ProjectUri"] == PROJECT_URI and psdata["LicenseUri"] == LICENSE_URI
    assert LICENSE_URI.startswith(PROJECT_URI) and (PSMODULE.parent / "LICENSE").is_file()
    assert {"PSEdition_Desktop", "PSEdition_Core", "Exchange"} <= set(psdata["Tags"]) and psdata["ReleaseNotes"]
    values = manifest(module)
    assert values["HelpInfoURI"].startswith(PROJECT_URI + "/")
    for name in ("ModuleVersion", "GUID", "Author", "Description", "Copyright", "PowerShellVersion"):
        assert values[name], name


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_file_list_names_every_file_of_the_module(module: Path) -> None:
    listed = [name.replace("\\", "/") for name in manifest(module)["FileList"]]
    on_disk = sorted(p.relative_to(module).as_posix() for p in module.rglob("*") if p.is_file())
    assert sorted(listed) == on_disk
    assert len(listed) == len(set(listed))


def test_hand_written_helpers_with_exchange_names_pass_through() -> None:
    """New-PSSession and friends are simple functions ($args) that call PowerShell's own cmdlet by module name."""
    for name, target in (("New-PSSession", "Microsoft.PowerShell.Core\\New-PSSession"),
                         ("Import-PSSession", "Microsoft.PowerShell.Utility\\Import-PSSession"),
                         ("Remove-PSSession", "Microsoft.PowerShell.Core\\Remove-PSSession")):
        function = functions(parse(PRELUDES / "Public" / f"{name}.ps1"))[name]
        assert function.parameters == [] and function.binding() is None
        source = text(function.node)
        assert f"{target} @args" in source
        assert f".FORWARDHELPTARGETNAME {target}" in source
    for name in ("Connect-ExchangeOnline", "Disconnect-ExchangeOnline", "Get-ConnectionInformation"):
        source = (PRELUDES / "Public" / f"{name}.ps1").read_text()
        assert f"ExchangeOnlineManagement\\{name} @args" in source and "TestMailshiftPreludeBinding" in source
