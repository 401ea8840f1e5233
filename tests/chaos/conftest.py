"""bench/ is not an installed package (the distribution is the bot): put the repository's root first on
sys.path so `import bench` finds it, as `python -m bench` from the root does."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path[:1]:
    sys.path.insert(0, ROOT)
