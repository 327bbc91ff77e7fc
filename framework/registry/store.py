"""What a registry stores, and the small interface a storage backend implements.

The backends are :class:`framework.registry.sqlite.SQLiteStore` (a file) and
:class:`framework.registry.postgres.PostgresStore` (a server a team shares). A store holds rows
only: artifacts live in the content-addressed :class:`framework.registry.artifacts.ArtifactStore`,
written (atomically) before the row that names them, so a version never exists without its
artifact.
"""

from __future__ import annotations

import math
import os
import re
import signal
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from framework.errors import RegistryError, UsageError

CHAMPION = "champion"


def utc_now() -> str:
    """The time now, UTC, ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


#: Root keywords about the size of the training table, not about a row.
TABLE_SIZE_RULES = ("x-min-rows", "x-max-rows")

@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, with everything needed to serve and to trace it.

    ``artifact_path`` is the absolute path of the artifact inside the registry's store (a store
    backend returns it relative to the registry root; :class:`~framework.registry.core.Registry`
    makes it absolute). ``status`` is the decision taken when the version was registered:
    ``promoted`` (it became champion), ``challenger`` (gates passed, did not beat the champion),
    ``rejected`` (a gate failed) or ``candidate`` (a sweep's trial: recorded, never judged for
    promotion). Which version holds an alias *now* is in ``aliases``; :attr:`state` combines both.
    ``archived_at`` is set by ``registry archive``, ``removed_at`` when ``registry gc`` removed its
    artifact (the row stays, for the lineage and the history).
    """

    name: str
    version: int
    aliases: tuple[str, ...]
    artifact_path: str
    sha256: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    input_schema: dict[str, Any] | None
    target: str | None
    lineage: dict[str, Any]
    created_at: str
    status: str
    gates: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    primary_metric: str | None = None
    direction: str | None = None
    size: int = 0
    archived_at: str | None = None
    removed_at: str | None = None
    #: Companion artifacts stored with the version, content-addressed like the model:
    #: ``{"profile": {"sha256": ..., "size": ...}, "test_predictions": {...}}``.
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def state(self) -> str:
        """Where the version stands now: ``removed``, ``archived``, ``champion`` (it holds the
        champion alias), ``former champion`` (promoted once, champion no more), or the decision of
        its registration (``challenger``, ``rejected``, ``candidate``)."""
        if self.removed_at:
            return "removed"
        if self.archived_at:
            return "archived"
        if CHAMPION in self.aliases:
            return "champion"
        return "former champion" if self.status == "promoted" else self.status

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.lineage.get("tags") or {})

    @property
    def sweep_id(self) -> str | None:
        return self.lineage.get("sweep_id")

    def serving_schema(self) -> dict[str, Any] | None:
        """What a request row must look like: the input schema without the target column, and
        without the rules on the size of the training table (a request may have one row)."""
        schema = self.input_schema
        if not schema:
            return schema
        out = {k: v for k, v in schema.items() if k not in TABLE_SIZE_RULES}
        if self.target and isinstance(schema.get("properties"), dict):
            out["properties"] = {k: v for k, v in schema["properties"].items() if k != self.target}
        if self.target and isinstance(schema.get("required"), list):
            out["required"] = [c for c in schema["required"] if c != self.target]
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        d["uri"] = self.uri
        d["state"] = self.state
        return d


@dataclass(frozen=True)
class AliasMove:
    """One entry of the append-only alias history."""

    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    time: str
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Label:
    """The ground truth of one predicted row, joined to the prediction log by request id."""

    request_id: str
    row: int
    value: Any  # a JSON value: number, string or boolean
    labelled_at: str = ""


@dataclass(frozen=True)
class LabelWrite:
    """What :meth:`Store.put_labels` did with a batch of labels."""

    added: int
    changed: int
    unchanged: int


