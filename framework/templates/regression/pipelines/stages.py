"""Stage functions of this project: plain functions, data and params in, outputs by name out.

The params blocks are typed (``Dataset``, ``SplitParams``, ``Preprocess``): ``compile`` checks
the config against these types, so a typo in ``conf/`` is a config error naming the file and the
key, before anything runs.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, TypedDict

import pandas as pd
from sklearn import metrics
from sklearn.base import RegressorMixin
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


class Dataset(TypedDict):
    loader: str  # a loader of sklearn.datasets, e.g. sklearn.datasets.load_diabetes
    target: str  # the name of the target column


class SplitParams(TypedDict):
    test_size: float


class Preprocess(TypedDict):
    impute: Literal["mean", "median", "most_frequent"]
    scale: bool


def ingest(dataset: Dataset) -> dict[str, pd.DataFrame]:
    module_name, _, func = dataset["loader"].rpartition(".")
    frame = getattr(importlib.import_module(module_name), func)(as_frame=True).frame
    return {"raw": frame.rename(columns={"target": dataset["target"]})}


def split(raw: pd.DataFrame, feedback: pd.DataFrame | None = None, *, split: SplitParams,
          seed: int) -> dict[str, pd.DataFrame]:
    """Hold out a test set; labelled production rows (``feedback``, written by ``monitor
    --retrain``, absent until then) are split the same way and join both sides."""
    parts = [raw] if feedback is None else [raw, feedback[list(raw.columns)]]
    halves = [train_test_split(rows, test_size=split["test_size"], random_state=seed)
              for rows in parts]
    return {"train": pd.concat([h[0] for h in halves], ignore_index=True),
            "test": pd.concat([h[1] for h in halves], ignore_index=True)}


def train(train: pd.DataFrame, *, preprocess: Preprocess, model: RegressorMixin,
          target: str) -> dict[str, Any]:
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=preprocess["impute"]))]
    if preprocess["scale"]:
        steps.append(("scale", StandardScaler()))
    pipeline = Pipeline([*steps, ("model", model)])
    pipeline.fit(train.drop(columns=[target]), train[target])
    return {"model": pipeline}


def evaluate(model: Pipeline, test: pd.DataFrame, *, target: str) -> dict[str, Any]:
    actual = test[target].to_numpy()
    predicted = model.predict(test.drop(columns=[target]))
    scores = {
        "rmse": metrics.root_mean_squared_error(actual, predicted),
        "mae": metrics.mean_absolute_error(actual, predicted),
        "r2": metrics.r2_score(actual, predicted),
    }
    return {"metrics": {k: round(float(v), 6) for k, v in scores.items()},
            "predictions": pd.DataFrame({"actual": actual, "predicted": predicted.round(3)})}
