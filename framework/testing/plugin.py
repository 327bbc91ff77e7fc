"""The pytest side of :mod:`framework.testing` (imported only inside a pytest run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class PipelineFile(pytest.File):
    def collect(self) -> Any:
        from framework.testing.checks import all_checks, context

        ctx = context(self.path.parent)
        for name, check in all_checks(ctx):
            yield CheckItem.from_parent(self, name=name, check=check)


class CheckItem(pytest.Item):
    def __init__(self, *, check: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        import warnings

        from framework.testing.checks import FAIL, SKIP, WARN

        got = self.check()
        results = [r for r in (got if isinstance(got, list) else [got]) if r is not None]
        failed = [r for r in results if r.status == FAIL]
        if failed:
            raise CheckFailed("\n".join(f"{r.name}: {r.message}" for r in failed))
        for r in results:
            if r.status == WARN:
                warnings.warn(f"{r.name}: {r.message}", UserWarning, stacklevel=1)
        if results and all(r.status == SKIP for r in results):
            pytest.skip("; ".join(f"{r.name}: {r.message}" for r in results))

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name


class CheckFailed(Exception):
    """A generated check that failed (its message is the report)."""
