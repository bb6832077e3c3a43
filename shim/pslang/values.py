"""PowerShell's value semantics over plain Python values: conversions, comparisons, members.

Values are Python objects: ``str``, ``int``, ``float``, ``bool``, ``None``, ``bytes``, ``list``
(PowerShell arrays), :class:`PSHashtable` (a ``dict`` with case-insensitive keys), ``datetime``,
``timedelta`` (TimeSpan), :class:`shim.psobject.PSObject`, :class:`ScriptBlock` and
:class:`TypeRef`.
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from shim.errors import ScriptRefused
from shim.pslang import ast
from shim.pslang.limits import MAX_COLLECTION_LENGTH, MAX_STRING_LENGTH, collection_too_large, string_too_long
from shim.pslang.records import RuntimeFailure
from shim.psobject import PSObject

__all__ = [
    "VOID",
    "FormattedText",
    "PSHashtable",
    "ScriptBlock",
    "TypeRef",
    "call_method",
    "convert_to",
    "display_text",
    "dotnet_regex",
    "dotnet_replacement",
    "enumerate_output",
    "format_datetime",
    "format_operator",
    "get_property",
    "index_value",
    "is_enumerable",
    "is_instance",
    "is_true",
    "parse_datetime",
    "ps_compare",
    "ps_equals",
    "to_number",
    "to_str",
    "type_display_name",
    "wildcard_match",
]


class _Void:
    """The value of ``[void](...)``: writes nothing to the pipeline."""

    def __repr__(self) -> str:
        return "VOID"


VOID: Any = _Void()


class PSHashtable(dict[Any, Any]):
    """A hashtable: insertion-ordered, string keys compared case-insensitively."""

    def _find(self, key: Any) -> Any:
        if isinstance(key, str):
            low = key.lower()
            for existing in dict.keys(self):
                if isinstance(existing, str) and existing.lower() == low:
                    return existing
        return key

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self, self._find(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, self._find(key), value)

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, self._find(key))

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._find(key))

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for ``key`` in any case, or ``default``."""
        return dict.get(self, self._find(key), default)

    def pop(self, key: Any, *default: Any) -> Any:
        """Remove ``key`` in any case and return its value."""
        return dict.pop(self, self._find(key), *default)

    def copy(self) -> PSHashtable:
        """A shallow copy that stays case-insensitive."""
        return PSHashtable(self.items())


class ScriptBlock:
    """A ``{ ... }`` value (Where-Object filters, ForEach-Object bodies, calculated properties)."""

    __slots__ = ("node",)

    def __init__(self, node: ast.ScriptBlockExpr) -> None:
        self.node = node

    def __str__(self) -> str:
        text = self.node.extent.text
        return text[1:-1] if text.startswith("{") and text.endswith("}") else text

    def __repr__(self) -> str:
        return f"ScriptBlock({{{self}}})"


class TypeRef:
    """A ``[TypeName]`` written as a value (for ``-is``/``-as``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"TypeRef({self.name!r})"


class FormattedText:
    """What Format-Table/Format-List (and Get-Help) write: text that Out-Default prints verbatim."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"FormattedText({self.text!r})"


# -- enumeration and truth --------------------------------------------------------------------


def is_enumerable(value: Any) -> bool:
    """True for the values PowerShell unrolls in a pipeline (arrays, byte arrays)."""
    return isinstance(value, (list, tuple, bytes, bytearray))


def enumerate_output(value: Any) -> list[Any]:
    """The objects a value writes to the pipeline (arrays unrolled one level, ``[void]`` nothing)."""
    if value is VOID:
        return []
    if is_enumerable(value):
        return list(value)
    return [value]


def is_true(value: Any) -> bool:
    """PowerShell's truth test (LanguagePrimitives.IsTrue)."""
    if value is None or value is VOID:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, enum.Enum):
        return bool(_enum_text(value))
    if isinstance(value, str):
        return value != ""
    if is_enumerable(value):
        items = list(value)
        if not items:
            return False
        return is_true(items[0]) if len(items) == 1 else True
    return True


# -- strings ------------------------------------------------------------------------------------


def _enum_text(value: enum.Enum) -> str:
    return value.value if isinstance(value.value, str) else value.name


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}E{sign}{int(exponent.lstrip('+-')):02d}"
    return text


def _timespan_text(value: timedelta) -> str:
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    whole = int(seconds)
    frac = round((seconds - whole) * 10_000_000)
    text = f"{int(hours):02d}:{int(minutes):02d}:{whole:02d}"
    if days:
        text = f"{int(days)}.{text}"
    if frac:
        text += f".{frac:07d}"
    return sign + text


