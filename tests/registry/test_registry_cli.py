"""``python -m framework register`` and ``python -m framework registry ...`` as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from framework.cli import run_verb
from registry_testlib import REGISTER_ARGS, make_project, run_framework, write_metrics


@pytest.fixture
def project(tmp_path: Path, model_file: Path, dataset: Any) -> Path:
    return make_project(tmp_path / "proj", model_file, dataset)


def test_register_then_inspect_end_to_end(project: Path) -> None:
    first = run_framework(project, "register", *REGISTER_ARGS)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith("registered breast_cancer v1 (sha256 ")
    assert first.stdout.splitlines()[0].endswith("): promoted to champion")
    assert "PASS  accuracy: nothing to compare with (the first version)" in first.stdout
    decision_file = project / ".framework/registry/receipts/breast_cancer.json"
    receipt = json.loads(decision_file.read_text())
    assert list(receipt) == ["receipt_version", "model", "version", "uri", "unchanged",
                             "promoted", "alias", "status", "champion", "previous_champion",
                             "reasons", "gates", "compared_with", "primary_metric", "sha256",
                             "registry", "created_at"]
    assert (receipt["version"], receipt["promoted"], receipt["alias"]) == (1, True, "champion")
    assert receipt["primary_metric"] == {"name": "roc_auc", "direction": "maximize",
                                         "value": 0.99}
    # what DVC records depends on the inputs alone: no version, no time, no champion
    recorded = json.loads((project / "metrics" / "register.json").read_text())
    assert list(recorded) == ["receipt_version", "model", "sha256", "metrics",
                              "input_schema_sha256", "gates", "registry"]
    assert [g["rule"] for g in recorded["gates"]] == ["min", "max"]
    assert not list((project / "metrics").glob(".*.tmp"))  # the receipt was renamed into place
    before = (project / "metrics" / "register.json").read_bytes()

    # the same model, metrics and params again: the same version, nothing new, same bytes
    again = run_framework(project, "register", *REGISTER_ARGS)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("unchanged breast_cancer v1 (sha256 ")
    assert "identical to v1 (same model bytes, metrics and params)" in again.stdout
    assert (project / "metrics" / "register.json").read_bytes() == before

    # a worse model: recorded as a rejected version, the champion stays
    write_metrics(project, {"roc_auc": 0.995, "log_loss": 0.1, "accuracy": 0.9})
    second = run_framework(project, "register", *REGISTER_ARGS, "--tag", "trial=7",
                           "--tag", "note=a=b", env={"FRAMEWORK_SWEEP_ID": "sweep-42"})
    assert second.returncode == 0, second.stderr
    assert "v2 (sha256" in second.stdout and "): rejected" in second.stdout
    assert "FAIL  accuracy 0.9 vs champion v1 0.97: drop 0.07 > max 0.005" in second.stdout
    assert "champion stays v1" in second.stdout
    receipt = json.loads(decision_file.read_text())
    assert (receipt["version"], receipt["promoted"], receipt["alias"], receipt["champion"]) == (
        2, False, None, 1)

    listing = run_framework(project, "registry", "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == "breast_cancer  (2 versions, champion: v1)"
    header = next(line for line in lines if line.lstrip().startswith("version"))
    rows = [line for line in lines if re.match(r"^\s+[12]\s", line)]
    assert len(rows) == 2
    for col in ("roc_auc", "log_loss", "accuracy"):
        end = header.index(col) + len(col)  # right-aligned numbers end under their header
        assert all(row[end - 1] == "0" and row[end] == " " for row in rows), (col, rows)
    assert "champion" in rows[0] and "rejected" in rows[1]

    data = json.loads(run_framework(project, "registry", "list", "--json").stdout)
    (model,) = data["models"]
    assert model["aliases"] == {"champion": 1}
    assert [v["status"] for v in model["versions"]] == ["promoted", "rejected"]

    shown = json.loads(run_framework(project, "registry", "show", "breast_cancer/2",
                                     "--json").stdout)
    lineage = shown["lineage"]
    assert lineage["sweep_id"] == "sweep-42" and lineage["tags"] == {"trial": "7", "note": "a=b"}
    assert lineage["git"] == {"commit": None, "dirty": None, "dirty_paths": []}  # no git here
    assert lineage["dvc_lock"] is None
    assert set(lineage["inputs"]) == {"model", "metrics", "input_schema"}
    assert lineage["inputs"]["model"] == shown["sha256"]
    assert {"python", "scikit-learn", "pandas", "numpy", "skops", "dvc", "hydra-core"} <= set(
        lineage["packages"])
    assert shown["params"]["registry"]["model_name"] == "breast_cancer"
    assert shown["params"]["model"] == {"_target_": "sklearn.linear_model.LogisticRegression",
                                        "C": 1.0}
    assert shown["target"] == "target" and "target" in shown["input_schema"]["properties"]

    text = run_framework(project, "registry", "show", "breast_cancer")  # latest
    assert text.returncode == 0, text.stderr
    assert "breast_cancer v2" in text.stdout and "rejected" in text.stdout
    assert "model.C" in text.stdout and "mean radius" in text.stdout

    diff = run_framework(project, "registry", "compare", "breast_cancer", "champion", "2")
    assert diff.returncode == 0, diff.stderr
    assert "breast_cancer: v1 (promoted, champion) vs v2 (rejected)" in diff.stdout
    assert re.search(r"accuracy\s+0\.9700\s+0\.9000\s+-0\.0700", diff.stdout)
    assert re.search(r"accuracy\s+max_drop_vs_champion\s+PASS 0\.9700\s+FAIL 0\.9000",
                     diff.stdout)

    promote = run_framework(project, "registry", "promote", "breast_cancer", "2", "--alias",
                            "champion", "--reason", "override for a demo")
    assert promote.returncode == 0, promote.stderr
    assert re.match(r"breast_cancer@champion: v1 -> v2 \(by user:.+\)", promote.stdout)
    assert "note: v2 failed its gates when registered" in promote.stderr

    history = json.loads(run_framework(project, "registry", "history", "breast_cancer",
                                       "--json").stdout)
    assert [(h["from_version"], h["to_version"], h["actor"].split(":")[0], h["reason"])
            for h in history] == [(None, 1, "register-step", "all 3 gates passed; the first version "
                                                             "to pass its gates becomes the first "
                                                             "champion"),
                                  (1, 2, "user", "override for a demo")]


def test_registry_errors_exit_codes(project: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    empty = run_framework(project, "registry", "list")
    assert (empty.returncode, empty.stdout.strip()) == (
        0, "no models registered yet (registry: .framework/registry)")
    missing = run_framework(project, "registry", "show", "breast_cancer@champion")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no registry at .framework/registry")
    monkeypatch.chdir(project)
    assert run_verb("register", REGISTER_ARGS) == 0  # in-process: skops is already imported
    typo = run_framework(project, "registry", "show", "breast_cancr@champion")
    assert typo.returncode == 2
    assert typo.stderr == ("error: no model 'breast_cancr' in registry .framework/registry; "
                           "did you mean 'breast_cancer'? (models: breast_cancer)\n")


@pytest.mark.parametrize("change, argv_extra, code, match", [
    pytest.param(("  - {metric: log_loss, max: 0.2}", "  - {metric: log_loss, maxx: 0.2}"), [],
                 2, r"^error: params.yaml: gates\[1\].maxx: unknown gate key 'maxx'.*\n"
                    r"  hint: did you mean 'max'\?", id="gate-rule-typo"),
    pytest.param(("min: 0.95", "min: high"), [], 2,
                 r"^error: params.yaml: gates\[0\].min: threshold must be a finite number, "
                 r"found 'high'", id="gate-threshold"),
    pytest.param(("  model_name: breast_cancer\n", ""), [], 2,
                 r"^error: params.yaml: registry.model_name: expected a model name, found None",
                 id="no-model-name"),
    pytest.param(("  direction: maximize", "  direction: maximise"), [], 2,
                 r"^error: params.yaml: registry.direction: expected 'maximize' or 'minimize', "
                 r"found 'maximise'\n  hint: did you mean 'maximize'\?", id="direction"),
    pytest.param(("  target: target", "  target: label"), [], 2,
                 r"^error: params.yaml: registry.target: target column 'label' is not in "
                 r"schemas/features.json", id="target-not-in-schema"),
    pytest.param(("  path: .framework/registry", "  pth: x"), [], 2,
                 r"^error: params.yaml: registry.pth: unknown key 'pth'.*\n  hint: did you mean "
                 r"'path'\?", id="registry-key-typo"),
    pytest.param(None, ["--tag", "novalue"], 2, r"^error: --tag 'novalue': expected KEY=VALUE",
                 id="bad-tag"),
    pytest.param(None, ["--bogus"], 2, r"^error: python -m framework register: unrecognized "
                 r"arguments: --bogus\nusage: ", id="bad-flag"),
])
def test_register_user_errors(project: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch, change: tuple[str, str] | None,
                              argv_extra: list[str], code: int, match: str) -> None:
    monkeypatch.chdir(project)
    if change:
        params = project / "params.yaml"
        text = params.read_text()
        assert change[0] in text
        params.write_text(text.replace(change[0], change[1]))
    assert run_verb("register", [*REGISTER_ARGS, *argv_extra]) == code
    assert re.search(match, capsys.readouterr().err)
    assert not (project / ".framework").exists()  # nothing registered, nothing created


@pytest.mark.parametrize("metrics_text, match", [
    pytest.param('{"roc_auc": "0.9"}', r"metric 'roc_auc' must be a number, found str '0.9'",
                 id="string"),
    pytest.param('{"roc_auc": {"mean": 0.9}}', r"metric 'roc_auc' must be a number",
                 id="nested"),
    pytest.param('[0.9]', r"expected a flat JSON object of numbers, found list", id="list"),
    pytest.param('{roc_auc: 0.9', r"metrics/evaluate.json: not valid JSON", id="broken"),
])
def test_register_refuses_bad_metrics(project: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch, metrics_text: str,
                                      match: str) -> None:
    monkeypatch.chdir(project)
    (project / "metrics" / "evaluate.json").write_text(metrics_text)
    assert run_verb("register", REGISTER_ARGS) == 2
    assert re.search(match, capsys.readouterr().err)


def test_registry_cli_usage_errors(project: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run_verb("registry", ["promote", "breast_cancer", "x", "--alias", "champion"]) == 2
    assert "argument VERSION: expected a version number, found 'x'" in capsys.readouterr().err
    assert run_verb("registry", ["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
    assert run_verb("registry", ["show", "a/b/c"]) == 2
    assert "cannot read model reference 'a/b/c'" in capsys.readouterr().err
    assert run_verb("registry", ["--help"]) == 0
    assert "list" in capsys.readouterr().out


def test_register_in_process_records_git_state(project: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """In a git repository the lineage names the commit and whether tracked files changed."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
        "--allow-empty", "-m", "init")
    (project / "tracked.txt").write_text("a")
    git("add", "tracked.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "add")
    head = git("rev-parse", "HEAD")
    monkeypatch.chdir(project)
    assert run_verb("register", REGISTER_ARGS) == 0
    (project / "tracked.txt").write_text("b")
    write_metrics(project, {"roc_auc": 0.98, "log_loss": 0.1, "accuracy": 0.97})  # a new version
    assert run_verb("register", REGISTER_ARGS) == 0
    capsys.readouterr()
    from framework import registry

    v1, v2 = (registry.resolve(f"breast_cancer/{v}") for v in (1, 2))
    assert v1.lineage["git"] == {"commit": head, "dirty": False, "dirty_paths": []}
    assert v2.lineage["git"] == {"commit": head, "dirty": True, "dirty_paths": ["tracked.txt"]}


BAD_NAMES = {
    "too_long": ("m" * 5000, r"invalid model name 'm{56}\.\.\.' \(5000 characters\): at most 128"),
    "charset": ("bad name!", r"invalid model name 'bad name!': at most 128 letters, digits"),
    "trailing_newline": ("breast_cancer\n", r"invalid model name 'breast_cancer\\n'"),
}


@pytest.mark.parametrize("case", list(BAD_NAMES))
def test_a_bad_model_name_is_the_same_error_in_every_verb(
        project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        case: str) -> None:
    """The same bad name gives the same message and exit 2 in show, compare, history, promote,
    serve and the Python API (promote said exit 1 before, show exit 2)."""
    name, message = BAD_NAMES[case]
    monkeypatch.chdir(project)
    assert run_verb("register", REGISTER_ARGS) == 0
    capsys.readouterr()
    for argv in (["registry", "show", f"{name}/1"], ["registry", "compare", name, "1", "2"],
                 ["registry", "history", name],
                 ["registry", "promote", name, "1", "--alias", "champion"],
                 ["serve", f"{name}@champion", "--port", "0"]):
        assert run_verb(argv[0], argv[1:]) == 2, argv
        err = capsys.readouterr().err
        assert re.search(message, err), (argv, err)
    from framework.errors import UsageError
    from framework.registry import open_registry

    with open_registry() as reg, pytest.raises(UsageError, match=message):
        reg.get(name, 1)


@pytest.mark.parametrize("alias, message", [
    ("a" * 5000, r"invalid alias 'a{56}\.\.\.' \(5000 characters\): at most 64"),
    ("9lives", r"invalid alias '9lives'"),
    ("latest", r"'latest' is reserved"),
])
def test_a_bad_alias_is_refused_before_anything_moves(
        project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        alias: str, message: str) -> None:
    monkeypatch.chdir(project)
    assert run_verb("register", REGISTER_ARGS) == 0
    capsys.readouterr()
    assert run_verb("registry", ["promote", "breast_cancer", "1", "--alias", alias]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert run_verb("registry", ["list"]) == 0  # the table still renders
    out = capsys.readouterr().out
    assert "champion" in out and alias[:20] not in out


def test_archive_hides_versions_and_gc_removes_their_artifacts(
        project: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run_verb("register", REGISTER_ARGS) == 0
    write_metrics(project, {"roc_auc": 0.98, "log_loss": 0.1, "accuracy": 0.96})
    assert run_verb("register", REGISTER_ARGS) == 0  # v2: a challenger
    capsys.readouterr()
    assert run_verb("registry", ["archive", "breast_cancer", "1"]) == 2
    assert "v1 holds the alias(es) champion: move them first" in capsys.readouterr().err
    assert run_verb("registry", ["archive", "breast_cancer", "2"]) == 0
    assert "breast_cancer v2: archived" in capsys.readouterr().out
    assert run_verb("registry", ["list"]) == 0
    out = capsys.readouterr().out
    assert "(1 versions, 1 archived (--all), champion: v1)" in out
    assert run_verb("registry", ["list", "--all"]) == 0
    assert "archived" in capsys.readouterr().out
    assert run_verb("registry", ["promote", "breast_cancer", "2", "--alias", "champion"]) == 2
    assert "v2 is archived: restore it first" in capsys.readouterr().err
    assert run_verb("registry", ["gc", "--dry-run"]) == 0
    assert "would remove 1 archived version(s)" in capsys.readouterr().out
    assert run_verb("registry", ["gc"]) == 0  # v2's bytes are v1's: nothing freed, row kept
    assert "shared with a kept version" in capsys.readouterr().out
    assert run_verb("registry", ["show", "breast_cancer/2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "removed" and shown["removed_at"]
    assert run_verb("registry", ["list"]) == 0
    assert "champion" in capsys.readouterr().out
