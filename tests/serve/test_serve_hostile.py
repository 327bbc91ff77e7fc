"""Hostile requests against a live server: it never answers a 500, never hangs, stays small, and
goes on scoring exactly as before.

Run against any deployment (the server's own limits are read from ``/metadata``)::

    FRAMEWORK_SERVE_URL=http://127.0.0.1:8080 [FRAMEWORK_SERVE_PID=1234] \\
        python -m pytest tests/serve/test_serve_hostile.py

Without ``FRAMEWORK_SERVE_URL`` the suite starts its own server (short timeouts, so it is quick).
With a pid (always for its own server) the resident memory is sampled through the whole suite and
must stay under :data:`RSS_FACTOR` times the idle figure. A pinger asks ``/ping`` every 50 ms
throughout: every ping must be answered.

The one 5xx a server may give is ``503`` with ``Retry-After`` when more requests are in flight
than ``--max-concurrency`` allows (the overload test checks that it is that, and only that).
The tests of this module share one monitor; its checks run last (:func:`test_zz_...`).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from serve_testlib import MODEL, Server, start

#: Peak resident memory through the suite, as a multiple of the idle figure after warm-up.
RSS_FACTOR = 2.0
#: How long any single exchange may take beyond the server's own timeouts.
SLACK = 5.0
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}


@dataclass
class Monitor:
    url: str
    pid: int | None
    stop: threading.Event = field(default_factory=threading.Event)
    pings: list[float] = field(default_factory=list)  # seconds each answered ping took
    failed_pings: list[str] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # kB
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._ping, daemon=True),
                        threading.Thread(target=self._sample, daemon=True)]
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _ping(self) -> None:
        with httpx.Client(base_url=self.url, timeout=SLACK) as c:
            while not self.stop.wait(0.05):
                t0 = time.perf_counter()
                try:
                    r = c.get("/ping")
                    if r.status_code != 200:
                        self.failed_pings.append(f"status {r.status_code}")
                    else:
                        self.pings.append(time.perf_counter() - t0)
                except httpx.HTTPError as exc:
                    self.failed_pings.append(repr(exc))

    def _sample(self) -> None:
        while self.pid is not None and not self.stop.wait(0.02):
            kb = rss_kb(self.pid)
            if kb:
                self.rss.append(kb)


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Target:
    url: str
    host: str
    port: int
    meta: dict[str, Any]
    rows: list[list[float]]
    baseline: list[Any]
    idle_rss: int | None
    monitor: Monitor

    @property
    def limits(self) -> dict[str, Any]:
        defaults = {"max_body_bytes": 10 * 1024 * 1024, "max_cells": 1_000_000,
                    "max_concurrency": 32, "header_timeout": 10.0, "body_timeout": 30.0}
        return {**defaults, **(self.meta.get("limits") or {})}

    @property
    def columns(self) -> list[str]:
        return list(self.meta["input_schema"]["properties"])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=self.limits["body_timeout"] + SLACK)

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=SLACK)


def example_rows(schema: dict[str, Any], n: int) -> list[list[float]]:
    """Rows every numeric schema column accepts (inside its bounds), varied per row."""
    rows = []
    for i in range(n):
        row = []
        for j, sub in enumerate(schema["properties"].values()):
            low = sub.get("minimum", sub.get("exclusiveMinimum", 0))
            high = sub.get("maximum", sub.get("exclusiveMaximum", low + 10))
            row.append(low + (high - low) * (((i * 7 + j * 3) % 10) + 0.5) / 11)
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def target(registry_dir: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = os.environ.get("FRAMEWORK_SERVE_URL")
    server: Server | None = None
    pid: int | None = int(os.environ["FRAMEWORK_SERVE_PID"]) if os.environ.get(
        "FRAMEWORK_SERVE_PID") else None
    if not url:
        server = start(f"{MODEL}@champion", "--registry", str(registry_dir),
                       "--max-body-bytes", "2000000", "--max-cells", "200000",
                       "--max-concurrency", "8", "--threads", "2", "--header-timeout", "2",
                       "--body-timeout", "3", cwd=tmp_path_factory.mktemp("hostile"))
        url, pid = server.url, server.proc.pid
    parsed = urlparse(url)
    with httpx.Client(base_url=url, timeout=30) as c:
        meta = c.get("/metadata").json()
        target_column = meta.get("target")
        schema = dict(meta["input_schema"])
        schema["properties"] = {k: v for k, v in schema["properties"].items()
                                if k != target_column}
        meta["input_schema"] = schema
        rows = example_rows(schema, 200)
        body = {"dataframe_split": {"columns": list(schema["properties"]), "data": rows}}
        for _ in range(20):  # warm up before measuring the idle memory
            r = c.post("/invocations", json=body)
        assert r.status_code == 200, r.text
        baseline = r.json()["predictions"]
    monitor = Monitor(url, pid)
    monitor.start()
    yield Target(url, parsed.hostname or "127.0.0.1", parsed.port or 80, meta, rows, baseline,
                 rss_kb(pid) if pid else None, monitor)
    monitor.finish()
    if server is not None:
        server.stop()


def post(t: Target, body: Any, headers: dict[str, str] | None = None,
         path: str = "/invocations") -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with t.client() as c:
        return c.post(path, content=content, headers=headers or JSON)


def assert_refused(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert r.status_code < 500, r.text
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    body = r.json()
    # bounded by the schema (a report per column at most), never by the request: nothing echoed
    assert set(body) >= {"error_code", "message"} and len(r.text) < 20_000
    return body


def raw(t: Target, data: bytes, *, read_timeout: float = SLACK) -> bytes:
    """Send ``data`` as it is and read until the server closes (or ``read_timeout``)."""
    with t.connect() as s:
        try:
            s.sendall(data)
        except OSError:  # the server answered and closed before reading it all
            pass
        s.settimeout(read_timeout)
        out = b""
        deadline = time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
        return out


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1."), response[:200]
    return int(response.split(b" ", 2)[1])


# -- malformed JSON ------------------------------------------------------------------------------

MALFORMED = {
    "truncated": b'{"inputs": [[1, 2',
    "not_utf8": b'{"inputs": "\xff\xfe"}',
    "bare_null": b"null",
    "top_level_list": b"[[1, 2, 3]]",
    "nan_literal": b'{"inputs": [[NaN]]}',
    "infinity_literal": b'{"inputs": [[Infinity]]}',
    "trailing_garbage": b'{"inputs": []} xyz',
    "duplicate_keys": b'{"inputs": [], "inputs": 3}',
    "empty": b"",
    "nul_bytes": b'{"inputs": [[\x00]]}',
    "unknown_field_only": b'{"rows": []}',
    "two_input_fields": b'{"inputs": [], "instances": []}',
    "params_not_object": b'{"inputs": [], "params": "x"}',
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_json_is_a_400(target: Target, case: str) -> None:
    assert_refused(post(target, MALFORMED[case]), 400)


def test_deep_nesting_is_a_400(target: Target) -> None:
    depth = 200_000
    body = b'{"inputs": ' + b"[" * depth + b"]" * depth + b"}"
    assert_refused(post(target, body), 400, 413)


@pytest.mark.parametrize("number", [b"1" + b"0" * 400, b"-1" + b"0" * 30, b"1e999", b"-1e999",
                                    b"1e-999", b"123456789012345678901234567890.5"])
def test_huge_numbers_never_break_the_server(target: Target, number: bytes) -> None:
    row = [str(v).encode() for v in target.rows[0]]
    row[0] = number
    body = (b'{"dataframe_split": {"columns": ' + json.dumps(target.columns).encode() +
            b', "data": [[' + b",".join(row) + b"]]}}")
    r = post(target, body)
    assert r.status_code in (200, 400), r.text


# -- long strings among numbers, odd cells -------------------------------------------------------

def test_a_long_string_among_numbers_is_refused_at_once(target: Target) -> None:
    size = min(target.limits["max_body_bytes"] - 100_000, 1_500_000)
    rows = [list(r) for r in target.rows]
    rows[100][3] = "x" * size
    t0 = time.perf_counter()
    body = assert_refused(post(target, {"dataframe_split": {"columns": target.columns,
                                                            "data": rows}}), 400)
    assert time.perf_counter() - t0 < SLACK
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("cell", ["1.5", True, None, [1], {"a": 1}, "", "nan"],
                         ids=["numeric_string", "bool", "null", "list", "object", "empty", "nan"])
def test_wrong_cells_are_a_400(target: Target, cell: Any) -> None:
    rows = [list(r) for r in target.rows[:3]]
    rows[1][0] = cell
    assert_refused(post(target, {"dataframe_split": {"columns": target.columns, "data": rows}}),
                   400)


def test_records_with_ten_thousand_extra_keys(target: Target) -> None:
    record = dict(zip(target.columns, target.rows[0]))
    record.update({f"extra_{i}": i for i in range(10_000)})
    r = post(target, {"dataframe_records": [record]})
    assert r.status_code in (200, 400, 413), r.text


# -- CSV -----------------------------------------------------------------------------------------

def csv(t: Target, rows: list[list[Any]], header: list[str] | None = None) -> str:
    head = ",".join(header if header is not None else t.columns)
    return head + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"


def test_csv_with_an_extra_leading_field_on_every_row_is_a_400(target: Target) -> None:
    """pandas would take the extra fields as the index and shift every value one column."""
    rows = [[i, *r] for i, r in enumerate(target.rows[:50])]
    body = assert_refused(post(target, csv(target, rows), CSV), 400)
    assert "line 2" in body["message"] and "fields" in body["message"]


@pytest.mark.parametrize("change", ["extra", "missing"])
def test_csv_rows_of_the_wrong_width_name_the_first_bad_line(target: Target,
                                                             change: str) -> None:
    rows = [list(r) for r in target.rows[:10]]
    rows[6] = [*rows[6], 0] if change == "extra" else rows[6][:-1]
    body = assert_refused(post(target, csv(target, rows), CSV), 400)
    assert "line 8" in body["message"]


@pytest.mark.parametrize("body", [
    "", "\n\n", "a,b\n1,2\n", '"unterminated\n1,2\n', "\ufeff" + "x\n1\n",
    "x," * 20_000 + "\n" + "1," * 20_000 + "\n",
], ids=["empty", "blank_lines", "unknown_columns", "unterminated_quote", "bom", "wide"])
def test_odd_csv_never_breaks_the_server(target: Target, body: str) -> None:
    assert_refused(post(target, body, CSV), 400, 413)


def test_csv_header_only_scores_nothing(target: Target) -> None:
    r = post(target, ",".join(target.columns) + "\n", CSV)
    assert r.status_code == 200 and r.json()["predictions"] == []


def test_parquet_that_is_not_parquet_is_a_400(target: Target) -> None:
    assert_refused(post(target, b"PAR1" + b"\x00" * 64 + b"PAR1",
                        {"Content-Type": "application/vnd.apache.parquet"}), 400)


# -- oversize --------------------------------------------------------------------------------------

def test_a_declared_oversize_body_is_refused_before_it_is_sent(target: Target) -> None:
    request = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 10000000000\r\n\r\n")
    t0 = time.perf_counter()
    response = raw(target, request)
    assert status_of(response) == 413 and time.perf_counter() - t0 < SLACK


def test_a_streamed_oversize_body_is_refused(target: Target) -> None:
    chunk = b"[" + b"1," * 50_000 + b"1]"
    limit = target.limits["max_body_bytes"]

    def stream() -> Iterator[bytes]:
        yield b'{"inputs": ['
        for _ in range(limit // len(chunk) + 2):
            yield chunk + b","
        yield b"[1]]}"

    with target.client() as c:
        r = c.post("/invocations", content=stream(), headers=JSON)
    assert_refused(r, 413)


def test_too_many_cells_is_a_413(target: Target) -> None:
    cells = target.limits["max_cells"]
    width = len(target.columns)
    rows = [[0.0] * width] * (cells // width + 1)
    body = json.dumps({"inputs": rows}).encode()
    if len(body) > target.limits["max_body_bytes"]:
        pytest.skip("this deployment's body limit comes before its cell limit")
    assert_refused(post(target, body), 413)


# -- slow clients ----------------------------------------------------------------------------------

def test_slow_headers_are_cut_off(target: Target) -> None:
    timeout = target.limits["header_timeout"]
    t0 = time.perf_counter()
    with target.connect() as s:
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(timeout + SLACK)
        try:
            for _ in range(int(timeout) * 4 + 10):  # a header byte every 0.25 s
                s.sendall(b"X")
                time.sleep(0.25)
        except OSError:
            pass  # the server closed the connection
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
    took = time.perf_counter() - t0
    assert took < timeout + SLACK
    assert data == b"" or status_of(data) == 408


def test_a_body_shorter_than_its_length_is_a_400_after_the_timeout(target: Target) -> None:
    timeout = target.limits["body_timeout"]
    t0 = time.perf_counter()
    response = raw(target, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                           b"application/json\r\nContent-Length: 1000\r\n\r\n{\"inputs\":",
                   read_timeout=timeout + SLACK)
    took = time.perf_counter() - t0
    assert status_of(response) == 400 and b"did not arrive within" in response
    assert timeout - 0.5 < took < timeout + SLACK


def test_idle_connections_are_closed(target: Target) -> None:
    timeout = target.limits["header_timeout"]
    sockets = [target.connect() for _ in range(50)]
    try:
        deadline = time.monotonic() + timeout + SLACK
        closed = 0
        for s in sockets:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, OSError):
                pass
        assert closed == len(sockets)
    finally:
        for s in sockets:
            s.close()


# -- methods, paths, protocol abuse ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_on_invocations_are_a_405(target: Target, method: str) -> None:
    with target.client() as c:
        assert_refused(c.request(method, "/invocations"), 405)


@pytest.mark.parametrize("path", ["/invocations/", "//invocations", "/../../etc/passwd",
                                  "/invocations%00", "/%2e%2e/%2e%2e/etc/passwd",
                                  "/" + "a" * 4000])
def test_odd_paths_are_a_404(target: Target, path: str) -> None:
    r = post(target, b"{}", path=path)
    assert_refused(r, 404)
    assert "location" not in r.headers  # never a redirect built from the client's Host


@pytest.mark.parametrize("request_bytes", [
    b"GET /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
    b"0\r\n\r\n",
    b"FROB /ping HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ping HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n",
    b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 200_000 + b"\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100,  # a TLS hello
    b"GET http://evil.example/ping HTTP/1.1\r\nHost: evil.example\r\n\r\n",
], ids=["smuggling", "bad_method", "bad_version", "long_url", "many_headers", "huge_header",
        "tls_hello", "absolute_uri"])
def test_protocol_abuse_never_gets_a_5xx(target: Target, request_bytes: bytes) -> None:
    response = raw(target, request_bytes)
    if response:
        assert status_of(response) < 500, response[:300]


def test_pipelined_requests_are_answered_in_order(target: Target) -> None:
    one = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    response = raw(target, one * 5 + b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close"
                                      b"\r\n\r\n")
    assert response.count(b"HTTP/1.1 200") == 6


# -- overload ------------------------------------------------------------------------------------

def test_overload_gets_503_with_retry_after_and_nothing_else(target: Target) -> None:
    n = target.limits["max_concurrency"] * 3
    rows = example_rows(target.meta["input_schema"], 2000)
    body = json.dumps({"dataframe_split": {"columns": target.columns, "data": rows}})
    statuses: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=target.url, timeout=60) as c:
            r = c.post("/invocations", content=body, headers=JSON)
        with lock:
            statuses.append((r.status_code, r.headers.get("retry-after")))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == n
    assert all(s == 200 or (s == 503 and retry == "1") for s, retry in statuses), statuses
    assert any(s == 200 for s, _ in statuses)


# -- and afterwards -----------------------------------------------------------------------------------

def test_zz_the_server_stayed_up_small_and_the_same(target: Target) -> None:
    """Last of the module: every ping answered, memory bounded, and a valid request gives the
    predictions it gave before the suite."""
    body = {"dataframe_split": {"columns": target.columns, "data": target.rows}}
    r = post(target, body)
    assert r.status_code == 200 and r.json()["predictions"] == target.baseline
    target.monitor.finish()
    assert target.monitor.failed_pings == []
    assert len(target.monitor.pings) > 20
    if target.idle_rss:
        peak = max(target.monitor.rss)
        assert peak < RSS_FACTOR * target.idle_rss, (
            f"peak RSS {peak // 1024} MB over {RSS_FACTOR} x idle {target.idle_rss // 1024} MB")
        print(f"\nidle RSS {target.idle_rss // 1024} MB, peak {peak // 1024} MB "
              f"({peak / target.idle_rss:.2f}x); /ping max {max(target.monitor.pings) * 1000:.0f} "
              f"ms over {len(target.monitor.pings)} pings")
