"""``monitor compare NAME``: the versions that met real traffic side by side (``serve --split`` or
``--shadow``), and a sequential test that says when the challenger really differs.

Each group is one (alias, version, shadow) of the prediction log's rows in the window: its
requests and rows, its latency (p50, p95 over requests), its predictions (class shares, or mean
and spread), and once labels arrive its realized metric. A shadow is also compared row by row
with the version that answered the same requests (their agreement).

The test is the mixture sequential probability ratio test (mSPRT; Johari, Pekelis and Walsh,
*Always valid inference*, 2017) on the difference of the per-row metric between the challenger
and the champion, with a normal mixture of scale ``tau``. Its p-value stays valid however often
one looks and whenever one stops: it is recomputed after each labelled row, in time order, and
the smallest value so far is the one reported, as the method prescribes. (A variance of 0/1
outcomes is estimated with one pseudo success and failure per sample, so that an arm right on
every row still counts as evidence.) The confidence sequence
beside it holds the true difference with the stated confidence at every time at once. Split
arms are independent samples; a shadow scored the very rows the champion answered, so that test
is paired, which needs far fewer labels.

``monitor.ab`` in ``params.yaml`` names the aliases, the metric, the confidence, the labels each
arm needs (``min_labels``) and whether a win moves the champion alias (``promote: true``, or
``--promote``). A version rejected by its gates is never promoted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.errors import UsageError
from framework.monitor.policy import AB


@dataclass
class Group:
    alias: str
    version: int
    shadow: bool
    requests: int
    rows: int
    latency_p50: float | None
    latency_p95: float | None
    predictions: dict[str, float]        # class -> share, or {"mean", "std"}
    labelled: int
    metric: float | None
    agreement: float | None = None       # a shadow: share of rows it predicted the same

    @property
    def label(self) -> str:
        return f"{self.alias or '(none)'} v{self.version}" + (" (shadow)" if self.shadow else "")

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "label": self.label}


@dataclass
class Test:
    metric: str
    paired: bool
    champion: str
    challenger: str
    n_champion: int
    n_challenger: int
    difference: float | None             # challenger minus champion (higher is better)
    interval: tuple[float, float] | None
    p_value: float | None
    confidence: float
    verdict: str                         # challenger wins | champion wins | undecided | waiting
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Comparison:
    name: str
    rows: int
    groups: list[Group] = field(default_factory=list)
    test: Test | None = None
    promoted: int | None = None
    promotion_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows,
                "groups": [g.to_dict() for g in self.groups],
                "test": self.test.to_dict() if self.test else None,
                "promoted": self.promoted, "promotion_note": self.promotion_note}


# -- the sequential test --------------------------------------------------------------------------

def msprt(x: np.ndarray, y: np.ndarray | None, tx: np.ndarray | None = None,
          ty: np.ndarray | None = None, *, tau: float, alpha: float, bernoulli: bool = False
          ) -> tuple[float, float, tuple[float, float], int, int]:
    """``(difference, p, interval, n_x, n_y)`` for the mean of ``y`` minus the mean of ``x``
    (two independent samples observed at times ``tx``, ``ty``), or of ``x`` alone (paired
    differences, in time order, when ``y`` is None). ``p`` is the always-valid p-value: the
    smallest of 1/Lambda over every prefix in time order.

    ``bernoulli``: the values are 0/1 outcomes (or, paired, their differences). Their variance
    is then estimated with two pseudo-observations per sample (one success and one failure, as
    the Agresti-Caffo interval does), so that a sample that is all right or all wrong still
    carries its evidence instead of a variance of zero."""
    t2 = tau * tau
    if y is None:
        n = np.arange(1, len(x) + 1, dtype=np.float64)
        s1, s2 = np.cumsum(x), np.cumsum(x * x)
        mean = s1 / n
        if bernoulli:  # pseudo differences +1 and -1
            var = (s2 + 2) / (n + 2) - (s1 / (n + 2)) ** 2
        else:
            var = np.maximum(s2 / n - mean * mean, 0.0) * n / np.maximum(n - 1, 1)
        v = var / n
        diff = mean
        nx = ny = len(x)
    else:
        order = np.argsort(np.concatenate([tx, ty]), kind="stable")  # type: ignore[list-item]
        values = np.concatenate([x, y])[order]
        is_y = np.concatenate([np.zeros(len(x), bool), np.ones(len(y), bool)])[order]
        na = np.cumsum(~is_y).astype(np.float64)
        nb = np.cumsum(is_y).astype(np.float64)
        sa, sb = np.cumsum(np.where(is_y, 0, values)), np.cumsum(np.where(is_y, values, 0))
        qa = np.cumsum(np.where(is_y, 0, values * values))
        qb = np.cumsum(np.where(is_y, values * values, 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            ma, mb = sa / na, sb / nb
            if bernoulli:  # one success and one failure more in each sample
                pa, pb = (sa + 1) / (na + 2), (sb + 1) / (nb + 2)
                va, vb = pa * (1 - pa), pb * (1 - pb)
            else:
                va = np.maximum(qa / na - ma * ma, 0) * na / np.maximum(na - 1, 1)
                vb = np.maximum(qb / nb - mb * mb, 0) * nb / np.maximum(nb - 1, 1)
            v = va / na + vb / nb
        diff = mb - ma
        nx, ny = len(x), len(y)
        valid = (na >= 2) & (nb >= 2)
        v = np.where(valid, v, np.nan)
    # a variance of zero (every row right on both sides) carries no evidence yet
    v = np.where(v > 0, v, np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        log_lambda = 0.5 * np.log(v / (v + t2)) + diff * diff * t2 / (2 * v * (v + t2))
    finite = np.isfinite(log_lambda)
    if not finite.any():
        last = float(diff[-1]) if len(diff) and np.isfinite(diff[-1]) else float("nan")
        return last, 1.0, (-math.inf, math.inf), nx, ny
    p = float(min(1.0, math.exp(-float(np.nanmax(np.where(finite, log_lambda, -np.inf))))))
    d, vn = float(diff[-1]), float(v[-1])
    if not math.isfinite(vn):
        return d, p, (-math.inf, math.inf), nx, ny
    half = math.sqrt((vn * (vn + t2) / t2) * (math.log((vn + t2) / vn) + 2 * math.log(1 / alpha)))
    return d, p, (d - half, d + half), nx, ny


# -- reading the log -------------------------------------------------------------------------------

def _per_row_score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Higher is better: correctness, or the negated error."""
    if metric == "accuracy":
        return (np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object)) \
            .astype(np.float64)
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return -np.abs(err) if metric == "mae" else -(err * err)


