"""One loaded model version: its estimator, its compiled input schema, and how to score a table.

Checking a request follows :func:`framework.schema.conform`: columns outside the schema are dropped,
the schema's columns are put in order, only lossless conversions are made, and a request that
breaks the schema is refused with the engine's report (column, rule, rows).

Decoding. A request's values are typed column by column from the schema
(:mod:`framework.serve.decode`): numbers into float64, strings and nested values into object
columns, so no input ever builds a fixed-width unicode array, and a string in a numeric column is
refused while decoding.

Fast path. When every column of the schema is a plain number (``type`` number/integer with
optional bounds, nothing else), the decoded float columns are checked with a few numpy comparisons
on one matrix: if they all hold, the engine would accept the table too. If any does not (or the
request is not that simple), the request takes the engine's path, which gives the verdict and the
report. The fast path never accepts what the engine refuses.

Numpy mode. scikit-learn spends most of a small prediction validating a DataFrame's columns. When
the model was fitted on exactly the schema's columns, the server hands it a float matrix in the
model's column order instead, after checking at load time, on probe rows built from the schema,
that both inputs give identical outputs (a ``ColumnTransformer`` selecting columns by name fails
that check and keeps DataFrames).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from framework.errors import SchemaViolation
from framework.registry import ModelVersion
from framework.schema import compile_schema, conform
from framework.serve import protocol
from framework.serve.decode import Decoded, Decoder
from framework.serve.protocol import (BAD_REQUEST, INVALID_PARAMETER_VALUE, RequestError, Table,
                                      short)

log = logging.getLogger(__name__)

PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
_EXACT = 2.0**53
_ANNOTATIONS = frozenset({"title", "description", "$comment", "default", "examples",
                          "deprecated", "readOnly", "writeOnly"})
_NUMERIC_KEYS = _ANNOTATIONS | {"type", "minimum", "maximum", "exclusiveMinimum",
                                "exclusiveMaximum"}
_ROOT_KEYS = _ANNOTATIONS | {"$schema", "$id", "type", "properties", "required",
                             "additionalProperties"}
_FEATURE_NAMES_WARNING = "X does not have valid feature names"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class NumericPlan:
    """Vectorized bounds of an all-number schema; ``check`` proves a matrix conforms."""

    columns: list[str]
    ge: np.ndarray
    le: np.ndarray
    gt: np.ndarray
    lt: np.ndarray
    integer: np.ndarray  # positions of integer-only columns

    @classmethod
    def build(cls, schema: dict[str, Any]) -> NumericPlan | None:
        """The plan, or None when the schema has anything beyond numbers and bounds."""
        if any(k not in _ROOT_KEYS and not k.startswith("x-") for k in schema):
            return None
        if any(k.startswith("x-") for k in schema):  # x-unique, x-not-null: leave to the engine
            return None
        if schema.get("type", "object") != "object":
            return None
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            return None
        bounds = {k: np.empty(len(props)) for k in ("ge", "le", "gt", "lt")}
        integer = []
        for j, (name, sub) in enumerate(props.items()):
            if not isinstance(sub, dict) or any(k not in _NUMERIC_KEYS for k in sub):
                return None
            types = sub.get("type")
            types = {types} if isinstance(types, str) else set(types or ())
            if not types & {"number", "integer"} or not types <= {"number", "integer", "null"}:
                return None
            if "number" not in types:
                integer.append(j)
            for key, slot, default in (("minimum", "ge", -np.inf), ("maximum", "le", np.inf),
                                       ("exclusiveMinimum", "gt", -np.inf),
                                       ("exclusiveMaximum", "lt", np.inf)):
                value = sub.get(key, default)
                if key in sub and not _number(value):
                    return None
                bounds[slot][j] = value
        return cls(list(props), integer=np.array(integer, dtype=np.intp), **bounds)

    def check(self, x: np.ndarray) -> bool:
        """True when every cell of ``x`` (rows x ``columns``) satisfies its column's schema."""
        if not np.isfinite(x).all():
            return False
        if not ((x >= self.ge).all() and (x <= self.le).all() and (x > self.gt).all()
                and (x < self.lt).all()):
            return False
        if self.integer.size:
            part = x[:, self.integer]
            return bool((np.trunc(part) == part).all())
        return True

    def reordered(self, order: list[str]) -> NumericPlan:
        """The same plan with its columns in ``order`` (a permutation of ``columns``)."""
        idx = np.array([self.columns.index(c) for c in order], dtype=np.intp)
        integer = {self.columns[j] for j in self.integer}
        return NumericPlan(list(order), self.ge[idx], self.le[idx], self.gt[idx], self.lt[idx],
                           np.array([j for j, c in enumerate(order) if c in integer],
                                    dtype=np.intp))

    def probe(self) -> np.ndarray:
        """A few rows inside the bounds, for checking numpy mode at load time."""
        rows = []
        for target in (0.0, 1.0, 10.0, -1.0):
            row = np.full(len(self.columns), target)
            lo = np.maximum(self.ge, np.where(np.isfinite(self.gt), self.gt + 1, -np.inf))
            hi = np.minimum(self.le, np.where(np.isfinite(self.lt), self.lt - 1, np.inf))
            row = np.clip(row, lo, np.maximum(lo, hi))
            rows.append(row)
        out = np.array(rows)
        out[:, self.integer] = np.ceil(out[:, self.integer])
        return out