def to_str(value: Any) -> str:
    """A value as PowerShell converts it to a string (invariant culture; arrays joined by spaces)."""
    if value is None or value is VOID:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, enum.Enum):
        return _enum_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, datetime):
        return format_datetime(value, "MM/dd/yyyy HH:mm:ss")
    if isinstance(value, timedelta):
        return _timespan_text(value)
    if isinstance(value, (bytes, bytearray)):
        return " ".join(str(b) for b in value)
    if isinstance(value, (list, tuple)):
        return " ".join(to_str(v) for v in value)
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    return str(value)


def display_text(value: Any) -> str:
    """A value as the console formatter shows it inside a table or list (en-US dates, ``{a, b}`` arrays)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, "G")
    if isinstance(value, dict):
        items = [f"[{to_str(k)}, {display_text(v)}]" for k, v in value.items()]
        return "{" + ", ".join(items[:4]) + ("..." if len(items) > 4 else "") + "}"
    if is_enumerable(value):
        items = [display_text(v) for v in value]
        return "{" + ", ".join(items[:4]) + ("..." if len(items) > 4 else "") + "}"
    return to_str(value)


def type_display_name(value: Any) -> str:
    """The .NET type name PowerShell would report for a value."""
    if value is None:
        return "null"
    if isinstance(value, PSObject):
        return value.type_name
    names: list[tuple[type, str]] = [
        (bool, "System.Boolean"),
        (int, "System.Int32"),
        (float, "System.Double"),
        (str, "System.String"),
        (datetime, "System.DateTime"),
        (timedelta, "System.TimeSpan"),
        (bytes, "System.Byte[]"),
        (dict, "System.Collections.Hashtable"),
        (list, "System.Object[]"),
        (tuple, "System.Object[]"),
        (ScriptBlock, "System.Management.Automation.ScriptBlock"),
    ]
    for py_type, name in names:
        if isinstance(value, py_type):
            if name == "System.Int32" and isinstance(value, int) and not -(2**31) <= value < 2**31:
                return "System.Int64"
            return name
    return "System.Object"


# -- numbers and dates ----------------------------------------------------------------------------


def _cast_error(value: Any, type_name: str) -> RuntimeFailure:
    return RuntimeFailure(
        f'Cannot convert value "{to_str(value)}" to type "{type_name}". Error: "Input string was not in a correct format."',
        error_id="InvalidCastFromStringToInteger" if "Int" in type_name else "InvalidArgument",
        category="InvalidArgument",
    )


def to_number(value: Any) -> int | float:
    """A value as a number, the way PowerShell's arithmetic converts it.

    Raises:
        RuntimeFailure: when the value is not a number.
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, enum.Enum) and isinstance(value.value, (int, float)):
        return value.value
    text = to_str(value).strip() if isinstance(value, (str, PSObject, enum.Enum)) else None
    if text is not None:
        if text == "":
            return 0
        from shim.pslang.parser import number_value  # a cycle only at import time

        try:
            return number_value(text.replace(",", "")) if re.fullmatch(r"[+-]?[\d.,]+(e[+-]?\d+)?|[+-]?0x[0-9a-f]+", text, re.I) else _bad(text)
        except ValueError:
            pass
    raise _cast_error(value, "System.Int32")


def _bad(text: str) -> int:
    raise ValueError(text)


def _to_int(value: Any, type_name: str = "System.Int32") -> int:
    number = to_number(value) if not isinstance(value, float) else value
    if isinstance(number, float):
        if math.isnan(number) or math.isinf(number):
            raise _cast_error(value, type_name)
        return round(number)
    return number


_DATE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%d %B %Y",
    "%B %d, %Y",
    "%B %d %Y",
    "%d %b %Y",
    "%b %d, %Y",
)


def parse_datetime(text: str) -> datetime:
    """Parse a date string the way a ``[datetime]`` cast does (invariant culture).

    Raises:
        RuntimeFailure: when the text is not a date.
    """
    t = text.strip()
    try:
        return datetime.fromisoformat(t.replace("Z", "+00:00") if t.endswith("Z") else t)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(t, fmt)
        except ValueError:
            continue
    raise RuntimeFailure(
        f'Cannot convert value "{text}" to type "System.DateTime". Error: "String was not recognized as a valid DateTime."',
        error_id="InvalidCastParseTargetInvocation",
        category="InvalidArgument",
    )


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, (str, PSObject)):
        return parse_datetime(to_str(value))
    raise RuntimeFailure(
        f'Cannot convert "{to_str(value)}" to "System.DateTime".', error_id="InvalidCastFromAnyTypeToDateTime", category="InvalidArgument"
    )


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_STANDARD_DATE = {
    "d": "M/d/yyyy",
    "D": "dddd, MMMM d, yyyy",
    "t": "h:mm tt",
    "T": "h:mm:ss tt",
    "f": "dddd, MMMM d, yyyy h:mm tt",
    "F": "dddd, MMMM d, yyyy h:mm:ss tt",
    "g": "M/d/yyyy h:mm tt",
    "G": "M/d/yyyy h:mm:ss tt",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "m": "MMMM d",
    "M": "MMMM d",
    "y": "MMMM yyyy",
    "Y": "MMMM yyyy",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
}
_DATE_TOKEN = re.compile(
    r"yyyy+|yyy|yy|y|MMMM+|MMM|MM|M|dddd+|ddd|dd|d|HH+|H|hh+|h|mm+|m|ss+|s|f{1,7}|F{1,7}|tt+|t|zzz|zz|z|K|'[^']*'|\"[^\"]*\"|\\.|%|.",
    re.S,
)


