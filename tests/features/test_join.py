"""Point-in-time joins against a hand-written reference: the latest row at or before, never after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framework.errors import UsageError
from framework.features.join import Source, parse_age, point_in_time_join


def reference(entities: pd.DataFrame, on: str, as_of: str, features: pd.DataFrame, key: str,
              ts: str, columns: list[str], max_age: pd.Timedelta | None = None) -> pd.DataFrame:
    """Row by row, the obvious way: every feature row of the entity at or before its time, the
    latest of them, unless it is older than ``max_age``."""
    def utc(series: pd.Series) -> pd.Series:
        return series.dt.tz_localize("UTC") if series.dt.tz is None else \
            series.dt.tz_convert("UTC")

    f = features.assign(__t=utc(features[ts]))
    times = utc(entities[as_of])
    rows = []
    for i in range(len(entities)):
        t = times.iloc[i]
        known = f[(f[key] == entities[on].iloc[i]) & (f["__t"] <= t)]
        if len(known):
            best = known.loc[known["__t"].idxmax()]
            if max_age is None or t - best["__t"] <= max_age:
                rows.append({c: best[c] for c in columns})
                continue
        rows.append({c: None for c in columns})
    return pd.concat([entities.reset_index(drop=True), pd.DataFrame(rows, columns=columns)],
                     axis=1)


def run(tmp_path: Path, entities: pd.DataFrame, features: pd.DataFrame | list[Source], *,
        on: str = "id", as_of: str | None = "at", key: str = "id", ts: str | None = "ts",
        max_age_s: int | None = None) -> pd.DataFrame:
    entities.to_parquet(tmp_path / "entities.parquet", index=False)
    if isinstance(features, list):
        sources = features
    else:
        features.to_parquet(tmp_path / "f.parquet", index=False)
        columns = tuple(c for c in features.columns if c not in (key, ts))
        sources = [Source("f@1", str(tmp_path / "f.parquet"), key, ts, columns, max_age_s)]
    n = point_in_time_join(tmp_path / "entities.parquet", on=on, as_of=as_of, sources=sources,
                           out=tmp_path / "out.parquet")
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert n == len(out) == len(entities)
    return out


def same(actual: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    for c in columns:
        a = actual[c].astype(object).where(actual[c].notna(), None).tolist()
        e = expected[c].astype(object).where(expected[c].notna(), None).tolist()
        assert a == e, c


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def test_the_tricky_cases_match_the_reference(tmp_path: Path) -> None:
    features = pd.DataFrame({
        "id": [1, 1, 1, 2, 3],
        "ts": [t("2024-01-01 00:00"), t("2024-01-03 00:00"), t("2024-01-02 00:00"),
               t("2024-01-05"), t("2024-02-01")],
        "value": [10.0, 30.0, 20.0, 200.0, 3000.0],
        "tag": ["a", "c", "b", "x", "y"],
    }).sample(frac=1, random_state=3)  # out of order
    entities = pd.DataFrame({
        "id": [1, 1, 1, 2, 3, 4, 1, 1],
        "at": [t("2024-01-02 00:00"),  # a tie: the row of exactly that time counts
               t("2024-01-02 23:59"),  # before the third row: the second
               t("2023-12-31"),  # before every row of the entity: nothing
               t("2024-01-06"), t("2024-01-31"),  # entity 3's only row is later: nothing
               t("2024-01-10"),  # entity 4 has no row at all
               t("2024-03-01"), t("2024-01-02 00:00")],  # the latest; a duplicate row
        "label": [0, 1, 0, 1, 0, 1, 1, 0],
    })
    out = run(tmp_path, entities, features)
    assert list(out.columns) == ["id", "at", "label", "value", "tag"]
    assert out["value"].tolist()[:2] == [20.0, 20.0] and np.isnan(out["value"].tolist()[2])
    tags = out["tag"].astype(object)
    assert tags.where(tags.notna(), None).tolist() == ["b", "b", None, "x", None, None, "c", "b"]
    same(out, reference(entities, "id", "at", features, "id", "ts", ["value", "tag"]),
         ["id", "label", "value", "tag"])
    pd.testing.assert_series_equal(out["at"], entities["at"], check_dtype=False)


def test_time_zones_compare_as_instants(tmp_path: Path) -> None:
    # the feature row is at 10:00 UTC; the entity times are in +02:00
    features = pd.DataFrame({"id": [1], "ts": [t("2024-05-01 10:00")], "value": [1.5]})
    entities = pd.DataFrame({"id": [1, 1], "at": [t("2024-05-01 11:59+02:00"),  # 09:59 UTC
                                                   t("2024-05-01 12:00+02:00")]})  # 10:00 UTC
    out = run(tmp_path, entities, features)
    assert out["value"].isna().tolist() == [True, False]
    same(out, reference(entities, "id", "at", features, "id", "ts", ["value"]), ["value"])
    # and the other way round: zoned feature times, naive (UTC) entity times
    zoned = features.assign(ts=[t("2024-05-01 12:00+02:00")])
    naive = pd.DataFrame({"id": [1, 1], "at": [t("2024-05-01 09:59"), t("2024-05-01 10:00")]})
    assert run(tmp_path, naive, zoned)["value"].isna().tolist() == [True, False]


def test_max_age_drops_rows_that_are_too_old(tmp_path: Path) -> None:
    features = pd.DataFrame({"id": [1, 2], "ts": [t("2024-01-01"), t("2024-01-09")],
                             "value": [1.0, 2.0]})
    entities = pd.DataFrame({"id": [1, 1, 2], "at": [t("2024-01-08"), t("2024-01-08 00:00:01"),
                                                     t("2024-01-10")]})
    out = run(tmp_path, entities, features, max_age_s=parse_age("7d", what="max_age"))
    assert out["value"].tolist()[0] == 1.0 and np.isnan(out["value"].tolist()[1])
    same(out, reference(entities, "id", "at", features, "id", "ts", ["value"],
                        max_age=pd.Timedelta(days=7)), ["value"])


@pytest.mark.parametrize("seed", range(5))
def test_random_tables_match_the_reference(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    # few distinct times, so that ties between feature and entity times are common
    times = start + pd.to_timedelta(rng.integers(0, 30, 400), unit="h")
    features = pd.DataFrame({"id": rng.integers(0, 25, 400), "ts": times,
                             "value": rng.normal(size=400)})
    features = features.drop_duplicates(["id", "ts"]).reset_index(drop=True)
    entities = pd.DataFrame({"id": rng.integers(0, 30, 150),
                             "at": start + pd.to_timedelta(rng.integers(-5, 35, 150), unit="h")})
    out = run(tmp_path, entities, features, max_age_s=[None, 36000][seed % 2])
    expected = reference(entities, "id", "at", features, "id", "ts", ["value"],
                         max_age=[None, pd.Timedelta(hours=10)][seed % 2])
    np.testing.assert_array_equal(out["value"].to_numpy(), expected["value"].astype(float))


def test_several_feature_sets_snapshots_and_clashes(tmp_path: Path) -> None:
    timed = pd.DataFrame({"id": [1, 2], "ts": [t("2024-01-01"), t("2024-01-01")],
                          "a": [1.0, 2.0]})
    snapshot = pd.DataFrame({"key": [2, 1], "b": ["two", "one"]})
    timed.to_parquet(tmp_path / "timed.parquet", index=False)
    snapshot.to_parquet(tmp_path / "snap.parquet", index=False)
    entities = pd.DataFrame({"id": [2, 1, 3], "at": [t("2024-02-01")] * 3})
    sources = [Source("timed@1", str(tmp_path / "timed.parquet"), "id", "ts", ("a",)),
               Source("snap@4", str(tmp_path / "snap.parquet"), "key", None, ("b",))]
    out = run(tmp_path, entities, sources)
    assert out["a"].tolist()[:2] == [2.0, 1.0] and np.isnan(out["a"].tolist()[2])
    assert out["b"].astype(object).where(out["b"].notna(), None).tolist() == ["two", "one", None]
    clash = [sources[0], Source("again@2", str(tmp_path / "timed.parquet"), "id", "ts", ("a",))]
    with pytest.raises(UsageError, match=r"column 'a' comes from both feature set timed@1 and "
                                         r"feature set again@2"):
        run(tmp_path, entities, clash)
    with pytest.raises(UsageError, match=r"no column 'user' to join on"):
        run(tmp_path, entities, sources, on="user")
    with pytest.raises(UsageError, match=r"expected a positive age"):
        parse_age("7 days", what="max_age")
