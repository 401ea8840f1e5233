"""bot/canary decides and emits; it never speaks Slack (handlers/alerts.py does)."""

from __future__ import annotations

import ast
from pathlib import Path

CANARY = Path(__file__).resolve().parents[2] / "bot" / "canary"
FORBIDDEN = ("slack_sdk", "slack_bolt", "handlers", "bot.adapters.slack")


def test_no_module_of_the_canary_imports_slack_or_the_handlers() -> None:
    offenders = []
    for source in sorted(CANARY.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            offenders += [f"{source.name}: {name}" for name in names if name.startswith(FORBIDDEN)]
    assert offenders == []