def format_datetime(value: datetime, fmt: str) -> str:
    """Format a date with a .NET format string (standard ``d``/``G``/``s``/``o``... or custom ``yyyy-MM-dd``), en-US."""
    if fmt in ("u", "r", "R") and value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    if len(fmt) == 1 and fmt in _STANDARD_DATE:
        fmt = _STANDARD_DATE[fmt]
    out: list[str] = []
    for m in _DATE_TOKEN.finditer(fmt):
        tok = m.group(0)
        c = tok[0]
        if c == "y":
            out.append(str(value.year % 100).zfill(len(tok)) if len(tok) <= 2 else str(value.year).zfill(len(tok)))
            if len(tok) == 1:
                out[-1] = str(value.year % 100)
        elif c == "M":
            n = len(tok)
            out.append(str(value.month) if n == 1 else f"{value.month:02d}" if n == 2 else _MONTHS[value.month - 1][:3] if n == 3 else _MONTHS[value.month - 1])
        elif c == "d":
            n = len(tok)
            day = _DAYS[value.weekday()]
            out.append(str(value.day) if n == 1 else f"{value.day:02d}" if n == 2 else day[:3] if n == 3 else day)
        elif c == "H":
            out.append(f"{value.hour:02d}" if len(tok) > 1 else str(value.hour))
        elif c == "h":
            hour = value.hour % 12 or 12
            out.append(f"{hour:02d}" if len(tok) > 1 else str(hour))
        elif c == "m":
            out.append(f"{value.minute:02d}" if len(tok) > 1 else str(value.minute))
        elif c == "s":
            out.append(f"{value.second:02d}" if len(tok) > 1 else str(value.second))
        elif c in "fF":
            digits = f"{value.microsecond:06d}0"[: len(tok)]
            out.append(digits.rstrip("0") if c == "F" else digits)
        elif c == "t":
            ampm = "AM" if value.hour < 12 else "PM"
            out.append(ampm if len(tok) > 1 else ampm[0])
        elif c in "zK":
            offset = value.utcoffset()
            if offset is None:
                if c == "K":
                    continue
                offset = datetime.now().astimezone().utcoffset() or timedelta(0)
            minutes = int(offset.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            hours, mins = divmod(abs(minutes), 60)
            if c == "K" and minutes == 0 and value.tzinfo is timezone.utc:
                out.append("Z")
            elif tok == "z":
                out.append(f"{sign}{hours}")
            elif tok == "zz":
                out.append(f"{sign}{hours:02d}")
            else:
                out.append(f"{sign}{hours:02d}:{mins:02d}")
        elif c in "'\"":
            out.append(tok[1:-1])
        elif c == "\\":
            out.append(tok[1:])
        elif c == "%":
            continue
        else:
            out.append(tok)
    return "".join(out)


def _format_number(value: Any, spec: str) -> str:
    number = to_number(value)
    m = re.fullmatch(r"([A-Za-z])(\d*)", spec)
    if m:
        kind, digits = m.group(1), m.group(2)
        k = kind.upper()
        if k == "N":
            return f"{number:,.{int(digits or 2)}f}"
        if k == "F":
            return f"{number:.{int(digits or 2)}f}"
        if k == "D":
            return f"{int(number):0{int(digits or 1)}d}"
        if k == "X":
            return format(int(number), f"0{int(digits or 1)}{'X' if kind == 'X' else 'x'}")
        if k == "P":
            return f"{number * 100:,.{int(digits or 2)}f} %"
        if k == "C":
            return f"${number:,.{int(digits or 2)}f}"
        if k == "E":
            text = f"{number:.{int(digits or 6)}e}"
            mantissa, _, exponent = text.partition("e")
            return f"{mantissa}{kind}{exponent[0]}{int(exponent[1:]):03d}"
        if k in ("G", "R"):
            return to_str(number)
    decimals = 0
    if "." in spec:
        decimals = len(re.sub(r"[^0#]", "", spec.split(".", 1)[1]))
        required = len(re.sub(r"[^0]", "", spec.split(".", 1)[1]))
    else:
        required = 0
    grouping = "," in spec.split(".", 1)[0]
    text = f"{number:{',' if grouping else ''}.{decimals}f}"
    if decimals > required and "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(required, "0")
        text = whole + ("." + frac if frac else "")
    int_zeros = len(re.sub(r"[^0]", "", spec.split(".", 1)[0]))
    if int_zeros > 1:
        whole, dot, frac = text.partition(".")
        sign = "-" if whole.startswith("-") else ""
        whole = whole.lstrip("-").rjust(int_zeros, "0")
        text = sign + whole + dot + frac
    return text


def format_value(value: Any, spec: str) -> str:
    """One ``{0:spec}`` item of the ``-f`` operator."""
    if not spec:
        return to_str(value)
    if isinstance(value, datetime):
        return format_datetime(value, spec)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _format_number(value, spec)
    return to_str(value)


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)\s*(?:,\s*(-?\d+))?(?::([^}]*))?\}")


