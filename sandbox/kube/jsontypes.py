"""The JSON shapes the sandbox passes around: objects as dicts, and any JSON value."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
# Any JSON value (object, array, string, number, bool, null): what a field of an object may hold.
JSONValue = Any
