"""The reference profile of a model version, built by the register step from its training table.

A profile is what monitoring compares production with, so it never rereads the training data:

* per feature column, a sketch (:mod:`framework.monitor.stats`): numeric columns as quantile
  points with exact counts, mean, std, missing share; categorical columns (strings, booleans,
  enums, and integer columns with at most :data:`DISCRETE_MAX` distinct values) as value counts;
* the model's predictions on the test table: the distribution of its score (the probability of
  the positive class for a binary classifier, the top probability for a multiclass one, the
  value for a regressor), the shares of the predicted classes, and the calibration error of its
  probabilities (expected calibration error, ten bins).

Two companion artifacts are stored with the version, content-addressed like the model: the
profile (canonical JSON: the same data give the same bytes) and the per-row test predictions
(Parquet: ``y_true``, ``y_pred`` and, for a classifier with probabilities, ``proba_0`` ...
``proba_{k-1}`` in the order of ``classes``), which the label-free estimate calibrates against
and reports compare versions with.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.monitor.stats import CategoricalSketch, NumericSketch, Sketch, sketch_from_dict

PROFILE_VERSION = 1
#: Integer columns with at most this many distinct values are profiled as categories.
DISCRETE_MAX = 20
#: Bins of the expected calibration error.
CALIBRATION_BINS = 10
PROFILE = "profile"
TEST_PREDICTIONS = "test_predictions"
#: The first rows of the test table as the model takes them (Parquet): a package's input example,
#: whose expected predictions are the first rows of ``test_predictions``.
INPUT_EXAMPLE = "input_example"
EXAMPLE_ROWS = 20


@dataclass(frozen=True)
class PredictionProfile:
    """What the model predicted on its test table."""

    rows: int
    task: str                          # "classification" or "regression"
    classes: list[Any] | None          # model.classes_, JSON values
    score: NumericSketch | None        # see the module docstring
    labels: CategoricalSketch | None   # the predicted classes
    calibration_error: float | None    # ECE of the predicted class's probability

    @property
    def has_proba(self) -> bool:
        return self.task == "classification" and self.score is not None

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "task": self.task, "classes": self.classes,
                "score": None if self.score is None else self.score.to_dict(),
                "labels": None if self.labels is None else self.labels.to_dict(),
                "calibration_error": self.calibration_error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PredictionProfile:
        score = d.get("score")
        labels = d.get("labels")
        return cls(int(d["rows"]), str(d["task"]), d.get("classes"),
                   None if score is None else NumericSketch.from_dict(score),
                   None if labels is None else CategoricalSketch.from_dict(labels),
                   d.get("calibration_error"))


@dataclass(frozen=True)
class Profile:
    """The reference of one version: its training table's columns and its test predictions."""

    rows: int
    target: str | None
    columns: dict[str, Sketch]
    prediction: PredictionProfile | None = None
    version: int = PROFILE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"profile_version": self.version, "rows": self.rows, "target": self.target,
                "columns": [{"name": k, **v.to_dict()} for k, v in self.columns.items()],
                "prediction": None if self.prediction is None else self.prediction.to_dict()}

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys (the columns a list, in the table's order), no spaces,
        shortest round-tripping floats."""
        return (json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                           allow_nan=False) + "\n").encode()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        version = d.get("profile_version")
        if version != PROFILE_VERSION:
            raise ValueError(f"profile version {version!r}; this framework reads version "
                             f"{PROFILE_VERSION}")
        prediction = d.get("prediction")
        return cls(int(d["rows"]), d.get("target"),
                   {str(c["name"]): sketch_from_dict(c) for c in d["columns"]},
                   None if prediction is None else PredictionProfile.from_dict(prediction))

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        return cls.from_dict(json.loads(data))


def column_kinds(schema: Mapping[str, Any] | None, frame: Any,
                 columns: list[str]) -> dict[str, str]:
    """``numeric`` or ``categorical`` for each of ``columns``, from its schema (types, enum) and,
    for integer columns, the number of distinct values in ``frame``."""
    import pandas as pd

    props = (schema or {}).get("properties") or {}
    kinds = {}
    for name in columns:
        sub = props.get(name) if isinstance(props, Mapping) else None
        types: set[str] = set()
        if isinstance(sub, Mapping):
            t = sub.get("type")
            types = {t} if isinstance(t, str) else set(t or ())
            types.discard("null")
        series = frame[name] if name in frame.columns else None
        if isinstance(sub, Mapping) and ("enum" in sub or "const" in sub):
            kind = "categorical"
        elif types and types <= {"number", "integer"}:
            kind = "numeric"
            if types == {"integer"} and series is not None and \
                    series.nunique(dropna=True) <= DISCRETE_MAX:
                kind = "categorical"
        elif types:
            kind = "categorical"
        elif series is not None and pd.api.types.is_numeric_dtype(series) and \
                not pd.api.types.is_bool_dtype(series):
            kind = "categorical" if pd.api.types.is_integer_dtype(series) and \
                series.nunique(dropna=True) <= DISCRETE_MAX else "numeric"
        else:
            kind = "categorical"
        kinds[name] = kind
    return kinds


def sketch_column(kind: str, values: Any) -> Sketch:
    return NumericSketch.of(values) if kind == "numeric" else CategoricalSketch.of(values)


def numeric_values(series: Any) -> np.ndarray:
    """A column as float64, anything that is not a number as NaN (a missing value)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return series.astype(np.float64).to_numpy()
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def build(train: Any, *, schema: Mapping[str, Any] | None, target: str | None,
          model: Any = None, test: Any = None) -> tuple[Profile, bytes | None]:
    """The profile of a version trained on ``train`` (a DataFrame), and the Parquet bytes of its
    per-row predictions on ``test`` (None without a model and a test table)."""
    features = [str(c) for c in train.columns if str(c) != target]
    kinds = column_kinds(schema, train, features)
    columns: dict[str, Sketch] = {}
    for name in features:
        values = train[name]
        columns[name] = sketch_column(kinds[name], numeric_values(values)
                                      if kinds[name] == "numeric" else values)
    prediction = None
    table = None
    if model is not None and test is not None and len(test):
        prediction, table = _predictions(model, test, target)
    return Profile(int(len(train)), target, columns, prediction), table


def model_scores(model: Any, x: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(predictions, probabilities or None)`` of ``model`` on ``x``."""
    predicted = np.asarray(model.predict(x))
    proba = None
    if callable(getattr(model, "predict_proba", None)) and getattr(model, "classes_", None) \
            is not None:
        try:
            proba = np.asarray(model.predict_proba(x), dtype=np.float64)
        except Exception:  # e.g. an SVC without probability=True raises on the call
            proba = None
    return predicted, proba


def score_of(proba: np.ndarray) -> np.ndarray:
    """The one number per row that prediction drift watches: P(positive) for two classes, the
    top probability otherwise."""
    return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)


def _predictions(model: Any, test: Any, target: str | None) -> tuple[PredictionProfile, bytes]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = test.drop(columns=[target]) if target and target in test.columns else test
    predicted, proba = model_scores(model, x)
    classes = getattr(model, "classes_", None)
    is_classifier = classes is not None
    out = pd.DataFrame()
    if target and target in test.columns:
        out["y_true"] = test[target].to_numpy()
    out["y_pred"] = predicted
    if is_classifier:
        labels = CategoricalSketch.of(predicted)
        score = None
        ece = None
        if proba is not None:
            for j in range(proba.shape[1]):
                out[f"proba_{j}"] = proba[:, j]
            score = NumericSketch.of(score_of(proba))
            if "y_true" in out:
                ece = calibration_error(proba, np.asarray(classes), out["y_true"].to_numpy())
        profile = PredictionProfile(len(x), "classification", np.asarray(classes).tolist(),
                                    score, labels, ece)
    else:
        profile = PredictionProfile(len(x), "regression", None,
                                    NumericSketch.of(predicted.astype(np.float64)), None, None)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(out, preserve_index=False), sink, compression="zstd")
    return profile, sink.getvalue()


def calibration_error(proba: np.ndarray, classes: np.ndarray, y_true: np.ndarray) -> float | None:
    """Expected calibration error of the predicted class's probability (equal-width bins)."""
    top = proba.argmax(axis=1)
    confidence = proba[np.arange(len(proba)), top]
    correct = classes[top] == y_true
    if not len(correct):
        return None
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    total = 0.0
    for b in range(CALIBRATION_BINS):
        mask = bins == b
        if mask.any():
            total += abs(float(correct[mask].mean()) - float(confidence[mask].mean())) * \
                float(mask.mean())
    return round(total, 6)


def example_bytes(test: Any, schema: Mapping[str, Any] | None, target: str | None) -> bytes:
    """The first :data:`EXAMPLE_ROWS` rows of ``test`` as the model takes them (the schema's
    columns, in its order; the target left out), as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = test.drop(columns=[target]) if target and target in test.columns else test
    names = [c for c in ((schema or {}).get("properties") or {}) if c in x.columns]
    head = (x[names] if names else x).head(EXAMPLE_ROWS)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(head, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def read_test_predictions(data: bytes) -> Any:
    """The per-row test predictions stored with a version, as a DataFrame."""
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pandas()
