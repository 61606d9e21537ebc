"""The scoring service's counters, in the Prometheus text format (version 0.0.4).

A few counters and histograms kept in memory by the one process that serves; written by
hand (no client library) because the set is small and fixed: requests by endpoint and
status, request latency, rows per scoring pass, rows scored, anomalies, model reloads."""
from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, "+Inf"), self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}')
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{braces} {self.total:.6f}", f"{name}_count{braces} {running}"]
        return out


class ServiceMetrics:
    """What ``GET /metrics`` reports; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.rows = 0
        self.anomalies = 0
        self.reloads: dict[str, int] = defaultdict(int)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def scored(self, rows: int, anomalies: int) -> None:
        with self._lock:
            self.rows += rows
            self.anomalies += anomalies

    def batch(self, rows: int) -> None:
        with self._lock:
            self.batch_rows.observe(rows)

    def reload(self, result: str) -> None:
        with self._lock:
            self.reloads[result] += 1

    def render(self, model_sha: str) -> str:
        with self._lock:
            lines = ["# HELP aekit_requests_total HTTP requests by endpoint and status code.",
                     "# TYPE aekit_requests_total counter"]
            lines += [f'aekit_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += ["# HELP aekit_request_duration_seconds Time from request to response.",
                      "# TYPE aekit_request_duration_seconds histogram"]
            for endpoint, hist in sorted(self.latency.items()):
                lines += hist.lines("aekit_request_duration_seconds", f'endpoint="{endpoint}"')
            lines += ["# HELP aekit_batch_rows Rows per scoring pass (concurrent requests are batched).",
                      "# TYPE aekit_batch_rows histogram", *self.batch_rows.lines("aekit_batch_rows"),
                      "# HELP aekit_rows_scored_total Rows scored.", "# TYPE aekit_rows_scored_total counter",
                      f"aekit_rows_scored_total {self.rows}",
                      "# HELP aekit_anomalies_total Rows scored above the threshold.",
                      "# TYPE aekit_anomalies_total counter", f"aekit_anomalies_total {self.anomalies}",
                      "# HELP aekit_anomaly_rate Share of the rows scored so far that were anomalies.",
                      "# TYPE aekit_anomaly_rate gauge",
                      f"aekit_anomaly_rate {self.anomalies / self.rows if self.rows else 0.0:.6g}",
                      "# HELP aekit_model_reloads_total Model reloads by result (loaded or refused).",
                      "# TYPE aekit_model_reloads_total counter"]
            lines += [f'aekit_model_reloads_total{{result="{r}"}} {n}' for r, n in sorted(self.reloads.items())]
            lines += ["# HELP aekit_model_info The model being served (its weights' SHA-256).",
                      "# TYPE aekit_model_info gauge", f'aekit_model_info{{weights_sha256="{model_sha}"}} 1']
        return "\n".join(lines) + "\n"
