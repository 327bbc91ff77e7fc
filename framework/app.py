"""``python -m framework [overrides]``: the Hydra application.

Compose ``conf/`` (any Hydra override, ``--cfg job``, ``--help`` work as Hydra users expect),
compile ``dvc.yaml`` and ``params.yaml``, run ``dvc repro`` and print what ran, what was skipped,
and the metrics.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError, UsageError

# Hydra exits 1 on a composition error, before our task runs; we report those as user errors.
_CONFIG_ERROR_EXIT = 2
_OTHER_LAUNCHER = ("multirun jobs run through the framework's launcher (hydra/launcher: framework, "
                   "the default of conf/config.yaml); another launcher would run `dvc repro` once "
                   "per job in one workspace")
#: Flags of ours among Hydra's: short for the override sweep.save_dvc_experiments=true, and
#: every frame in errors (for this process and the stages DVC runs).
SAVE_DVC_EXPERIMENTS = "--save-dvc-experiments"
VERBOSE = "--verbose"


def run_app(args: list[str]) -> int:
    import os

    from framework.sweep import warm

    root = Path.cwd()
    if VERBOSE in args:
        os.environ["FRAMEWORK_VERBOSE"] = "1"
        args = [a for a in args if a != VERBOSE]
    args = ["sweep.save_dvc_experiments=true" if a == SAVE_DVC_EXPERIMENTS else a for a in args]
    warm.start(root / "conf", args)  # a sweep's heavy imports start now, on the other core
    global _PREPARED_DVC
    stages = None
    if warm.current() is None and not any(a.startswith("-") for a in args):
        from framework import dvc, warmstage

        stages = warmstage.start(root)  # a single run's: its stages run in a warm process
        _PREPARED_DVC = dvc.prepare(root)  # and DVC imports itself meanwhile
    try:
        return _run_app(root, args)
    finally:
        warm.stop()
        if _PREPARED_DVC is not None:
            _PREPARED_DVC.cancel()
            _PREPARED_DVC = None
        if stages is not None:
            stages.stop()


#: The ``dvc`` process started ahead for a single run (see :class:`framework.dvc.Prepared`).
_PREPARED_DVC: Any = None


def _run_app(root: Path, args: list[str]) -> int:
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from framework.config import check_group_overrides, compose_raw, conf_dir, resolve
    from framework.spec import build_spec
    from framework.sweep import warm

    try:
        conf = conf_dir(root)
        check_group_overrides(root, args)
        flags = [a for a in args if a.startswith("-")]
        if not flags or set(flags) <= {"-m", "--multirun"}:
            # Check the config with our own messages (file, key, did-you-mean) before Hydra
            # composes it again: the plain overrides, and the ranges of any sweep.
            plain = [a for a in args if _is_plain_override(a)]
            sweeps = [a for a in args if not a.startswith("-") and a not in plain]
            raw, source = compose_raw(root, plain)
            single = not (sweeps or flags or raw.hydra.mode == RunMode.MULTIRUN)
            if not single:
                from framework.sweep.engine import check_sweep_space

                check_sweep_space(root, raw, sweeps)
            else:
                warm.stop()  # a single run after all
            spec = build_spec(resolve(OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"]),
                                      source), source)
            if single:
                # the job Hydra's app would run is this config: run it, without composing again
                return run_spec(spec, root)
            args = [*args, *_quiet_hydra(raw)]
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    import hydra
    from rich.console import Console

    state: dict[str, Any] = {"started": False, "code": 0}

    @hydra.main(version_base="1.3", config_path=str(conf.resolve()), config_name="config")
    def task(cfg: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        state["started"] = True
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # Sweeps run through the framework's launcher; another launcher would run
            # `dvc repro` once per job, in parallel, in one workspace.
            print(f"error: {UsageError(_OTHER_LAUNCHER)}", file=sys.stderr)
            raise SystemExit(UsageError.exit_code)
        state["code"] = run_pipeline(cfg, root)

    from framework.sweep import engine

    out = Console(highlight=False, soft_wrap=True)
    engine.set_reporter(out.print)
    saved = sys.argv
    sys.argv = ["python -m framework", *args]
    try:
        task()
    except KeyboardInterrupt:
        session = engine.CURRENT
        if session is not None:
            print(f"\ninterrupted: {len(session.results)} trials of sweep {session.sweep_id} are "
                  "recorded; the same command resumes it", file=sys.stderr)
        else:
            print("\ninterrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code and not state["started"] and engine.CURRENT is None:
            return _CONFIG_ERROR_EXIT
        return code or state["code"]
    finally:
        sys.argv = saved
        engine.set_reporter(None)
    if engine.CURRENT is not None:
        return _sweep_summary(out, engine.CURRENT)
    return state["code"]


def _sweep_summary(out: Any, session: Any) -> int:
    from framework.sweep.cli import print_table

    out.print()
    print_table(session.store, out, limit=25)
    took = time.perf_counter() - session.started
    ran = len(session.results) - session.reused
    if ran == 0:
        out.print(f"all {session.reused} trials were recorded earlier: nothing ran "
                  f"(sweep {session.sweep_id})")
    else:
        earlier = f"; {session.reused} recorded earlier" if session.reused else ""
        out.print(f"{ran} trials ran in {took:.1f} s ({took / ran * 1000:.0f} ms per trial, "
                  f"{session.jobs} parallel){earlier}")
    return 0 if any(r.status == "ok" for r in session.results) else 1


#: Hydra's own defaults for its run and sweep folders and its logs.
_HYDRA_RUN_DIR = "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}"
_HYDRA_SWEEP_DIR = "multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}"


def _quiet_hydra(raw: Any) -> list[str]:
    """Overrides so that a run writes no ``outputs/<date>/`` folder, no ``.hydra/`` copy of the
    config and no empty ``app.log`` (the framework records what a run did itself: dvc.lock, the
    registry, the sweep store), unless the project's config asks for them: each is added only
    while the setting is still Hydra's default."""
    from omegaconf import OmegaConf

    hydra = OmegaConf.to_container(raw.hydra, resolve=False)
    choices = hydra.get("runtime", {}).get("choices", {})
    out = []
    if hydra.get("run", {}).get("dir") == _HYDRA_RUN_DIR:
        out.append("hydra.run.dir=.")
    if hydra.get("sweep", {}).get("dir") == _HYDRA_SWEEP_DIR:
        out.append("hydra.sweep.dir=.")
    if hydra.get("output_subdir") == ".hydra":
        out.append("hydra.output_subdir=null")
    for group in ("hydra/job_logging", "hydra/hydra_logging"):
        if choices.get(group) == "default":
            out.append(f"{group}=none")
    return out


