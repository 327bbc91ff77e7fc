"""Stage functions of the tabular classification pipeline.

Plain functions: data and params in, outputs by name out. They know nothing of DVC, Hydra or
files; the stage runner loads, checks and writes. Estimators arrive already built from config.
The plain params blocks are typed (``Dataset``, ``SplitParams``): ``compile`` checks the config
against them (an unknown key, a missing one, a wrong type is a config error naming the file).
"""

from __future__ import annotations

import importlib
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize


class Dataset(TypedDict):
    """A dataset that ships with scikit-learn (``conf/dataset/*.yaml``)."""

    loader: str  # e.g. sklearn.datasets.load_breast_cancer
    target: str  # the name of the target column


class SplitParams(TypedDict):
    """How the test set is held out (``split:`` in ``conf/config.yaml``)."""

    test_size: float
    stratify: bool


def ingest(dataset: Dataset) -> dict[str, pd.DataFrame]:
    """Load a dataset that ships with scikit-learn as one table (features + target column)."""
    module_name, _, func = dataset["loader"].rpartition(".")
    bunch = getattr(importlib.import_module(module_name), func)(as_frame=True)
    frame = bunch.frame.rename(columns={"target": dataset["target"]})
    frame.columns = [str(c).strip().replace(" ", "_") for c in frame.columns]
    return {"raw": frame}


def split(raw: pd.DataFrame, feedback: pd.DataFrame | None = None, *, split: SplitParams,
          seed: int, target: str) -> dict[str, pd.DataFrame]:
    """Hold out a test set, stratified on the target when asked.

    ``feedback`` holds labelled production rows (written by ``monitor --retrain``; absent until
    then). They are split the same way and added to both sides: the new model learns from them,
    and it is judged (and the champion re-scored) on a test set that includes them."""
    train, test = _hold_out(raw, split, seed, target)
    if feedback is not None and len(feedback):
        more_train, more_test = _hold_out(feedback[list(raw.columns)], split, seed, target)
        train = pd.concat([train, more_train], ignore_index=True)
        test = pd.concat([test, more_test], ignore_index=True)
    return {"train": train.reset_index(drop=True), "test": test.reset_index(drop=True)}


def _hold_out(rows: pd.DataFrame, split: SplitParams, seed: int,
              target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    # stratify only where every class has the two rows it needs
    stratify = split.get("stratify") and rows[target].value_counts().min() >= 2
    return train_test_split(rows, test_size=split["test_size"], random_state=seed,
                            stratify=rows[target] if stratify else None)


def train(train: pd.DataFrame, *, preprocess: BaseEstimator | str, model: BaseEstimator,
          target: str) -> dict[str, Pipeline]:
    """Fit preprocessing and model together, so the saved model takes raw feature rows."""
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
    pipeline.fit(train.drop(columns=[target]), train[target])
    return {"model": pipeline}


def evaluate(model: Pipeline, test: pd.DataFrame, *, target: str) -> dict[str, Any]:
    """Classification metrics, plus the data of a confusion matrix and a ROC curve."""
    X, y = test.drop(columns=[target]), test[target].to_numpy()
    predicted = model.predict(X)
    proba = model.predict_proba(X)
    binary = proba.shape[1] == 2
    average = "binary" if binary else "macro"
    scores = {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted, average=average, zero_division=0),
        "recall": skm.recall_score(y, predicted, average=average, zero_division=0),
        "f1": skm.f1_score(y, predicted, average=average, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]) if binary
        else skm.roc_auc_score(y, proba, multi_class="ovr"),
        "log_loss": skm.log_loss(y, proba, labels=model.classes_),
    }
    if binary:
        fpr, tpr, thresholds = skm.roc_curve(y == model.classes_[1], proba[:, 1])
    else:  # micro-averaged one-vs-rest curve
        onehot = label_binarize(y, classes=model.classes_)
        fpr, tpr, thresholds = skm.roc_curve(onehot.ravel(), proba.ravel())
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr,
                        "threshold": np.clip(thresholds, 0.0, 1.0)}).round(6)
    confusion = pd.DataFrame({"actual": y, "predicted": predicted})
    return {"metrics": {k: round(float(v), 6) for k, v in scores.items()},
            "confusion": confusion, "roc": roc}