def format_operator(fmt: str, args: list[Any]) -> str:
    """The ``-f`` operator: .NET composite formatting (``{0}``, ``{0,-10}``, ``{0:N2}``, ``{{``).

    Raises:
        RuntimeFailure: when an index is out of range.
    """

    def repl(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        index = int(m.group(1))
        if index >= len(args):
            raise RuntimeFailure(
                f'Error formatting a string: Index (zero based) must be greater than or equal to zero and less than the size of the argument list.. "{fmt}"',
                error_id="FormatError",
            )
        text = format_value(args[index], m.group(3) or "")
        width = int(m.group(2) or 0)
        return text.rjust(width) if width > 0 else text.ljust(-width)

    return _FORMAT_ITEM.sub(repl, fmt)


# -- patterns ---------------------------------------------------------------------------------------


def wildcard_match(pattern: str, text: str, case_sensitive: bool = False) -> bool:
    """PowerShell wildcard matching (``*``, ``?``, ``[a-z]``, backtick escapes) against the whole text."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "`" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end > i + 1:
                out.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
                i = end + 1
                continue
            out.append(re.escape(c))
        else:
            out.append(re.escape(c))
        i += 1
    flags = re.S | (0 if case_sensitive else re.I)
    return re.fullmatch("".join(out), text, flags) is not None


def dotnet_regex(pattern: str) -> str:
    """A .NET regular expression in Python's dialect (named groups ``(?<n>...)`` and ``\\k<n>``)."""
    pattern = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", pattern)
    return re.sub(r"\\k<([A-Za-z_]\w*)>", r"(?P=\1)", pattern)


def dotnet_replacement(replacement: str) -> str:
    """A .NET ``-replace`` substitution (``$1``, ``${name}``, ``$&``, ``$$``) for ``re.sub``."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\":
            out.append("\\\\")
        elif c == "$" and i + 1 < len(replacement):
            rest = replacement[i + 1 :]
            m = re.match(r"\d+|\{([^}]+)\}|&|\$", rest)
            if m:
                tok = m.group(0)
                if tok == "$":
                    out.append("$")
                elif tok == "&":
                    out.append("\\g<0>")
                else:
                    out.append(f"\\g<{m.group(1) or tok}>")
                i += 1 + len(tok)
                continue
            out.append("$")
        else:
            out.append(c)
        i += 1
    return "".join(out)


# -- comparison ---------------------------------------------------------------------------------------


def _fold(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def ps_equals(left: Any, right: Any, case_sensitive: bool = False) -> bool:
    """``left -eq right`` for a scalar left side: the right side converted to the left side's type."""
    if left is None:
        return right is None
    if right is None:
        return False
    if isinstance(left, bool):
        return left == is_true(right)
    if isinstance(left, (str, enum.Enum)):
        return _fold(to_str(left), case_sensitive) == _fold(to_str(right), case_sensitive)
    if isinstance(left, PSObject):
        if isinstance(right, PSObject):
            if left is right or left == right:
                return True
            return left.text is not None and right.text is not None and _fold(left.text, case_sensitive) == _fold(right.text, case_sensitive)
        if left.text is not None and isinstance(right, (str, enum.Enum, int, float)):
            return _fold(left.text, case_sensitive) == _fold(to_str(right), case_sensitive)
        return False
    if isinstance(left, (int, float)):
        try:
            return left == to_number(right)
        except RuntimeFailure:
            return False
    if isinstance(left, datetime):
        try:
            other = _to_datetime(right)
        except RuntimeFailure:
            return False
        return _naive(left) == _naive(other)
    if isinstance(left, (bytes, bytearray)) and isinstance(right, (bytes, bytearray)):
        return left is right
    return bool(left == right)


def _naive(value: datetime) -> datetime:
    return value.astimezone().replace(tzinfo=None) if value.tzinfo is not None else value


def ps_compare(left: Any, right: Any, case_sensitive: bool = False) -> int:
    """Order two values as ``-lt``/``-gt`` and Sort-Object do: negative, zero or positive."""
    if left is None and right is None:
        return 0
    if left is None:
        return -1
    if right is None:
        return 1
    if isinstance(left, (int, float)) and not isinstance(left, bool) or isinstance(left, bool):
        try:
            r = to_number(right)
            lf = to_number(left)
            return (lf > r) - (lf < r)
        except RuntimeFailure:
            pass
    if isinstance(left, datetime):
        try:
            a, b = _naive(left), _naive(_to_datetime(right))
            return (a > b) - (a < b)
        except RuntimeFailure:
            pass
    if isinstance(left, timedelta) and isinstance(right, timedelta):
        return (left > right) - (left < right)
    a_text, b_text = _fold(to_str(left), case_sensitive), _fold(to_str(right), case_sensitive)
    return (a_text > b_text) - (a_text < b_text)


# -- conversions ----------------------------------------------------------------------------------------

_TYPE_ALIASES = {
    "int": "int",
    "int32": "int",
    "long": "int",
    "int64": "int",
    "int16": "int",
    "short": "int",
    "uint32": "int",
    "uint64": "int",
    "uint16": "int",
    "byte": "int",
    "sbyte": "int",
    "double": "float",
    "single": "float",
    "float": "float",
    "decimal": "float",
    "string": "str",
    "bool": "bool",
    "boolean": "bool",
    "switch": "bool",
    "switchparameter": "bool",
    "management.automation.switchparameter": "bool",
    "datetime": "datetime",
    "timespan": "timespan",
    "array": "array",
    "object[]": "array",
    "hashtable": "hashtable",
    "collections.hashtable": "hashtable",
    "ordered": "hashtable",
    "collections.specialized.ordereddictionary": "hashtable",
    "pscustomobject": "pscustomobject",
    "management.automation.pscustomobject": "pscustomobject",
    "psobject": "object",
    "management.automation.psobject": "object",
    "object": "object",
    "char": "char",
    "guid": "guid",
    "regex": "str",
    "text.regularexpressions.regex": "str",
    "void": "void",
    "scriptblock": "scriptblock",
    "management.automation.scriptblock": "scriptblock",
    "byte[]": "bytes",
}


def _normalize_type(name: str) -> str:
    low = name.strip().lower().replace(" ", "")
    if low.startswith("system."):
        low = low[7:]
    return low


def canonical_type(name: str) -> str | None:
    """The conversion a ``[TypeName]`` stands for (``int``, ``str``, ``array``...), or None when unknown."""
    low = _normalize_type(name)
    if low in _TYPE_ALIASES:
        return _TYPE_ALIASES[low]
    if low.endswith("[]") and _normalize_type(low[:-2]) in _TYPE_ALIASES:
        return "array:" + _TYPE_ALIASES[_normalize_type(low[:-2])]
    return None


def convert_to(type_name: str, value: Any) -> Any:
    """A ``[TypeName]value`` cast.

    Raises:
        ScriptRefused: for types the subset does not offer.
        RuntimeFailure: when the value cannot be converted.
    """
    kind = canonical_type(type_name)
    if kind is None:
        raise ScriptRefused(
            f"The type [{type_name}] is not available in a Mailshift session.", error_id="TypeNotAllowed", target=type_name
        )
    return _convert(kind, type_name, value)


def _convert(kind: str, type_name: str, value: Any) -> Any:
    if kind.startswith("array:"):
        inner = kind[6:]
        if inner == "int" and isinstance(value, (bytes, bytearray)):
            return list(value)
        return [_convert(inner, type_name, v) for v in enumerate_output(value)] if value is not None else None
    if kind == "int":
        if isinstance(value, (str, PSObject)) and re.fullmatch(r"\s*[+-]?\d+\.\d*\s*", to_str(value)):
            return round(float(to_str(value)))
        if isinstance(value, datetime):
            raise _cast_error(value, "System.Int32")
        return _to_int(value)
    if kind == "float":
        return float(to_number(value))
    if kind == "str":
        return to_str(value)
    if kind == "bool":
        return is_true(value)
    if kind == "datetime":
        return _to_datetime(value)
    if kind == "timespan":
        if isinstance(value, timedelta):
            return value
        m = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+)(?::(\d+))?", to_str(value).strip())
        if not m:
            raise _cast_error(value, "System.TimeSpan")
        return timedelta(days=int(m.group(1) or 0), hours=int(m.group(2)), minutes=int(m.group(3)), seconds=int(m.group(4) or 0))
    if kind == "array":
        return [] if value is None else list(enumerate_output(value))
    if kind == "hashtable":
        if isinstance(value, Mapping):
            return PSHashtable(value.items())
        raise _cast_error(value, "System.Collections.Hashtable")
    if kind == "pscustomobject":
        if isinstance(value, Mapping):
            return PSObject(["System.Management.Automation.PSCustomObject", "System.Object"], [(to_str(k), v) for k, v in value.items()])
        return value
    if kind == "object":
        return value
    if kind == "char":
        text = to_str(value) if not isinstance(value, int) else chr(value)
        if len(text) != 1:
            raise _cast_error(value, "System.Char")
        return text
    if kind == "guid":
        try:
            return str(uuid.UUID(to_str(value)))
        except ValueError:
            raise _cast_error(value, "System.Guid") from None
    if kind == "void":
        return VOID
    if kind == "scriptblock":
        if isinstance(value, ScriptBlock):
            return value
        raise ScriptRefused("Creating script blocks from strings is not allowed in a Mailshift session.", error_id="TypeNotAllowed")
    if kind == "bytes":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        try:
            return bytes(_to_int(v) for v in enumerate_output(value))
        except (ValueError, RuntimeFailure):
            raise _cast_error(value, "System.Byte[]") from None
    raise ScriptRefused(f"The type [{type_name}] is not available in a Mailshift session.", error_id="TypeNotAllowed")