@dataclass(frozen=True)
class MonitorRun:
    """One run of ``monitor``: when, on which version and window, and what it found."""

    name: str
    version: int
    created_at: str
    rows: int
    alarm: bool
    window: dict[str, Any]
    summary: dict[str, Any]        # per check: status, what alarmed, the key numbers
    id: int | None = None
    retrained_version: int | None = None  # the version a retrain triggered by this run made

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The comparisons a search condition can make.
OPERATORS = (">=", "<=", "!=", ">", "<", "=")
_CONDITION = re.compile(r"^\s*(?:metrics\.)?(?P<key>.*[^<>=!\s])\s*(?P<op>>=|<=|!=|==|>|<|=)"
                        r"\s*(?P<value>\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    """``metric op value``: a search keeps the versions whose metric ``key`` satisfies it (a
    version without the metric, or with a value that is not a finite number, never does)."""

    key: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise UsageError(f"search: unknown comparison {self.op!r} (one of "
                             f"{' '.join(OPERATORS)})")
        if not self.key or not math.isfinite(self.value):
            raise UsageError(f"search: {self} needs a metric name and a finite number")

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value:g}"

    @classmethod
    def parse(cls, text: str) -> Condition:
        """``"roc_auc > 0.95"``, ``"metrics.log_loss<=0.2"`` (MLflow's spelling),
        ``"recall@clinic=A >= 0.9"`` (a per-group metric)."""
        m = _CONDITION.match(text)
        value: float | None = None
        if m:
            try:
                value = float(m["value"])
            except ValueError:
                value = None
        if m is None or value is None or not math.isfinite(value):
            raise UsageError(f"search condition {text!r}: expected METRIC OP NUMBER, e.g. "
                             "'roc_auc > 0.95' (OP: > >= < <= = !=)")
        return cls(m["key"], "=" if m["op"] == "==" else m["op"], value)


class AliasConflict(RegistryError):
    """A compare-and-set on an alias found another version than the one expected."""

    def __init__(self, name: str, alias: str, expected: int | None, current: int | None) -> None:
        self.expected = expected
        self.current = current
        super().__init__(f"{name}@{alias} moved from {expected} to {current} meanwhile")


class Store(ABC):
    """Rows of a registry: versions, aliases and the alias history; labels and monitor runs.

    Every write is one transaction. Alias moves are compare-and-set: the caller says which version
    it expects the alias to hold (None: unset) and the store raises :class:`AliasConflict` when it
    holds another, changing nothing.
    """

    @abstractmethod
    def add_version(self, version: ModelVersion, *, alias: str, expected: int | None,
                    move: bool, actor: str, reason: str) -> tuple[ModelVersion, AliasMove | None]:
        """Insert ``version`` under the next free number for its name, in one transaction.

        The transaction first checks that ``alias`` holds ``expected`` (raising
        :class:`AliasConflict` otherwise, so a decision made against a stale champion is never
        recorded); with ``move`` it then points ``alias`` at the new version and appends the move
        to the history. ``version.version`` and ``version.aliases`` are ignored.
        """

    @abstractmethod
    def move_alias(self, name: str, alias: str, to_version: int, *, expected: int | None,
                   actor: str, reason: str) -> AliasMove:
        """Compare-and-set ``alias`` from ``expected`` to ``to_version`` and record the move."""

    @abstractmethod
    def decide(self, name: str, version: int, *, status: str, gates: list[dict[str, Any]],
               reasons: list[str], alias: str, expected: int | None, move: bool, actor: str,
               reason: str) -> AliasMove | None:
        """Record the promotion decision of an existing ``candidate`` version (a sweep's trial
        judged later), in one transaction: its status, verdicts and reasons, and with ``move``
        the compare-and-set of ``alias`` from ``expected`` to it."""

    @abstractmethod
    def find_versions(self, name: str, sha256: str) -> list[ModelVersion]:
        """The versions of ``name`` whose artifact has this sha256, oldest first."""

    @abstractmethod
    def set_archived(self, name: str, versions: list[int], when: str | None) -> None:
        """Archive ``versions`` (``when``: the time) or restore them (None), in one
        transaction; refuses (UsageError, nothing changed) a version that holds an alias."""

    @abstractmethod
    def mark_removed(self, name: str, version: int, when: str) -> None:
        """Record that ``registry gc`` removed the artifact of an archived version."""

    @abstractmethod
    def search(self, name: str | None, where: Sequence[Condition], *, status: str | None = None,
               archived: bool = False, order_by: str | None = None, descending: bool = True,
               limit: int | None = None, artifact_root: str = "") -> list[ModelVersion]:
        """The versions (of model ``name``, or of every model) that satisfy every condition of
        ``where`` and have ``status`` when given, archived ones only with ``archived``; ordered
        by the metric ``order_by`` (versions without it last), else by name and version; at most
        ``limit``. Their artifact paths are joined under ``artifact_root`` (a search may return
        thousands: they are built once, with the path their caller needs)."""

    @abstractmethod
    def metric_keys(self, name: str | None) -> list[str]:
        """The metric names that versions (of ``name``, or of any model) have numbers for."""

    @abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion | None: ...

    @abstractmethod
    def latest_version(self, name: str) -> int | None: ...

    @abstractmethod
    def alias_version(self, name: str, alias: str) -> int | None: ...

    @abstractmethod
    def aliases(self, name: str) -> dict[str, int]: ...

    @abstractmethod
    def versions(self, name: str) -> list[ModelVersion]: ...

    @abstractmethod
    def model_names(self) -> list[str]: ...

    @abstractmethod
    def history(self, name: str) -> list[AliasMove]: ...

    @abstractmethod
    def set_extras(self, name: str, version: int, extras: dict[str, dict[str, Any]]) -> None:
        """Record companion artifacts of a version registered before it had them (keys already
        present keep their value)."""

    # -- monitoring: labels and monitor runs ---------------------------------------------------

    @abstractmethod
    def put_labels(self, labels: list[Label], when: str) -> LabelWrite:
        """Insert or update labels by ``(request_id, row)`` in one transaction: labelling the same
        rows twice changes nothing; a different value replaces the old one."""

    @abstractmethod
    def get_labels(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        """The labels of these ``(request_id, row)`` keys (absent keys are left out)."""

    @abstractmethod
    def add_monitor_run(self, run: MonitorRun) -> int:
        """Append a monitor run; returns its id."""

    @abstractmethod
    def set_retrained(self, run_id: int, version: int) -> None:
        """Record the version a retrain triggered by monitor run ``run_id`` produced."""

    @abstractmethod
    def monitor_runs(self, name: str, *, limit: int | None = None) -> list[MonitorRun]:
        """The monitor runs of model ``name``, oldest first (the latest ``limit`` of them)."""

    @abstractmethod
    def check(self) -> list[str]:
        """Return a list of inconsistencies found (empty when all is well)."""

    @abstractmethod
    def close(self) -> None: ...


CRASH_ENV = "FRAMEWORK_REGISTRY_CRASH_AT"


def crash_point(name: str) -> None:
    """Test seam: die at once (SIGKILL) when ``$FRAMEWORK_REGISTRY_CRASH_AT`` names this point.

    Lets the tests kill a real registering process at a known step and check that the registry is
    still consistent afterwards. Points: ``artifact-partial``, ``after-artifact``,
    ``in-transaction``.
    """
    if os.environ.get(CRASH_ENV) == name:
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)