@dataclass
class LoadedModel:
    """A registered version ready to score requests."""

    version: ModelVersion
    estimator: Any
    alias: str | None
    schema: dict[str, Any] | None
    compiled: Any
    columns: list[str] | None          # schema order: the order of positional rows
    features: list[str] | None         # the order the model takes its columns in
    plan: NumericPlan | None           # columns in the model's order
    numpy_mode: bool                   # fitted on a DataFrame, scored on matrices (checked)
    array_input: bool                  # fitted on arrays: scored on matrices in schema order
    methods: tuple[str, ...]
    decoder: Decoder = field(default_factory=lambda: Decoder({}))
    loaded_at: float = field(default_factory=time.time)
    profile: Any = None                # the version's reference profile (monitoring), if any

    # -- describing -----------------------------------------------------------------------------

    @property
    def label(self) -> str:
        return f"{self.version.name} v{self.version.version}"

    @property
    def tag(self) -> str:
        """``NAME/VERSION``: the ``x-model-version`` header of every prediction."""
        return f"{self.version.name}/{self.version.version}"

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.estimator, "classes_", None)
        return None if classes is None else np.asarray(classes).tolist()

    @property
    def one_column(self) -> str | None:
        cols = self.columns or self.features
        return cols[0] if cols and len(cols) == 1 else None

    # -- scoring --------------------------------------------------------------------------------

    def method(self, params: dict[str, Any]) -> str:
        name = params.get("predict_method", "predict")
        if not isinstance(name, str) or name not in PREDICT_METHODS:
            raise RequestError(400, INVALID_PARAMETER_VALUE,
                               f"params.predict_method must be one of "
                               f"{', '.join(PREDICT_METHODS)}; received {short(repr(name), 60)}")
        if name not in self.methods:
            raise RequestError(400, INVALID_PARAMETER_VALUE,
                               f"{self.label} ({type(self.estimator).__name__}) has no {name}; "
                               f"it offers {', '.join(self.methods)}")
        return name

    def parse(self, body: bytes, kind: str, *, max_cells: int) -> Table:
        """The :class:`Table` a body of ``kind`` (json, csv, parquet) holds; a 413 beyond
        ``max_cells`` cells."""
        if kind == "json":
            return protocol.parse_json(body, one_column=self.one_column, max_cells=max_cells)
        if kind == "csv":
            return Table(frame=self.decoder.csv(body, max_cells=max_cells), source="csv")
        return Table(frame=self.decoder.parquet(body, max_cells=max_cells), source="parquet")

    def prepare(self, table: Table) -> Any:
        """The model's input for ``table``, checked against the schema (RequestError if not)."""
        if table.rows is not None:
            columns = table.columns
            if columns is None:  # positional rows
                columns = self._positional(table.rows)
            names = [c if isinstance(c, str) else str(c) for c in columns]
            decoded = self.decoder.rows(names, table.rows, where=table.source)
            if self.plan is not None:
                x = self._fast(decoded, len(table.rows))
                if x is not None:
                    return x if self.numpy_mode or self.array_input else self._frame(x)
            frame = pd.DataFrame(decoded.columns, index=pd.RangeIndex(len(table.rows)))
        else:
            frame = table.frame
        return self._checked(frame)

    def predict(self, x: Any, method: str) -> Any:
        if len(x) == 0:
            return []
        try:
            return getattr(self.estimator, method)(x)
        except Exception as exc:  # the model's own refusal of odd but schema-valid input
            raise RequestError(400, BAD_REQUEST,
                               f"{self.label} could not score this input "
                               f"({type(exc).__name__}: {short(str(exc), 200)})") from None

    # -- helpers --------------------------------------------------------------------------------

    def _positional(self, rows: list[Any]) -> list[str]:
        order = self.columns or self.features
        width = len(rows[0]) if rows else 0
        if order is None:
            raise RequestError(400, BAD_REQUEST, f"{self.label} has no input schema and no "
                               "column names: send named columns (dataframe_split with columns, "
                               "or records)")
        if rows and width != len(order):
            raise RequestError(400, BAD_REQUEST,
                               f"positional rows have {width} values, {self.label} takes "
                               f"{len(order)} columns: {short(', '.join(order), 200)}")
        return list(order)

    def _fast(self, decoded: Decoded, n_rows: int) -> np.ndarray | None:
        """The checked float matrix (model column order) when every plan column was decoded as
        float64 and every value passes the plan; None sends the request to the engine.

        The matrix is column-major, as a DataFrame's values are: scikit-learn then computes
        exactly as it does on the DataFrame (a row-major matrix can change the last bit of a dot
        product)."""
        plan = self.plan
        assert plan is not None
        if not n_rows:
            return None
        if decoded.matrix is not None:  # every cell a number: pick the plan's columns at once
            positions = decoded.positions or {}
            try:
                index = [positions[name] for name in plan.columns]
            except KeyError:
                return None
            x = decoded.matrix[:, index]  # a fancy index: column-major
        else:
            x = np.empty((n_rows, len(plan.columns)), order="F")
            for j, name in enumerate(plan.columns):
                column = decoded.columns.get(name)
                if column is None or column.dtype != np.float64:
                    return None
                x[:, j] = column
        # beyond 2**53 a float may have rounded an integer cell: leave those to the engine
        if not plan.check(x) or np.abs(x).max() > _EXACT:
            return None
        return x

    def _frame(self, x: np.ndarray) -> pd.DataFrame:
        return _as_frame(self.plan, x)  # type: ignore[arg-type]

    def _checked(self, frame: pd.DataFrame) -> Any:
        frame_in = frame
        names = [c if isinstance(c, str) else str(c) for c in frame.columns]
        if self.compiled is not None:
            first: dict[str, int] = {}
            for j, name in enumerate(names):
                first.setdefault(name, j)
            keep = {n: j for n, j in first.items() if n in self.compiled.properties}
            sub = frame.iloc[:, list(keep.values())]
            sub.columns = list(keep)
            try:
                frame = conform(sub, self.compiled, what="request")
            except SchemaViolation as exc:
                report = exc.report  # type: ignore[attr-defined]
                lines = [v.message for v in report.violations[:10]]
                more = len(report.violations) - len(lines)
                text = "; ".join(lines) + (f"; and {more} more" if more > 0 else "")
                broken = tuple(dict.fromkeys(str(v.column) if v.column is not None
                                             else "(row)" for v in report.violations))
                raise RequestError(400, INVALID_PARAMETER_VALUE,
                                   f"the request does not match the input schema of "
                                   f"{self.label}: {text}",
                                   details=report.to_dict(), columns=broken) from None
            except Exception as exc:  # a value the engine cannot even compare
                raise RequestError(400, INVALID_PARAMETER_VALUE,
                                   f"the request cannot be checked against the input schema of "
                                   f"{self.label} ({type(exc).__name__}: "
                                   f"{short(str(exc), 160)})") from None
            # columns the model takes but the schema does not describe pass through unchecked
            for name in self.features or ():
                if name not in keep and name in first:
                    frame[name] = frame_in.iloc[:, first[name]]
            names = list(frame.columns)
        if self.features is not None:
            missing = [f for f in self.features if f not in set(names)]
            if missing:
                raise RequestError(400, INVALID_PARAMETER_VALUE,
                                   f"{self.label} needs column(s) absent from the request: "
                                   f"{short(', '.join(missing), 200)}", columns=tuple(missing))
            if names != self.features:
                frame = frame.loc[:, self.features]
        if self.array_input:
            return frame.to_numpy()
        return frame