def is_instance(value: Any, type_name: str) -> bool:
    """``value -is [TypeName]``."""
    kind = canonical_type(type_name)
    checks: dict[str, Callable[[Any], bool]] = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, float),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "datetime": lambda v: isinstance(v, datetime),
        "timespan": lambda v: isinstance(v, timedelta),
        "array": lambda v: isinstance(v, (list, tuple, bytes)),
        "hashtable": lambda v: isinstance(v, dict),
        "pscustomobject": lambda v: isinstance(v, PSObject),
        "object": lambda v: v is not None,
        "scriptblock": lambda v: isinstance(v, ScriptBlock),
        "bytes": lambda v: isinstance(v, (bytes, bytearray)),
    }
    if kind is not None and kind in checks:
        return checks[kind](value)
    if isinstance(value, PSObject):
        wanted = _normalize_type(type_name)
        return any(_normalize_type(t) == wanted or _normalize_type(t).endswith("." + wanted) for t in value.type_names)
    return False


# -- members ----------------------------------------------------------------------------------------------

_MISSING = object()


def _datetime_property(value: datetime, name: str) -> Any:
    props: dict[str, Callable[[datetime], Any]] = {
        "year": lambda d: d.year,
        "month": lambda d: d.month,
        "day": lambda d: d.day,
        "hour": lambda d: d.hour,
        "minute": lambda d: d.minute,
        "second": lambda d: d.second,
        "millisecond": lambda d: d.microsecond // 1000,
        "date": lambda d: d.replace(hour=0, minute=0, second=0, microsecond=0),
        "dayofweek": lambda d: _DAYS[d.weekday()],
        "dayofyear": lambda d: d.timetuple().tm_yday,
        "kind": lambda d: "Unspecified" if d.tzinfo is None else ("Utc" if d.utcoffset() == timedelta(0) and d.tzinfo is timezone.utc else "Local"),
        "timeofday": lambda d: timedelta(hours=d.hour, minutes=d.minute, seconds=d.second, microseconds=d.microsecond),
    }
    getter = props.get(name.lower())
    return getter(value) if getter else _MISSING