def _labels(registry: Any, frame: Any) -> np.ndarray:
    keys = list(zip(frame["request_id"].tolist(), frame["row"].tolist()))
    found = registry.store.get_labels(keys)
    return np.array([found.get(k) for k in keys], dtype=object)


def _coerce(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Labels as the predictions' type (a CSV label ``1`` for a prediction ``1``)."""
    if predictions.dtype.kind in "iufb":
        out = np.full(len(labels), np.nan)
        for i, v in enumerate(labels):
            try:
                out[i] = float(v) if v is not None else np.nan
            except (TypeError, ValueError):
                pass
        return out
    return np.array([None if v is None else str(v) for v in labels], dtype=object)


def compare(registry: Any, name: str, ab: AB, *, last: int | None = None,
            since: float | None = None, classifier: bool | None = None) -> Comparison:
    import pyarrow.compute as pc

    from framework.serve.predlog import read_log

    table = read_log(registry.root, name, since=since, last=last)
    if table is None:
        raise UsageError(f"nothing of {name} is in the prediction log of {registry.root} "
                         "(serve it, with --split or --shadow, and send traffic first)")
    ok = table.filter(pc.equal(table["status"], "ok"))
    frame = ok.to_pandas()
    for column, default in (("alias", None), ("shadow", False), ("latency_ms", np.nan)):
        if column not in frame:
            frame[column] = default
    frame["alias"] = frame["alias"].fillna("").astype(str)
    frame["shadow"] = frame["shadow"].fillna(False).astype(bool)
    labels = _labels(registry, frame)
    if classifier is None:
        classifier = any(c.startswith("proba_") for c in frame.columns) or \
            frame["prediction"].dtype.kind not in "f"
    metric = ab.metric or ("accuracy" if classifier else "mae")
    predictions = frame["prediction"].to_numpy()
    truth = _coerce(labels, predictions)
    has_label = np.array([v is not None and v == v for v in truth], dtype=bool)
    score = np.full(len(frame), np.nan)
    if has_label.any():
        score[has_label] = _per_row_score(metric, truth[has_label], predictions[has_label])
    frame["_score"] = score
    frame["_labelled"] = has_label
    out = Comparison(name, len(frame))
    keys = frame[["alias", "version", "shadow"]].drop_duplicates().itertuples(index=False)
    order = {ab.champion: 0, ab.challenger: 1}  # the champion first, then the challenger
    for alias, version, shadow in sorted(keys, key=lambda k: (k[2], order.get(k[0], 2), k[0],
                                                               k[1])):
        g = frame[(frame["alias"] == alias) & (frame["version"] == version) &
                  (frame["shadow"] == shadow)]
        per_request = g.drop_duplicates("request_id")["latency_ms"].to_numpy(np.float64)
        per_request = per_request[np.isfinite(per_request)]
        preds = g["prediction"]
        if classifier:
            shares = preds.astype(str).value_counts(normalize=True)
            dist = {str(k): round(float(v), 4) for k, v in shares.sort_index().items()}
        else:
            values = preds.to_numpy(np.float64)
            dist = {"mean": round(float(values.mean()), 4),
                    "std": round(float(values.std()), 4)}
        labelled = int(g["_labelled"].sum())
        value = None
        if labelled:
            s = g.loc[g["_labelled"], "_score"].to_numpy()
            value = float(s.mean()) if metric == "accuracy" else float(-s.mean())
        out.groups.append(Group(
            str(alias), int(version), bool(shadow), int(g["request_id"].nunique()), len(g),
            float(np.percentile(per_request, 50)) if len(per_request) else None,
            float(np.percentile(per_request, 95)) if len(per_request) else None,
            dist, labelled, value))
    _agreement(frame, out, classifier)
    out.test = _test(frame, out, ab, metric)
    return out


def _agreement(frame: Any, out: Comparison, classifier: bool) -> None:
    answered = frame[~frame["shadow"]].drop_duplicates(["request_id", "row"], keep="last")
    base = answered.set_index(["request_id", "row"])["prediction"]
    for g in out.groups:
        if not g.shadow:
            continue
        rows = frame[frame["shadow"] & (frame["alias"] == g.alias) &
                     (frame["version"] == g.version)].set_index(["request_id", "row"])
        joined = rows[["prediction"]].join(base.rename("answered"), how="inner")
        if not len(joined):
            continue
        if classifier:
            same = joined["prediction"].astype(str) == joined["answered"].astype(str)
            g.agreement = round(float(same.mean()), 4)
        else:
            a = joined["prediction"].to_numpy(np.float64)
            b = joined["answered"].to_numpy(np.float64)
            g.agreement = round(float(np.mean(np.isclose(a, b, rtol=1e-6, atol=1e-12))), 4)


def _current(groups: list[Group], alias: str, shadow: bool | None) -> Group | None:
    """The alias's latest version in the window; of a version both split and shadowed, the
    shadow (its test is paired: the same rows, far fewer labels needed)."""
    found = [g for g in groups if g.alias == alias and (shadow is None or g.shadow == shadow)]
    return max(found, key=lambda g: (g.version, g.shadow)) if found else None


def _test(frame: Any, out: Comparison, ab: AB, metric: str) -> Test | None:
    champ = _current(out.groups, ab.champion, False)
    chall = _current(out.groups, ab.challenger, None)
    if champ is None or chall is None:
        return None
    alpha = 1 - ab.confidence

    def rows(g: Group) -> Any:
        return frame[(frame["alias"] == g.alias) & (frame["version"] == g.version) &
                     (frame["shadow"] == g.shadow) & frame["_labelled"]]

    a, b = rows(champ), rows(chall)
    paired = chall.shadow
    common = {"metric": metric, "paired": paired, "champion": champ.label,
              "challenger": chall.label, "confidence": ab.confidence}
    if paired:
        joined = b.set_index(["request_id", "row"])[["_score", "time"]].join(
            a.set_index(["request_id", "row"])["_score"].rename("_base"), how="inner")
        joined = joined.sort_values("time")
        na = nb = len(joined)
        if na < ab.min_labels:
            return Test(**common, n_champion=na, n_challenger=nb, difference=None,
                        interval=None, p_value=None, verdict="waiting",
                        message=f"{na} labelled rows scored by both; {ab.min_labels} needed "
                                "(monitor.ab.min_labels)")
        d, p, ci, _, _ = msprt((joined["_score"] - joined["_base"]).to_numpy(np.float64),
                               None, tau=ab.tau, alpha=alpha, bernoulli=metric == "accuracy")
    else:
        na, nb = len(a), len(b)
        if min(na, nb) < ab.min_labels:
            return Test(**common, n_champion=na, n_challenger=nb, difference=None,
                        interval=None, p_value=None, verdict="waiting",
                        message=f"labelled rows: {champ.label} {na}, {chall.label} {nb}; "
                                f"{ab.min_labels} each needed (monitor.ab.min_labels)")
        d, p, ci, _, _ = msprt(a["_score"].to_numpy(np.float64), b["_score"].to_numpy(np.float64),
                               a["time"].astype("int64").to_numpy(),
                               b["time"].astype("int64").to_numpy(), tau=ab.tau, alpha=alpha,
                               bernoulli=metric == "accuracy")
    sign = 1 if metric == "accuracy" else -1  # shown in the metric's own direction
    shown = f"{metric} {'+' if sign * d >= 0 else ''}{sign * d:.4g}"
    lo, hi = sorted((sign * ci[0], sign * ci[1]))
    interval = f"[{lo:.4g}, {hi:.4g}]"
    if p <= alpha and d > 0:
        verdict, text = "challenger wins", f"{chall.label} beats {champ.label}: {shown} " \
            f"(always-valid p {p:.3g} <= {alpha:.3g}; {ab.confidence:.0%} interval {interval})"
    elif p <= alpha and d < 0:
        verdict, text = "champion wins", f"{champ.label} beats {chall.label}: {shown} for the " \
            f"challenger (always-valid p {p:.3g}; {ab.confidence:.0%} interval {interval})"
    elif not math.isfinite(lo):
        verdict, text = "undecided", f"no evidence either way yet: {shown}, and the per-row " \
            f"{metric} does not vary yet (every labelled row scored alike); keep the traffic " \
            "flowing"
    else:
        verdict, text = "undecided", f"no significant difference yet: {shown} (always-valid " \
            f"p {p:.3g} > {alpha:.3g}; {ab.confidence:.0%} interval {interval}); keep the " \
            "traffic flowing"
    return Test(**common, n_champion=na, n_challenger=nb, difference=sign * d,
                interval=(lo, hi), p_value=p, verdict=verdict, message=text)


def promote_if_won(registry: Any, result: Comparison, ab: AB) -> None:
    """Move ``ab.champion`` to the challenger's version when the test says it won."""
    test = result.test
    if test is None or test.verdict != "challenger wins":
        return
    chall = _current(result.groups, ab.challenger, None)
    assert chall is not None
    mv = registry.get(result.name, chall.version)
    if mv.status == "rejected":
        result.promotion_note = f"v{mv.version} won on traffic but was rejected by its gates " \
                                "at registration: not promoted"
        return
    move = registry.set_alias(result.name, chall.version, ab.champion,
                              reason=f"monitor compare: {test.message}", actor="monitor-ab")
    result.promoted = chall.version
    result.promotion_note = (f"{result.name}@{ab.champion} moved to v{chall.version}"
                             if move else f"{result.name}@{ab.champion} already is "
                                          f"v{chall.version}")
