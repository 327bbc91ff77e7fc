"""``GET /openapi.json``: an OpenAPI 3.1 description of the server, with the served version's row
schema in it (records and instances are described by it), rebuilt when the served version changes.
"""

from __future__ import annotations

from typing import Any

import framework
from framework.serve.model import PREDICT_METHODS, LoadedModel

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _row_schema(model: LoadedModel) -> dict[str, Any]:
    if not model.schema:
        return {"type": "object"}
    return {k: v for k, v in model.schema.items() if k != "$schema" and not k.startswith("x-")}


def openapi_spec(model: LoadedModel) -> dict[str, Any]:
    mv = model.version
    columns = model.columns or model.features
    column_names: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    if columns:
        column_names["items"] = {"type": "string", "enum": list(columns)}
    params = {
        "type": "object",
        "properties": {"predict_method": {"type": "string", "enum": list(PREDICT_METHODS)}},
        "description": "predict_method picks the estimator method (default predict); "
                       "predict_proba gives one list of class probabilities per row.",
    }
    row = {"$ref": "#/components/schemas/Row"}
    cell = {"type": ["number", "integer", "string", "boolean", "null"]}
    rows = {"type": "array", "items": {"type": "array", "items": cell}}
    request = {
        "oneOf": [
            {"type": "object", "required": ["dataframe_split"], "additionalProperties": False,
             "properties": {"dataframe_split": {
                 "type": "object", "required": ["data"], "additionalProperties": False,
                 "properties": {"columns": column_names, "data": rows,
                                "index": {"type": "array"}}},
                 "params": params}},
            {"type": "object", "required": ["dataframe_records"], "additionalProperties": False,
             "properties": {"dataframe_records": {"type": "array", "items": row},
                            "params": params}},
            {"type": "object", "required": ["instances"], "additionalProperties": False,
             "properties": {"instances": {"type": "array", "items": row}, "params": params}},
            {"type": "object", "required": ["inputs"], "additionalProperties": False,
             "properties": {"inputs": {"oneOf": [
                 {"type": "array", "items": row},
                 {"type": "object", "additionalProperties": {"type": "array", "items": cell}},
                 rows]}, "params": params}},
        ],
    }
    text = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    ok_json = {"description": "OK", "content": {"application/json": {"schema": {}}}}
    # MLflow's /ping answers a bare newline labelled application/json; so does this server
    alive = {"description": "The model is loaded (body: a newline, as MLflow's)"}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{mv.name} scoring server", "version": framework.__version__,
                 "description": f"Serves {mv.name} v{mv.version} with the MLflow scoring "
                                "protocol."},
        "paths": {
            "/invocations": {"post": {
                "summary": "Score rows",
                "operationId": "invocations",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": request},
                    "text/csv": {"schema": {"type": "string"}},
                }},
                "responses": {
                    "200": {"description": "Predictions", "content": {"application/json": {
                        "schema": {"type": "object", "required": ["predictions"],
                                   "properties": {"predictions": {"type": "array"}}}}}},
                    "400": _error("Malformed request, schema violation or model refusal"),
                    "408": _error("Request headers not received in time"),
                    "413": _error("Body or cells over the limit"),
                    "415": _error("Unsupported content type"),
                    "503": _error("Too many requests in flight (see Retry-After)"),
                },
            }},
            "/ping": {"get": {"summary": "Health check", "operationId": "ping",
                              "responses": {"200": alive}}},
            "/health": {"get": {"summary": "Health check", "operationId": "health",
                                "responses": {"200": alive}}},
            "/version": {"get": {"summary": "Framework version", "operationId": "version",
                                 "responses": {"200": {
                                     "description": "The bare version (as MLflow's /version "
                                                    "answers, labelled application/json)",
                                     "content": {"application/json": {}}}}}},
            "/metadata": {"get": {"summary": "The served version", "operationId": "metadata",
                                  "responses": {"200": {"description": "OK", "content": {
                                      "application/json": {"schema": {
                                          "type": "object",
                                          "required": ["name", "version", "input_schema",
                                                       "metrics"]}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                                 "responses": {"200": text}}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                      "responses": {"200": ok_json}}},
        },
        "components": {"schemas": {
            "Row": _row_schema(model),
            "Error": {"type": "object", "required": ["error_code", "message"],
                      "properties": {"error_code": {"type": "string"},
                                     "message": {"type": "string"},
                                     "details": {"type": "object"}}},
        }},
    }
