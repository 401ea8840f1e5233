"""Start the `scale` scenario (5,000 nodes, 100,000 pods) and print how long it took and the RSS.

    .venv/bin/python -m bench.sandbox_scale [--list]

Not a timed test: figures depend on the machine. `--list` also times a full paginated list of the
pods through the official client (limit 5,000, raw bytes + orjson as an inventory at that size must).
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import orjson


def _rss_mb(field: str = "VmRSS") -> float:
    """The process's resident set now (VmRSS) or at its highest so far (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true", help="also list every pod through the official client")
    parser.add_argument(
        "--controllers", action="store_true", help="run the controllers too (the scenario leaves them off)"
    )
    args = parser.parse_args()

    from bench.results import Figure, Recorder, compared
    from sandbox.main import Sandbox

    recorder = Recorder("sandbox_scale")
    listed: tuple[int, float, float] | None = None
    started = time.monotonic()
    with Sandbox("scale", controllers=True if args.controllers else None) as sb:
        elapsed = time.monotonic() - started
        info = sb.info()
        print(f"scale: {info['nodes']} nodes, {info['pods']} pods, controllers: {info['controllers']}")
        print(f"startup: {elapsed:.1f} s  (phases: {sb.startup_seconds})")
        after_start = _rss_mb()
        print(f"rss after start: {after_start:.0f} MB (peak so far {_rss_mb('VmHWM'):.0f} MB)")
        if args.list:
            from kubernetes import client, config

            kubeconfig = str(sb.kubeconfig)
            api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))  # type: ignore[no-untyped-call]
            t = time.monotonic()
            count, token = 0, None
            while True:
                raw: Any = api.list_pod_for_all_namespaces(
                    limit=5000, _continue=token, _preload_content=False
                )
                page = orjson.loads(raw.data)
                count += len(page["items"])
                token = page["metadata"].get("continue")
                if not token:
                    break
            listed = (count, time.monotonic() - t, _rss_mb())
            print(
                f"paginated list of {count} pods: {listed[1]:.1f} s; "
                f"rss {listed[2]:.0f} MB, peak {_rss_mb('VmHWM'):.0f} MB"
            )
        stopping = time.monotonic()
        scope = f"{info['nodes']:,} nodes, {info['pods']:,} pods, controllers: {info['controllers']}"
    stop_s = time.monotonic() - stopping
    peak = _rss_mb("VmHWM")
    print(f"stop: {stop_s:.1f} s")
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in dict(sb.startup_seconds).items())
    figures: list[Figure] = [
        compared(
            "sandbox_scale.startup", "`scale` sandbox start-up", elapsed, "s", notes=f"{scope}; {phases}"
        ),
        compared(
            "sandbox_scale.rss_after_start", "`scale` sandbox RSS after start", after_start, "MB", limit=2048
        ),
        compared(
            "sandbox_scale.peak_rss", "`scale` sandbox peak RSS of the whole run", peak, "MB", limit=2048
        ),
    ]
    if listed is not None:
        figures.append(
            compared(
                "sandbox_scale.list",
                f"paginated list of {listed[0]:,} pods through the official client (limit 5,000)",
                listed[1],
                "s",
                notes=f"RSS after the list {listed[2]:,.0f} MB; stop {stop_s:.1f} s",
            )
        )
    recorder.emit(figures, {"info": info, "startup_seconds": dict(sb.startup_seconds), "stop_s": stop_s})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
