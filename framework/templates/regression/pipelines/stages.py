"""Stage functions of this project: plain functions, data and params in, outputs by name out."""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd
from sklearn import metrics
from sklearn.base import RegressorMixin
from sklearn.model_selection import train_test_split


def ingest(dataset: dict[str, Any]) -> dict[str, pd.DataFrame]:
    module_name, _, func = dataset["loader"].rpartition(".")
    frame = getattr(importlib.import_module(module_name), func)(as_frame=True).frame
    return {"raw": frame.rename(columns={"target": dataset["target"]})}


def split(raw: pd.DataFrame, *, split: dict[str, Any], seed: int) -> dict[str, pd.DataFrame]:
    train, test = train_test_split(raw, test_size=split["test_size"], random_state=seed)
    return {"train": train.reset_index(drop=True), "test": test.reset_index(drop=True)}


def train(train: pd.DataFrame, *, model: RegressorMixin, target: str) -> dict[str, Any]:
    model.fit(train.drop(columns=[target]), train[target])
    return {"model": model}


def evaluate(model: RegressorMixin, test: pd.DataFrame, *, target: str) -> dict[str, Any]:
    actual = test[target].to_numpy()
    predicted = model.predict(test.drop(columns=[target]))
    scores = {
        "rmse": metrics.root_mean_squared_error(actual, predicted),
        "mae": metrics.mean_absolute_error(actual, predicted),
        "r2": metrics.r2_score(actual, predicted),
    }
    return {"metrics": {k: round(float(v), 6) for k, v in scores.items()},
            "predictions": pd.DataFrame({"actual": actual, "predicted": predicted.round(3)})}
