"""The Exchange prelude redirection lives in the opt-in companion module, off until asked, and says where it goes.

Read from the parse trees of the module files (no PowerShell runs on the build machines).
"""

from __future__ import annotations

import re

import tree_sitter

from shim.modulegen import REDIRECTED_PRELUDES
from tests.unit.test_psmodule_grammar import MODULE, PRELUDES, calls, functions, literal, parse, text, walk


def _strings(node: tree_sitter.Node) -> list[str]:
    return [str(literal(n)) for n in walk(node) if n.type == "string_literal"]


def _function(path_name: str, name: str) -> tree_sitter.Node:
    return functions(parse(PRELUDES / path_name))[name].node


def test_redirected_connections_warn_which_mailshift_service_they_talk_to() -> None:
    warn = _function("Private/PreludeBinding.ps1", "WriteMailshiftRedirection")
    [message] = [s for s in _strings(warn) if "redirected" in s]
    assert message == ("{0} is redirected by Mailshift.ExchangePreludes: it talks to the Mailshift service at {1} "
                       "as {2}, not to {3}. Disable-MailshiftExchangePrelude turns the redirection off.")
    assert "-f $Source, $Connection.Uri, $Connection.UserName, $instead" in text(warn)
    assert [c.name for c in calls(PRELUDES / "Private" / "PreludeBinding.ps1") if c.name == "Write-Warning"] == ["Write-Warning"]
    connect = _function("Private/PreludeBinding.ps1", "ConnectMailshiftThroughPrelude")
    assert re.search(r"ConnectMailshiftPrelude .*\n.*\n\s+WriteMailshiftRedirection -Source \$Source -Requested "
                     r"\$Requested -Connection \$connection", text(connect))
    # Both preludes that connect go through it, naming what the script asked for.
    new_session = text(_function("Public/New-PSSession.ps1", "New-PSSession"))
    assert "ConnectMailshiftThroughPrelude -ConnectionUri $mailshiftNamed['ConnectionUri'] -Credential " \
           "$mailshiftNamed['Credential'] -Source 'New-PSSession' -Requested $computer" in new_session
    online = text(_function("Public/Connect-ExchangeOnline.ps1", "Connect-ExchangeOnline"))
    assert "-Source 'Connect-ExchangeOnline' -Requested 'Exchange Online'" in online
    imported = text(_function("Public/Import-PSSession.ps1", "Import-PSSession"))
    assert re.search(r"Write-Warning \(\"Import-PSSession: .* Mailshift service at \{1\}.*\$sessions\[0\]\.MailshiftUri",
                     imported)
    enable = _function("Public/Enable-MailshiftExchangePrelude.ps1", "Enable-MailshiftExchangePrelude")
    assert any(s.startswith("Exchange connection preludes (New-PSSession -ConfigurationName Microsoft.Exchange")
               and "now go to {0} {1}, not to Exchange." in s for s in _strings(enable))


def test_every_redirected_prelude_asks_whether_the_redirection_is_on_first() -> None:
    for name in REDIRECTED_PRELUDES:
        if name == "Import-PSSession" or name == "Remove-PSSession":
            continue  # they act only on the session objects the redirected New-PSSession made
        body = text(_function(f"Public/{name}.ps1", name))
        assert "TestMailshiftPreludeBinding" in body, name


def test_the_redirection_is_off_until_asked_and_saved_only_on_request() -> None:
    binding = parse(PRELUDES / "Private" / "PreludeBinding.ps1")
    assert "$script:MailshiftPreludesEnabled = $null" in text(binding.root_node)
    test = text(functions(binding)["TestMailshiftPreludeBinding"].node)
    # Session choice first, then the process environment, then the file only -Save writes.
    order = [test.index(s) for s in ("$script:MailshiftPreludesEnabled", "$env:MAILSHIFT_BIND_EXCHANGE",
                                     "GetMailshiftPreludesFilePath")]
    assert order == sorted(order)
    enable = text(_function("Public/Enable-MailshiftExchangePrelude.ps1", "Enable-MailshiftExchangePrelude"))
    save = enable.index("if ($Save) {")
    assert enable.index("WriteAllText") > save and enable.count("WriteAllText") == 1
    disable = text(_function("Public/Disable-MailshiftExchangePrelude.ps1", "Disable-MailshiftExchangePrelude"))
    assert "$script:MailshiftPreludesEnabled = $false" in disable and "Remove-Item -LiteralPath $path" in disable


def test_the_main_module_no_longer_saves_or_reads_a_redirection() -> None:
    """A connection saved by Connect-Mailshift -SaveCredential can never redirect a later session's preludes."""
    connect = functions(parse(MODULE / "Public" / "Connect-Mailshift.ps1"))["Connect-Mailshift"]
    assert {p.name for p in connect.parameters} == {"Uri", "Credential", "SkipCertificateCheck", "SaveCredential",
                                                   "PassThru"}
    saved = re.search(r"\$saved = @\{(.*?)\}", text(connect.node), re.DOTALL)
    assert saved is not None
    assert re.findall(r"^\s+(\w+)\s*=", saved.group(1), re.MULTILINE) == ["Uri", "Credential", "SkipCertificateCheck"]
    for path in sorted(MODULE.rglob("*.ps1")):
        source = path.read_text()
        assert "BindExchangePreludes =" not in source and "MAILSHIFT_BIND_EXCHANGE" not in source, path.name
        assert "TestMailshiftPreludeBinding" not in source, path.name


def test_about_topic_of_the_companion() -> None:
    about = (PRELUDES / "en-US" / "about_Mailshift_ExchangePreludes.help.txt").read_text()
    assert about.startswith("TOPIC\n    about_Mailshift_ExchangePreludes")
    for needed in ("Enable-MailshiftExchangePrelude -Save", "Disable-MailshiftExchangePrelude -RemoveSaved",
                   "MAILSHIFT_BIND_EXCHANGE", "MAILSHIFT_PRELUDES_FILE", "-AllowClobber", "WARNING: New-PSSession is "
                   "redirected by Mailshift.ExchangePreludes", "this session only"):
        assert needed in " ".join(about.split()), needed
    assert max(len(line) for line in about.splitlines()) <= 100
