"""``tests.required: true``: a sweep or a retrain registers nothing while a generated check fails.

``tests:`` in ``conf/config.yaml`` also declares the columns the leakage checks use::

    tests:
      required: true       # sweeps and `monitor --retrain` run the checks first
      key: sample_id       # no value of it in both train and test
      time: measured_at    # every test row later than every train row
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def is_required(params: Mapping[str, Any] | None) -> bool:
    block = (params or {}).get("tests")
    return isinstance(block, Mapping) and block.get("required") is True


def enforce(root: Path, params: Mapping[str, Any] | None, what: str, *,
            composed: tuple[Any, Any] | None = None) -> None:
    """Run every generated check when ``tests.required`` is set; a failure stops ``what``.
    ``composed``: the config (and its source) to check, where Hydra already runs."""
    if not is_required(params):
        return
    from framework.errors import RunError
    from framework.testing.checks import FAIL, context, run

    failed = [r for r in run(context(root, composed=composed)) if r.status == FAIL]
    if failed:
        shown = "; ".join(f"{r.name}: {r.message}" for r in failed[:3])
        raise RunError(f"tests.required is set and {len(failed)} generated check(s) failed, so "
                       f"{what} registers nothing: {shown}"
                       + (" …" if len(failed) > 3 else "")
                       + " (python -m framework test shows them all)")
