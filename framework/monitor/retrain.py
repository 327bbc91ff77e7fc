"""``monitor --retrain``: on an alarm, retrain with the labelled production rows.

1. The feedback table: every labelled row of the model's prediction log (all its versions, the
   latest logged copy of each ``(request_id, row)``), with the label as the target column, in
   the columns and order of the pipeline input it goes to (``monitor.retrain.input``, the
   bundled pipeline's ``split.feedback``), checked against that input's schema, written
   atomically and tracked by DVC (``dvc add``: a ``.dvc`` file to commit).
2. The pipeline runs as ``python -m framework`` (with any overrides given after ``--``) and with
   ``FRAMEWORK_MONITOR_RUN`` set, so the registered version's lineage names the monitor run that
   triggered it. The gates and the champion comparison on the same test data decide; a server
   following ``NAME@champion`` then switches by itself.
3. The monitor run records the version the retrain produced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, RunError, UsageError
from framework.monitor.checks import Report
from framework.monitor.observe import labelled_rows
from framework.monitor.policy import Policy
from framework.registry import ModelVersion, Registry


@dataclass
class RetrainResult:
    ran: bool
    reason: str
    feedback_rows: int = 0
    feedback_path: str | None = None
    exit_code: int | None = None
    version: int | None = None
    promoted: bool = False
    status: str | None = None
    champion: int | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def triggers(report: Report, policy: Policy) -> list[str]:
    """The checks of ``retrain.when`` that alarmed (a fairness rule counts as ``fairness``)."""
    alarmed = {c.name.split("[", 1)[0] for c in report.checks if c.alarm}
    return [name for name in policy.retrain.when if name in alarmed]


def feedback_input(project: Path) -> tuple[str, str | None, list[str]]:
    """``(path, schema path, columns)`` of the pipeline input a retrain writes to."""
    from framework.config import compose
    from framework.monitor.policy import parse
    from framework.spec import build_spec

    data, source = compose(project, [])
    spec = build_spec(data, source)
    policy = parse(spec.params.get("monitor"), file=source.file_of("monitor"))
    stage_name, _, input_name = policy.retrain.input.partition(".")
    stage = next((s for s in spec.stages if s.name == stage_name), None)
    found = None if stage is None else next(
        (i for i in stage.declared_inputs if i.name == input_name), None)
    if found is None or not found.optional:
        raise ConfigError(f"the pipeline has no optional input {policy.retrain.input!r} for the "
                          "labelled production rows; declare one, e.g. feedback: {path: "
                          "data/feedback.parquet, schema: schemas/features.json, optional: true}",
                          file=source.file_of("monitor"), key="monitor.retrain.input")
    columns: list[str] = []
    if found.schema:
        schema = json.loads((project / found.schema).read_text())
        columns = list((schema.get("properties") or {}).keys())
    return found.path, found.schema, columns


def write_feedback(project: Path, registry: Registry, mv: ModelVersion, path: str,
                   schema_path: str | None, columns: list[str]) -> int:
    """Write (atomically) and track the feedback table; returns its row count."""
    from framework import dvc, io
    from framework.schema import load_schema, validate

    target = mv.target
    if not target:
        raise UsageError(f"{mv.name} v{mv.version} has no target column (registry.target): "
                         "its labels cannot become training rows")
    frame = labelled_rows(registry, mv.name, target=target)
    if len(frame) and columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise UsageError(f"the logged rows lack column(s) {', '.join(missing[:10])} that "
                             f"{path} needs; a column that is not a model input is logged when "
                             f"requests carry it and serve logs it (--log-column "
                             f"{missing[0]}, or a monitor policy that groups by it)")
        frame = frame[columns]
    if schema_path:
        validate(frame, load_schema(project / schema_path),
                 what=f"the feedback table {path} (labelled production rows)")
    io.write(project / path, frame)
    dvc.track(project, path)
    return len(frame)


def retrain(project: Path, registry: Registry, mv: ModelVersion, policy: Policy,
            report: Report, run_id: int | None, *, overrides: list[str] | None = None,
            force: bool = False) -> RetrainResult:
    """Retrain when ``report`` alarms on a check of ``retrain.when`` (always with ``force``)."""
    fired = triggers(report, policy)
    if not fired and not force:
        why = ", ".join(report.alarms) if report.alarm else "no alarm"
        return RetrainResult(False, f"no alarm among retrain.when ({', '.join(policy.retrain.when)})"
                                    f": {why}; nothing to retrain")
    if not (project / "conf").is_dir():
        raise UsageError("--retrain runs the pipeline: run it from the project root (the folder "
                         "with conf/)")
    from framework.registry.lineage import read_yaml
    from framework.testing.required import enforce

    params_file = project / "params.yaml"
    enforce(project, read_yaml(params_file) if params_file.is_file() else None,
            f"the retrain (the champion stays v{mv.version})")
    path, schema_path, columns = feedback_input(project)
    target = mv.target or ""
    available = len(labelled_rows(registry, mv.name, target=target)) if target else 0
    if available < policy.retrain.min_rows:
        return RetrainResult(False, f"{available} labelled production rows, fewer than "
                                    f"retrain.min_rows {policy.retrain.min_rows}: label more "
                                    "with `monitor label FILE`", feedback_rows=available)
    rows = write_feedback(project, registry, mv, path, schema_path, columns)
    env = {**os.environ}
    if run_id is not None:
        from framework.registry.step import ENV_MONITOR_RUN

        env[ENV_MONITOR_RUN] = str(run_id)
    proc = subprocess.run([sys.executable, "-m", "framework", *(overrides or [])], cwd=project,
                          env=env)
    result = RetrainResult(True, f"retrained on {', '.join(fired) or 'request'}",
                           feedback_rows=rows, feedback_path=path, exit_code=proc.returncode)
    if proc.returncode != 0:
        raise RunError(f"the retraining run failed (exit {proc.returncode}); the champion "
                       f"stays v{mv.version}")
    from framework.registry.step import decision_path

    try:
        decision = json.loads(decision_path(registry.root, mv.name).read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"the retraining run left no registry decision ({exc})") from None
    result.version = decision.get("version")
    result.promoted = bool(decision.get("promoted"))
    result.status = decision.get("status")
    result.champion = decision.get("champion")
    result.reasons = list(decision.get("reasons") or [])
    if run_id is not None and result.version is not None:
        registry.store.set_retrained(run_id, int(result.version))
    return result
