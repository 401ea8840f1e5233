"""`make soak`: the chaos suite arrives with the benchmarks and reliability issue."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    print(
        "make soak: the chaos suite (kill -9, cut DB connections, API faults) has not landed yet; "
        "it arrives with the benchmarks and reliability issue. Nothing was run.",
        file=sys.stderr,
    )
    raise SystemExit(2)
