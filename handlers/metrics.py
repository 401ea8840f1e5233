"""/metrics: prometheus_client families in a registry of the bot's own.

Each MigrateBot has its own CollectorRegistry, never prometheus_client's global one: several bots run
in one test process, and a second Counter of the same name in the global registry is an error.

What feeds it (the composition root, bot/app.py, wires each source once):
- Slack requests, acks, commands, refusals, redeliveries, expiries: `inc(name, **labels)` from the
  handlers; ack latency: `observe_ack(kind, seconds)` from handlers/front_door.py.
- Waves by state: `watch_waves(counts)`, a callable read at scrape time (one GROUP BY in the database).
- Evictions: `on_engine_event`, an EventBus subscriber; it turns WaveProgress's running counts into
  counter increments.
- Canary runs: `on_canary_run`, a CanaryRunner observer.
- Outside API errors: `watch_api_errors()`, which registers with bot.adapters.errors' observers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.adapters.errors import AdapterError, error_kind, observe_errors
from bot.domain.waves import WaveState
from bot.engine.events import Event, WaveProgress

if TYPE_CHECKING:
    from bot.canary.runner import RunReport

log = logging.getLogger(__name__)

# What /metrics answers with: the Prometheus text format, version 0.0.4 (what generate_latest writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name → (help, label names). `inc` refuses a name or a label set not declared here.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "migratebot_slack_requests_total": (
        "Requests received on /slack/events, by HTTP status answered.",
        ("status",),
    ),
    "migratebot_slack_acks_total": ("Requests acknowledged (200) on /slack/events.", ()),
    "migratebot_commands_total": ("/migrate commands parsed, by verb.", ("verb",)),
    "migratebot_refusals_total": (
        "Asks refused, by reason (signature, usage, channel, role, stale, …).",
        ("reason",),
    ),
    "migratebot_redeliveries_dropped_total": (
        "Slack redeliveries and replays acknowledged, not acted on.",
        (),
    ),
    "migratebot_requests_expired_total": ("Wave requests expired by the sweep before anyone decided.", ()),
    "migratebot_evictions_total": (
        "Pod evictions by the engine's drains, by cluster and outcome: evicted (the API accepted the "
        "eviction), retried (a PodDisruptionBudget answered 429; the drain tries again), refused (the "
        "drain will not evict the pod: no controller, or its DaemonSet is gone — the node is not "
        "drained), failed (the API refused the eviction for good).",
        ("cluster", "outcome"),
    ),
    "migratebot_canary_runs_total": (
        "Canary check runs of baking waves, by cluster and result (pass, fail, inconclusive).",
        ("cluster", "result"),
    ),
    "migratebot_api_errors_total": (
        "Failed calls to Kubernetes (each attempt), AWS (after botocore's retries) and the Slack Web API "
        "(each attempt), by target, HTTP status (none: no answer) and migratebot's error class. A "
        "drain sees each evicted pod gone as a kube 404, and a disruption budget's no as a 429.",
        ("target", "status", "error"),
    ),
}

# Slack wants its ack within 3 s: the buckets resolve the fast path (~1-2 ms) and that deadline.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)

WaveCounts = Callable[[], Mapping[tuple[str, str], int]]

# WaveProgress's running counts, by the outcome label each one feeds.
_EVICTION_COUNTS: dict[str, Callable[[WaveProgress], int]] = {
    "evicted": lambda e: e.pods_evicted,
    "retried": lambda e: e.evictions_retried,
    "refused": lambda e: e.pods_refused,
    "failed": lambda e: e.evictions_failed,
}


class Metrics:
    def __init__(self) -> None:
        # `_created` series double the page and Prometheus' text format has no use for them.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self._counters = {
            name: Counter(name, help_text, labels, registry=self.registry)
            for name, (help_text, labels) in COUNTERS.items()
        }
        self._ack_seconds = Histogram(
            "migratebot_slack_ack_seconds",
            "Time from a request reaching /slack/events to its answer (the ack Slack waits for, 3 s at "
            "most), by kind: command, interaction, event.",
            ("kind",),
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self._waves = _WaveStates()
        self.registry.register(self._waves)
        self._lock = threading.Lock()
        self._evictions_seen: dict[int, dict[str, int]] = {}
        self._unwatch_errors: Callable[[], None] | None = None

    # ---- counters ------------------------------------------------------------------------------

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        counter = self._counter(name)
        if labels:
            counter.labels(**labels).inc(amount)
        else:
            counter.inc(amount)

    def value(self, name: str, **labels: str) -> int:
        """A counter's value now (0 for a label set never counted)."""
        for family in self._counter(name).collect():
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return int(sample.value)
        return 0

    def _counter(self, name: str) -> Counter:
        try:
            return self._counters[name]
        except KeyError:
            raise KeyError(f"unknown counter {name}: declare it in handlers/metrics.py COUNTERS") from None

    # ---- Slack acks ----------------------------------------------------------------------------

    def observe_ack(self, kind: str, seconds: float) -> None:
        self._ack_seconds.labels(kind=kind).observe(seconds)

    def acks_observed(self, kind: str) -> int:
        """How many acks of this kind the histogram holds."""
        for family in self._ack_seconds.collect():
            for sample in family.samples:
                if sample.name.endswith("_count") and sample.labels == {"kind": kind}:
                    return int(sample.value)
        return 0

    # ---- sources the composition root attaches ---------------------------------------------------

    def watch_waves(self, counts: WaveCounts) -> None:
        """Read wave counts {(cluster, state): n} from `counts` at each scrape (calling it again
        replaces the source). Scrape /metrics off the event loop: `counts` reads the database."""
        self._waves.source = counts

    def watch_api_errors(self) -> Callable[[], None]:
        """Count every error the adapters report from now on; returns the function that stops it."""
        if self._unwatch_errors is None:
            self._unwatch_errors = observe_errors(self.on_api_error)
        return self.unwatch_api_errors

    def unwatch_api_errors(self) -> None:
        if self._unwatch_errors is not None:
            self._unwatch_errors()
            self._unwatch_errors = None

    def on_api_error(self, target: str, error: AdapterError) -> None:
        status = str(error.status) if error.status is not None else "none"
        self.inc("migratebot_api_errors_total", target=target, status=status, error=error_kind(error))

    def on_engine_event(self, event: Event) -> None:
        """EventBus subscriber. WaveProgress carries running counts: each increase since the last one
        seen is counted. Publishers on several drain threads may deliver an older count after a newer
        one, so a count that went down is ignored, not taken for a restart."""
        if not isinstance(event, WaveProgress):
            return
        counts = {outcome: read(event) for outcome, read in _EVICTION_COUNTS.items()}
        with self._lock:
            seen = self._evictions_seen.get(event.wave.wave_id)
            if seen is None:
                # pods_evicted counts the wave's evictions from the database, earlier runs included:
                # the first one seen is where this process starts. The others count this process's.
                seen = dict.fromkeys(counts, 0) | {"evicted": counts["evicted"]}
                self._evictions_seen[event.wave.wave_id] = seen
            increases = {o: n - seen[o] for o, n in counts.items() if n > seen[o]}
            seen.update({o: counts[o] for o in increases})
        for outcome, amount in increases.items():
            self.inc("migratebot_evictions_total", amount, cluster=event.wave.cluster, outcome=outcome)

    def on_canary_run(self, report: RunReport) -> None:
        """CanaryRunner observer: one run's verdict."""
        self.inc(
            "migratebot_canary_runs_total", cluster=report.wave.cluster, result=report.outcome.verdict.value
        )

    # ---- the page --------------------------------------------------------------------------------

    def render(self) -> str:
        """The Prometheus text page (CONTENT_TYPE). Blocking: the wave counts come from the database."""
        return generate_latest(self.registry).decode("utf-8")


class _WaveStates(Collector):
    """`migratebot_waves{cluster, state}`: every state of every cluster, zeros included, so that a
    dashboard tells "no wave executing" from "no data"."""

    def __init__(self) -> None:
        self.source: WaveCounts | None = None

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        source = self.source
        if source is not None:
            try:
                counts = {(cluster, str(state)): n for (cluster, state), n in source().items()}
            except Exception:
                log.warning("could not count the waves for /metrics", exc_info=True)
                counts = {}
            for cluster in sorted({cluster for cluster, _ in counts}):
                for state in WaveState:
                    family.add_metric([cluster, state.value], counts.get((cluster, state.value), 0))
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "migratebot_waves",
            "Waves in each state, by cluster, read from the database at scrape time.",
            labels=("cluster", "state"),
        )