def _model_features(estimator: Any) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    names = [str(n) for n in np.asarray(names).tolist()]
    return names


def _as_frame(plan: NumericPlan, x: np.ndarray) -> pd.DataFrame:
    """The checked matrix as a DataFrame; integer columns as int64 when that is lossless (as
    :func:`framework.schema.conform` does)."""
    frame = pd.DataFrame(x, columns=plan.columns)
    for j in plan.integer:
        if np.abs(x[:, j]).max(initial=0.0) <= _EXACT:
            name = plan.columns[j]
            frame[name] = frame[name].astype(np.int64)
    return frame


def _same_outputs(estimator: Any, frame: pd.DataFrame, matrix: np.ndarray,
                  methods: tuple[str, ...]) -> bool:
    for name in methods:
        a = np.asarray(getattr(estimator, name)(frame))
        b = np.asarray(getattr(estimator, name)(matrix))
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            if not np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True):
                return False
        elif not np.array_equal(a, b):
            return False
    return True


def load_version(registry: Any, mv: ModelVersion, *, alias: str | None,
                 numpy_mode: bool = True, trusted: tuple[str, ...] | None = None) -> LoadedModel:
    """Load ``mv`` from ``registry`` (hash-checked, the exact skops allowlist plus ``trusted``),
    compile its schema once and decide the fast path and numpy mode."""
    return ready(mv, registry.load(mv, trusted=trusted), alias=alias, numpy_mode=numpy_mode,
                 profile=_profile(registry, mv))


