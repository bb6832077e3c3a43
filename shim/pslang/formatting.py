"""Console formatting as Windows PowerShell 5.1 prints objects: tables, lists, scalars.

Tables: a blank line, the headers, a line of dashes under each header, one row per object,
a blank line. Columns are as wide as their content (like ``-AutoSize``), separated by one
space; numbers are right-aligned (their header too). Lists: ``Name : Value`` with names padded
to the longest, objects separated by a blank line. An object's shape comes from the host's
default view for its type; without one, up to four properties make a table and more a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shim.host import CommandHost
from shim.pslang.records import ErrorRecord
from shim.pslang.values import VOID, FormattedText, display_text, format_datetime, get_property, is_enumerable, to_str
from shim.psobject import PSObject

__all__ = ["Column", "default_columns", "format_objects", "render_list", "render_table", "scalar_text"]

#: Width of the Name column when a hashtable prints (as PowerShell 5.1 does).
HASHTABLE_NAME_WIDTH = 30


@dataclass(frozen=True)
class Column:
    """One column of a table (or one line of a list entry): its heading and how to get its value."""

    label: str
    getter: Callable[[Any], Any]

    @staticmethod
    def of(name: str, label: str | None = None) -> Column:
        """A column showing the property ``name``."""
        return Column(label or name, lambda obj: get_property(obj, name))


def _all_properties(obj: Any) -> list[Column]:
    if isinstance(obj, PSObject):
        return [Column.of(n) for n in obj.names()]
    if isinstance(obj, dict):
        return [Column.of(to_str(k)) for k in obj]
    return []


def default_columns(obj: Any, host: CommandHost | None, view: Literal["table", "list"] | None) -> tuple[str, list[Column]]:
    """The shape an object prints in: ("table" or "list", columns).

    Args:
        obj: A PSObject.
        host: The host whose ``view`` names the type's default columns (may be None).
        view: A forced shape (Format-Table / Format-List), or None for Out-Default's choice.

    Returns:
        The mode and the columns.
    """
    table_view = host.view(obj) if host is not None and isinstance(obj, PSObject) else None
    if table_view is not None:
        columns = [Column.of(c, table_view.labels.get(c)) for c in table_view.columns]
        mode = view or table_view.default
        if mode == "list" and table_view.default != "list":
            return "list", _all_properties(obj)
        return mode, columns
    props = _all_properties(obj)
    if view is not None:
        return view, props
    return ("table" if len(props) <= 4 else "list"), props


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    return display_text(value).replace("\r\n", " ").replace("\n", " ")


def render_table(objects: Sequence[Any], columns: Sequence[Column], hide_headers: bool = False) -> str:
    """A table of ``objects`` with ``columns``, framed by blank lines.

    Args:
        objects: The rows.
        columns: The columns.
        hide_headers: Leave out the header and dash lines (``-HideTableHeaders``).

    Returns:
        The table text.
    """
    values = [[col.getter(obj) for col in columns] for obj in objects]
    numeric = []
    for c in range(len(columns)):
        present = [row[c] for row in values if row[c] is not None]
        numeric.append(bool(present) and all(_is_number(v) for v in present))
    cells = [[_cell(v) for v in row] for row in values]
    widths = [max([len(col.label)] + [len(row[c]) for row in cells]) for c, col in enumerate(columns)]

    def line(texts: Sequence[str]) -> str:
        parts = [t.rjust(w) if num else t.ljust(w) for t, w, num in zip(texts, widths, numeric)]
        return " ".join(parts).rstrip()

    lines: list[str] = []
    if not hide_headers:
        lines.append(line([col.label for col in columns]))
        lines.append(line(["-" * len(col.label) for col in columns]))
    lines.extend(line(row) for row in cells)
    return "\n" + "\n".join(lines) + "\n\n"


def _list_block(obj: Any, columns: Sequence[Column]) -> str:
    if not columns:
        return scalar_text(obj)
    width = max(len(col.label) for col in columns)
    lines: list[str] = []
    for col in columns:
        text = display_text(col.getter(obj))
        first, *rest = text.split("\n") if text else [""]
        lines.append(f"{col.label.ljust(width)} : {first}".rstrip())
        lines.extend((" " * (width + 3) + more).rstrip() for more in rest)
    return "\n".join(lines)


def render_list(objects: Sequence[Any], columns: Sequence[Column] | Callable[[Any], Sequence[Column]]) -> str:
    """A list (``Name : Value``) of ``objects``, one block per object, framed by blank lines.

    Args:
        objects: The objects.
        columns: The lines of each block, or a function giving them per object.

    Returns:
        The list text.
    """
    blocks = [_list_block(obj, columns(obj) if callable(columns) else columns) for obj in objects]
    return "\n" + "\n\n".join(blocks) + "\n\n"


def _render_hashtables(tables: Sequence[dict[Any, Any]]) -> str:
    rows = [(to_str(k), _cell(v)) for table in tables for k, v in table.items()]
    width = max([HASHTABLE_NAME_WIDTH] + [len(k) for k, _ in rows])
    lines = [f"{'Name'.ljust(width)} Value", f"{'----'.ljust(width)} -----"]
    lines.extend(f"{k.ljust(width)} {v}".rstrip() for k, v in rows)
    return "\n" + "\n".join(lines) + "\n\n"


def scalar_text(obj: Any) -> str:
    """A scalar as it prints on a line of its own (a DateTime in its long form)."""
    if isinstance(obj, datetime):
        return format_datetime(obj, "dddd, MMMM d, yyyy h:mm:ss tt")
    if isinstance(obj, PSObject):
        return str(obj)
    return display_text(obj) if isinstance(obj, dict) else to_str(obj)


def _flatten(objects: Iterable[Any]) -> Iterable[Any]:
    for obj in objects:
        if is_enumerable(obj):
            yield from obj
        else:
            yield obj


def format_objects(
    objects: Iterable[Any], host: CommandHost | None, view: Literal["table", "list"] | None = None
) -> str:
    """Format output objects the way Out-Default prints them on a PowerShell 5.1 console.

    Consecutive objects of one type share a table; a change of type starts a new one. Strings
    and numbers print one per line; Format-* output prints as it is.

    Args:
        objects: The output objects.
        host: Supplies each type's default view (may be None).
        view: Force "table" or "list" (Format-Table / Format-List with default columns).

    Returns:
        The text, with line breaks ``\\n``.
    """
    out: list[str] = []
    group: list[Any] = []
    group_key: tuple[Any, ...] | None = None
    group_columns: list[Column] = []

    def flush() -> None:
        nonlocal group_key
        if not group:
            return
        assert group_key is not None
        if group_key[0] == "hashtable":
            out.append(_render_hashtables(group))
        elif group_key[0] == "table":
            out.append(render_table(group, group_columns))
        else:
            out.append(render_list(group, group_columns))
        group.clear()
        group_key = None

    for obj in _flatten(objects):
        if obj is None or obj is VOID:
            continue
        if isinstance(obj, FormattedText):
            flush()
            out.append(obj.text)
            continue
        if isinstance(obj, ErrorRecord) or (isinstance(obj, PSObject) and not obj.properties):
            flush()
            out.append(str(obj) + "\n")
            continue
        if isinstance(obj, dict) and view != "list":
            if group_key != ("hashtable",):
                flush()
                group_key = ("hashtable",)
            group.append(obj)
            continue
        if isinstance(obj, (PSObject, dict)):
            mode, columns = default_columns(obj, host, view)
            type_name = obj.type_name if isinstance(obj, PSObject) else "hashtable"
            key = (mode, type_name, tuple(c.label for c in columns))
            if key != group_key:
                flush()
                group_key = key
                group_columns = columns
            group.append(obj)
            continue
        flush()
        out.append(scalar_text(obj) + "\n")
    flush()
    return "".join(out)
