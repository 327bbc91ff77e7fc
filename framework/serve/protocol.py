"""The MLflow scoring wire format: request bodies in, a :class:`Table` (or an error) out.

A JSON body is an object with exactly one input key and an optional ``params`` object:

* ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (``index`` accepted, ignored;
  without ``columns`` the rows are positional, in the order of the input schema);
* ``dataframe_records``: ``[{"col": value, ...}, ...]``;
* ``instances`` / ``inputs`` (the TF-serving keys, same meaning here): a list of records, a dict
  of columns (``{"col": [v1, v2]}``, or ``{"col": v}`` for one row), a list of positional rows
  (``[[...], ...]``), or for a one-column model a flat list of its values.

A CSV body (``text/csv`` or ``application/csv``) has a header row and exactly as many fields in
every row; a Parquet body (``application/vnd.apache.parquet``, as MLflow takes it) is a table.
Anything else is a :class:`RequestError` carrying the HTTP status and an MLflow error code.

This module checks the shape of a body (which input key, rows as lists of equal width, at most
``max_cells`` cells); :mod:`framework.serve.decode` types the values, column by column, from the
model's input schema. It imports only the standard library (orjson when installed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

try:  # orjson is ~5x faster than the stdlib on number-heavy bodies; the stdlib is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson = None

BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
RESOURCE_LIMIT_EXCEEDED = "RESOURCE_LIMIT_EXCEEDED"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
INTERNAL_ERROR = "INTERNAL_ERROR"

INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS_KEY = "params"
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet",)
MAX_MESSAGE = 300


class RequestError(Exception):
    """A request the server refuses: HTTP ``status``, MLflow ``code``, a short ``message``, and
    response ``headers`` to add (``Retry-After``, ``Connection: close``). ``columns`` names the
    input columns whose values broke the model's input schema (the prediction log counts them)."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None,
                 columns: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.columns = tuple(columns)

    @property
    def schema_violation(self) -> bool:
        """Whether the request was refused because values broke the input schema."""
        return bool(self.columns)


def bad_request(message: str) -> RequestError:
    return RequestError(400, BAD_REQUEST, message)


def short(text: str, width: int = MAX_MESSAGE) -> str:
    """``text`` on one line, cut to ``width`` characters (never echoes a whole payload)."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- bodies ----------------------------------------------------------------------------------------

def content_kind(header: str | None) -> str:
    """``"json"``, ``"csv"`` or ``"parquet"`` from a Content-Type header; 415 for anything
    else."""
    if not header:
        raise RequestError(415, BAD_REQUEST, "missing Content-Type; send application/json "
                           "(dataframe_split, dataframe_records, instances or inputs), text/csv "
                           "or application/vnd.apache.parquet")
    mime, *parameters = (part.strip() for part in header.split(";"))
    mime = mime.lower()
    if mime in JSON_TYPES:
        kind = "json"
    elif mime in CSV_TYPES:
        kind = "csv"
    elif mime in PARQUET_TYPES:
        kind = "parquet"
    else:
        raise RequestError(415, BAD_REQUEST, f"unsupported Content-Type {short(mime, 80)!r}; "
                           "use application/json, text/csv or application/vnd.apache.parquet")
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"').lower()
        if key == "charset":
            if value not in ("utf-8", "utf8"):
                raise RequestError(415, BAD_REQUEST, f"unsupported charset {short(value, 40)!r}; "
                                   "the server reads UTF-8 only")
        elif not (kind == "csv" and key == "header") and key:
            raise RequestError(415, BAD_REQUEST, f"unrecognized Content-Type parameter "
                               f"{short(key, 40)!r} (only charset is understood)")
    return kind


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity); orjson when installed."""
    if _orjson is not None:
        return _orjson.loads(body)
    return json.loads(body, parse_constant=_reject_constant)


