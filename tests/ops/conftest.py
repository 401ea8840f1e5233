from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The whole Slack loop lives beside the handler tests; the operations tests start the same world.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))

from bot_world import World, WorldFactory


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from WorldFactory(tmp_path)()
