"""Stage functions of the tabular classification pipeline.

Plain functions: data and params in, outputs by name out. They know nothing of DVC, Hydra or
files; the stage runner loads, checks and writes. Estimators arrive already built from config.
The plain params blocks are typed (``Dataset``, ``SplitParams``): ``compile`` checks the config
against them (an unknown key, a missing one, a wrong type is a config error naming the file).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize

from framework.registry.gates import ROWS, group_key


class SyntheticGroup(TypedDict):
    """A grouping column drawn at random, for data that has none (see ``conf/dataset``)."""

    column: str
    values: list[str]
    seed: int


class Dataset(TypedDict):
    """A dataset that ships with scikit-learn (``conf/dataset/*.yaml``)."""

    loader: str  # e.g. sklearn.datasets.load_breast_cancer
    target: str  # the name of the target column
    synthetic_group: NotRequired[SyntheticGroup | None]
    exclude_from_features: NotRequired[list[str]]  # in the tables, never a model input
    groups: NotRequired[list[str]]  # columns whose groups evaluate scores apart


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
    group = dataset.get("synthetic_group")
    if group:
        rng = np.random.default_rng(group["seed"])
        frame[group["column"]] = rng.choice(np.array(group["values"], dtype=object), len(frame))
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
          target: str, exclude_from_features: Sequence[str] = ()) -> dict[str, Pipeline]:
    """Fit preprocessing and model together, so the saved model takes raw feature rows (every
    column but the target and ``exclude_from_features``)."""
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
    pipeline.fit(train.drop(columns=[target, *exclude_from_features]), train[target])
    return {"model": pipeline}


def evaluate(model: Pipeline, test: pd.DataFrame, *, target: str,
             exclude_from_features: Sequence[str] = (),
             groups: Sequence[str] = ()) -> dict[str, Any]:
    """Classification metrics, overall and per group of each column of ``groups``
    (``recall@clinic=A``, with the group's row count ``rows@clinic=A``), plus the data of a
    confusion matrix and a ROC curve."""
    X, y = test.drop(columns=[target, *exclude_from_features]), test[target].to_numpy()
    predicted = model.predict(X)
    proba = model.predict_proba(X)
    scores = _scores(y, predicted, proba, model.classes_)
    for column in groups:
        values = test[column].to_numpy()
        for group in sorted(pd.unique(values[pd.notna(values)]), key=str):
            rows = values == group
            scores[group_key(ROWS, column, group)] = int(rows.sum())
            for name, value in _scores(y[rows], predicted[rows], proba[rows],
                                       model.classes_, curve=False).items():
                scores[group_key(name, column, group)] = value
    binary = proba.shape[1] == 2
    if binary:
        fpr, tpr, thresholds = skm.roc_curve(y == model.classes_[1], proba[:, 1])
    else:  # micro-averaged one-vs-rest curve
        onehot = label_binarize(y, classes=model.classes_)
        fpr, tpr, thresholds = skm.roc_curve(onehot.ravel(), proba.ravel())
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr,
                        "threshold": np.clip(thresholds, 0.0, 1.0)}).round(6)
    confusion = pd.DataFrame({"actual": y, "predicted": predicted})
    return {"metrics": {k: v if isinstance(v, int) else round(float(v), 6)
                        for k, v in scores.items()},
            "confusion": confusion, "roc": roc}


def _scores(y: np.ndarray, predicted: np.ndarray, proba: np.ndarray, classes: np.ndarray, *,
            curve: bool = True) -> dict[str, float]:
    """Accuracy, precision, recall, f1, ROC AUC and log loss; on a group's rows (``curve``
    False) ROC AUC is left out where the rows hold one class only, since it is undefined."""
    binary = proba.shape[1] == 2
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, predicted, average="binary" if binary else "macro", zero_division=0)
    scores = {"accuracy": skm.accuracy_score(y, predicted), "precision": precision,
              "recall": recall, "f1": f1}
    if curve or len(np.unique(y)) == len(classes):
        scores["roc_auc"] = (skm.roc_auc_score(y, proba[:, 1]) if binary
                             else skm.roc_auc_score(y, proba, multi_class="ovr",
                                                    labels=classes))
    scores["log_loss"] = skm.log_loss(y, proba, labels=classes)
    return scores
