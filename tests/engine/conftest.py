"""Engine tests: a sandbox per test, the real kubectl when asked for (fails, never skips, without it)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture
def kubectl_binary() -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not on PATH: the drain equivalence test needs the real kubectl (CI has it)")
    return binary
