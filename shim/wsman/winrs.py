"""What a WinRS command line means, and how its outcome becomes stdout/stderr bytes.

Pure functions: a command line (``powershell -encodedcommand ...``, ``powershell -Command ...``
or a bare cmdlet with arguments) becomes PowerShell text; a :class:`~shim.host.ScriptOutcome`
becomes the bytes powershell.exe would have written (text in the shell's code page with CRLF
line ends, errors as the ``#< CLIXML`` document pywinrm turns back into plain text).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

from shim.errors import ParseError
from shim.host import ScriptOutcome
from shim.wsman import constants as c
from shim.wsman.faults import InvalidOptionValue

__all__ = [
    "CommandLineError",
    "codec_for_codepage",
    "encode_errors",
    "encode_outcome",
    "encode_stdout",
    "script_from_command_line",
]

_POWERSHELL_NAMES = frozenset({"powershell", "powershell.exe", "pwsh", "pwsh.exe"})
#: powershell.exe switches that take no value and do not change what runs.
_FLAGS = frozenset({"-noprofile", "-nop", "-noninteractive", "-noni", "-nologo", "-mta", "-sta"})
#: powershell.exe parameters whose value is ignored.
_VALUED = frozenset(
    {"-executionpolicy", "-ep", "-ex", "-exec", "-inputformat", "-if", "-outputformat", "-of", "-o", "-windowstyle", "-w", "-version", "-v"}
)
_ENCODED = frozenset({"-encodedcommand", "-enc", "-e", "-ec"})
_COMMAND = frozenset({"-command", "-c"})
_TOKEN = re.compile(r'"[^"]*"|\S+')
#: Characters XML 1.0 cannot carry; CLIXML writes them as ``_xHHHH_``.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CLIXML_HEADER = b"#< CLIXML\r\n"
_CLIXML_NEWLINE = "_x000D__x000A_"


class CommandLineError(ParseError):
    """Raised when a powershell command line cannot be decoded (bad base64, missing value)."""


def _unquote(token: str) -> str:
    return token[1:-1] if len(token) >= 2 and token[0] == token[-1] == '"' else token


def script_from_command_line(command: str, arguments: str | None = None) -> str:
    """The PowerShell text a WinRS Command runs.

    ``powershell[.exe] [-NoProfile] [-NonInteractive] [-ExecutionPolicy X] -EncodedCommand <b64>``
    (also ``-enc``/``-e``, any case) decodes base64 UTF-16LE; ``powershell -Command text`` (or
    ``-c``) runs the rest of the line; anything else runs ``command + ' ' + arguments`` as it
    stands, which is what pywinrm's ``run_cmd(cmdlet, args)`` sends.

    Args:
        command: the ``rsp:Command`` text.
        arguments: the ``rsp:Arguments`` text (pywinrm space-joins all arguments), if any.

    Raises:
        CommandLineError: when ``-EncodedCommand`` has no value or the value is not base64 UTF-16LE.
    """
    line = command.strip() if not arguments else f"{command.strip()} {arguments.strip()}"
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(line)]
    if not tokens:
        return ""
    program = _unquote(tokens[0][0]).replace("\\", "/").rsplit("/", 1)[-1].lower()
    if program not in _POWERSHELL_NAMES:
        return line
    index = 1
    while index < len(tokens):
        token, start, _ = tokens[index]
        name = token.lower()
        if name in _FLAGS:
            index += 1
        elif name in _VALUED:
            index += 2
        elif name in _ENCODED:
            if index + 1 >= len(tokens):
                raise CommandLineError(f"Missing the value of {token}: a base64 UTF-16LE script is required.")
            return _decode_encoded_command(_unquote(tokens[index + 1][0]))
        elif name in _COMMAND:
            if index + 1 >= len(tokens):
                return ""
            return _unquote(line[tokens[index + 1][1] :].strip())
        else:
            return _unquote(line[start:].strip())
    return ""


def _decode_encoded_command(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
        return raw.decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CommandLineError("The value of -EncodedCommand is not base64-encoded UTF-16LE text.") from None


def codec_for_codepage(codepage: int) -> str:
    """The Python codec for a Windows code page number (65001 is UTF-8, others ``cp<n>``).

    Raises:
        InvalidOptionValue: when Python has no codec for the code page.
    """
    if codepage == c.CODEPAGE_UTF8:
        return "utf-8"
    name = f"cp{codepage}"
    try:
        codecs.lookup(name)
    except LookupError:
        raise InvalidOptionValue(
            f"The WS-Management service cannot process the request because {c.OPTION_CODEPAGE} {codepage} is not a supported code page."
        ) from None
    return name


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def encode_stdout(text: str, codepage: int) -> bytes:
    """Output text as powershell.exe writes it: CRLF line ends, in the code page (unmappable characters as ``?``)."""
    return _crlf(text).encode(codec_for_codepage(codepage), errors="replace")


def _clixml_text(line: str) -> str:
    escaped = escape(_XML_INVALID.sub(lambda m: f"_x{ord(m.group()):04X}_", line))
    return escaped + _CLIXML_NEWLINE


def encode_errors(errors: Sequence[str]) -> bytes:
    """Error texts as the ``#< CLIXML`` stderr document powershell.exe writes, or ``b""`` when there are none.

    One ``<S S="Error">`` per line, line ends as ``_x000D__x000A_``; non-ASCII characters as XML
    character references, so the bytes read the same whatever the code page.
    """
    lines = [line for text in errors for line in _crlf(text).split("\r\n")]
    if not lines:
        return b""
    parts = "".join(f'<S S="Error">{_clixml_text(line)}</S>' for line in lines)
    document = f'<Objs Version="1.1.0.1" xmlns="{c.NS_CLIXML}">{parts}</Objs>'
    return _CLIXML_HEADER + document.encode("ascii", errors="xmlcharrefreplace")


def encode_outcome(outcome: ScriptOutcome, codepage: int) -> tuple[bytes, bytes, int]:
    """``(stdout, stderr, exit code)`` bytes for a script's outcome in the shell's code page."""
    return encode_stdout(outcome.stdout, codepage), encode_errors(outcome.errors), outcome.exit_code
