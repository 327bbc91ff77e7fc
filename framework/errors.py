"""The one exception hierarchy of the framework.

Every error a user can cause is a :class:`UserError` (exit code 2): its message names where
(file, key path, stage, column), what was expected, what was found and, when we know it, how to
fix it. Failures of the run itself are :class:`RunError` (exit code 1). The CLI layer turns these
into messages and exit codes; library code only raises them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest candidate, or None when none is close."""
    close = difflib.get_close_matches(str(name), sorted(set(map(str, candidates))), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
