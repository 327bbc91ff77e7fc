"""Monitoring a version: its reference, the observed window, the checks, the record in the
registry (``monitor history``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from framework.errors import NotRegistered, UsageError
from framework.monitor.checks import Report, run
from framework.monitor.observe import from_batch, from_log, read_batch
from framework.monitor.policy import Policy, format_duration
from framework.monitor.profile import PROFILE, TEST_PREDICTIONS, Profile, read_test_predictions
from framework.registry import ModelVersion, Registry
from framework.registry.store import MonitorRun, utc_now


def reference_of(registry: Registry, mv: ModelVersion) -> Profile:
    """The version's reference profile; a user error (exit 2) when it has none."""
    data = registry.companion(mv, PROFILE)
    if data is None:
        raise NotRegistered(
            f"{mv.name} v{mv.version} has no reference profile to monitor against: it was "
            "registered without one (before monitoring existed, or not by the register "
            "stage); run the pipeline again to register a version with its profile")
    try:
        return Profile.from_bytes(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{mv.name} v{mv.version}: its reference profile cannot be read "
                         f"({exc})") from None


def window_of(policy: Policy, data: str | None) -> dict[str, Any]:
    if data is not None:
        return {"description": f"the batch {data}", "data": data}
    w = policy.window
    return {"description": w.describe(), "last": w.last,
            "since": None if w.since is None else format_duration(w.since)}


def monitor(registry: Registry, mv: ModelVersion, policy: Policy, *, data: str | None = None,
            trusted: Iterable[str] | None = None, record: bool = True
            ) -> tuple[Report, int | None]:
    """Run every check of ``policy`` on version ``mv``: on its prediction log, or on the batch
    file ``data``. Returns the report and the id of its record in the registry (None when not
    recorded)."""
    profile = reference_of(registry, mv)
    if data is not None:
        frame = read_batch(data, mv)
        observed = from_batch(registry, mv, frame, policy, trusted=trusted)
    else:
        observed = from_log(registry, mv, policy)
    stored = registry.companion(mv, TEST_PREDICTIONS)
    test_predictions = read_test_predictions(stored) if stored is not None else None
    report = run(profile, policy, observed, model=mv.name, version=mv.version,
                 registered=mv.metrics, primary_metric=mv.primary_metric,
                 window=window_of(policy, data), test_predictions=test_predictions)
    run_id = None
    if record:
        run_id = registry.store.add_monitor_run(MonitorRun(
            name=mv.name, version=mv.version, created_at=utc_now(), rows=observed.rows,
            alarm=report.alarm, window=report.to_dict()["window"], summary=report.summary()))
    return report, run_id