def dumps(obj: Any) -> bytes:
    """JSON bytes; numpy arrays and scalars serialized natively when orjson is installed."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            obj = plain(obj)
            return _orjson.dumps(obj)
    return json.dumps(plain(obj), allow_nan=False, separators=(",", ":")).encode()


def plain(value: Any) -> Any:
    """Python containers and numbers only; non-finite floats become null."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "columns") and callable(getattr(value, "to_dict", None)):
        return plain(value.to_dict(orient="records"))  # a DataFrame, as MLflow returns it
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars, pandas Series
        return plain(tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Table:
    """A parsed request: ``columns`` + ``rows`` (lists of JSON values) or a pandas ``frame``
    (CSV, Parquet), and ``params``. ``columns`` is None for positional rows (the model's column
    order applies)."""

    columns: list[Any] | None = None
    rows: list[Any] | None = None
    frame: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def n_rows(self) -> int:
        return len(self.frame) if self.frame is not None else len(self.rows or ())

    @property
    def width(self) -> int:
        if self.frame is not None:
            return len(self.frame.columns)
        if self.columns is not None:
            return len(self.columns)
        return len(self.rows[0]) if self.rows else 0


def parse_json(body: bytes, *, one_column: str | None = None,
               max_cells: int | None = None) -> Table:
    """The :class:`Table` a JSON body holds; ``one_column`` names the model's only input column.
    More than ``max_cells`` cells is a 413."""
    try:
        doc = loads(body)
    except (ValueError, TypeError, RecursionError) as exc:  # orjson's errors are ValueErrors
        raise bad_request(f"the body is not valid JSON (UTF-8, no NaN/Infinity): "
                          f"{short(str(exc), 160)}") from None
    if not isinstance(doc, dict):
        raise bad_request(f"the body must be a JSON object with exactly one of the input fields "
                          f"{', '.join(INPUT_KEYS)}; received {json_type(doc)}")
    keys = [k for k in INPUT_KEYS if k in doc]
    if len(keys) != 1:
        found = ", ".join(short(k, 40) for k in list(doc)[:10]) or "none"
        raise bad_request(f"the body must have exactly one of the input fields "
                          f"{', '.join(INPUT_KEYS)} (plus an optional 'params'); found fields: "
                          f"{found}")
    params = doc.get(PARAMS_KEY)
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise RequestError(400, INVALID_PARAMETER_VALUE,
                           f"'params' must be a JSON object, received {json_type(params)}")
    key = keys[0]
    value = doc[key]
    if key == "dataframe_split":
        table = _split(value)
    elif key == "dataframe_records":
        if not isinstance(value, list):
            raise bad_request(f"dataframe_records must be a list of records, received "
                              f"{json_type(value)}")
        table = _records(value, key)
    else:
        table = _tensor_style(value, key, one_column)
    table.params = params
    if max_cells is not None and table.n_rows * max(table.width, 1) > max_cells:
        from framework.serve.decode import too_many_cells

        raise too_many_cells(table.n_rows, table.width, max_cells)
    return table


def json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _split(value: Any) -> Table:
    if not isinstance(value, dict):
        raise bad_request(f"dataframe_split must be an object with 'columns' and 'data', "
                          f"received {json_type(value)}")
    extra = [k for k in value if k not in ("columns", "data", "index")]
    if "data" not in value or extra:
        raise bad_request("dataframe_split must have a 'data' field and optionally 'columns' and "
                          "'index' fields" + (f"; unexpected: {short(', '.join(extra), 80)}"
                                              if extra else ""))
    rows, columns = value["data"], value.get("columns")
    if not isinstance(rows, list):
        raise bad_request(f"dataframe_split.data must be a list of rows, received "
                          f"{json_type(rows)}")
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise bad_request("dataframe_split.columns must be a list of column names (strings)")
    _check_rows(rows, None if columns is None else len(columns), "dataframe_split.data")
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise bad_request(f"dataframe_split.index must be a list with one entry per row "
                          f"({len(rows)})")
    return Table(columns=columns, rows=rows, source="dataframe_split")


def _check_rows(rows: list[Any], width: int | None, where: str) -> None:
    """Every row a list of ``width`` values (``width`` None: all rows as wide as the first)."""
    for i, row in enumerate(rows):
        if row.__class__ is not list:
            raise bad_request(f"{where}: row {i} must be a list of values, received "
                              f"{json_type(row)}")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise bad_request(f"{where}: row {i} has {len(row)} values, expected {width} "
                              "(one per column)")


def _records(records: list[Any], where: str) -> Table:
    if not records:
        return Table(columns=[], rows=[], source=where)
    first = records[0]
    if not isinstance(first, dict):
        raise bad_request(f"{where}: record 0 must be an object, received {json_type(first)}")
    columns = list(first)
    uniform = True
    for i, record in enumerate(records):
        if record.__class__ is not dict:
            raise bad_request(f"{where}: record {i} must be an object, received "
                              f"{json_type(record)}")
        if uniform and record.keys() != first.keys():
            uniform = False
    if not uniform:  # union of keys in order of appearance; an absent key is a null cell
        seen = dict.fromkeys(columns)
        for record in records:
            seen.update(dict.fromkeys(record))
        columns = list(seen)
        rows = [[record.get(c) for c in columns] for record in records]
    else:
        rows = [[record[c] for c in columns] for record in records]
    return Table(columns=columns, rows=rows, source=where)


def _tensor_style(value: Any, key: str, one_column: str | None) -> Table:
    if isinstance(value, dict):  # a dict of columns
        columns = list(value)
        cells = list(value.values())
        if all(isinstance(v, list) for v in cells):
            lengths = {len(v) for v in cells}
            if len(lengths) > 1:
                raise bad_request(f"{key}: the columns have different lengths "
                                  f"({', '.join(map(str, sorted(lengths)))}); give one value per "
                                  "row in every column")
            rows = [list(r) for r in zip(*cells)] if cells else []
        elif not any(isinstance(v, list) for v in cells):
            rows = [cells]  # {"col": value, ...}: one row
        else:
            raise bad_request(f"{key}: a dict of columns needs a list of values for every column "
                              "(or a single value for every column, for one row)")
        return Table(columns=columns, rows=rows, source=key)
    if not isinstance(value, list):
        raise bad_request(f"{key} must be a list of records, a dict of columns or a list of rows; "
                          f"received {json_type(value)}")
    if not value:
        return Table(columns=[], rows=[], source=key)
    if isinstance(value[0], dict):
        return _records(value, key)
    if isinstance(value[0], list):
        _check_rows(value, None, key)
        return Table(columns=None, rows=value, source=key)
    if one_column is not None and not any(isinstance(v, (list, dict)) for v in value):
        return Table(columns=[one_column], rows=[[v] for v in value], source=key)
    raise bad_request(f"{key} must be a list of records, a dict of columns or a list of rows; "
                      "received a list of single values")
