"""dvc.yaml and params.yaml: deterministic, exact per-stage dependencies, staleness checks."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from framework.commands import compile_project
from tests.conftest import REPO, run_cli


def stages_of(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"]


def test_compiling_twice_gives_byte_identical_files(project: Path) -> None:
    first = compile_project(project, ["model=random_forest"]).files
    second = compile_project(project, ["model=random_forest"]).files
    assert first == second
    run_cli(project, "compile", check=True)
    written = {p: (project / p).read_bytes() for p in ("dvc.yaml", "params.yaml")}
    proc = run_cli(project, "compile", check=True)
    assert "already up to date" in proc.stdout
    assert {p: (project / p).read_bytes() for p in written} == written


def test_each_stage_lists_exactly_what_it_uses(project: Path) -> None:
    run_cli(project, "compile", check=True)
    stages = stages_of(project)
    assert list(stages)[:4] == ["ingest", "split", "train", "evaluate"]
    assert stages["ingest"]["params"] == ["dataset"]
    assert stages["split"]["params"] == ["split", "seed", "dataset.target"]
    assert stages["train"]["params"] == ["preprocess", "model", "dataset.target",
                                         "dataset.exclude_from_features"]
    assert stages["evaluate"]["params"] == ["dataset.target", "dataset.exclude_from_features",
                                            "dataset.groups"]
    # nothing upstream of train depends on the model
    for name in ("ingest", "split"):
        assert not any(p.startswith("model") for p in stages[name]["params"])
    assert stages["train"]["deps"] == ["pipelines/tabular.py", "data/train.parquet",
                                       "schemas/features.json"]
    assert stages["evaluate"]["deps"] == ["pipelines/tabular.py", "models/model.skops",
                                          "data/test.parquet", "schemas/features.json",
                                          "schemas/metrics.json"]
    assert stages["evaluate"]["metrics"] == [{"metrics/evaluate.json": {"cache": False}}]
    plots = {next(iter(p)): next(iter(p.values())) for p in stages["evaluate"]["plots"]}
    assert plots["plots/confusion.csv"]["template"] == "confusion"
    assert (plots["plots/roc.csv"]["x"], plots["plots/roc.csv"]["y"]) == ("fpr", "tpr")
    cmd = shlex.split(stages["train"]["cmd"])
    assert cmd[:5] == ["python", "-m", "framework", "stage", "train"]
    assert "--run" in cmd and cmd[cmd.index("--run") + 1] == "pipelines.tabular.train"


def test_params_yaml_holds_resolved_params_but_no_pipeline_structure(project: Path) -> None:
    run_cli(project, "compile", "model=random_forest", "seed=7", check=True)
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["model"]["random_state"] == 7  # ${seed} resolved
    assert params["model"]["_target_"] == "sklearn.ensemble.RandomForestClassifier"
    assert "pipeline" not in params and "ranges" not in params and "hydra" not in params


def test_check_reports_stale_files_with_a_diff(project: Path) -> None:
    assert run_cli(project, "compile", "--check").returncode == 1  # nothing compiled yet
    run_cli(project, "compile", check=True)
    proc = run_cli(project, "compile", "--check")
    assert proc.returncode == 0, proc.stderr
    model = project / "conf/model/logistic_regression.yaml"
    model.write_text(model.read_text().replace("C: 1.0", "C: 0.5"))
    proc = run_cli(project, "compile", "--check")
    assert proc.returncode == 1
    assert "-  C: 1.0" in proc.stderr and "+  C: 0.5" in proc.stderr
    assert "stale: params.yaml" in proc.stderr
    # --check never writes
    assert "C: 1.0" in (project / "params.yaml").read_text()


def test_committed_files_are_the_compiled_default_config() -> None:
    proc = run_cli(REPO, "compile", "--check")
    assert proc.returncode == 0, proc.stderr


def test_compile_does_not_import_heavy_libraries(project: Path) -> None:
    run_cli(project, "compile", check=True)  # fills the constraint cache
    probe = ("import sys\nfrom framework.cli import main\n"
             "assert main(['compile', '--check']) == 0\n"
             "print(sorted(m for m in ('sklearn', 'pandas', 'dvc.repo', 'numpy') if m in sys.modules))")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_a_mistyped_verb_is_named_with_the_verb_it_resembles(project: Path) -> None:
    proc = run_cli(project, "regsitry", "list")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown verb 'regsitry'; did you mean 'registry'?")
    assert "cannot parse" not in proc.stderr


def test_generated_files_are_readable_as_any_new_file_would_be(project: Path) -> None:
    """Atomic writes go through mkstemp, whose files are 0o600: the generated files and every
    output written atomically must get the usual mode instead (0o644 under umask 022)."""
    import os

    from framework.io import write_text

    old = os.umask(0o022)
    try:
        (project / "dvc.yaml").unlink(missing_ok=True)
        run_cli(project, "compile", check=True)
        write_text(project / "report.html", "<p>hi</p>")
    finally:
        os.umask(old)
    for name in ("dvc.yaml", "report.html"):
        assert (project / name).stat().st_mode & 0o777 == 0o644, name
