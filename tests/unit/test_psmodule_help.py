"""The module's MAML help, format file and about_ topic, checked as Get-Help and the formatter read them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from lxml import etree

from shim.cmdlets import CMDLETS
from shim.cmdlets.objects import VIEWS
from shim.cmdlets.registry import _describe
from tests.unit.test_psmodule_grammar import MODULE

NS = {
    "maml": "http://schemas.microsoft.com/maml/2004/10",
    "command": "http://schemas.microsoft.com/maml/dev/command/2004/10",
    "dev": "http://schemas.microsoft.com/maml/dev/2004/10",
    "msh": "http://msh",
}
DESCRIBED = [_describe(c) for c in CMDLETS]
HELP = etree.parse(str(MODULE / "en-US" / "Mailshift-help.xml"))
FORMATS = etree.parse(str(MODULE / "Mailshift.Format.ps1xml"))


def command(name: str) -> etree._Element:
    found = HELP.xpath("/msh:helpItems/command:command[command:details/command:name = $name]", namespaces=NS, name=name)
    assert isinstance(found, list) and len(found) == 1, name
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def texts(element: etree._Element, path: str) -> list[str]:
    found = element.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    return [("".join(e.itertext()) if isinstance(e, etree._Element) else str(e)).strip() for e in found]


def test_help_file_is_maml() -> None:
    root = HELP.getroot()
    assert root.tag == "{http://msh}helpItems" and root.get("schema") == "maml"
    names = texts(root, "command:command/command:details/command:name")
    assert names == [d["name"] for d in DESCRIBED]


@pytest.mark.parametrize("described", DESCRIBED, ids=lambda d: d["name"])
def test_command_schema_structure(described: dict[str, object]) -> None:
    element = command(str(described["name"]))
    children = [etree.QName(c).localname for c in element if isinstance(c.tag, str)]
    order = ["details", "description", "syntax", "parameters", "inputTypes", "returnValues", "alertSet", "examples",
             "relatedLinks"]
    assert children == order
    verb, noun = str(described["name"]).split("-", 1)
    assert texts(element, "command:details/command:verb") == [verb]
    assert texts(element, "command:details/command:noun") == [noun]


@pytest.mark.parametrize("described", DESCRIBED, ids=lambda d: d["name"])
def test_synopsis_description_parameters_and_examples(described: dict[str, Any]) -> None:
    element = command(described["name"])
    synopsis = texts(element, "command:details/maml:description/maml:para")
    assert synopsis == [described["synopsis"]] and len(synopsis[0]) > 20
    description = " ".join(texts(element, "maml:description/maml:para"))
    assert description == described["description"].replace("\n", " ") and len(description) > 80

    documented = texts(element, "command:parameters/command:parameter/maml:name")
    should_process = ["WhatIf", "Confirm"] if described["supportsShouldProcess"] else []
    assert documented == [p["name"] for p in described["parameters"]] + should_process
    for meta in described["parameters"]:
        [parameter] = element.xpath("command:parameters/command:parameter[maml:name = $n]", namespaces=NS, n=meta["name"])
        described_text = " ".join(texts(parameter, "maml:description/maml:para"))
        assert described_text.startswith(meta["help"]) and len(described_text) >= 5, meta["name"]
        assert parameter.get("required") == str(any(s["mandatory"] for s in meta["sets"])).lower()
        assert parameter.get("position") == (str(meta["position"]) if meta["position"] is not None else "named")
        assert parameter.get("aliases") == (", ".join(meta["aliases"]) or "none")
        pipeline = parameter.get("pipelineInput")
        assert pipeline.startswith("True") == (meta["valueFromPipeline"] or meta["valueFromPipelineByPropertyName"])
        assert texts(parameter, "dev:type/maml:name") == [meta["netType"]]

    syntax = element.xpath("command:syntax/command:syntaxItem", namespaces=NS)
    assert len(syntax) == len(described["parameterSets"])
    for item, set_name in zip(syntax, described["parameterSets"]):
        names = texts(item, "command:parameter/maml:name")
        members = [p["name"] for p in described["parameters"] if set_name in [s["name"] for s in p["sets"]]]
        assert sorted(names) == sorted(members + should_process)
        for meta in described["parameters"]:
            if meta["validValues"] and meta["name"] in members:
                values = texts(item, f"command:parameter[maml:name = '{meta['name']}']/"
                                     "command:parameterValueGroup/command:parameterValue")
                assert values == meta["validValues"]

    examples = element.xpath("command:examples/command:example", namespaces=NS)
    assert len(examples) >= 2, f"{described['name']} has fewer than two examples"
    assert len(examples) == len(described["examples"])
    for example, declared in zip(examples, described["examples"]):
        assert re.fullmatch(r"-+ Example \d+ -+", texts(example, "maml:title")[0])
        assert texts(example, "dev:code") == [declared["code"]] and declared["code"]
        remarks = " ".join(texts(example, "dev:remarks/maml:para"))
        assert remarks and remarks == declared["remarks"].replace("\n", " ")


def test_seed_000_examples_are_in_the_help() -> None:
    code = " ".join(texts(HELP.getroot(), "//dev:code"))
    for line in ("Test-MigrationServerAvailability -RemoteServer imap.contoso.edu -Port 143",
                 "Complete-Migration -NotificationEmails super-user@contoso.edu",
                 "-ExcludeFolders \"Deleted Items\",\"Junk Mail\""):
        assert line in code


def test_format_file_has_a_view_for_every_output_type() -> None:
    root = FORMATS.getroot()
    assert root.tag == "Configuration"
    selected = texts(root, "ViewDefinitions/View/ViewSelectedBy/TypeName")
    assert set(selected) == set(VIEWS)
    for type_name, view in VIEWS.items():
        views = root.xpath("ViewDefinitions/View[ViewSelectedBy/TypeName = $t]", t=type_name)
        kinds = [etree.QName(c).localname for v in views for c in v if etree.QName(c).localname.endswith("Control")]
        assert kinds == (["ListControl", "TableControl"] if view.default == "list" else ["TableControl"])
        [table] = [v for v in views if v.find("TableControl") is not None]
        assert texts(table, "TableControl/TableRowEntries/TableRowEntry/TableColumnItems/TableColumnItem/PropertyName") \
            == list(view.columns)
        assert texts(table, "TableControl/TableHeaders/TableColumnHeader/Label") == \
            [view.labels.get(c, c) for c in view.columns]
    every_output = {c.output_type for c in CMDLETS if c.output_type}
    assert every_output <= set(VIEWS)


def test_about_topic() -> None:
    about = (MODULE / "en-US" / "about_Mailshift.help.txt").read_text()
    assert about.startswith("TOPIC\n    about_Mailshift")
    for needed in ("MAILSHIFT_URI", "MAILSHIFT_USER", "MAILSHIFT_PASSWORD", "Connect-Mailshift",
                   "Mailshift.ExchangePreludes", "Enable-MailshiftExchangePrelude", "about_Mailshift_ExchangePreludes",
                   "-AllowClobber", "-SkipCertificateCheck", "TROUBLESHOOTING", "MAILSHIFT_BIND_EXCHANGE"):
        assert needed in about, needed
    assert max(len(line) for line in about.splitlines()) <= 100
