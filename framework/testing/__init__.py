"""Generated tests of a pipeline: ``python -m framework test``, or ``pytest -p framework.testing``.

As a pytest plugin, this module turns the project's ``dvc.yaml`` into a test file: each check of
:mod:`framework.testing.checks` is one test item, failing with the check's message, skipped with
its reason (a warning passes and is reported as a pytest warning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pytest_collect_file(file_path: Path, parent: Any) -> Any:
    """The project's ``dvc.yaml`` as a file of tests (pytest is imported only here, so that
    ``python -m framework test`` needs no test dependency)."""
    if file_path.name == "dvc.yaml" and (file_path.parent / "conf" / "config.yaml").is_file():
        from framework.testing.plugin import PipelineFile

        return PipelineFile.from_parent(parent, path=file_path)
    return None