def ready(mv: ModelVersion, estimator: Any, *, alias: str | None, numpy_mode: bool = True,
          profile: Any = None) -> LoadedModel:
    """``estimator`` (version ``mv``, loaded and checked) ready to score: its schema compiled,
    the fast path and numpy mode decided; ``profile`` feeds the drift gauges."""
    schema = mv.serving_schema()
    compiled = compile_schema(schema, source=f"{mv.name} v{mv.version} input schema", checked=True) \
        if schema else None
    columns = list(compiled.properties) if compiled is not None else None
    features = _model_features(estimator)
    # fitted on plain arrays, with as many columns as the schema has: positional, schema order
    array_input = features is None and columns is not None and \
        getattr(estimator, "n_features_in_", None) == len(columns)
    methods = tuple(m for m in PREDICT_METHODS if callable(getattr(estimator, m, None)))
    if "predict" not in methods:
        from framework.errors import RegistryError

        raise RegistryError(f"{mv.name} v{mv.version}: {type(estimator).__name__} has no "
                            "predict method; it cannot be served")
    plan = NumericPlan.build(schema) if schema else None
    if plan is not None and features is not None and set(features) != set(plan.columns):
        plan = None  # the model takes other columns than the schema lists: engine path only
    use_numpy = False
    if plan is not None and features is not None:
        plan = plan.reordered(features)
        if numpy_mode:
            probe = plan.probe()
            frame = _as_frame(plan, probe)
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore")
                    use_numpy = _same_outputs(estimator, frame, probe, methods)
            except Exception as exc:  # the probe failed: keep DataFrames
                log.debug("%s: numpy mode off (%s)", mv.name, exc)
                use_numpy = False
    return LoadedModel(version=mv, estimator=estimator, alias=alias, schema=schema,
                       compiled=compiled, columns=columns, features=features, plan=plan,
                       numpy_mode=use_numpy, array_input=array_input, methods=methods,
                       decoder=Decoder.from_schema(schema), profile=profile)


def _profile(registry: Any, mv: ModelVersion) -> Any:
    """The version's reference profile, None when it has none (or it cannot be read: serving
    goes on without the drift gauges, and says why)."""
    try:
        data = registry.companion(mv, "profile")
        if data is None:
            return None
        from framework.monitor.profile import Profile

        return Profile.from_bytes(data)
    except Exception as exc:
        log.warning("%s v%d: no drift gauges (its profile cannot be read: %s)", mv.name,
                    mv.version, exc)
        return None


def quiet_feature_name_warning() -> None:
    """Numpy mode feeds a matrix to a model fitted on a DataFrame, in the fitted column order;
    silence scikit-learn's warning about the missing names (serving processes only)."""
    warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING, category=UserWarning)
