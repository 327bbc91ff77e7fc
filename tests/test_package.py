"""``python -m framework package``: a registered version as a wheel, its build context, its
server with no registry, ``package verify`` in a fresh virtual environment, and the package
store (a folder and a DVC remote)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from trustlib import runstring_model

from framework.deploy import build, runtime
from framework.deploy.verify import _compare, install_command
from tests.conftest import cli_env

MODEL = "bc"


def _cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a registry holding ``bc`` v1 as the register stage records it: metrics,
    gates, schema, the reference profile, the test predictions and the input example."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from framework.monitor.profile import build as build_profile
    from framework.monitor.profile import example_bytes
    from framework.registry import open_registry
    from framework.registry.gates import parse_gates
    from framework.schema import infer_schema

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.assign(target=y).sample(frac=1.0, random_state=0)
    train, test = frame.iloc[:400], frame.iloc[400:]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train.drop(columns="target"), train["target"])
    schema = infer_schema(X)
    profile, predictions = build_profile(train, schema=schema, target="target", model=model,
                                         test=test)
    root = tmp_path_factory.mktemp("package")
    with open_registry(root / ".framework" / "registry") as reg:
        reg.register(MODEL, model, metrics={"roc_auc": 0.995, "accuracy": 0.96},
                     input_schema=schema, target="target", primary_metric="roc_auc",
                     gates=parse_gates([{"metric": "roc_auc", "min": 0.9}]), actor="tests",
                     companions={"profile": profile.to_bytes(), "test_predictions": predictions,
                                 "input_example": example_bytes(test, schema, "target")})
    return root


@pytest.fixture(scope="module")
def built(project: Path) -> build.Built:
    return build.package(f"{MODEL}@champion", project / "dist",
                         registry=str(project / ".framework" / "registry"))


def _members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_package_is_a_wheel_with_the_model_its_card_lock_and_example(built: build.Built,
                                                                       project: Path) -> None:
    assert built.wheel.name == "bc_model-1-py3-none-any.whl"
    assert built.context.name == "bc-model-1.tar.gz"
    members = _members(built.wheel)
    files = {n.split("/", 1)[1] for n in members if n.startswith("bc_model/")}
    assert files == {"__init__.py", "model.skops", "model.json", "openapi.json", "card.md",
                     "card.html", "requirements.lock", "example.json", "expected.json",
                     "profile.bin", "MANIFEST.sha256"}
    # the manifest holds the sha256 of every other file, as sha256sum writes it
    manifest = members["bc_model/MANIFEST.sha256"].decode().splitlines()
    assert len(manifest) == len(files) - 1
    for line in manifest:
        digest, name = line.split("  ")
        assert hashlib.sha256(members[f"bc_model/{name}"]).hexdigest() == digest
    meta = json.loads(members["bc_model/model.json"])
    assert (meta["name"], meta["version"], meta["target"]) == ("bc", 1, "target")
    assert hashlib.sha256(members["bc_model/model.skops"]).hexdigest() == meta["sha256"]
    assert meta["metrics"]["roc_auc"] == 0.995 and meta["gates"][0]["passed"] is True
    assert "mean radius" in meta["input_schema"]["properties"]
    info = "bc_model-1.dist-info"
    metadata = members[f"{info}/METADATA"].decode()
    assert "Name: bc-model" in metadata and "Version: 1" in metadata
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    assert "framework-serve==0.1.0" in requires and all("==" in r for r in requires)
    assert any(r.startswith("scikit-learn==") for r in requires)
    assert not any(r.startswith(("dvc", "hydra")) for r in requires)  # serving only
    assert members[f"{info}/entry_points.txt"].decode() == \
        "[console_scripts]\nbc-serve = bc_model:serve\n"
    # the lock pins every distribution with the sha256 of a wheel in the wheelhouse
    locked = build.parse_lock(members["bc_model/requirements.lock"].decode())
    house = {hashlib.sha256(p.read_bytes()).hexdigest() for p in
             (project / "dist" / "wheelhouse").glob("*.whl")}
    assert len(locked) > 10 and all(e.hashes and set(e.hashes) <= house for e in locked)
    names = {e.name for e in locked}
    assert {"scikit-learn", "numpy", "starlette", "uvicorn", "framework-serve"} <= names
    assert "dvc" not in names and "hydra-core" not in names
    # the example: the first test rows, with the predictions recorded at registration
    example = json.loads(members["bc_model/example.json"])["dataframe_split"]
    expected = json.loads(members["bc_model/expected.json"])
    assert len(example["data"]) == len(expected["predict"]) == len(expected["predict_proba"]) \
        == 20
    # the model card says what it predicts, how well, and which gates it passed
    card = members["bc_model/card.md"].decode()
    assert "predicting **target**" in card and "| roc_auc (primary) | 0.995 |" in card
    assert "PASS roc_auc" in card
    page = members["bc_model/card.html"].decode()
    assert "<h2>Metrics</h2>" in page and "<script" not in page and "http" not in page


def test_the_same_version_packaged_twice_gives_identical_bytes(built: build.Built,
                                                               project: Path) -> None:
    again = build.package(f"{MODEL}/1", project / "again",
                          registry=str(project / ".framework" / "registry"),
                          wheelhouse=project / "dist" / "wheelhouse")
    for a, b in ((built.wheel, again.wheel), (built.context, again.context),
                 (built.runtime, again.runtime)):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_the_build_context_is_complete_and_installs_what_verify_installs(
        built: build.Built, tmp_path: Path) -> None:
    with tarfile.open(built.context) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path, filter="data")
        assert all(m.mtime == build.TAR_MTIME and m.uid == 0 for m in tar.getmembers())
    assert {"Dockerfile", "requirements.lock", ".dockerignore", "wheels"} <= set(names)
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.M)
    assert 'CMD ["bc-serve", "--host", "0.0.0.0", "--port", "8080"]' in dockerfile
    run = re.search(r"^RUN python -m pip (.+?) --no-cache-dir", dockerfile, re.M)
    assert run is not None
    # the install step is the one `package verify` runs, flag for flag
    verify_args = install_command(Path("/venv/bin/python"), Path("/pkg/wheels"),
                                  Path("/pkg/requirements.lock"))
    assert run.group(1).split() == verify_args[verify_args.index("install"):]
    # every locked distribution has its wheel in the context, and nothing else is there
    locked = build.parse_lock((tmp_path / "requirements.lock").read_text())
    wheels = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name
              for p in (tmp_path / "wheels").iterdir()}
    assert len(wheels) == len(locked)
    for entry in locked:
        assert any(h in wheels for h in entry.hashes), entry.name
    assert "bc-model" in {e.name for e in locked}  # the package itself, by its hash


def _unpack(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(dest)
    return dest / "bc_model"


def _start(site: Path, *args: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import bc_model; "
            "sys.exit(bc_model.serve(sys.argv[2:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(site), "--port", "0", *args],
                            cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"on (http://127\.0\.0\.1:\d+)$", line.strip())
        if m:
            return proc, m.group(1)
    proc.kill()
    proc.communicate()
    raise AssertionError("".join(lines))


def test_the_packaged_server_answers_as_registered_with_no_registry(built: build.Built,
                                                                    tmp_path: Path) -> None:
    folder = _unpack(built.wheel, tmp_path / "site")
    example = json.loads((folder / "example.json").read_text())
    expected = json.loads((folder / "expected.json").read_text())
    empty = tmp_path / "empty"
    empty.mkdir()
    proc, url = _start(tmp_path / "site", cwd=empty)
    try:
        r = httpx.post(f"{url}/invocations", json=example, timeout=30)
        assert r.status_code == 200 and r.headers["x-model-version"] == "bc/1"
        assert r.json()["predictions"] == expected["predict"]
        proba = httpx.post(f"{url}/invocations", timeout=30, json={
            **example, "params": {"predict_method": "predict_proba"}}).json()["predictions"]
        assert _compare(proba, expected["predict_proba"], 1e-9)[0]
        meta = httpx.get(f"{url}/metadata", timeout=10).json()
        assert (meta["name"], meta["version"], meta["served_uri"]) == ("bc", 1,
                                                                       "package:bc-model")
        # the same strict request checks as `serve`
        bad = httpx.post(f"{url}/invocations", timeout=10, json={"dataframe_split": {
            "columns": example["dataframe_split"]["columns"],
            "data": [["x"] * len(example["dataframe_split"]["columns"])]}})
        assert bad.status_code == 400 and "mean radius" in bad.text
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert not (empty / "predictions").exists()  # no log unless --log-dir
    assert list(empty.iterdir()) == []


def test_a_changed_file_stops_the_package_before_the_model_is_read(built: build.Built,
                                                                   tmp_path: Path) -> None:
    folder = _unpack(built.wheel, tmp_path / "site")
    runtime.check_manifest(folder)  # intact
    expected = folder / "expected.json"
    expected.write_text(expected.read_text().replace("0", "1", 1))
    with pytest.raises(build.PackageError, match=r"expected\.json was changed after packaging"):
        runtime.open_package(folder)
    expected.write_bytes(_members(built.wheel)["bc_model/expected.json"])
    (folder / "extra.py").write_text("print('hi')\n")
    with pytest.raises(build.PackageError, match="files the package does not list: extra.py"):
        runtime.open_package(folder)
    (folder / "extra.py").unlink()
    (folder / "model.json").unlink()
    with pytest.raises(build.PackageError, match="model.json"):
        runtime.open_package(folder)


def test_a_hostile_model_in_a_rewritten_package_never_runs(built: build.Built,
                                                           tmp_path: Path) -> None:
    """An attacker who replaces the model and rewrites the manifest and model.json to match
    still meets the exact allowlist: the server does not start and the payload never runs."""
    folder = _unpack(built.wheel, tmp_path / "site")
    marker = tmp_path / "pwned"
    runstring_model(folder / "model.skops", marker)
    meta = json.loads((folder / "model.json").read_text())
    meta["sha256"] = hashlib.sha256((folder / "model.skops").read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(meta))
    (folder / "MANIFEST.sha256").write_text(build.manifest_text(
        {p.name: p.read_bytes() for p in folder.iterdir()
         if p.name not in ("MANIFEST.sha256", "__pycache__")}))
    empty = tmp_path / "empty"
    empty.mkdir()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import bc_model; "
            "sys.exit(bc_model.serve(['--port', '0']))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], cwd=empty,
                          env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "numpy.testing._private.utils.runstring" in proc.stderr
    assert not marker.exists()


def test_compare_names_the_row_and_the_difference() -> None:
    assert _compare([0, 1], [0, 1], 1e-9) == (True, "2 rows equal")
    ok, text = _compare([0, 0], [0, 1], 1e-9)
    assert not ok and text == "row 1: expected 1, got 0"
    ok, text = _compare([[0.25, 0.75]], [[0.25, 0.7500001]], 1e-9)
    assert not ok and "row 0" in text and "1e-07" in text
    assert _compare([[0.25, 0.75]], [[0.25, 0.75 + 1e-12]], 1e-9)[0]
    assert not _compare([0], [0, 1], 1e-9)[0]


def test_verify_installs_offline_in_a_fresh_venv_and_replays_the_example(
        built: build.Built, project: Path) -> None:
    """The real thing: a fresh virtual environment, the Dockerfile's install step with no index
    and no pip configuration, the bc-serve command, the example replayed over HTTP."""
    done = _cli("package", "verify", str(built.context), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installed offline in" in done.stdout
    assert re.search(r"predict\s+ok\s+20 rows equal", done.stdout)
    assert re.search(r"predict_proba\s+ok\s+20 rows equal", done.stdout)
    assert "answers as the registered version did" in done.stdout


def test_a_tampered_wheel_in_the_build_context_is_refused_by_the_install(
        built: build.Built, tmp_path: Path) -> None:
    context = tmp_path / "context"
    with tarfile.open(built.context) as tar:
        tar.extractall(context, filter="data")
    wheel = context / "wheels" / built.wheel.name
    members = _members(wheel)
    members["bc_model/expected.json"] = b'{"predict": []}\n'
    build.write_zip(wheel, list(members), members)
    done = _cli("package", "verify", str(context), cwd=tmp_path)
    assert done.returncode == 1
    assert "the offline install failed" in done.stderr and "HASHES" in done.stderr


def test_the_package_store_pushes_lists_and_pulls_by_content(built: build.Built,
                                                             project: Path,
                                                             tmp_path: Path) -> None:
    store = tmp_path / "store"
    push = _cli("package", "push", str(built.wheel), str(built.context), "--store", str(store),
                cwd=project)
    assert push.returncode == 0, push.stderr
    assert "bc v1 in the package store" in push.stdout and "uploaded" in push.stdout
    again = _cli("package", "push", str(built.wheel), "--store", str(store), cwd=project)
    assert again.returncode == 0 and "nothing uploaded" in again.stdout
    listed = _cli("package", "list", "--store", str(store), cwd=project)
    assert re.search(r"^ bc\s+1\s+bc-model-1\.tar\.gz, bc_model-1-py3-none-any\.whl",
                     listed.stdout, re.M), listed.stdout
    entries = json.loads(_cli("package", "list", "--json", "--store", str(store),
                              cwd=project).stdout)
    assert [(e["name"], e["version"]) for e in entries] == [("bc", 1)]
    pulled = _cli("package", "pull", "bc@1", "-o", str(tmp_path / "got"), "--store",
                  str(store), cwd=project)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "got" / built.wheel.name).read_bytes() == built.wheel.read_bytes()
    assert (tmp_path / "got" / built.context.name).read_bytes() == built.context.read_bytes()
    # other bytes as the same version are refused, naming both hashes
    other = tmp_path / "other" / built.wheel.name
    other.parent.mkdir()
    members = _members(built.wheel)
    members["bc_model/card.md"] += b"\nedited\n"
    build.write_zip(other, list(members), members)
    refused = _cli("package", "push", str(other), "--store", str(store), cwd=project)
    assert refused.returncode == 2 and "never replaced" in refused.stderr
    # a file the store altered is refused on pull, and nothing takes its name
    sha = hashlib.sha256(built.wheel.read_bytes()).hexdigest()
    blob = store / "framework-packages" / "sha256" / sha[:2] / sha
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    dest = tmp_path / "tampered"
    bad = _cli("package", "pull", "bc", "-o", str(dest), "--store", str(store), cwd=project)
    assert bad.returncode == 1 and "was altered" in bad.stderr
    assert not (dest / built.wheel.name).exists()
    missing = _cli("package", "pull", "bc@7", "--store", str(store), cwd=project)
    assert missing.returncode == 2 and "versions stored: 1" in missing.stderr


@pytest.mark.dvc
def test_the_package_store_can_be_a_dvc_remote(built: build.Built, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    remote = tmp_path / "remote"
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"],
                ["dvc", "remote", "add", "shared", str(remote)]):
        subprocess.run(cmd, cwd=repo, check=True, env=cli_env(), capture_output=True)
    push = _cli("package", "push", str(built.wheel), "--store", "remote://shared", cwd=repo)
    assert push.returncode == 0, push.stderr
    assert "DVC remote 'shared'" in push.stdout
    assert list((remote / "framework-packages" / "index" / "bc").iterdir())[0].name == "1.json"
    # a bare name the project's DVC config defines is the remote too, as in package.store
    (repo / "params.yaml").write_text("package:\n  store: shared\n")
    pulled = _cli("package", "pull", "bc/1", "-o", str(tmp_path / "got"), cwd=repo)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "got" / built.wheel.name).read_bytes() == built.wheel.read_bytes()
    unknown = _cli("package", "list", "--store", "remote://nope", cwd=repo)
    assert unknown.returncode == 2 and "shared" in unknown.stderr


def test_packaging_a_version_without_an_example_says_how_to_get_one(project: Path,
                                                                    tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    from framework.registry import open_registry

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    root = tmp_path / "registry"
    with open_registry(root) as reg:
        reg.register("plain", DummyClassifier().fit(frame, [0, 1, 0, 1]), metrics={"x": 1.0})
    done = _cli("package", "plain@champion", "-o", str(tmp_path / "dist"), "--registry",
                str(root), cwd=tmp_path)
    assert done.returncode == 2
    assert "plain v1 has no input example recorded" in done.stderr
    assert not any((tmp_path / "dist").glob("*.whl"))


def test_the_register_stage_records_the_input_example(tmp_path: Path) -> None:
    from framework.monitor.profile import EXAMPLE_ROWS, example_bytes

    test = pd.DataFrame({"b": range(30), "a": [float(i) for i in range(30)], "y": [0, 1] * 15})
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "number"},
                                                               "b": {"type": "integer"}}}
    got = pd.read_parquet(io.BytesIO(example_bytes(test, schema, "y")))
    assert list(got.columns) == ["a", "b"] and len(got) == EXAMPLE_ROWS
    assert got["b"].tolist() == list(range(EXAMPLE_ROWS))
