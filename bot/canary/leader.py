"""Leader election on a coordination.k8s.io/v1 Lease, client-go's way: only the leader runs the canary
scheduler and the engine, so two replicas never run a check (or a drain) twice.

Every `retry_period` each replica reads the Lease and
- creates it holding it, when there is none;
- renews it (renewTime) when it holds it;
- takes it over when the holder has not renewed for `lease_duration` — measured on this replica's
  own clock from when it last saw the Lease change (client-go's rule: no trust in other clocks);
- otherwise follows.
Writes carry the resourceVersion read, so of two replicas acting on the same read one gets Conflict.
The leader steps down when a renew fails: at once on Conflict (someone else holds it now), or when
renewals keep failing past `renew_deadline`. A replica that stops cleanly releases the Lease, so the
next one takes over within one retry period instead of one lease duration.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.adapters.errors import AdapterError, Conflict, NotFound
from bot.adapters.kube import KubeAdapter, parse_time

log = logging.getLogger(__name__)

Callback = Callable[[], None]


def default_identity() -> str:
    """hostname + pid: unique per process, readable in `kubectl get lease -o yaml`."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _micro_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: KubeAdapter,
        *,
        namespace: str,
        name: str,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callback | None = None,
        on_stopped_leading: Callback | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError(
                f"leader election needs retry_period < renew_deadline < lease_duration, got "
                f"{retry_period} < {renew_deadline} < {lease_duration} — renew well within the lease"
            )
        self._kube = kube
        self.namespace, self.name = namespace, name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._started = on_started_leading or (lambda: None)
        self._stopped = on_stopped_leading or (lambda: None)
        self._monotonic = monotonic
        self._leading = False
        self._last_renew = 0.0
        # What we last saw of the Lease, and when (our clock): the holder expired when it stays the same
        # for a whole lease duration.
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- running ----------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        with self._lock:
            return self._leading

    def start(self) -> LeaderElector:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.renew_deadline + 5)
            self._thread = None
        if self.is_leader():
            if release:
                self._release()
            self._step_down("stopped")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("leader election step failed")
            self._stop.wait(self.retry_period)

    # ---- one round ----------------------------------------------------------------------------------

    def step(self) -> bool:
        """One round: acquire, renew or follow. Returns whether this replica leads afterwards."""
        now = self._monotonic()
        try:
            lease = self._kube.get_lease(self.namespace, self.name)
        except NotFound:
            return self._create(now)
        except AdapterError as error:
            return self._renew_failed(now, f"read lease: {error}")
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        if holder == self.identity:
            return self._write(lease, now, transition=False)
        if self.is_leader():
            self._step_down(f"the lease is held by {holder}")
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and now - self._observed_at < duration:
            return False
        return self._write(lease, now, transition=True)

    def _create(self, now: float) -> bool:
        spec = self._spec(acquired=True, transitions=0)
        try:
            self._kube.create_lease(self.namespace, self.name, spec)
        except Conflict:
            return False
        except AdapterError as error:
            return self._renew_failed(now, f"create lease: {error}")
        return self._lead(now)

    def _write(self, lease: dict[str, Any], now: float, *, transition: bool) -> bool:
        spec = dict(lease.get("spec") or {})
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if transition else 0)
        spec.update(self._spec(acquired=transition, transitions=transitions))
        if not transition and spec.get("acquireTime") is None:
            spec["acquireTime"] = spec["renewTime"]
        try:
            self._kube.replace_lease({**lease, "spec": spec})
        except Conflict:
            if self.is_leader():
                self._step_down("another replica wrote the lease first")
            return False
        except AdapterError as error:
            return self._renew_failed(now, f"update lease: {error}")
        return self._lead(now)

    def _spec(self, *, acquired: bool, transitions: int) -> dict[str, Any]:
        stamp = _micro_time(dt.datetime.now(dt.UTC))
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": stamp,
            "leaseTransitions": transitions,
        }
        if acquired:
            spec["acquireTime"] = stamp
        return spec

    def _lead(self, now: float) -> bool:
        with self._lock:
            self._last_renew = now
            started = not self._leading
            self._leading = True
        if started:
            log.info("%s leads (lease %s/%s)", self.identity, self.namespace, self.name)
            self._started()
        return True

    def _renew_failed(self, now: float, why: str) -> bool:
        log.warning("lease %s/%s: %s", self.namespace, self.name, why)
        if self.is_leader() and now - self._last_renew >= self.renew_deadline:
            self._step_down(f"renewals failed for {now - self._last_renew:.1f}s: {why}")
        return self.is_leader()

    def _step_down(self, why: str) -> None:
        with self._lock:
            was = self._leading
            self._leading = False
        if was:
            log.warning("%s stops leading: %s", self.identity, why)
            self._stopped()

    def _release(self) -> None:
        try:
            lease = self._kube.get_lease(self.namespace, self.name)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                return
            spec.update(
                holderIdentity="", leaseDurationSeconds=1, renewTime=_micro_time(dt.datetime.now(dt.UTC))
            )
            self._kube.replace_lease({**lease, "spec": spec})
        except AdapterError as error:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, error)


def lease_holder(lease: dict[str, Any]) -> tuple[str, dt.datetime | None]:
    """Who holds a Lease and when they last renewed it (for status and tests)."""
    spec = lease.get("spec") or {}
    return str(spec.get("holderIdentity") or ""), parse_time(spec.get("renewTime"))