def _timespan_property(value: timedelta, name: str) -> Any:
    total = value.total_seconds()
    whole = int(total)
    props: dict[str, Any] = {
        "days": int(total / 86400),
        "hours": int(abs(whole) % 86400 // 3600) * (1 if total >= 0 else -1),
        "minutes": int(abs(whole) % 3600 // 60) * (1 if total >= 0 else -1),
        "seconds": int(abs(whole) % 60) * (1 if total >= 0 else -1),
        "milliseconds": int(round((total - whole) * 1000)),
        "totaldays": total / 86400,
        "totalhours": total / 3600,
        "totalminutes": total / 60,
        "totalseconds": total,
        "totalmilliseconds": total * 1000,
        "ticks": int(total * 10_000_000),
    }
    return props.get(name.lower(), _MISSING)


def get_property(value: Any, name: str) -> Any:
    """``value.Name``: a property, a hashtable key, or member enumeration over an array; None when absent."""
    low = name.lower()
    if value is None:
        return 0 if low == "count" else None
    if isinstance(value, PSObject):
        if name in value:
            return value[name]
        if low in ("count", "length"):
            return 1
        if low == "pstypenames":
            return list(value.type_names)
        return None
    if isinstance(value, dict):
        if name in value:
            return value[name]
        if low == "count":
            return len(value)
        if low == "keys":
            return list(value.keys())
        if low == "values":
            return list(value.values())
        return None
    if isinstance(value, str):
        if low == "length":
            return len(value)
        return 1 if low == "count" else None
    if isinstance(value, (bytes, bytearray, list, tuple)):
        if low in ("count", "length"):
            return len(value)
        results: list[Any] = []
        for item in value:
            got = get_property(item, name)
            if is_enumerable(got):
                results.extend(got)
            elif got is not None:
                results.append(got)
        if not results:
            return None
        return results[0] if len(results) == 1 else results
    if isinstance(value, datetime):
        got = _datetime_property(value, name)
        if got is not _MISSING:
            return got
    if isinstance(value, timedelta):
        got = _timespan_property(value, name)
        if got is not _MISSING:
            return got
    if low in ("count", "length"):
        return 1
    return None


def index_value(value: Any, index: Any) -> Any:
    """``value[index]`` (negative indexes from the end, an array of indexes gives an array).

    Raises:
        RuntimeFailure: when indexing into null.
    """
    if value is None:
        raise RuntimeFailure("Cannot index into a null array.", error_id="NullArray")
    if isinstance(value, dict):
        return value.get(index)
    if isinstance(index, (list, tuple)):
        return [index_value(value, i) for i in index]
    if isinstance(value, (str, list, tuple, bytes, bytearray)):
        try:
            i = _to_int(index)
        except RuntimeFailure:
            return None
        if -len(value) <= i < len(value):
            return value[i]
        return None
    if isinstance(value, PSObject):
        return value.get(to_str(index)) if isinstance(index, str) else (value if _to_int(index) in (0, -1) else None)
    try:
        return value if _to_int(index) in (0, -1) else None
    except RuntimeFailure:
        return None


def _no_method(value: Any, name: str) -> RuntimeFailure:
    return RuntimeFailure(
        f"Method invocation failed because [{type_display_name(value)}] does not contain a method named '{name}'.",
        error_id="MethodNotFound",
    )


def _split_chars(text: str, separators: list[Any]) -> list[str]:
    chars = "".join(to_str(s) for s in separators) if separators else " \t\n\r\v\f"
    if not chars:
        return [text]
    pieces = sum(text.count(c) for c in set(chars)) + 1
    if pieces > MAX_COLLECTION_LENGTH:
        raise collection_too_large(pieces, MAX_COLLECTION_LENGTH)
    return re.split("[" + re.escape(chars) + "]", text)


def _string_method(value: str, low: str, args: list[Any]) -> Any:
    a = [to_str(x) for x in args]
    if low in ("toupper", "toupperinvariant"):
        return value.upper()
    if low in ("tolower", "tolowerinvariant"):
        return value.lower()
    if low in ("trim", "trimstart", "trimend"):
        chars = "".join(a) if a else None
        return {"trim": value.strip, "trimstart": value.lstrip, "trimend": value.rstrip}[low](chars)
    if low == "split":
        return _split_chars(value, args[:1] if args and not isinstance(args[0], int) else [])
    if low == "replace" and len(a) == 2:
        if not a[0]:
            return value
        length = len(value) + value.count(a[0]) * (len(a[1]) - len(a[0]))
        if length > MAX_STRING_LENGTH:
            raise string_too_long(length, MAX_STRING_LENGTH)
        return value.replace(a[0], a[1])
    if low == "startswith" and a:
        return value.startswith(a[0])
    if low == "endswith" and a:
        return value.endswith(a[0])
    if low == "contains" and a:
        return a[0] in value
    if low == "indexof" and a:
        return value.find(a[0])
    if low == "lastindexof" and a:
        return value.rfind(a[0])
    if low == "substring" and args:
        start = _to_int(args[0])
        if start > len(value):
            raise RuntimeFailure(
                'Exception calling "Substring" with "1" argument(s): "startIndex cannot be larger than length of string."',
                error_id="ArgumentOutOfRangeException",
            )
        return value[start : start + _to_int(args[1])] if len(args) > 1 else value[start:]
    if low in ("padleft", "padright") and args:
        fill = a[1] if len(a) > 1 and a[1] else " "
        width = _to_int(args[0])
        if width > MAX_STRING_LENGTH:
            raise string_too_long(width, MAX_STRING_LENGTH)
        return value.rjust(width, fill) if low == "padleft" else value.ljust(width, fill)
    if low == "equals" and a:
        return value == a[0]
    if low == "tochararray":
        if len(value) > MAX_COLLECTION_LENGTH:
            raise collection_too_large(len(value), MAX_COLLECTION_LENGTH)
        return list(value)
    if low == "tostring":
        return value
    return _MISSING


def _datetime_method(value: datetime, low: str, args: list[Any]) -> Any:
    adders = {
        "adddays": "days",
        "addhours": "hours",
        "addminutes": "minutes",
        "addseconds": "seconds",
        "addmilliseconds": "milliseconds",
    }
    if low in adders and args:
        return value + timedelta(**{adders[low]: float(to_number(args[0]))})
    if low in ("addmonths", "addyears") and args:
        months = _to_int(args[0]) * (12 if low == "addyears" else 1)
        total = value.month - 1 + months
        year, month = value.year + total // 12, total % 12 + 1
        day = min(value.day, [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1])
        return value.replace(year=year, month=month, day=day)
    if low == "touniversaltime":
        return value.astimezone(timezone.utc)
    if low == "tolocaltime":
        return value.astimezone()
    if low == "tostring":
        return format_datetime(value, to_str(args[0]) if args else "G")
    if low == "toshortdatestring":
        return format_datetime(value, "d")
    if low == "tolongdatestring":
        return format_datetime(value, "D")
    if low == "toshorttimestring":
        return format_datetime(value, "t")
    if low == "tolongtimestring":
        return format_datetime(value, "T")
    if low == "subtract" and args:
        other = args[0]
        if isinstance(other, datetime):
            return _naive(value) - _naive(other) if (value.tzinfo is None) != (other.tzinfo is None) else value - other
        if isinstance(other, timedelta):
            return value - other
    return _MISSING


def _dict_method(value: dict[Any, Any], low: str, args: list[Any]) -> Any:
    if low == "containskey" and args:
        return args[0] in value
    if low == "containsvalue" and args:
        return any(ps_equals(v, args[0]) for v in value.values())
    if low == "add" and len(args) == 2:
        if args[0] in value:
            raise RuntimeFailure(
                f"Exception calling \"Add\" with \"2\" argument(s): \"Item has already been added. Key in dictionary: '{to_str(args[0])}'\"",
                error_id="ArgumentException",
            )
        value[args[0]] = args[1]
        return VOID
    if low == "remove" and args:
        value.pop(args[0], None)
        return VOID
    if low == "clear":
        value.clear()
        return VOID
    if low == "getenumerator":
        return [PSObject(["System.Collections.DictionaryEntry"], {"Name": k, "Key": k, "Value": v}) for k, v in value.items()]
    if low == "clone":
        return PSHashtable(value.items())
    return _MISSING


def call_method(value: Any, name: str, args: list[Any]) -> Any:
    """``value.Name(args)`` for the few methods the subset offers on strings, dates, arrays, hashtables.

    Raises:
        RuntimeFailure: on null, or when the value has no such method.
    """
    low = name.lower()
    if value is None:
        raise RuntimeFailure("You cannot call a method on a null-valued expression.", error_id="InvokeMethodOnNull")
    result: Any = _MISSING
    if isinstance(value, str):
        result = _string_method(value, low, args)
    elif isinstance(value, datetime):
        result = _datetime_method(value, low, args)
    elif isinstance(value, dict):
        result = _dict_method(value, low, args)
    elif isinstance(value, (list, tuple, bytes, bytearray)):
        if low == "contains" and args:
            result = any(ps_equals(v, args[0]) for v in value)
        elif low == "indexof" and args:
            result = next((i for i, v in enumerate(value) if ps_equals(v, args[0])), -1)
        elif low == "tostring":
            result = "System.Byte[]" if isinstance(value, (bytes, bytearray)) else "System.Object[]"
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and low == "tostring":
        result = format_value(value, to_str(args[0])) if args else to_str(value)
    elif isinstance(value, timedelta) and low == "tostring":
        result = _timespan_text(value)
    if result is not _MISSING:
        return result
    if low == "tostring" and not args:
        return to_str(value)
    if low == "equals" and len(args) == 1:
        return ps_equals(value, args[0])
    if low == "gettype" and not args:
        full = type_display_name(value)
        return PSObject(["System.RuntimeType"], {"Name": full.rsplit(".", 1)[-1], "FullName": full}, text=full)
    raise _no_method(value, name)


def flatten(values: Iterable[Any]) -> list[Any]:
    """Concatenate the enumerations of several values."""
    out: list[Any] = []
    for v in values:
        out.extend(enumerate_output(v))
    return out
