"""Serve a registered model over REST, wire-compatible with ``mlflow models serve``.

``python -m framework serve breast_cancer@champion --port 8080`` answers::

    POST /invocations   {"dataframe_split" | "dataframe_records" | "instances" | "inputs": ...,
                         "params": {"predict_method": "predict_proba"}}, text/csv or
                        application/vnd.apache.parquet
                        -> {"predictions": [...]}
    GET  /ping, /health -> 200 when the model is loaded
    GET  /version       -> the framework's version (bare, as MLflow answers)
    GET  /metadata      -> name, version, alias, input JSON Schema, metrics of the served version
    GET  /metrics       -> request counts, error counts, latency histograms (Prometheus text)
    GET  /openapi.json  -> an OpenAPI 3.1 description of the above

Errors are ``{"error_code": ..., "message": ...}`` with status 400, 404, 405, 408, 413 or 415, and
503 with ``Retry-After`` when too many requests are in flight; no input produces a 500. Requests
are checked against the version's input schema with :mod:`framework.schema`. A server started on
an alias (``NAME@champion``) follows it: when the alias moves, the new version is loaded in the
background and swapped in between requests.

Modules: :mod:`~framework.serve.protocol` (the MLflow wire format: which fields, what shape),
:mod:`~framework.serve.decode` (values -> typed columns, CSV and Parquet bodies),
:mod:`~framework.serve.model` (a loaded version: schema check, fast path, prediction),
:mod:`~framework.serve.app` (the Starlette app, bounded work, alias following),
:mod:`~framework.serve.limits` (every bound and its default), :mod:`~framework.serve.guard`
(read deadlines in uvicorn's protocol), :mod:`~framework.serve.metrics` (Prometheus exposition),
:mod:`~framework.serve.cli` (the ``serve`` verb and uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from framework.serve.cli import main

if TYPE_CHECKING:  # pragma: no cover
    from starlette.applications import Starlette

__all__ = ["create_app", "main"]


def create_app(model_uri: str, **kwargs: Any) -> Starlette:
    """The ASGI app serving ``model_uri``; see :func:`framework.serve.app.create_app`."""
    from framework.serve.app import create_app as _create_app

    return _create_app(model_uri, **kwargs)
