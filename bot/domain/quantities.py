"""Kubernetes resource quantities ("250m", "512Mi", "4Gi") as integers: millicores and bytes."""

from __future__ import annotations

import re
from typing import Any

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "m": 1,  # handled apart: milli
}
_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][0-9]+)?)([a-zA-Z]*)$")


def cpu_millis(value: Any) -> int:
    """A CPU quantity ("250m", "1", "0.5") in millicores; unreadable → 0."""
    text = str(value or "").strip()
    match = _QUANTITY.match(text)
    if not match:
        return 0
    number, suffix = float(match[1]), match[2]
    if suffix == "m":
        return round(number)
    return round(number * _SUFFIX.get(suffix, 1) * 1000)


def byte_count(value: Any) -> int:
    """A memory or storage quantity ("512Mi", "4Gi", "1G", "100") in bytes; unreadable → 0."""
    text = str(value or "").strip()
    match = _QUANTITY.match(text)
    if not match:
        return 0
    number, suffix = float(match[1]), match[2]
    if suffix == "m":
        return round(number / 1000)
    return round(number * _SUFFIX.get(suffix, 1))
