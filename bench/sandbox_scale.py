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

    from sandbox.main import Sandbox

    started = time.monotonic()
    with Sandbox("scale", controllers=True if args.controllers else None) as sb:
        elapsed = time.monotonic() - started
        info = sb.info()
        print(f"scale: {info['nodes']} nodes, {info['pods']} pods, controllers: {info['controllers']}")
        print(f"startup: {elapsed:.1f} s  (phases: {sb.startup_seconds})")
        print(f"rss after start: {_rss_mb():.0f} MB (peak so far {_rss_mb('VmHWM'):.0f} MB)")
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
            print(
                f"paginated list of {count} pods: {time.monotonic() - t:.1f} s; "
                f"rss {_rss_mb():.0f} MB, peak {_rss_mb('VmHWM'):.0f} MB"
            )
        stopping = time.monotonic()
    print(f"stop: {time.monotonic() - stopping:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
