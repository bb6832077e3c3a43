"""WinRS command lines and output encoding (pure functions)."""

from __future__ import annotations

import base64

import pytest
import winrm

from shim.host import ScriptOutcome
from shim.wsman.faults import InvalidOptionValue
from shim.wsman.winrs import (
    CommandLineError,
    codec_for_codepage,
    encode_errors,
    encode_outcome,
    encode_stdout,
    script_from_command_line,
)

SCRIPT = "Get-MigrationBatch -Identity 'Überblick' | Format-List"
B64 = base64.b64encode(SCRIPT.encode("utf-16-le")).decode("ascii")


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        (f"powershell -encodedcommand {B64}", None),
        (f"powershell.exe -EncodedCommand {B64}", None),
        (f"PowerShell -ENC {B64}", None),
        (f"powershell -e {B64}", None),
        (f"powershell -ec {B64}", None),
        (f"powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {B64}", None),
        (f"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -nop -enc {B64}", None),
        ("powershell", f"-NoProfile -EncodedCommand {B64}"),
        (f'"powershell.exe" -EncodedCommand "{B64}"', None),
    ],
)
def test_encoded_command_is_decoded(command: str, arguments: str | None) -> None:
    assert script_from_command_line(command, arguments) == SCRIPT


@pytest.mark.parametrize(
    ("command", "arguments", "script"),
    [
        ('powershell -Command "Get-MigrationBatch -Identity b1"', None, "Get-MigrationBatch -Identity b1"),
        ("powershell -c Get-MigrationBatch -Identity b1", None, "Get-MigrationBatch -Identity b1"),
        ("powershell -NoProfile -Command Get-Date; Get-Host", None, "Get-Date; Get-Host"),
        ("powershell", "-NonInteractive -command Get-Date", "Get-Date"),
        ("powershell Get-Date", None, "Get-Date"),
        ("powershell -Command", None, ""),
        ("powershell -NoProfile", None, ""),
        ("Get-MigrationBatch", "-Identity b1", "Get-MigrationBatch -Identity b1"),
        ("Get-MigrationBatch -Identity 'a b'", None, "Get-MigrationBatch -Identity 'a b'"),
        ("echo", "hi", "echo hi"),
        ("   ", None, ""),
    ],
)
def test_command_lines(command: str, arguments: str | None, script: str) -> None:
    assert script_from_command_line(command, arguments) == script


@pytest.mark.parametrize("command", ["powershell -EncodedCommand", "powershell -enc not*base64", "powershell -enc QQ=="])
def test_undecodable_encoded_command(command: str) -> None:
    with pytest.raises(CommandLineError) as excinfo:
        script_from_command_line(command)
    assert "EncodedCommand" in excinfo.value.message


def test_stdout_uses_crlf_and_the_code_page() -> None:
    assert encode_stdout("a\nb\r\nc\rd\n", 437) == b"a\r\nb\r\nc\r\nd\r\n"
    assert encode_stdout("Überblick ✓", 437) == "Überblick ?".encode("cp437")
    assert encode_stdout("Überblick ✓", 65001) == "Überblick ✓".encode("utf-8")
    assert encode_stdout("Überblick", 1252) == "Überblick".encode("cp1252")


def test_unknown_code_page_is_an_invalid_option() -> None:
    assert codec_for_codepage(65001) == "utf-8"
    with pytest.raises(InvalidOptionValue):
        codec_for_codepage(99999)


def _clean(stderr: bytes) -> str:
    session = winrm.Session("http://127.0.0.1:1/wsman", auth=("u", "p"), transport="basic", proxy=None, ca_trust_path=None)
    return session._clean_error_msg(stderr).decode("utf-8")


def test_errors_are_clixml_that_pywinrm_cleans_back_to_the_text() -> None:
    errors = [
        "Get-Thing : Cannot find 'a<b>&\"c\"' — Überblick 日本\nAt line:1 char:1\n+ Get-Thing\n+ ~~~~~~~~~",
        "second error\r\nwith CRLF",
    ]
    stderr = encode_errors(errors)
    assert stderr.startswith(b'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">')
    assert stderr.endswith(b"</Objs>")
    assert stderr.count(b'<S S="Error">') == 6
    assert stderr.isascii()
    assert _clean(stderr) == "\n".join(e.replace("\r\n", "\n") for e in errors)


def test_control_characters_are_escaped_for_xml() -> None:
    stderr = encode_errors(["bell\x07 here"])
    assert b"bell_x0007_ here_x000D__x000A_" in stderr
    assert _clean(stderr) == "bell_x0007_ here"


def test_no_errors_no_stderr() -> None:
    assert encode_errors([]) == b""


def test_encode_outcome() -> None:
    outcome = ScriptOutcome(stdout="x\n", errors=["boom"], exit_code=1)
    stdout, stderr, code = encode_outcome(outcome, 437)
    assert (stdout, code) == (b"x\r\n", 1)
    assert _clean(stderr) == "boom"
