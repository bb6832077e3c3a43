"""Control characters in values that go into a protocol line (IMAP, SMTP).

A CR or LF inside a value sent on an IMAP or SMTP command line ends that command and starts
another one the value's author chose (``user\\r\\nA1 DELETE INBOX``); NUL ends a string for
many servers and separates the fields of SASL PLAIN. Such values are refused wherever they
enter (CSV cells, cmdlet parameters, settings) and again by the IMAP layer before it writes a
command.

The rule: every C0 control character (U+0000 to U+001F) and DEL (U+007F) is refused. TAB
(U+0009) is allowed only in passwords, where IMAP's quoted strings can carry it and a user may
have chosen it; no login name, address, host or folder name holds one legitimately.
"""

from __future__ import annotations

from engine.errors import ConfigurationError

__all__ = ["ControlCharacterError", "control_character", "describe_control", "refuse_controls"]

_TAB = "\t"


class ControlCharacterError(ConfigurationError):
    """Raised when a value bound for a protocol line holds a control character."""


def control_character(text: str, *, allow_tab: bool = False) -> tuple[int, str] | None:
    """The first control character of ``text`` as ``(index, character)``, or None.

    Args:
        text: The value.
        allow_tab: Let TAB through (passwords only).
    """
    for index, char in enumerate(text):
        code = ord(char)
        if (code < 0x20 or code == 0x7F) and not (allow_tab and char == _TAB):
            return index, char
    return None


def describe_control(found: tuple[int, str]) -> str:
    """``U+000D (carriage return) at character 6`` for a :func:`control_character` result."""
    index, char = found
    names = {"\x00": "NUL", "\t": "tab", "\n": "line feed", "\r": "carriage return", "\x7f": "DEL"}
    name = names.get(char, "control character")
    return f"U+{ord(char):04X} ({name}) at character {index + 1}"


def refuse_controls(text: str, what: str, *, allow_tab: bool = False) -> str:
    """``text`` unchanged, or ControlCharacterError naming ``what`` and the character (never the value).

    Args:
        text: The value.
        what: How the message names the value (``"-RemoteServer"``, ``"the login name"``).
        allow_tab: Let TAB through (passwords only).

    Raises:
        ControlCharacterError: ``text`` holds a control character.
    """
    found = control_character(text, allow_tab=allow_tab)
    if found is not None:
        raise ControlCharacterError(
            f"{what} holds a control character, {describe_control(found)}; control characters "
            "are never sent to a server: remove it"
        )
    return text
