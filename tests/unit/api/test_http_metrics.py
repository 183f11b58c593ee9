"""The API's request metrics: same exposition as prometheus_client's own histogram/counter."""

from __future__ import annotations

import random
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coinlens.api.metrics import _LATENCY_BUCKETS, ApiMetrics, HttpMetrics


def _samples(text: bytes, name: str) -> dict[tuple, float]:
    out: dict[tuple, float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name.startswith(name) and not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_folded_observations_expose_what_prometheus_client_would() -> None:
    rng = random.Random(7)
    metrics = ApiMetrics()
    reference = CollectorRegistry()
    latency = Histogram(
        "coinlens_http_request_duration_seconds",
        "x",
        ["route", "method"],
        buckets=_LATENCY_BUCKETS,
        registry=reference,
    )
    responses = Counter(
        "coinlens_http_responses_total", "x", ["route", "method", "status"], registry=reference
    )
    routes = ["/v1/tokens", "/v1/tokens/{symbol}", "/healthz"]
    # bucket bounds exactly (le is inclusive), tiny and huge values, several folds
    values = [*_LATENCY_BUCKETS, 0.0, 1e-7, 99.0] + [rng.expovariate(200) for _ in range(5000)]
    for i, v in enumerate(values):
        route, method, status = routes[i % 3], ("GET", "POST")[i % 2], (200, 304, 404, 500)[i % 4]
        metrics.http.observe(route, method, status, v)
        latency.labels(route, method).observe(v)
        responses.labels(route, method, f"{status // 100}xx").inc()
        if i == 2500:
            metrics.render()  # a scrape in the middle folds what is pending
    ours, theirs = metrics.render(), generate_latest(reference)
    for name in ("coinlens_http_request_duration_seconds", "coinlens_http_responses_total"):
        got, want = _samples(ours, name), _samples(theirs, name)
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key


def test_observations_racing_scrapes_are_all_counted() -> None:
    http = HttpMetrics(_LATENCY_BUCKETS)
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            list(http.collect())

    scraper = threading.Thread(target=scrape)
    scraper.start()
    n = 3 * HttpMetrics.FOLD_AT + 17
    for i in range(n):
        http.observe("/r", "GET", 200, i * 1e-6)
    stop.set()
    scraper.join()
    families = {f.name: f for f in http.collect()}
    counts = [
        s.value for s in families["coinlens_http_responses"].samples if s.name.endswith("_total")
    ]
    assert counts == [n]
    hist = {s.name: s.value for s in families["coinlens_http_request_duration_seconds"].samples}
    assert hist["coinlens_http_request_duration_seconds_count"] == n
    assert (
        abs(hist["coinlens_http_request_duration_seconds_sum"] - sum(i * 1e-6 for i in range(n)))
        < 1e-9
    )
