"""The registry's Python API: register, promote, resolve, load, aliases, history, safety."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framework import registry
from framework.errors import NotRegistered, RegistryError, SchemaError, UsageError
from framework.registry import open_registry, parse_gates
from framework.registry.core import Registry, decide
from framework.registry.store import AliasConflict

#: every test here runs on both backends: SQLite, and a real PostgreSQL server
pytestmark = pytest.mark.usefixtures("backend")

GATES = parse_gates([{"metric": "roc_auc", "min": 0.95}, {"metric": "log_loss", "max": 0.2},
                     {"metric": "accuracy", "max_drop_vs_champion": 0.005}],
                    known_metrics=None, file="params.yaml")


def metrics(roc_auc: float = 0.99, log_loss: float = 0.1, accuracy: float = 0.97) -> dict:
    return {"roc_auc": roc_auc, "log_loss": log_loss, "accuracy": accuracy}


def register(reg: Registry, model: Any, **kw: Any) -> registry.Registration:
    kw.setdefault("metrics", metrics())
    kw.setdefault("gates", GATES)
    kw.setdefault("primary_metric", "roc_auc")
    return reg.register("breast_cancer", model, **kw)


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    with open_registry(tmp_path / "reg") as r:
        yield r


def test_first_version_becomes_champion(reg: Registry, model_file: Path) -> None:
    r = register(reg, model_file, params={"model": {"C": 1.0}}, target="target",
                 input_schema={"type": "object", "properties": {"a": {}, "target": {}},
                               "required": ["a", "target"]},
                 tags={"trial": "3"}, sweep_id="sw1", lineage={"git": {"commit": None}})
    assert (r.version.version, r.promoted, r.status) == (1, True, "promoted")
    assert r.reasons == ["all 3 gates passed",
                         "the first version to pass its gates becomes the first champion"]
    assert r.version.aliases == ("champion",)
    receipt = r.receipt(registry="reg")
    assert {k: receipt[k] for k in ("model", "version", "promoted", "alias", "status", "champion",
                                    "previous_champion")} == {
        "model": "breast_cancer", "version": 1, "promoted": True, "alias": "champion",
        "status": "promoted", "champion": 1, "previous_champion": None}
    assert receipt["sha256"] == r.version.sha256 and len(receipt["gates"]) == 3
    mv = reg.resolve("breast_cancer@champion")
    assert mv.params == {"model": {"C": 1.0}} and mv.target == "target"
    assert mv.tags == {"trial": "3"} and mv.sweep_id == "sw1"
    assert mv.serving_schema() == {"type": "object", "properties": {"a": {}}, "required": ["a"]}
    # the size rules of the training table never apply to a request
    sized = replace(mv, input_schema={**mv.input_schema, "x-min-rows": 20, "x-max-rows": 10**6})
    assert sized.serving_schema() == mv.serving_schema()
    assert mv.lineage["registered_by"] == "register-step"
    assert Path(mv.artifact_path) == reg.root / "artifacts" / "sha256" / mv.sha256[:2] / mv.sha256
    assert mv.uri == "models:/breast_cancer/1"


def test_an_invalid_input_schema_is_refused_and_nothing_recorded(reg: Registry,
                                                                 model_file: Path) -> None:
    with pytest.raises(SchemaError, match=r"input schema of breast_cancer: not a valid JSON "
                                          r"Schema .*\['properties'\]\['a'\]\['minimum'\]"):
        register(reg, model_file, input_schema={"type": "object",
                                                "properties": {"a": {"minimum": "zero"}}})
    assert reg.store.latest_version("breast_cancer") is None


def test_promotion_needs_strictly_better_primary_metric(reg: Registry, model_file: Path) -> None:
    register(reg, model_file, metrics=metrics(roc_auc=0.98))
    same = register(reg, model_file, metrics=metrics(roc_auc=0.98), params={"other": "params"})
    assert (same.version.version, same.promoted, same.status) == (2, False, "challenger")
    assert "does not beat champion v1" in same.reasons[-1]
    assert same.receipt()["alias"] is None and same.champion == 1
    better = register(reg, model_file, metrics=metrics(roc_auc=0.985))
    assert (better.version.version, better.promoted, better.previous_champion) == (3, True, 1)
    assert reg.aliases("breast_cancer") == {"champion": 3}


def test_the_same_registration_twice_is_one_version(reg: Registry, model_file: Path) -> None:
    first = register(reg, model_file, params={"C": 1})
    again = register(reg, model_file, params={"C": 1})
    assert again.unchanged and again.version.version == 1 and not again.promoted
    assert again.reasons[0].startswith("identical to v1 (same model bytes, metrics and params)")
    assert [v.version for v in reg.versions("breast_cancer")] == [1]
    assert again.version.sha256 == first.version.sha256
    assert register(reg, model_file, params={"C": 2}).version.version == 2  # other params


def test_a_candidate_is_judged_when_promoted_later(reg: Registry, model_file: Path) -> None:
    """A sweep's trial is a candidate that never moves an alias; registering the same thing
    with promotion (sweep promote) judges that version, not a new one."""
    register(reg, model_file, metrics=metrics(roc_auc=0.97))
    trial = register(reg, model_file, metrics=metrics(roc_auc=0.99), promote=False)
    assert (trial.version.version, trial.status, trial.promoted) == (2, "candidate", False)
    assert "beats champion v1" in trial.reasons[-1]  # judged, for the sweep's table
    assert reg.aliases("breast_cancer") == {"champion": 1}
    judged = register(reg, model_file, metrics=metrics(roc_auc=0.99))
    assert (judged.version.version, judged.status, judged.promoted) == (2, "promoted", True)
    assert reg.aliases("breast_cancer") == {"champion": 2}
    assert [m.reason for m in reg.history("breast_cancer")][-1].endswith(
        "beats champion v1 (0.97, maximize)")


def test_the_champion_is_compared_on_the_challengers_test_set(reg: Registry,
                                                              model_file: Path) -> None:
    scored = []

    def rescore(model: Any) -> dict[str, Any]:
        scored.append(type(model).__name__)
        return metrics(roc_auc=0.9, accuracy=0.93)  # the champion on the new test set

    register(reg, model_file, metrics=metrics(roc_auc=0.99),
             lineage={"evaluation": {"path": "data/test.parquet", "sha256": "a" * 64}})
    # worse than the champion's registered 0.99, better than its 0.9 on this test set
    r = register(reg, model_file, metrics=metrics(roc_auc=0.95, accuracy=0.94),
                 params={"split": {"test_size": 0.3}}, rescore=rescore,
                 lineage={"evaluation": {"path": "data/test.parquet", "sha256": "b" * 64}})
    assert scored == ["Pipeline"] and r.promoted
    assert r.comparison is not None and r.comparison.rescored
    assert r.comparison.metrics["roc_auc"] == 0.9 and r.comparison.registered["roc_auc"] == 0.99
    receipt = r.receipt()
    assert receipt["compared_with"]["test_set"] == f"data/test.parquet (sha256 {'b' * 12})"
    assert "beats champion v1 (0.9 on the same test set" in " ".join(r.reasons)
    assert any("scored on this run's test set" in reason for reason in r.reasons)
    drop = next(v for v in r.verdicts if v.rule == "max_drop_vs_champion")
    assert drop.champion_value == 0.93  # the gate compares on the same rows too
    # the same test set: no re-scoring
    register(reg, model_file, metrics=metrics(roc_auc=0.96), params={"n": 3}, rescore=rescore,
             lineage={"evaluation": {"path": "data/test.parquet", "sha256": "b" * 64}})
    assert scored == ["Pipeline"]


def test_archive_and_gc(reg: Registry, model_file: Path, fitted: Any) -> None:
    register(reg, model_file, metrics=metrics(roc_auc=0.97))
    second = register(reg, fitted, metrics=metrics(roc_auc=0.96))  # its own bytes
    register(reg, model_file, metrics=metrics(roc_auc=0.95))  # the same bytes as v1
    with pytest.raises(UsageError, match="v1 holds the alias"):
        reg.archive("breast_cancer", [1])
    reg.archive("breast_cancer", [2, 3])
    assert [v.state for v in reg.versions("breast_cancer")] == ["champion", "archived",
                                                                "archived"]
    planned = reg.gc(dry_run=True)
    assert [(mv.version, freed > 0) for mv, freed in planned] == [(2, True), (3, False)]
    assert Path(second.version.artifact_path).exists()
    reg.gc()
    assert not Path(second.version.artifact_path).exists()
    assert reg.load("breast_cancer/1") is not None  # v3's bytes are v1's: kept
    with pytest.raises(RegistryError, match="v2 was archived and its artifact removed"):
        reg.load("breast_cancer/2")
    assert reg.gc() == []  # nothing left to remove
    assert reg.check() == []  # rows and artifacts agree


def test_failed_gate_is_recorded_but_never_promoted(reg: Registry, model_file: Path) -> None:
    register(reg, model_file, metrics=metrics(accuracy=0.97))
    # better primary metric, but accuracy dropped by 0.02 > 0.005 vs the champion
    r = register(reg, model_file, metrics=metrics(roc_auc=0.999, accuracy=0.95))
    assert (r.version.version, r.promoted, r.status) == (2, False, "rejected")
    assert r.reasons == ["gate failed: accuracy 0.95 vs champion v1 0.97: drop 0.02 > max 0.005 "
                         "(maximize)"]
    assert reg.resolve("breast_cancer/2").status == "rejected"
    assert reg.resolve("breast_cancer@champion").version == 1


def test_minimize_direction(reg: Registry, model_file: Path) -> None:
    kw = {"primary_metric": "log_loss", "direction": "minimize", "gates": []}
    register(reg, model_file, metrics=metrics(log_loss=0.1), **kw)
    assert not register(reg, model_file, metrics=metrics(log_loss=0.2), **kw).promoted
    assert register(reg, model_file, metrics=metrics(log_loss=0.05), **kw).promoted


def test_decide_edge_cases() -> None:
    assert decide([], {"x": 1.0}, None, "x", "maximize") == (
        True, "promoted", ["no gates configured",
                           "the first version to pass its gates becomes the first champion"])


def test_register_estimator_and_load_by_every_uri_form(reg: Registry, fitted: Any,
                                                       dataset: Any) -> None:
    r = register(reg, fitted)
    register(reg, fitted, metrics=metrics(roc_auc=0.5), gates=[])
    expected = fitted.predict_proba(dataset.data)
    for uri in ("breast_cancer@champion", "breast_cancer/1", "models:/breast_cancer@champion",
                "models:/breast_cancer/1"):
        model = registry.load(uri, registry=reg.root)
        np.testing.assert_allclose(model.predict_proba(dataset.data), expected)
        assert registry.resolve(uri, registry=reg.root).sha256 == r.version.sha256
    assert registry.resolve("breast_cancer/latest", registry=reg.root).version == 2
    # serving resolves once and loads exactly that version, whatever the alias does next
    mv = registry.resolve("breast_cancer@champion", registry=reg.root)
    reg.set_alias("breast_cancer", 2, "champion")
    np.testing.assert_allclose(registry.load(mv).predict_proba(dataset.data), expected)


@pytest.mark.parametrize("uri, exc, match", [
    pytest.param("breast_cancr@champion", RegistryError,
                 r"no model 'breast_cancr' in registry .*; did you mean 'breast_cancer'\? "
                 r"\(models: breast_cancer\)", id="unknown-model"),
    pytest.param("breast_cancer/7", RegistryError,
                 r"breast_cancer has no version 7; its versions are 1..1", id="unknown-version"),
    pytest.param("models:/breast_cancer@champoin", RegistryError,
                 r"breast_cancer has no alias 'champoin'; did you mean 'champion'\? "
                 r"\(aliases: champion\)", id="unknown-alias"),
    pytest.param("breast_cancer", UsageError, r"expected NAME@ALIAS or NAME/VERSION",
                 id="no-version"),
    pytest.param("breast_cancer/one", UsageError, r"version 'one' is not a positive integer",
                 id="bad-version"),
    pytest.param("models:/a/b/c", UsageError, r"cannot read model reference", id="too-many"),
])
def test_resolve_errors(reg: Registry, model_file: Path, uri: str, exc: type,
                        match: str) -> None:
    register(reg, model_file)
    with pytest.raises(exc, match=match):
        registry.resolve(uri, registry=reg.root)


def test_missing_registry_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"no registry (at .*nope|in the database "
                                            r"127\.0\.0\.1:\d+/reg_\w+) \(nothing registered yet\)"):
        registry.load("m@champion", registry=tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_tampered_artifact_is_refused(reg: Registry, model_file: Path) -> None:
    r = register(reg, model_file)
    path = Path(r.version.artifact_path)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match=(
            r"breast_cancer version 1: artifact .* was modified after registration; refusing to "
            rf"load it \(expected sha256 {r.version.sha256}, found [0-9a-f]{{64}}\)")):
        reg.load("breast_cancer@champion")
    assert any("hash mismatch" in p for p in reg.check())
    path.unlink()
    with pytest.raises(RegistryError, match=r"breast_cancer version 1: its artifact .* is missing"):
        reg.load("breast_cancer/1")


def test_types_outside_the_allowlist_are_refused(reg: Registry, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio

    (tmp_path / "evilmod.py").write_text("class Evil:\n    def __init__(self):\n"
                                         "        self.x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import evilmod

    sio.dump({"model": evilmod.Evil()}, tmp_path / "evil.skops")
    with pytest.raises(RegistryError, match=r"refusing .*evil.skops: it names what the allowlist "
                                            r"does not trust: evilmod.Evil \(not a trusted type "
                                            r"\(ObjectNode\)\)\. .* trusted_types"):
        register(reg, tmp_path / "evil.skops")
    assert reg.model_names() == []
    # registered without the check (e.g. by an older client), loading still refuses it
    register(reg, tmp_path / "evil.skops", check_types=False)
    with pytest.raises(RegistryError, match=r"breast_cancer version 1: refusing .* evilmod.Evil"):
        reg.load("breast_cancer/1")
    # a project that trusts its own class by its exact name loads it
    assert reg.load("breast_cancer/1", trusted=["evilmod.Evil"])["model"].x == 1


def test_not_a_skops_file_is_refused(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(RegistryError, match=r"model.pkl is not a readable skops file"):
        register(reg, tmp_path / "model.pkl")
    with pytest.raises(UsageError, match=r"model file .*missing.skops does not exist"):
        register(reg, tmp_path / "missing.skops")


def test_manual_promotion_and_history(reg: Registry, model_file: Path, backend: str) -> None:
    register(reg, model_file, metrics=metrics(roc_auc=0.99))
    register(reg, model_file, metrics=metrics(roc_auc=0.98))
    move = reg.set_alias("breast_cancer", 2, "champion", reason="rollback test")
    assert (move.from_version, move.to_version, move.reason) == (1, 2, "rollback test")
    assert move.actor.startswith("user:")
    assert reg.set_alias("breast_cancer", 2, "champion") is None  # already there: no move
    reg.set_alias("breast_cancer", 1, "staging", actor="user:ci")
    hist = [(m.alias, m.from_version, m.to_version, m.actor) for m in reg.history("breast_cancer")]
    assert hist == [("champion", None, 1, "register-step"), ("champion", 1, 2, move.actor),
                    ("staging", None, 1, "user:ci")]
    assert reg.resolve("breast_cancer/1").aliases == ("staging",)
    with pytest.raises(RegistryError, match=r"breast_cancer has no version 5"):
        reg.set_alias("breast_cancer", 5, "champion")
    with pytest.raises(UsageError, match=r"invalid alias '1x'"):
        reg.set_alias("breast_cancer", 1, "1x")
    # the history is append-only, even for someone with direct access to the database
    if backend == "sqlite":
        with sqlite3.connect(reg.root / "registry.db") as conn, \
                pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM alias_history")
    else:
        import psycopg

        with psycopg.connect(os.environ["FRAMEWORK_REGISTRY_URL"]) as conn, \
                pytest.raises(psycopg.DatabaseError, match="append-only"):
            conn.execute("UPDATE alias_history SET reason = 'rewritten'")


def test_stale_champion_read_is_judged_again(reg: Registry, model_file: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The champion moves between reading it and writing: the CAS fails and we re-evaluate."""
    register(reg, model_file, metrics=metrics(roc_auc=0.97))        # v1 champion
    register(reg, model_file, metrics=metrics(roc_auc=0.999))       # v2 champion
    reg.set_alias("breast_cancer", 1, "champion", reason="rollback")  # v1 again, by hand
    real = reg._champion
    calls = []

    def stale_then_real(name: str, alias: str) -> Any:
        calls.append(1)
        # first read is stale: it still sees v2 (0.999), which the new version cannot beat
        return reg.store.get_version(name, 2) if len(calls) == 1 else real(name, alias)

    monkeypatch.setattr(reg, "_champion", stale_then_real)
    r = register(reg, model_file, metrics=metrics(roc_auc=0.98))
    assert r.attempts == 2
    assert (r.promoted, r.previous_champion) == (True, 1)  # beats v1 (0.97), the real champion
    with pytest.raises(AliasConflict):
        reg.store.move_alias("breast_cancer", "champion", 2, expected=1, actor="x", reason="")


