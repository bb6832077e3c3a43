"""Output objects as PowerShell sees them: type names plus ordered, case-insensitive properties.

The registry builds these from engine views; the script interpreter reads properties from them,
the formatter prints them, and each door serializes them (JSON, CLIXML, PSRP). An object may
carry ``text``: what it turns into as a string (a batch's Identity prints as its name, a
Test-MigrationServerAvailability result as ``Success``), used by string conversion and by
comparisons with strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["PSObject"]


class PSObject:
    """A PSCustomObject with ``PSTypeNames`` (most specific first) and ordered properties."""

    __slots__ = ("type_names", "_props", "_keys", "text")

    def __init__(
        self,
        type_names: Iterable[str],
        properties: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        *,
        text: str | None = None,
    ) -> None:
        self.type_names: list[str] = list(type_names)
        self._props: dict[str, Any] = {}
        self._keys: dict[str, str] = {}
        items = properties.items() if isinstance(properties, Mapping) else properties
        for name, value in items:
            self[name] = value
        self.text = text

    # -- properties, case-insensitively ---------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self._props[self._keys[name.lower()]]

    def __setitem__(self, name: str, value: Any) -> None:
        key = self._keys.setdefault(name.lower(), name)
        self._props[key] = value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._keys

    def get(self, name: str, default: Any = None) -> Any:
        """The property's value, or ``default`` when the object has no such property."""
        key = self._keys.get(name.lower())
        return default if key is None else self._props[key]

    def property_name(self, name: str) -> str | None:
        """The property's declared spelling for a name in any case, or None."""
        return self._keys.get(name.lower())

    @property
    def properties(self) -> dict[str, Any]:
        """The properties in declaration order (a copy)."""
        return dict(self._props)

    def names(self) -> Iterator[str]:
        """Property names in declaration order."""
        return iter(self._props)

    @property
    def type_name(self) -> str:
        """The most specific type name (what ``Get-Member`` shows first)."""
        return self.type_names[0] if self.type_names else "System.Management.Automation.PSCustomObject"

    def __str__(self) -> str:
        if self.text is not None:
            return self.text
        return "@{" + "; ".join(f"{k}={_brief(v)}" for k, v in self._props.items()) + "}"

    def __repr__(self) -> str:
        return f"PSObject({self.type_name!r}, {self._props!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PSObject):
            return self.type_names == other.type_names and self._props == other._props and self.text == other.text
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _brief(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_brief(v) for v in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)