def _is_plain_override(arg: str) -> bool:
    """``key=value`` with no flag and no sweep syntax (``a,b``, ``range(...)``, ``choice(...)``)."""
    if arg.startswith("-") or "=" not in arg:
        return False
    value = arg.split("=", 1)[1]
    return "," not in value and not re.match(r"^\w+\(", value)


def run_pipeline(cfg: Any, root: Path) -> int:
    """Compile the config Hydra composed for this job, reproduce it with DVC, print a summary.
    Returns an exit code."""
    from framework.config import resolve, source_from_hydra
    from framework.spec import build_spec

    try:
        source = source_from_hydra(root)
        spec = build_spec(resolve(cfg, source), source)
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return run_spec(spec, root)


def run_spec(spec: Any, root: Path) -> int:
    """Compile a checked spec, reproduce it with DVC, print a summary. Returns an exit code."""
    from rich.console import Console

    from framework import dvc
    from framework.compiler import compile_spec, write
    from framework.spec import REGISTER_STAGE

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)
    try:
        changed = write(compile_spec(spec), root)
        out.print(f"[bold]compiled[/] {', '.join(changed) if changed else 'dvc.yaml, params.yaml'}"
                  f"{'' if changed else ' (unchanged)'}")

        marks = {"ran": "[green]✓[/]", "skipped": "[dim]·[/]", "restored": "[cyan]↺[/]",
                 "failed": "[red]✗[/]"}

        def on_stage(run: dvc.StageRun) -> None:
            took = f"{run.seconds:.1f} s" if run.status in ("ran", "failed") else "-"
            out.print(f"  {marks[run.status]} {run.name:<{width}}  {run.status:<8}  {took:>8}")

        width = max(len(s.name) for s in spec.stages)
        out.print(f"[bold]dvc repro[/]\n    {'stage':<{width}}  {'status':<8}  {'time':>8}")
        held: list[str] = []  # the register step's own lines: the summary prints its receipt

        def on_line(stage: str | None, line: str) -> None:
            if stage == REGISTER_STAGE:
                held.append(line)
            else:
                err.print(f"    {line}", markup=False, soft_wrap=True)

        kept = dvc.snapshot(root)  # what DVC cannot check out if a stage fails
        result = dvc.repro(root, on_line=on_line, on_stage=on_stage, prepared=_PREPARED_DVC)
        if any(s.name == REGISTER_STAGE and s.status == "failed" for s in result.stages):
            for line in held:
                err.print(f"    {line}", markup=False, soft_wrap=True)
    except FrameworkError as exc:
        err.print(f"error: {exc}", markup=False)
        return exc.exit_code

    print_summary(out, spec, result)
    if result.ok:
        try:
            from framework.stage import ensure_published

            ran = {s.name for s in result.stages if s.status == "ran"}  # they published
            for fv in ensure_published([s for s in spec.stages if s.name not in ran], root):
                out.print(f"published {fv.ref} ({fv.rows:,} rows, sha256 {fv.sha256[:12]}): "
                          "the feature store did not hold these bytes yet")
        except FrameworkError as exc:
            err.print(f"error: publishing to the feature store: {exc}", markup=False)
            return exc.exit_code
    if not result.ok:
        failed = next((s.name for s in result.stages if s.status == "failed"), None)
        if result.interrupted:
            err.print("[red]interrupted[/]" + (f" in stage '{failed}'" if failed else ""))
        else:
            err.print(f"[red]error:[/] stage '{failed}' failed" if failed else
                      f"[red]error:[/] dvc repro failed (exit {result.returncode})")
        done = {s.name for s in result.stages if s.status in ("ran", "skipped", "restored")}
        names = [*(s.name for s in spec.stages),
                 *([REGISTER_STAGE] if spec.registration is not None else [])]
        put_back = dvc.restore(root, [n for n in names if n not in done], kept)
        if put_back.restored or put_back.missing:
            shown = ", ".join(put_back.restored) or "nothing"
            tail = (f"; not in DVC's cache, still missing: {', '.join(put_back.missing)}"
                    if put_back.missing else ": the workspace matches dvc.lock")
            err.print(f"restored {shown} as dvc.lock records them{tail}", markup=False,
                      soft_wrap=True)
        if result.interrupted:
            return 130
        return result.stage_exit_code if result.stage_exit_code in (1, 2) else 1
    return 0


