"""Request values -> typed columns, driven by the input schema; never a fixed-width unicode array.

numpy turns a list of rows that mixes strings and numbers into one ``<U{longest}`` array: one long
string among numbers then costs rows x columns x longest x 4 bytes (a 1 MB body, 6 GB). So a
request is decoded column by column, each column typed from its schema:

* ``number`` / ``integer`` columns (nullable or not) take JSON numbers only: a float64 array
  (null -> NaN). A string, a boolean or a nested value in such a column is a 400 found while
  decoding, naming the column and the row; numeric strings (``"1.5"``) are refused too, where
  MLflow would convert them, so a client bug is not scored silently;
* ``string`` and ``boolean`` columns take strings (booleans) or null;
* any other column (a richer schema, or a column the schema does not describe) is an object
  column of the values as they came; the schema engine checks it value by value.

CSV bodies are read by pyarrow with one type per schema column, every row must have exactly as
many fields as the header (a 400 names the first line that does not), and no column is ever
taken as an index. Parquet bodies are read by pyarrow after checking their size from the footer.
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.serve.protocol import (BAD_REQUEST, INVALID_PARAMETER_VALUE, RESOURCE_LIMIT_EXCEEDED,
                                      RequestError, json_type, short)

NUMBER, STRING, BOOLEAN, ANY = "number", "string", "boolean", "any"
#: Integers that a float64 holds exactly; a column with a larger integer stays exact (object).
_EXACT = 2**53
#: What CSV readers (pandas, hence MLflow) read as a missing value.
CSV_NULLS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
_NUMBER_TYPES = frozenset({int, float})
_NUMBER_OR_NULL = frozenset({int, float, type(None)})
_STRING_OR_NULL = frozenset({str, type(None)})
_BOOL_OR_NULL = frozenset({bool, type(None)})


def _types(subschema: Any) -> set[str]:
    if not isinstance(subschema, dict):
        return set()
    t = subschema.get("type")
    return {t} if isinstance(t, str) else set(t) if isinstance(t, list) else set()


def column_kind(subschema: Any) -> str:
    """How a schema column is decoded: ``number``, ``string``, ``boolean`` or ``any``."""
    types = _types(subschema)
    if types and types <= {"number", "integer", "null"} and types & {"number", "integer"}:
        return NUMBER
    if types and types <= {"string", "null"} and "string" in types:
        return STRING
    if types and types <= {"boolean", "null"} and "boolean" in types:
        return BOOLEAN
    return ANY


@dataclass(frozen=True)
class Decoder:
    """The decoding of each schema column (columns the schema does not name decode as ``any``),
    and which of them admit null (for the messages)."""

    kinds: dict[str, str]
    nullable: frozenset[str] = frozenset()
    #: Columns that take strings or booleans, never numbers (derived from ``kinds``).
    text_columns: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_columns", frozenset(
            name for name, kind in self.kinds.items() if kind in (STRING, BOOLEAN)))

    @classmethod
    def from_schema(cls, schema: dict[str, Any] | None) -> Decoder:
        props = (schema or {}).get("properties")
        props = props if isinstance(props, dict) else {}
        return cls({name: column_kind(sub) for name, sub in props.items()},
                   frozenset(name for name, sub in props.items() if "null" in _types(sub)))

    # -- JSON rows -------------------------------------------------------------------------------

    def rows(self, columns: list[str], rows: list[list[Any]], *, where: str) -> Decoded:
        """Typed columns (by name, first occurrence of a repeated name kept) from JSON rows.

        When every cell is a JSON number and no schema column wants strings or booleans, the
        rows are one float64 matrix (a number-only list is safe for numpy: no unicode array),
        in one call; otherwise each column is decoded on its own."""
        matrix = self._all_numbers(columns, rows)
        if matrix is not None:
            positions = dict(zip(columns, range(len(columns))))
            if len(positions) != len(columns):  # a repeated name: its first occurrence counts
                positions = {}
                for j, name in enumerate(columns):
                    positions.setdefault(name, j)
            return Decoded(None, matrix, positions)
        out: dict[str, Any] = {}
        for j, name in enumerate(columns):
            if name in out:
                continue
            values = [row[j] for row in rows]
            out[name] = self.values(name, values, where=where)
        return Decoded(out)

    def _all_numbers(self, columns: list[str], rows: list[list[Any]]) -> Any:
        if not rows:
            return None
        present = set(map(type, itertools.chain.from_iterable(rows)))
        if not present <= _NUMBER_TYPES or not self.text_columns.isdisjoint(columns):
            return None  # not only numbers, or numbers where the schema wants text
        try:
            matrix = np.array(rows, dtype=np.float64)
        except (OverflowError, ValueError):
            return None
        if matrix.ndim != 2 or matrix.shape[1] != len(columns):
            return None
        if int in present and np.abs(matrix).max() > _EXACT:
            big = np.argwhere(np.abs(matrix) > _EXACT).tolist()
            if any(type(rows[i][j]) is int for i, j in big):
                return None  # an integer a float would round: keep it exact, column by column
        return matrix

    def values(self, name: str, values: list[Any], *, where: str) -> Any:
        kind = self.kinds.get(name, ANY)
        present = set(map(type, values))
        if kind == NUMBER:
            if present <= _NUMBER_TYPES:
                return _floats(values)
            if present <= _NUMBER_OR_NULL:
                return _floats([math.nan if v is None else v for v in values])
            self._refuse(name, values, _NUMBER_OR_NULL, "a number", where)
        elif kind == STRING:
            if not present <= _STRING_OR_NULL:
                self._refuse(name, values, _STRING_OR_NULL, "a string", where)
        elif kind == BOOLEAN:
            if not present <= _BOOL_OR_NULL:
                self._refuse(name, values, _BOOL_OR_NULL, "a boolean", where)
        elif present <= _NUMBER_TYPES and values:
            return _floats(values)
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column

    def _refuse(self, name: str, values: list[Any], allowed: frozenset[type], expected: str,
                where: str) -> None:
        noun = f"{expected} or null" if name in self.nullable else expected
        for i, value in enumerate(values):
            if type(value) not in allowed:
                quoted = isinstance(value, str) and expected == "a number" and _numeric(value)
                raise RequestError(400, INVALID_PARAMETER_VALUE,
                                   f"{where}: column {short(name, 60)!r}, row {i}: expected "
                                   f"{noun}, received {json_type(value)} "
                                   f"{short(repr(value), 40)}"
                                   + (" (send numbers unquoted)" if quoted else ""),
                                   columns=(name,))

    # -- CSV -------------------------------------------------------------------------------------

    def csv(self, body: bytes, *, max_cells: int) -> Any:
        """A DataFrame from a CSV body with a header row (strict field counts, typed columns)."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        if not body.strip():
            raise RequestError(400, BAD_REQUEST, "the CSV body is empty; send a header row and one "
                                                 "row per record")
        header = _csv_header(body)
        if len(set(header)) != len(header):
            repeated = sorted({c for c in header if header.count(c) > 1})
            raise RequestError(400, BAD_REQUEST, f"the CSV header repeats column(s) "
                                                 f"{short(', '.join(repeated), 80)}")
        types = {name: {NUMBER: pa.float64(), STRING: pa.string(), BOOLEAN: pa.bool_()}[kind]
                 for name, kind in self.kinds.items() if kind != ANY and name in header}
        bad: list[Any] = []

        def on_bad_row(row: Any) -> str:
            bad.append(row)
            return "error"

        try:
            table = pcsv.read_csv(
                io.BytesIO(body),
                read_options=pcsv.ReadOptions(use_threads=False),
                parse_options=pcsv.ParseOptions(newlines_in_values=True,
                                                invalid_row_handler=on_bad_row),
                convert_options=pcsv.ConvertOptions(column_types=types, null_values=CSV_NULLS,
                                                     strings_can_be_null=True,
                                                     quoted_strings_can_be_null=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, ValueError) as exc:
            if bad:
                row = bad[0]
                raise RequestError(400, BAD_REQUEST,
                                   f"CSV line {row.number}: {row.actual_columns} fields, the "
                                   f"header has {row.expected_columns}; every row needs one "
                                   "value per header column") from None
            raise _csv_error(str(exc), header, body) from None
        if table.num_rows * max(table.num_columns, 1) > max_cells:
            raise too_many_cells(table.num_rows, table.num_columns, max_cells)
        return table.to_pandas()

    # -- Parquet ---------------------------------------------------------------------------------

    @staticmethod
    def parquet(body: bytes, *, max_cells: int) -> Any:
        """A DataFrame from a Parquet body, refused by its footer when it holds too many cells."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            reader = pq.ParquetFile(io.BytesIO(body))
            meta = reader.metadata
            if meta.num_rows * max(meta.num_columns, 1) > max_cells:
                raise too_many_cells(meta.num_rows, meta.num_columns, max_cells)
            table = reader.read()
        except RequestError:
            raise
        except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
            raise RequestError(400, BAD_REQUEST, f"cannot read the body as Parquet: "
                                                 f"{short(str(exc), 160)}") from None
        return table.to_pandas()


class Decoded:
    """Decoded request columns by name; for an all-number request, the one float64 matrix they
    are views of (made on first use: the numeric fast path reads the matrix only), and each
    name's position in it."""

    __slots__ = ("_columns", "matrix", "positions")

    def __init__(self, columns: dict[str, Any] | None, matrix: Any = None,
                 positions: dict[str, int] | None = None) -> None:
        self._columns = columns
        self.matrix = matrix
        self.positions = positions

    @property
    def columns(self) -> dict[str, Any]:
        if self._columns is None:
            self._columns = {name: self.matrix[:, j] for name, j in (self.positions or {}).items()}
        return self._columns


def too_many_cells(rows: int, columns: int, limit: int) -> RequestError:
    return RequestError(413, RESOURCE_LIMIT_EXCEEDED,
                        f"the request has {rows} rows x {columns} columns = {rows * columns} "
                        f"cells, over the limit of {limit} (--max-cells); send smaller batches "
                        "(or score a file with `python -m framework predict`)")


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _floats(values: list[Any]) -> Any:
    """float64 of JSON numbers; None when an integer would not survive as a float (the values
    then stay exact, in an object column)."""
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:  # an integer beyond float range (stdlib JSON allows any size)
        array = None
    if array is None or (array.size and not _exact(values, array)):
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column
    return array


def _exact(values: list[Any], array: Any) -> bool:
    big = np.abs(array) > _EXACT  # NaN compares False
    if not big.any():
        return True
    return not any(type(values[i]) is int for i in np.flatnonzero(big).tolist())


def _csv_header(body: bytes) -> list[str]:
    import csv

    first = body.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        return next(csv.reader([first.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RequestError(400, BAD_REQUEST, f"cannot read the CSV header: {short(str(exc), 120)}"
                           ) from None


def _csv_error(text: str, header: list[str], body: bytes) -> RequestError:
    """pyarrow's conversion error (``In CSV column #3: ...``) with the column and the first row
    that failed named."""
    import re

    match = re.search(r"In CSV column #(\d+): (.*)", text, flags=re.S)
    if not match or int(match[1]) >= len(header):
        return RequestError(400, BAD_REQUEST, f"cannot read the body as CSV with a header row: "
                                              f"{short(text, 160)}")
    name = header[int(match[1])]
    target = re.search(r"conversion error to (\w+)", match[2])
    where = f"CSV column {short(name, 60)!r}"
    row = _first_bad_cell(body, name, target[1] if target else "")
    if row is not None:
        line, value = row
        noun = {"double": "a number", "bool": "a boolean"}.get(target[1] if target else "",
                                                               "a value of its type")
        return RequestError(400, INVALID_PARAMETER_VALUE,
                            f"{where}, line {line}: expected {noun}, received "
                            f"{short(repr(value), 40)}", columns=(name,))
    return RequestError(400, INVALID_PARAMETER_VALUE, f"{where}: {short(match[2], 160)}",
                        columns=(name,))


def _first_bad_cell(body: bytes, name: str, target: str) -> tuple[int, str] | None:
    """The line number (1 is the header) and text of the first cell of column ``name`` that
    does not read as ``target`` (pyarrow's conversion errors name the column, not the row)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        column = pcsv.read_csv(io.BytesIO(body), parse_options=pcsv.ParseOptions(
            newlines_in_values=True), convert_options=pcsv.ConvertOptions(
            include_columns=[name], column_types={name: pa.string()}, null_values=CSV_NULLS,
            strings_can_be_null=True)).column(0).to_pylist()
    except (pa.ArrowException, ValueError):
        return None
    for i, value in enumerate(column):
        if value is None:
            continue
        try:
            if target == "double":
                float(value)
            elif target == "bool" and value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
        except ValueError:
            return i + 2, value
    return None
