"""The batched series expose exactly what prometheus_client's own observe()/inc() would have."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway import metrics

BUCKETS = (0.001, 0.01, 0.1, 1.0)
# Values on, between, below and above the bounds: "le" means a value equal to a bound is in that bucket.
VALUES = [0.0, 0.0005, 0.001, 0.001, 0.002, 0.01, 0.05, 0.1, 0.99999, 1.0, 1.5, 250.0]


def test_histogram_series_matches_observe_after_flush():
    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("h", "doc", ["a"], buckets=BUCKETS, registry=direct_registry)
    batched = Histogram("h", "doc", ["a"], buckets=BUCKETS, registry=batched_registry)
    series = metrics.HistogramSeries(batched.labels("x"))
    for value in VALUES:
        direct.labels("x").observe(value)
        series.observe(value)
    metrics.flush()
    assert _samples(batched_registry) == _samples(direct_registry)
    # A second batch adds to the first.
    for value in VALUES[:5]:
        direct.labels("x").observe(value)
        series.observe(value)
    metrics.flush()
    assert _samples(batched_registry) == _samples(direct_registry)


def test_counter_and_gauge_series_match_after_flush():
    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct_c = Counter("c", "doc", ["a"], registry=direct_registry)
    batched_c = Counter("c", "doc", ["a"], registry=batched_registry)
    direct_g = Gauge("g", "doc", ["a"], registry=direct_registry)
    batched_g = Gauge("g", "doc", ["a"], registry=batched_registry)
    counter, gauge = metrics.CounterSeries(batched_c.labels("x")), metrics.GaugeSeries(batched_g.labels("x"))
    for amount in (1, 1, 3):
        direct_c.labels("x").inc(amount)
        counter.inc(amount)
    for step in (1, 1, 1, -1):
        direct_g.labels("x").inc(step)
        gauge.inc() if step > 0 else gauge.dec()
    metrics.flush()
    assert _samples(batched_registry) == _samples(direct_registry)


def test_nothing_is_written_until_a_flush_and_a_timer_flushes_soon():
    async def scenario() -> tuple[float | None, float | None]:
        registry = CollectorRegistry()
        counter = Counter("c", "doc", ["a"], registry=registry)
        series = metrics.CounterSeries(counter.labels("x"))
        series.inc()
        before = registry.get_sample_value("c_total", {"a": "x"})
        await asyncio.sleep(metrics.FLUSH_DELAY_S * 5)
        return before, registry.get_sample_value("c_total", {"a": "x"})

    before, after = asyncio.run(scenario())
    assert before == 0.0, "batched: not in the registry yet"
    assert after == 1.0, "the timer armed by the first sample flushed it"


def test_the_scrape_registry_flushes_first():
    series = metrics.counter(metrics.RETRIES, "test-scrape-flush")
    series.inc(2)  # no event loop here: flushed at once; on the loop it would wait for the timer
    text = generate_latest(metrics.scrape_registry()).decode()
    assert 'gateway_retries_total{endpoint="test-scrape-flush"} 2.0' in text


def _samples(registry: CollectorRegistry) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    )


@pytest.fixture(autouse=True)
def _no_leftovers():
    metrics.flush()
    yield
    metrics.flush()
