"""Stage functions of this project: plain functions, data and params in, outputs by name out.

The params blocks are typed (``Dataset``, ``SplitParams``): ``compile`` checks the config against
these types, so a typo in ``conf/`` is a config error naming the file and the key.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, TypedDict

import pandas as pd
from sklearn import metrics
from sklearn.base import ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


class Dataset(TypedDict):
    loader: str  # a loader of sklearn.datasets, e.g. sklearn.datasets.load_wine
    target: str  # the name of the target column


class SplitParams(TypedDict):
    test_size: float
    stratify: bool


def ingest(dataset: Dataset) -> dict[str, pd.DataFrame]:
    module_name, _, func = dataset["loader"].rpartition(".")
    frame = getattr(importlib.import_module(module_name), func)(as_frame=True).frame
    frame.columns = [re.sub(r"\W+", "_", str(c)).strip("_") for c in frame.columns]
    return {"raw": frame.rename(columns={"target": dataset["target"]})}


def split(raw: pd.DataFrame, feedback: pd.DataFrame | None = None, *, split: SplitParams,
          seed: int, target: str) -> dict[str, pd.DataFrame]:
    """Hold out a test set; labelled production rows (``feedback``, written by ``monitor
    --retrain``, absent until then) are split the same way and join both sides."""
    parts = [raw] if feedback is None else [raw, feedback[list(raw.columns)]]
    trains, tests = [], []
    for rows in parts:
        stratify = split["stratify"] and rows[target].value_counts().min() >= 2
        train, test = train_test_split(rows, test_size=split["test_size"], random_state=seed,
                                       stratify=rows[target] if stratify else None)
        trains.append(train)
        tests.append(test)
    return {"train": pd.concat(trains, ignore_index=True),
            "test": pd.concat(tests, ignore_index=True)}


def train(train: pd.DataFrame, *, model: ClassifierMixin, target: str) -> dict[str, Any]:
    pipeline = Pipeline([("scale", StandardScaler()), ("model", model)])
    pipeline.fit(train.drop(columns=[target]), train[target])
    return {"model": pipeline}


def evaluate(model: Pipeline, test: pd.DataFrame, *, target: str) -> dict[str, Any]:
    X, actual = test.drop(columns=[target]), test[target].to_numpy()
    predicted = model.predict(X)
    proba = model.predict_proba(X)
    scores = {
        "accuracy": metrics.accuracy_score(actual, predicted),
        "f1_macro": metrics.f1_score(actual, predicted, average="macro"),
        "log_loss": metrics.log_loss(actual, proba, labels=model.classes_),
        "roc_auc_ovr": metrics.roc_auc_score(actual, proba, multi_class="ovr"),
    }
    return {"metrics": {k: round(float(v), 6) for k, v in scores.items()},
            "confusion": pd.DataFrame({"actual": actual, "predicted": predicted})}
