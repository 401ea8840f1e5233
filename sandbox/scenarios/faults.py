"""API-level faults: what a slow or overloaded apiserver (and the load balancer in front) does.

`ApiFaults.hook` is installed as `KubeApi.request_hook`: after authentication it sleeps the latency,
answers a share of requests 429/500/503 with `Retry-After` (as API Priority and Fairness and an
overloaded apiserver do), and shortens watches so they end early (clients must re-watch from their
last resourceVersion). Settings change at runtime through the admin surface; everything is seeded
so a fault run is reproducible.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

from sandbox.kube import errors
from sandbox.kube.app import RequestInfo
from sandbox.kube.auth import User
from sandbox.kube.jsontypes import JSON
from sandbox.scenarios.model import ApiFaultSpec

_SERVER_ERRORS = {
    500: ("InternalError", "Internal error occurred: etcdserver: request timed out"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
}


@dataclass
class ApiFaultCounts:
    delayed: int = 0
    failed: dict[int, int] = field(default_factory=dict)
    watches_cut: int = 0


class ApiFaults:
    def __init__(self, spec: ApiFaultSpec | None = None) -> None:
        self._lock = threading.Lock()
        self.spec = spec or ApiFaultSpec()
        self._random = random.Random(self.spec.random_seed)
        self.counts = ApiFaultCounts()

    def set(self, spec: ApiFaultSpec) -> None:
        with self._lock:
            self.spec = spec
            self._random = random.Random(spec.random_seed)

    def update(self, changes: JSON) -> ApiFaultSpec:
        """Merge `changes` (ApiFaultSpec's fields) into the current settings; invalid → ValueError."""
        merged = ApiFaultSpec.model_validate({**self.spec.model_dump(), **changes})
        self.set(merged)
        return merged

    def clear(self) -> None:
        self.set(ApiFaultSpec())

    def describe(self) -> JSON:
        with self._lock:
            return {
                **self.spec.model_dump(mode="json"),
                "counts": {
                    "delayed": self.counts.delayed,
                    "failed": {str(k): v for k, v in sorted(self.counts.failed.items())},
                    "watchesCut": self.counts.watches_cut,
                },
            }

    async def hook(self, info: RequestInfo, user: User, query: dict[str, list[str]]) -> None:
        with self._lock:
            spec = self.spec
            if user.name in spec.exempt_users:
                return
            is_watch = info.verb == "watch"
            code = None
            if not is_watch and spec.error_fraction and self._random.random() < spec.error_fraction:
                code = self._random.choice(spec.error_codes)
                self.counts.failed[code] = self.counts.failed.get(code, 0) + 1
            if spec.latency_seconds:
                self.counts.delayed += 1
            if is_watch and spec.watch_disconnect_seconds:
                self.counts.watches_cut += 1
        if spec.latency_seconds:
            await asyncio.sleep(spec.latency_seconds)
        if is_watch and spec.watch_disconnect_seconds:
            asked = float(query.get("timeoutSeconds", ["1800"])[0] or 1800)
            query["timeoutSeconds"] = [str(min(asked, spec.watch_disconnect_seconds))]
        if code is None:
            return
        retry = spec.retry_after_seconds
        if code == 429:
            raise errors.too_many_requests("Too many requests, please try again later.", retry)
        reason, message = _SERVER_ERRORS[code]
        raise errors.ApiError(
            code, reason, message, {"retryAfterSeconds": retry}, headers={"Retry-After": str(retry)}
        )
