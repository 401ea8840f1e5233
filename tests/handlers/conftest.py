from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_world import World, WorldFactory


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The example plan, a fresh database, the emulated Slack and migratebot serving /slack/events."""
    yield from WorldFactory(tmp_path)()
