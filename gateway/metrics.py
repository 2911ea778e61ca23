"""Prometheus collectors: OpenTelemetry GenAI semantic-convention metrics plus gateway_* metrics.

Labels are bounded by design: endpoint names come from the config (a name a client made up is
counted as "(unknown)"), models from the config or the upstream's answer, never from clients.

With `--workers N` the CLI points PROMETHEUS_MULTIPROC_DIR at a private directory (wiped at
start) before the workers import this module, so every worker writes its samples there and one
scrape of any worker shows the sum over all of them.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import os
import platform
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from gateway import __version__

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry(auto_describe=True)

# LLM calls take from milliseconds (errors, cache hits) to minutes (long generations).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
# The gateway's own time per call: tens of microseconds to (when something is wrong) a second.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
# Bucket boundaries the GenAI semantic conventions recommend.
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
GENAI_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
GENAI_TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
GENAI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

GENAI_LABELS = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "endpoint",
)
OPERATION = {"llm/v1/chat": "chat", "llm/v1/completions": "text_completion", "llm/v1/embeddings": "embeddings"}

# ---- OpenTelemetry GenAI semantic conventions (Prometheus names) --------------------------------
TOKEN_USAGE = Histogram(
    "gen_ai_client_token_usage",
    "Tokens used per call, by gen_ai_token_type (input | output).",
    [*GENAI_LABELS, "gen_ai_token_type"],
    buckets=GENAI_TOKEN_BUCKETS,
    registry=REGISTRY,
)
GENAI_DURATION = Histogram(
    "gen_ai_server_request_duration_seconds",
    "Time to the last byte of a successful call.",
    GENAI_LABELS,
    buckets=GENAI_DURATION_BUCKETS,
    registry=REGISTRY,
)
TTFT = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Time from the request's arrival to the first chunk of a stream.",
    GENAI_LABELS,
    buckets=GENAI_TTFT_BUCKETS,
    registry=REGISTRY,
)
TPOT = Histogram(
    "gen_ai_server_time_per_output_token_seconds",
    "Time per output token after the first, for streams.",
    GENAI_LABELS,
    buckets=GENAI_TPOT_BUCKETS,
    registry=REGISTRY,
)

# ---- the gateway's own ---------------------------------------------------------------------------
REQUESTS = Counter(
    "gateway_requests",
    "Calls by endpoint, route and status class.",
    ["endpoint", "route", "status_class"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Time from request received to response finished (whole stream for SSE).",
    ["endpoint", "route", "status_class"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "The gateway's own time per call: total minus waiting on the upstream (and, for streams, on the client).",
    ["endpoint", "route"],
    buckets=OVERHEAD_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time spent waiting on upstreams per call (all attempts; whole stream for SSE).",
    ["endpoint", "provider"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "gateway_in_flight_requests", "Calls being served now.", ["route"], registry=REGISTRY, multiprocess_mode="livesum"
)
RETRIES = Counter("gateway_retries", "Upstream attempts beyond the first.", ["endpoint"], registry=REGISTRY)
FALLBACKS = Counter(
    "gateway_fallbacks", "Calls answered by a fallback endpoint.", ["endpoint", "fallback"], registry=REGISTRY
)
RATE_LIMITED = Counter(
    "gateway_rate_limited",
    "Calls refused with 429, by who refused (gateway | upstream).",
    ["endpoint", "by"],
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors",
    "Failed calls by kind (timeout, unavailable, status_4xx, rate_limited, bad_body).",
    ["endpoint", "kind"],
    registry=REGISTRY,
)
TRACKING_DROPPED = Counter(
    "gateway_tracking_dropped", "Call records that could not be handed to tracking.", ["reason"], registry=REGISTRY
)
TRACKING_QUEUE = Gauge(
    "gateway_tracking_queue_depth",
    "Call records waiting to be written.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
TRACKING_COUNTERS = {
    key: Counter(f"gateway_tracking_{key}", doc, registry=REGISTRY)
    for key, doc in {
        "written": "Call records written to the sink (replays included).",
        "spilled": "Call records written to the local spool instead of the sink.",
        "replayed": "Call records replayed from the spool into the sink.",
        "batches": "Batches written to the sink.",
        "write_seconds": "Time spent in sink writes.",
    }.items()
}
TRACKING_SPOOL_BYTES = Gauge(
    "gateway_tracking_spool_bytes",
    "Bytes in the spool waiting for replay.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
TRACKING_SINK_UP = Gauge(
    "gateway_tracking_sink_up", "1 while the sink accepts writes, 0 while it is backing off.", registry=REGISTRY,
    multiprocess_mode="min",
)  # fmt: skip
CONFIG_INFO = Gauge(
    "gateway_config_info",
    "1 for the config version being served (0 for versions replaced by a reload).",
    ["version"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
CONFIG_RELOADS = Counter(
    "gateway_config_reloads",
    "Config reload attempts by result (reloaded, unchanged, rejected).",
    ["result"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "gateway_build_info", "The running build (value is always 1).", ["version", "python"], registry=REGISTRY,
    multiprocess_mode="max",
)  # fmt: skip
BUILD_INFO.labels(__version__, platform.python_version()).set(1)

STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def status_class(status: int) -> str:
    return STATUS_CLASSES.get(status // 100, "other")


# ---- per-call samples, batched ------------------------------------------------------------------
# prometheus_client takes a lock per value and walks the bucket list on every observation; with
# about ten samples per call that was ~5% of the CPU of a proxied call. The request path counts
# into plain Python series instead, and FLUSH_DELAY_S after the first new sample (or before a
# scrape) the totals are added to the Prometheus metrics in one go. A scrape of this process is
# always exact; with --workers N another worker's last FLUSH_DELAY_S of samples may not be in it yet.
FLUSH_DELAY_S = 0.02
_pending: list[_Series] = []


class _Series:
    __slots__ = ("child", "dirty")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.dirty = False

    def _touch(self) -> None:
        self.dirty = True
        _pending.append(self)
        if len(_pending) == 1:
            _schedule_flush()

    def flush(self) -> None:
        raise NotImplementedError


class HistogramSeries(_Series):
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, child: Histogram) -> None:
        super().__init__(child)
        self.bounds: list[float] = list(child._upper_bounds)  # ends with +Inf
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # The first bucket whose upper bound is >= value: Prometheus's "le" semantics.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        if not self.dirty:
            self._touch()

    def flush(self) -> None:
        # Histogram.observe() adds to _sum and to one of _buckets (cumulated at collection); the
        # batched counts go to the same values, so the exposition is the same as sample by sample.
        self.child._sum.inc(self.total)
        buckets = self.child._buckets
        for i, n in enumerate(self.counts):
            if n:
                buckets[i].inc(n)
                self.counts[i] = 0
        self.total = 0.0


class CounterSeries(_Series):
    __slots__ = ("value",)

    def __init__(self, child: Counter) -> None:
        super().__init__(child)
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount
        if not self.dirty:
            self._touch()

    def flush(self) -> None:
        self.child.inc(self.value)
        self.value = 0.0


class GaugeSeries(_Series):
    """A live level (calls in flight): kept here, written as a whole on flush."""

    __slots__ = ("value",)

    def __init__(self, child: Gauge) -> None:
        super().__init__(child)
        self.value = 0

    def inc(self) -> None:
        self.value += 1
        if not self.dirty:
            self._touch()

    def dec(self) -> None:
        self.value -= 1
        if not self.dirty:
            self._touch()

    def flush(self) -> None:
        self.child.set(self.value)


def _schedule_flush() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop (a sync caller): nothing would run a timer
        flush()
        return
    loop.call_later(FLUSH_DELAY_S, flush)


def flush() -> None:
    """Hand every batched sample to prometheus_client (before a scrape, and on a timer)."""
    pending = _pending[:]
    _pending.clear()
    for series in pending:
        series.dirty = False
        series.flush()


@functools.lru_cache(maxsize=8192)
def histogram(metric: Histogram, *labels: str) -> HistogramSeries:
    """The batched series of one labelled histogram (label values are bounded by design)."""
    return HistogramSeries(metric.labels(*labels))


@functools.lru_cache(maxsize=8192)
def counter(metric: Counter, *labels: str) -> CounterSeries:
    return CounterSeries(metric.labels(*labels))


@functools.lru_cache(maxsize=64)
def in_flight(route: str) -> GaugeSeries:
    return GaugeSeries(IN_FLIGHT.labels(route))


@functools.lru_cache(maxsize=4096)
def call_series(endpoint: str, route: str, status_cls: str) -> tuple[CounterSeries, HistogramSeries]:
    return counter(REQUESTS, endpoint, route, status_cls), histogram(REQUEST_DURATION, endpoint, route, status_cls)


class WriterMirror:
    """Copies a tracking writer's running totals into the counters above.

    Counters rather than a custom collector: in multiprocess mode only files written through
    the normal metric classes are summed over workers. Each worker calls `update` every second
    and before answering a scrape, so a scrape is at most a second behind for other workers.
    """

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def update(self, stats: dict[str, Any]) -> None:
        for key, counter in TRACKING_COUNTERS.items():
            value = float(stats.get(key) or 0)
            delta = value - self._last.get(key, 0.0)
            if delta > 0:
                counter.inc(delta)
            self._last[key] = value
        TRACKING_QUEUE.set(stats.get("queued") or 0)
        TRACKING_SPOOL_BYTES.set(stats.get("spool_pending_bytes") or 0)
        TRACKING_SINK_UP.set(1 if stats.get("sink_healthy", True) else 0)


def scrape_registry() -> CollectorRegistry:
    """What /metrics serves: this process's registry, or the sum over all workers' files."""
    flush()
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
