"""Prometheus collectors, all named gateway_*; labels are bounded (configured endpoint names only)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# LLM calls take from milliseconds (errors, cache hits) to minutes (long generations).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)

REQUESTS = Counter(
    "gateway_requests",
    "Proxied requests by endpoint, route and status class.",
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
TRACKING_DROPPED = Counter(
    "gateway_tracking_dropped", "Call records that could not be handed to tracking.", ["reason"], registry=REGISTRY
)
TRACKING_QUEUE = Gauge("gateway_tracking_queue_depth", "Call records waiting to be written.", registry=REGISTRY)
CONFIG_INFO = Gauge(
    "gateway_config_info", "The loaded config's version (value is always 1).", ["version"], registry=REGISTRY
)

CONFIG_RELOADS = Counter(
    "gateway_config_reloads",
    "Config reload attempts by result (reloaded, unchanged, rejected).",
    ["result"],
    registry=REGISTRY,
)

STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def status_class(status: int) -> str:
    return STATUS_CLASSES.get(status // 100, "other")