def test_registry_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert registry.registry_path() == Path(".framework/registry")
    (tmp_path / "params.yaml").write_text("registry:\n  path: store/reg\n  model_name: m\n")
    assert registry.registry_path() == Path("store/reg")
    monkeypatch.setenv("FRAMEWORK_REGISTRY", str(tmp_path / "env"))
    assert registry.registry_path() == tmp_path / "env"
    assert registry.registry_path(tmp_path / "explicit") == tmp_path / "explicit"


def test_compare(reg: Registry, model_file: Path) -> None:
    register(reg, model_file, params={"model": {"C": 1.0}, "seed": 0})
    register(reg, model_file, params={"model": {"C": 0.5}, "seed": 0},
             metrics=metrics(roc_auc=0.995, accuracy=0.96))
    diff = registry.compare(reg.get("breast_cancer", 1), reg.get("breast_cancer", 2))
    assert diff["params"] == [{"key": "model.C", "a": 1.0, "b": 0.5}]
    roc = next(m for m in diff["metrics"] if m["metric"] == "roc_auc")
    assert roc["delta"] == pytest.approx(0.005)
    acc_gate = next(g for g in diff["gates"] if g["metric"] == "accuracy")
    assert acc_gate["a"]["passed"] is True and acc_gate["b"]["passed"] is False


