"""The one exception hierarchy of the framework.

Every error a user can cause is a :class:`UserError` (exit code 2): its message names where
(file, key path, stage, column), what was expected, what was found and, when we know it, how to
fix it. Failures of the run itself are :class:`RunError` (exit code 1). The CLI layer turns these
into messages and exit codes; library code only raises them.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable
from typing import Any


class FrameworkError(Exception):
    """Base of every error the framework raises on purpose."""

    exit_code = 1


class UserError(FrameworkError):
    """Something the user can fix: a config, a schema, a command line, a data file."""

    exit_code = 2


class ConfigError(UserError):
    """A mistake in ``conf/``: names the file and the key path."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 hint: str | None = None) -> None:
        self.file = file
        self.key = key
        self.hint = hint
        self.detail = message
        where = ": ".join(p for p in (file, key) if p)
        text = f"{where}: {message}" if where else message
        if hint:
            text = f"{text}\n  hint: {hint}"
        super().__init__(text)


class UsageError(UserError):
    """A bad command line."""



class UsageParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are :class:`UsageError` (exit 2, with the usage), not
    ``sys.exit``: the CLI layer prints them and chooses the exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

class SchemaError(UserError):
    """A schema file that cannot be read or is not a valid JSON Schema."""


class SchemaViolation(UserError):
    """Data that does not conform to its declared schema."""


class NotFound(UserError):
    """Something the user named does not exist: a model, version, alias, registry or sweep. The
    message says what exists instead, with a did-you-mean when a name is close."""


class RegistryError(FrameworkError):
    """The model registry refused an operation or found an inconsistency."""


class NotRegistered(RegistryError, NotFound):
    """A model, version or alias the registry does not hold (exit code 2, as any user error)."""


class RunError(FrameworkError):
    """A failure of the run itself (a stage crashed, ``dvc`` failed)."""


class StageFunctionError(RunError):
    """A user's stage function raised: the message names the stage and shows the user's own
    frames (file, line, code); the framework's frames only when verbose."""

    def __init__(self, stage: str, run: str, exc: BaseException) -> None:
        self.stage = stage
        self.original: BaseException | None = exc
        super().__init__(f"stage '{stage}': {run} raised {user_traceback(exc)}")

    def __reduce__(self) -> tuple[Any, ...]:
        # it crosses processes (a sweep's warm process, a cluster's worker) as its message: the
        # user's exception itself may not pickle
        return (_stage_function_error, (self.stage, str(self)))


def _stage_function_error(stage: str, message: str) -> StageFunctionError:
    err = StageFunctionError.__new__(StageFunctionError)
    RunError.__init__(err, message)
    err.stage, err.original = stage, None
    return err


#: Environment variables that ask for the framework's own frames in errors.
VERBOSE_ENV = ("FRAMEWORK_VERBOSE", "HYDRA_FULL_ERROR")


def verbose() -> bool:
    import os

    return any(os.environ.get(name) not in (None, "", "0") for name in VERBOSE_ENV)


def user_traceback(exc: BaseException) -> str:
    """``Type: message`` and the frames of the user's code (with the frame that raised, when it
    is a library's); every frame when verbose (``--verbose`` or ``HYDRA_FULL_ERROR=1``)."""
    import os
    import traceback

    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if verbose():
        shown = list(frames)
        note = ""
    else:
        framework_dir = os.path.dirname(os.path.abspath(__file__))
        cwd = os.getcwd()

        def is_user(frame: traceback.FrameSummary) -> bool:
            path = os.path.abspath(frame.filename)
            return (path.startswith(cwd + os.sep) and not path.startswith(framework_dir)
                    and "site-packages" not in path)

        shown = [f for f in frames if is_user(f)]
        if frames and frames[-1] not in shown:
            shown.append(frames[-1])  # where it was raised, in a library
        hidden = len(frames) - len(shown)
        note = (f"\n  ({hidden} frame(s) of the framework and libraries hidden: run with "
                "--verbose or HYDRA_FULL_ERROR=1 to see them)" if hidden else "")
    lines = []
    for frame in shown:
        where = frame.filename
        if "site-packages" + os.sep in where:  # a library: its path inside the environment
            where = where.split("site-packages" + os.sep, 1)[1]
        elif os.path.isabs(where):
            where = os.path.relpath(where)
        lines.append(f'  File "{where}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    body = "\n".join(lines)
    return head + (f"\n{body}" if body else "") + note


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest candidate (case aside when nothing else
    is close), or None when none is close."""
    names = sorted(set(map(str, candidates)))
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    if not close:
        folded = {n.lower(): n for n in names}
        found = difflib.get_close_matches(str(name).lower(), list(folded), n=1, cutoff=0.6)
        close = [folded[found[0]]] if found else []
    return f"did you mean '{close[0]}'?" if close else None