def print_summary(out: Any, spec: Any, result: Any) -> None:
    """The counts of what ran and was skipped; after a successful run, the metrics of each stage
    that has some and the registry's decision."""
    from framework.registry.core import registry_path
    from framework.registry.step import decision_path
    from framework.spec import REGISTER_STAGE

    counts = [(s, sum(r.status == s for r in result.stages))
              for s in ("ran", "skipped", "restored", "failed")]
    out.print("  " + ", ".join(f"{n} {s}" for s, n in counts if n))
    if not result.ok:
        return  # the metrics on disk are those of an earlier run
    for stage in spec.stages:
        if stage.metrics is None:
            continue
        try:
            values = json.loads((spec.root / stage.metrics.path).read_text())
        except (OSError, ValueError):
            continue
        out.print(f"\n[bold]metrics[/] ({stage.metrics.path})")
        for line in metrics_lines(values):
            out.print(line)
    if spec.registration is not None and any(r.name == REGISTER_STAGE and r.status == "ran"
                                             for r in result.stages):
        registry = registry_path(project_dir=spec.root)
        print_decision(out, decision_path(registry, spec.registration.model_name))


def metrics_lines(values: dict[str, Any]) -> list[str]:
    """A stage's metrics as aligned lines: the plain ones, then for each grouping column a table
    of every metric by group (from the flat ``recall@clinic=A`` keys, see
    :func:`framework.registry.gates.group_key`)."""
    def shown(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    from framework.registry.gates import split_group_key

    plain: dict[str, Any] = {}
    grouped: dict[str, dict[str, dict[str, Any]]] = {}  # column -> metric -> group -> value
    for key, value in values.items():
        parts = split_group_key(key)
        if parts is None:
            plain[key] = value
        else:
            metric, column, group = parts
            grouped.setdefault(column, {}).setdefault(metric, {})[group] = value
    width = max(map(len, plain), default=0)
    lines = [f"    {name:<{width}}  {shown(value):>10}" for name, value in plain.items()]
    for column, metrics in grouped.items():
        groups = sorted({g for per in metrics.values() for g in per})
        heads = [f"{column}={g}" for g in groups]
        w = max(len(m) for m in metrics)
        cols = [max(len(h), 8) for h in heads]
        lines.append(f"\n    {'by ' + column:<{w}}  " + "  ".join(
            f"{h:>{c}}" for h, c in zip(heads, cols)))
        for metric, per in sorted(metrics.items(), key=lambda kv: (kv[0] == "rows", kv[0])):
            lines.append(f"    {metric:<{w}}  " + "  ".join(
                f"{shown(per[g]) if g in per else '-':>{c}}" for g, c in zip(groups, cols)))
    return lines


def print_decision(out: Any, receipt_path: Path) -> None:
    """The registry's decision, from the receipt the register step wrote."""
    try:
        receipt = json.loads(receipt_path.read_text())
    except (OSError, ValueError):
        return
    verdict = {"promoted": "[green]promoted to champion[/]",
               "challenger": "[yellow]recorded as challenger[/]",
               "rejected": "[red]rejected by its gates[/]"}.get(receipt.get("status"), receipt.get("status"))
    if receipt.get("unchanged"):
        verdict = "[dim]unchanged[/] (the same model, metrics and params as before)"
    out.print(f"\n[bold]registry[/] {receipt['model']} v{receipt['version']}: {verdict}")
    gates = receipt.get("gates") or []
    width = max((len(g["metric"]) for g in gates), default=0)
    rules = {"min": ">= {t}", "max": "<= {t}", "max_drop_vs_champion": "drop <= {t} vs champion",
             "max_gap": "gap <= {t}"}
    for g in gates:
        mark = "[green]pass[/]" if g["passed"] else "[red]FAIL[/]"
        value = "-" if g.get("value") is None else f"{g['value']:.4f}"
        rule = rules.get(g["rule"], g["rule"] + " {t}").format(t=g["threshold"])
        if g.get("by"):
            groups = ", ".join(f"{k} {d['value']:.4f} n={int(d['rows'])}"
                               for k, d in (g.get("groups") or {}).items())
            rule = (f"{'in every group ' if g['rule'] != 'max_gap' else ''}{rule} by "
                    f"{g['by']}: {groups or g['message']}")
        elif g.get("champion_version") is not None:
            rule += f" v{g['champion_version']} ({g['champion_value']:.4f})"
        elif "champion" in g["rule"]:
            rule += " (nothing to compare with: the first version)"
        out.print(f"    {mark}  {g['metric']:<{width}}  {value:>8}  {rule}")
    for reason in receipt.get("reasons", []):
        if not reason.startswith("gate failed"):
            out.print(f"    {reason}")
