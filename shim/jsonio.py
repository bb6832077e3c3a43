"""Objects to JSON and back, as the REST API carries them.

An output object is ``{"typeNames": [...], "properties": {...}, "text": "..."}``; dates are ISO 8601
strings in UTC, time spans ``d.hh:mm:ss``, byte arrays base64 strings.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

from shim.errors import ShimError
from shim.psobject import PSObject

__all__ = ["error_json", "from_json", "to_json"]


def to_json(value: Any) -> Any:
    """A JSON-ready form of an output value."""
    if isinstance(value, PSObject):
        return {"typeNames": value.type_names, "properties": {k: to_json(v) for k, v in value.properties.items()},
                "text": str(value) if value.text is not None else None}
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        return f"{seconds // 86400}.{seconds % 86400 // 3600:02}:{seconds % 3600 // 60:02}:{seconds % 60:02}"
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def from_json(value: Any) -> Any:
    """An input value from JSON: objects in the output shape become PSObjects again (for pipeline input)."""
    if isinstance(value, dict):
        if "properties" in value and isinstance(value["properties"], dict):
            return PSObject(value.get("typeNames") or [], {k: from_json(v) for k, v in value["properties"].items()},
                            text=value.get("text"))
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def error_json(error: ShimError) -> dict[str, Any]:
    """The JSON error shape, used for every error the API reports."""
    return {
        "message": error.message,
        "category": error.category,
        "errorId": error.error_id,
        "fullyQualifiedErrorId": error.fully_qualified_error_id,
        "command": error.command,
        "target": to_json(error.target) if isinstance(error.target, (str, int, list)) else None,
        "terminating": error.terminating,
    }
