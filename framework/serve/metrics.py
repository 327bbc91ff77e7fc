"""Request counters and latency histograms, rendered in the Prometheus text exposition format.

Labels are bounded: ``path`` is one of the server's routes or ``other``, so a client probing random
URLs cannot grow the output. The counters live in one process; with ``--workers N`` each worker
keeps its own (a scrape sees the worker that answered it, as with any multi-process server
without a shared store). Updates happen on the event loop thread only, so no lock is needed.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable

#: Upper bounds (seconds) of the latency histogram buckets.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
#: Upper bounds of the rows-per-request histogram buckets.
ROW_BUCKETS = (1, 10, 100, 1000, 10000, 100000)
PREFIX = "framework_serve"


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs) + "}" if pairs else ""


def _number(x: float) -> str:
    if x == float("inf"):
        return "+Inf"
    return repr(float(x)) if isinstance(x, float) else str(x)


class Metrics:
    """What the server counts; :meth:`render` is the body of ``GET /metrics``."""

    def __init__(self, routes: tuple[str, ...]) -> None:
        self.routes = frozenset(routes)
        self.started = time.time()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.predict_latency = Histogram(LATENCY_BUCKETS)
        self.rows = Histogram(ROW_BUCKETS)
        self.switches = 0
        self.load_failures = 0
        self.in_flight = 0
        self.model: tuple[str, int, str] | None = None
        #: More families to render, each a function returning exposition lines.
        self.sections: list[Callable[[], list[str]]] = []

    def path_label(self, path: str) -> str:
        return path if path in self.routes else "other"

    def request(self, path: str, method: str, status: int, seconds: float) -> None:
        path = self.path_label(path)
        method = method if method in ("GET", "POST", "HEAD") else "other"
        self.requests[(path, method, str(status))] += 1
        key = (path, method)
        hist = self.latency.get(key)
        if hist is None:
            hist = self.latency[key] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def error(self, path: str, code: str) -> None:
        self.errors[(self.path_label(path), code)] += 1

    def prediction(self, rows: int, seconds: float) -> None:
        self.rows.observe(rows)
        self.predict_latency.observe(seconds)

    def render(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> str:
            full = f"{PREFIX}_{name}"
            out.append(f"# HELP {full} {help_text}")
            out.append(f"# TYPE {full} {kind}")
            return full

        def histogram(full: str, hist: Histogram, labels: tuple[tuple[str, str], ...]) -> None:
            running = 0
            for bound, count in zip((*hist.buckets, float("inf")), hist.counts):
                running += count
                le = "+Inf" if bound == float("inf") else repr(float(bound))
                out.append(f"{full}_bucket{_labels((*labels, ('le', le)))} {running}")
            out.append(f"{full}_sum{_labels(labels)} {_number(hist.sum)}")
            out.append(f"{full}_count{_labels(labels)} {running}")

        name = family("requests_total", "counter", "HTTP requests answered, by route, method "
                      "and status code.")
        for (path, method, status), n in sorted(self.requests.items()):
            out.append(f"{name}{_labels((('path', path), ('method', method), ('status', status)))}"
                       f" {n}")
        name = family("errors_total", "counter", "Refused or failed requests, by route and error "
                      "code.")
        for (path, code), n in sorted(self.errors.items()):
            out.append(f"{name}{_labels((('path', path), ('error_code', code)))} {n}")
        name = family("request_duration_seconds", "histogram", "Time from the request's arrival "
                      "to its response, by route and method.")
        for (path, method), hist in sorted(self.latency.items()):
            histogram(name, hist, (("path", path), ("method", method)))
        name = family("predict_duration_seconds", "histogram", "Time spent checking and scoring "
                      "accepted /invocations requests.")
        histogram(name, self.predict_latency, ())
        name = family("predict_rows", "histogram", "Rows per scored request.")
        histogram(name, self.rows, ())
        name = family("model_switches_total", "counter", "Times the served version changed "
                      "because its alias moved.")
        out.append(f"{name} {self.switches}")
        name = family("model_load_failures_total", "counter", "Versions the alias moved to that "
                      "could not be loaded (the previous version kept serving).")
        out.append(f"{name} {self.load_failures}")
        name = family("in_flight_requests", "gauge", "/invocations requests being read, "
                      "decoded or scored now (capped by --max-concurrency).")
        out.append(f"{name} {self.in_flight}")
        if self.model is not None:
            model, version, alias = self.model
            name = family("model_version", "gauge", "The version being served.")
            out.append(f"{name}{_labels((('model', model), ('alias', alias)))} {version}")
        name = family("start_time_seconds", "gauge", "Unix time the server process started.")
        out.append(f"{name} {_number(self.started)}")
        for section in self.sections:
            out.extend(section())
        return "\n".join(out) + "\n"
