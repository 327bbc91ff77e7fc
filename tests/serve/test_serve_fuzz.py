"""Fuzz the live server from its own OpenAPI document with schemathesis: no input gives a 5xx.

Every operation of ``GET /openapi.json`` gets generated cases that fit the document (valid
requests, scored by the model) and cases that do not (invalid bodies, wrong types, odd media
types); each response must be a non-5xx that conforms to the document (declared status code,
content type and body schema). Bounded: a few dozen cases per operation and mode, no example
database, well under 30 s.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from serve_testlib import Server

EXAMPLES = {"/invocations": 60}
DEFAULT_EXAMPLES = 5


@pytest.fixture(scope="module")
def api(server: Server) -> Any:
    import schemathesis  # imported here: it is slow to import, and only this module needs it

    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=30)


def operations(api: Any) -> list[Any]:
    return [result.ok() for result in api.get_all_operations()]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_input_makes_a_server_error(api: Any, server: Server, mode: str) -> None:
    from schemathesis import GenerationMode, checks

    fitting = GenerationMode(mode) is GenerationMode.POSITIVE
    response_checks = [checks.not_a_server_error, checks.status_code_conformance,
                       checks.content_type_conformance, checks.response_schema_conformance]
    ops = operations(api)
    assert {op.path for op in ops} >= {"/invocations", "/ping", "/metadata", "/metrics"}
    statuses: set[int] = set()
    if not fitting:  # the GET routes take no input to break
        ops = [op for op in ops if op.path == "/invocations"]
    for op in ops:
        examples = EXAMPLES.get(op.path, DEFAULT_EXAMPLES)

        @given(case=op.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(base_url=server.url, timeout=30)
            statuses.add(response.status_code)
            case.validate_response(response, checks=response_checks)

        run()
    assert all(s < 500 for s in statuses)
    if fitting:
        assert 200 in statuses  # valid generated rows were scored
    # the server is still up and well after the run
    with server.client() as c:
        assert c.get("/ping").status_code == 200
