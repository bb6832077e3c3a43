"""Mailshift.Format.ps1xml: the default views of the output types, from ``shim.cmdlets.objects.VIEWS``.

Every type gets a table view (what ``Format-Table`` shows); a type whose default is a list
(``TableView.default == "list"``) gets its list view first, because PowerShell displays an
object with the first view registered for its type. Table-default types get no list view, so
``Format-List`` keeps showing every property, as it does for Exchange's objects.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from shim.host import TableView

__all__ = ["render_formats"]


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _table(views: etree._Element, type_name: str, view: TableView) -> None:
    element = _sub(views, "View")
    _sub(element, "Name", type_name)
    _sub(_sub(element, "ViewSelectedBy"), "TypeName", type_name)
    table = _sub(element, "TableControl")
    headers = _sub(table, "TableHeaders")
    for column in view.columns:
        header = _sub(headers, "TableColumnHeader")
        _sub(header, "Label", view.labels.get(column, column))
    items = _sub(_sub(_sub(table, "TableRowEntries"), "TableRowEntry"), "TableColumnItems")
    for column in view.columns:
        _sub(_sub(items, "TableColumnItem"), "PropertyName", column)


def _list(views: etree._Element, type_name: str, view: TableView) -> None:
    element = _sub(views, "View")
    _sub(element, "Name", f"{type_name}.List")
    _sub(_sub(element, "ViewSelectedBy"), "TypeName", type_name)
    items = _sub(_sub(_sub(_sub(element, "ListControl"), "ListEntries"), "ListEntry"), "ListItems")
    for column in view.columns:
        item = _sub(items, "ListItem")
        if column in view.labels:
            _sub(item, "Label", view.labels[column])
        _sub(item, "PropertyName", column)


def render_formats(views: Mapping[str, TableView], marker: str) -> bytes:
    """The format file's bytes (UTF-8, no XML declaration so the marker comment can be line one)."""
    root = etree.Element("Configuration")
    container = _sub(root, "ViewDefinitions")
    for type_name, view in views.items():
        if view.default == "list":
            _list(container, type_name, view)
        _table(container, type_name, view)
    text = etree.tostring(root, encoding="unicode", pretty_print=True)
    return f"<!-- {marker} -->\n{text}".encode()