def test_import_is_cheap() -> None:
    code = ("import sys, framework.registry as r; r.open_registry; r.load; "
            "import framework.registry.cli, framework.registry.step; "
            "print([m for m in ('sklearn', 'pandas', 'numpy', 'skops', 'rich') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_receipt_is_json_ready(reg: Registry, model_file: Path) -> None:
    r = register(reg, model_file)
    assert json.loads(json.dumps(r.receipt())) == r.receipt()


def test_skops_preloaded_for_a_server_loads_models_and_trusts_no_more(tmp_path: Path) -> None:
    """Servers and sweeps import skops without its default trusted-types walk: models still load
    through the allowlist (a numpy ufunc inside included), scikit-learn's ``all_estimators`` is
    given back, and skops' own default trust is narrower, not wider."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(),
                          LogisticRegression(max_iter=500)).fit(X, y)
    with open_registry(tmp_path / "reg") as r:
        register(r, model)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", model.predict_proba(X))
    code = f"""
import numpy as np, sklearn.utils, sklearn.utils.discovery
original = sklearn.utils.all_estimators
from framework.io import preload_skops
from framework.registry import open_registry
preload_skops()
assert sklearn.utils.all_estimators is original is sklearn.utils.discovery.all_estimators
import skops.io
with open_registry({str(tmp_path / "reg")!r}) as reg:
    model = reg.load("breast_cancer@champion")
    path = str(reg.artifact(reg.resolve("breast_cancer@champion")))
got = model.predict_proba(np.load({str(tmp_path / "X.npy")!r}))
assert np.array_equal(got, np.load({str(tmp_path / "expected.npy")!r}))
try:
    skops.io.load(path)  # skops' defaults, which no longer include the estimators
except skops.io.exceptions.UntrustedTypesFoundException as exc:
    print("refused", exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused") and "LogisticRegression" in out.stdout


def test_search_by_metric_thresholds(reg: Registry, model_file: Path) -> None:
    """Versions are found by their metrics, on both backends alike: thresholds combine, a NaN
    or missing metric never matches, per-group metrics are searchable, archived versions only on
    request, the order is the metric's (versions without it last), and other models stay out."""
    aucs = [0.96, 0.99, 0.97, 0.995]
    for i, auc in enumerate(aucs):
        register(reg, model_file, metrics={**metrics(roc_auc=auc, log_loss=0.05 * (i + 1)),
                                           "recall@clinic=A": 0.8 + 0.05 * i},
                 params={"C": i})
    register(reg, model_file, metrics={**metrics(), "roc_auc": float("nan")}, params={"C": 9})
    reg.register("other", model_file, metrics=metrics(roc_auc=0.999))

    def found(*where: str, name: str | None = "breast_cancer", **kw: Any) -> list[int]:
        return [mv.version for mv in reg.search(name, where, **kw)]

    assert found("roc_auc > 0.965") == [2, 3, 4]
    assert found("roc_auc > 0.965", order_by="roc_auc") == [4, 2, 3]
    assert found("roc_auc >= 0.97", "metrics.log_loss < 0.2") == [2, 3]
    assert found("roc_auc = 0.99") == found("roc_auc == 0.99") == [2]
    assert found("roc_auc != 0.99") == [1, 3, 4]  # the NaN version is not "!= 0.99" either
    assert found("recall@clinic=A >= 0.9") == [3, 4]
    assert found(order_by="roc_auc", descending=False) == [1, 3, 2, 4, 5]
    assert found("roc_auc > 0.9", order_by="roc_auc", limit=2) == [4, 2]
    assert [(mv.name, mv.version) for mv in reg.search(None, ["roc_auc > 0.99"])] == [
        ("breast_cancer", 4), ("other", 1)]
    best = reg.search("breast_cancer", ["roc_auc > 0.99"])[0]
    assert best.metrics["roc_auc"] == 0.995 and Path(best.artifact_path).is_absolute()
    assert reg.search("other", ["roc_auc > 0.99"])[0].aliases == ("champion",)

    reg.archive("breast_cancer", [2])
    assert found("roc_auc > 0.98") == [4]
    assert found("roc_auc > 0.98", archived=True) == [2, 4]
    assert found("roc_auc > 0.98", status="rejected") == []
    assert found(status="rejected") == [5]  # its roc_auc gate cannot pass on NaN

    with pytest.raises(UsageError, match=r"no version of breast_cancer has a metric 'roc_uac'; "
                                         r"did you mean 'roc_auc'"):
        reg.search("breast_cancer", ["roc_uac > 0.9"])
    with pytest.raises(UsageError, match=r"expected METRIC OP NUMBER"):
        reg.search("breast_cancer", ["roc_auc >> 0.9"])
    with pytest.raises(NotRegistered, match=r"no model 'breast_cancr'"):
        reg.search("breast_cancr", ["roc_auc > 0.9"])


def test_search_on_the_command_line(reg: Registry, model_file: Path) -> None:
    for i, auc in enumerate((0.96, 0.99, 0.97)):
        register(reg, model_file, metrics=metrics(roc_auc=auc), params={"C": i})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "framework", "registry", "search",
                               "--registry", str(reg.root), *args], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "COLUMNS": "120"})

    out = cli("breast_cancer", "--where", "roc_auc > 0.965", "--json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["order_by"] == "roc_auc"  # the first condition's metric, best first
    assert [v["uri"] for v in found["versions"]] == ["models:/breast_cancer/2",
                                                     "models:/breast_cancer/3"]
    text = cli("--where", "roc_auc>0.965", "--where", "accuracy >= 0.9", "--limit", "1")
    assert text.returncode == 0, text.stderr
    assert "1 version(s): roc_auc > 0.965 and accuracy >= 0.9" in text.stdout
    assert "breast_cancer" in text.stdout and "0.9900" in text.stdout
    bad = cli("--where", "roc_auc >> 1")
    assert bad.returncode == 2 and "search condition 'roc_auc >> 1'" in bad.stderr
