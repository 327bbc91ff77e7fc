"""The registry: register versions, judge them with gates, move aliases, resolve and load models.

A :class:`Registry` is a :class:`~framework.registry.store.Store` (rows) plus an
:class:`~framework.registry.artifacts.ArtifactStore` (files). Registration writes the artifact
first, then one transaction inserts the version row and, when the version wins, moves the
``champion`` alias. The decision is taken against the champion read before the transaction; the
transaction re-checks that the champion is still the same (compare-and-set) and, if it moved in
between, the registration is judged again against the new champion.
"""

from __future__ import annotations

import functools
import getpass
import math
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from framework.errors import NotRegistered, RegistryError, UsageError, did_you_mean
from framework.registry import artifacts
from framework.registry.gates import Gate, Verdict, evaluate, is_better
from framework.registry.store import (CHAMPION, AliasConflict, AliasMove, Condition, ModelVersion,
                                      Store, crash_point, utc_now)

DEFAULT_PATH = ".framework/registry"
ENV_REGISTRY = "FRAMEWORK_REGISTRY"
#: The registry's database, when it is not the local folder's SQLite file (``registry.url``).
ENV_REGISTRY_URL = "FRAMEWORK_REGISTRY_URL"
#: The folder that holds the artifacts, when not the local folder (``registry.artifacts``).
ENV_REGISTRY_ARTIFACTS = "FRAMEWORK_REGISTRY_ARTIFACTS"
ENV_SWEEP_ID = "FRAMEWORK_SWEEP_ID"
STEP_ACTOR = "register-step"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*\Z")
#: Longest model name and alias: enough for any real name, short enough for every table.
MAX_NAME = 128
MAX_ALIAS = 64
_URI_RE = re.compile(r"^(?:models:/)?(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$")
_CAS_ATTEMPTS = 200


def user_actor() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "user:unknown"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}...' ({len(str(value))} characters)"


def check_name(name: str) -> str:
    """``name`` if it is a valid model name, else a UsageError (exit 2) saying why."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_NAME:
        raise UsageError(f"invalid model name {_shown(name)}: at most {MAX_NAME} letters, "
                         "digits, '_', '-' and '.', starting with a letter or digit")
    return name


def check_alias(alias: str) -> str:
    """``alias`` if it is a valid alias, else a UsageError (exit 2) saying why."""
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias) or len(alias) > MAX_ALIAS \
            or alias == "latest":
        raise UsageError(f"invalid alias {_shown(alias)}: at most {MAX_ALIAS} letters, digits, "
                         "'_' and '-', starting with a letter ('latest' is reserved)")
    return alias


@dataclass(frozen=True)
class ModelRef:
    """A parsed model URI: a name plus exactly one of an alias or a version (or ``latest``)."""

    name: str
    alias: str | None = None
    version: int | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{'latest' if self.latest else self.version}"


def parse_uri(uri: str) -> ModelRef:
    """Parse ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME/latest``, each with or without a
    ``models:/`` prefix."""
    m = _URI_RE.match(str(uri).strip())
    if not m:
        raise UsageError(f"cannot read model reference {uri!r}; expected NAME@ALIAS or "
                         "NAME/VERSION, e.g. breast_cancer@champion, models:/breast_cancer/3")
    name, alias, version = m["name"], m["alias"], m["version"]
    check_name(name)
    if alias is not None:
        if alias == "latest":  # NAME@latest reads as NAME/latest
            return ModelRef(name, latest=True)
        return ModelRef(name, alias=check_alias(alias))
    if version == "latest":
        return ModelRef(name, latest=True)
    if not version.isdigit() or int(version) < 1:
        raise UsageError(f"cannot read model reference {uri!r}: version {version!r} is not a "
                         "positive integer (use NAME@ALIAS for an alias)")
    return ModelRef(name, version=int(version))


def _registry_params(project_dir: Path) -> Mapping[str, Any]:
    """The ``registry:`` block of ``params.yaml`` in ``project_dir`` ({} when there is none).
    Parsed once per version of the file: opening a registry asks for its folder, database and
    artifact store, and a server opens it on every request."""
    params = project_dir / "params.yaml"
    try:
        st = params.stat()
    except OSError:
        return {}
    return _parsed_registry_block(str(params.absolute()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _parsed_registry_block(path: str, mtime_ns: int, size: int) -> Mapping[str, Any]:
    from types import MappingProxyType

    from framework.registry.lineage import read_yaml

    try:
        data = read_yaml(path)
    except Exception:  # an unreadable params.yaml is the compiler's to report
        return {}
    block = data.get("registry") if isinstance(data, dict) else None
    return MappingProxyType(block) if isinstance(block, dict) else {}


def _sqlite_path(url: str) -> str | None:
    """The folder of a ``sqlite:///folder`` URL (None for any other text)."""
    return url[len("sqlite:///"):] or "." if url.startswith("sqlite:///") else None


def registry_path(registry: str | os.PathLike[str] | None = None, *,
                  project_dir: str | os.PathLike[str] = ".") -> Path:
    """The registry's local folder (its SQLite file unless ``registry.url`` names a server, and
    the prediction logs and receipts): ``registry`` if given (a folder or ``sqlite:///folder``),
    else ``$FRAMEWORK_REGISTRY``, else ``registry.path`` of ``params.yaml`` in ``project_dir``
    (relative to it), else ``.framework/registry``."""
    from framework.registry.postgres import is_url

    if registry and not is_url(str(registry)):
        return Path(_sqlite_path(str(registry)) or registry)
    env = os.environ.get(ENV_REGISTRY)
    if env:
        return Path(env)
    project_dir = Path(project_dir)
    path = _registry_params(project_dir).get("path")
    if path:
        return project_dir / str(path)
    return project_dir / DEFAULT_PATH


def registry_url(registry: str | os.PathLike[str] | None = None, *,
                 project_dir: str | os.PathLike[str] = ".") -> str | None:
    """The registry's database server, or None for the SQLite file in its folder: ``registry``
    when it is a ``postgresql://`` URL (``sqlite:///folder`` names a local registry; a plain folder
    is the registry's local folder, its database still the configured one), else
    ``$FRAMEWORK_REGISTRY_URL``, else ``registry.url`` of ``params.yaml``. A ``sqlite:///`` URL
    in either place means the local file."""
    from framework.registry.postgres import is_url

    if registry and is_url(str(registry)):
        return str(registry)
    if registry and _sqlite_path(str(registry)) is not None:
        return None
    for url in (os.environ.get(ENV_REGISTRY_URL), _registry_params(Path(project_dir)).get("url")):
        if url:
            url = str(url)
            if is_url(url):
                return url
            if _sqlite_path(url) is None:
                raise UsageError(f"registry.url {url!r} is neither sqlite:///FOLDER nor "
                                 "postgresql://USER@HOST:PORT/DATABASE")
            return None
    return None


def _dvc_remote_name(value: str, project_dir: Path) -> str | None:
    """The DVC remote ``value`` names: ``remote://NAME``, or a bare NAME that the project's
    ``.dvc/config`` (or ``config.local``) defines; None when it is a folder. The config files are
    read once per version of them (a server opens its registry on every request)."""
    if value.startswith("remote://"):
        return value[len("remote://"):].strip("/")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        return None
    versions = []
    for name in ("config", "config.local"):
        try:
            st = (project_dir / ".dvc" / name).stat()
            versions.append((st.st_mtime_ns, st.st_size))
        except OSError:
            versions.append(None)
    return value if _dvc_defines(value, str(project_dir.absolute()), tuple(versions)) else None


@functools.lru_cache(maxsize=16)
def _dvc_defines(remote: str, project_dir: str, _versions: tuple[Any, ...]) -> bool:
    section = re.compile(r"""^\s*\[\s*['"]?remote\s+"%s"['"]?\s*\]""" % re.escape(remote), re.M)
    for name in ("config", "config.local"):
        try:
            if section.search((Path(project_dir) / ".dvc" / name).read_text(errors="replace")):
                return True
        except OSError:
            continue
    return False


def artifacts_location(root: Path, *, project_dir: str | os.PathLike[str] = "."
                       ) -> tuple[Path, str | None]:
    """Where artifacts go: ``(folder, remote)``. ``$FRAMEWORK_REGISTRY_ARTIFACTS``, else
    ``registry.artifacts`` of ``params.yaml``: a folder (relative to the project), or the name
    of a DVC remote of the project (``remote://NAME``, or a bare NAME that ``dvc remote add``
    defined), whose local copies are kept under the registry's folder ``root``; else ``root``.
    A registry a team shares needs a store every machine reaches."""
    project_dir = Path(project_dir)
    configured = os.environ.get(ENV_REGISTRY_ARTIFACTS) or \
        _registry_params(project_dir).get("artifacts")
    if not configured:
        return root, None
    remote = _dvc_remote_name(str(configured), project_dir)
    if remote is not None:
        if not remote:
            raise UsageError(f"registry.artifacts {configured!r}: remote:// needs a DVC "
                             "remote's name")
        return root, remote
    return project_dir / str(configured), None


@dataclass(frozen=True)
class Comparison:
    """The champion a registration was judged against, and on which test set.

    When the champion's test data differs from the challenger's (their hashes in the lineage),
    the champion's model is scored again on the challenger's test set, so both are compared on
    the same rows; ``metrics`` are then those fresh scores and ``registered`` the champion's
    own."""

    version: int
    metrics: dict[str, Any]
    registered: dict[str, Any]
    rescored: bool
    test_set: str | None = None  # "path (sha256 …)" of the data both were compared on

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "metrics": self.metrics, "registered": self.registered,
                "rescored": self.rescored, "test_set": self.test_set}


@dataclass(frozen=True)
class Registration:
    """What :meth:`Registry.register` did: the version and the promotion decision.

    ``unchanged``: the same model bytes, metrics and params were registered before; that version
    is returned and nothing new is recorded."""

    version: ModelVersion
    promoted: bool
    alias: str
    previous_champion: int | None
    champion: int | None
    reasons: list[str]
    verdicts: list[Verdict]
    attempts: int = 1
    comparison: Comparison | None = None
    unchanged: bool = False

    @property
    def status(self) -> str:
        return self.version.status

    def receipt(self, *, registry: str | None = None) -> dict[str, Any]:
        """The full decision (keys documented in :mod:`framework.registry.step`)."""
        mv = self.version
        primary = None
        if mv.primary_metric:
            primary = {"name": mv.primary_metric, "direction": mv.direction,
                       "value": mv.metrics.get(mv.primary_metric)}
        return {
            "receipt_version": 2,
            "model": mv.name,
            "version": mv.version,
            "uri": mv.uri,
            "unchanged": self.unchanged,
            "promoted": self.promoted,
            "alias": self.alias if self.promoted else None,
            "status": mv.status,
            "champion": self.champion,
            "previous_champion": self.previous_champion,
            "reasons": list(self.reasons),
            "gates": [v.to_dict() for v in self.verdicts],
            "compared_with": None if self.comparison is None else self.comparison.to_dict(),
            "primary_metric": primary,
            "sha256": mv.sha256,
            "registry": registry,
            "created_at": mv.created_at,
        }


def decide(verdicts: Sequence[Verdict], metrics: Mapping[str, Any],
           champion: ModelVersion | None, primary_metric: str | None,
           direction: str, champion_metrics: Mapping[str, Any] | None = None
           ) -> tuple[bool, str, list[str]]:
    """Promotion rule: every gate passes AND strictly better than the champion on the primary
    metric (direction-aware), the champion's metrics being ``champion_metrics`` when given (its
    scores on the challenger's test set). Returns ``(promote, status, reasons)``."""
    failed = [v for v in verdicts if not v.passed]
    if failed:
        return False, "rejected", [f"gate failed: {v.message}" for v in failed]
    passed = f"all {len(verdicts)} gates passed" if verdicts else "no gates configured"
    if champion is None:
        return True, "promoted", [passed, "the first version to pass its gates becomes the "
                                          "first champion"]
    if not primary_metric:
        return True, "promoted", [passed, "no primary metric: the latest version that passes "
                                  "its gates becomes champion"]
    value = metrics.get(primary_metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return False, "challenger", [passed, f"the metrics have no number for the primary metric "
                                     f"{primary_metric!r}"]
    theirs = champion.metrics if champion_metrics is None else champion_metrics
    champ = theirs.get(primary_metric)
    if not isinstance(champ, (int, float)) or isinstance(champ, bool) or math.isnan(champ):
        return True, "promoted", [passed, f"champion v{champion.version} has no "
                                  f"{primary_metric} to beat"]
    where = " on the same test set" if champion_metrics is not None else ""
    if is_better(float(value), float(champ), direction):
        return True, "promoted", [passed, f"{primary_metric} {value:.6g} beats champion "
                                  f"v{champion.version} ({champ:.6g}{where}, {direction})"]
    return False, "challenger", [passed, f"{primary_metric} {value:.6g} does not beat champion "
                                 f"v{champion.version} ({champ:.6g}{where}, {direction}; "
                                 "strictly better needed)"]


#: Scores a model (a champion) on the challenger's test set: its metrics.
Rescorer = Callable[[Any], Mapping[str, Any]]


class Registry:
    """Versions, aliases and artifacts of the models in one registry folder."""

    def __init__(self, root: str | os.PathLike[str], store: Store, *,
                 artifact_root: str | os.PathLike[str] | None = None,
                 remote: str | None = None, project_dir: str | os.PathLike[str] = ".") -> None:
        self.root = Path(root)
        self.store = store
        #: the folder that holds ``artifacts/`` (the registry's own folder unless shared; with a
        #: DVC ``remote``, the local copies of what the remote holds)
        self.artifact_root = Path(artifact_root) if artifact_root is not None else self.root
        opener = None if remote is None else \
            (lambda: artifacts.RemoteArtifacts(remote, project_dir))
        self.artifacts = artifacts.ArtifactStore(self.artifact_root / "artifacts", opener)
        self._artifact_prefix = str(self.artifact_root.absolute())

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    # -- reading ---------------------------------------------------------------------------------

    def _absolute(self, mv: ModelVersion) -> ModelVersion:
        return replace(mv, artifact_path=os.path.join(self._artifact_prefix, mv.artifact_path))

    def model_names(self) -> list[str]:
        return self.store.model_names()

    def _require_model(self, name: str) -> None:
        check_name(name)
        if self.store.latest_version(name) is None:
            names = self.store.model_names()
            hint = did_you_mean(name, names)
            known = ", ".join(names) if names else "none registered yet"
            raise NotRegistered(f"no model {name!r} in registry {self.root}"
                                + (f"; {hint}" if hint else "") + f" (models: {known})")

    def versions(self, name: str) -> list[ModelVersion]:
        self._require_model(name)
        return [self._absolute(v) for v in self.store.versions(name)]

    def aliases(self, name: str) -> dict[str, int]:
        self._require_model(name)
        return self.store.aliases(name)

    def history(self, name: str) -> list[AliasMove]:
        self._require_model(name)
        return self.store.history(name)

    def get(self, name: str, version: int) -> ModelVersion:
        check_name(name)
        mv = self.store.get_version(name, version)
        if mv is None:
            self._require_model(name)
            latest = self.store.latest_version(name)
            raise NotRegistered(f"{name} has no version {version}; its versions are 1..{latest}")
        return self._absolute(mv)

    def resolve(self, uri: str | ModelRef) -> ModelVersion:
        """The version a URI names: ``NAME@ALIAS``, ``NAME/3``, ``models:/NAME@ALIAS`` ..."""
        ref = uri if isinstance(uri, ModelRef) else parse_uri(uri)
        if ref.alias is not None:
            version = self.store.alias_version(ref.name, ref.alias)
            if version is None:
                self._require_model(ref.name)
                aliases = self.store.aliases(ref.name)
                hint = did_you_mean(ref.alias, aliases)
                known = ", ".join(sorted(aliases)) if aliases else "none yet"
                raise NotRegistered(f"{ref.name} has no alias {ref.alias!r}"
                                    + (f"; {hint}" if hint else "") + f" (aliases: {known})")
            return self.get(ref.name, version)
        if ref.latest:
            self._require_model(ref.name)
            return self.get(ref.name, self.store.latest_version(ref.name) or 0)
        assert ref.version is not None
        return self.get(ref.name, ref.version)

    def search(self, name: str | None = None, where: Iterable[str | Condition] = (), *,
               status: str | None = None, archived: bool = False, order_by: str | None = None,
               descending: bool = True, limit: int | None = None) -> list[ModelVersion]:
        """The versions that meet every condition of ``where`` (``"roc_auc > 0.95"``, or a
        :class:`Condition`), of model ``name`` or of every model: see :meth:`Store.search`. A
        metric no version has is an error naming the metrics there are."""
        conditions = [c if isinstance(c, Condition) else Condition.parse(c) for c in where]
        if name is not None:
            self._require_model(name)
        if limit is not None and limit < 1:
            raise UsageError(f"search: limit must be at least 1, not {limit}")
        found = self.store.search(name, conditions, status=status, archived=archived,
                                  order_by=order_by, descending=descending, limit=limit,
                                  artifact_root=self._artifact_prefix)
        # every condition's metric exists when something matched; else say which does not
        wanted = ([] if found else [c.key for c in conditions]) + (
            [order_by] if order_by and not any(order_by in mv.metrics for mv in found) else [])
        if wanted:
            known = self.store.metric_keys(name)
            for key in wanted:
                if key not in known:
                    hint = did_you_mean(key, known)
                    raise UsageError(
                        f"search: no version{f' of {name}' if name else ''} has a metric {key!r}"
                        + (f"; {hint}" if hint else "")
                        + f" (metrics: {', '.join(known) if known else 'none'})")
        return found

    def artifact(self, mv: ModelVersion) -> Path:
        """The version's artifact file, after checking its sha256."""
        if mv.removed_at:
            raise NotRegistered(f"{mv.name} v{mv.version} was archived and its artifact removed "
                                f"by `registry gc` ({mv.removed_at[:19]} UTC)")
        what = f"{mv.name} version {mv.version}"
        self.artifacts.fetch(mv.sha256, what=what)
        return artifacts.verify_file(mv.artifact_path, mv.sha256, what=what)

    def companion(self, mv: ModelVersion, key: str) -> bytes | None:
        """The bytes of a companion artifact of ``mv`` (hash-checked), None when the version has
        none under ``key`` (it was registered without it)."""
        entry = mv.extras.get(key)
        if not entry:
            return None
        return self.artifacts.read_bytes(str(entry["sha256"]),
                                         what=f"{mv.name} version {mv.version} ({key})")

    def load(self, uri: str | ModelRef | ModelVersion, *,
             trusted: Iterable[str] | None = None) -> Any:
        """The fitted estimator a URI names (hash-checked, skops with the exact allowlist;
        ``trusted``: extra names, default the ``trusted_types`` of the project's params.yaml)."""
        mv = uri if isinstance(uri, ModelVersion) else self.resolve(uri)
        return artifacts.load_model(self.artifact(mv), what=f"{mv.name} version {mv.version}",
                                    trusted=trusted)

    # -- writing ---------------------------------------------------------------------------------

    def _champion(self, name: str, alias: str) -> ModelVersion | None:
        version = self.store.alias_version(name, alias)
        mv = None if version is None else self.store.get_version(name, version)
        return None if mv is None else self._absolute(mv)

    def register(self, name: str, model: str | os.PathLike[str] | Any, *,
                 metrics: Mapping[str, Any], params: Mapping[str, Any] | None = None,
                 input_schema: Mapping[str, Any] | None = None, target: str | None = None,
                 gates: Sequence[Gate] = (), primary_metric: str | None = None,
                 direction: str = "maximize", lineage: Mapping[str, Any] | None = None,
                 tags: Mapping[str, str] | None = None, sweep_id: str | None = None,
                 alias: str = CHAMPION, actor: str = STEP_ACTOR, check_types: bool = True,
                 promote: bool = True, rescore: Rescorer | None = None,
                 companions: Mapping[str, bytes] | None = None) -> Registration:
        """Record a version of ``name`` and promote it to ``alias`` if it earns it.

        ``model`` is a skops file or a fitted estimator (saved with skops, in canonical bytes).
        The version becomes ``alias`` (champion) only when every gate passes and it is strictly
        better than the current champion on ``primary_metric``. With ``promote=False`` (a sweep's
        trial) it is recorded as a ``candidate``: judged, never promoted, no alias touched.

        The same bytes, metrics, params and input schema registered before are that version
        again (``unchanged``): nothing is recorded, except that a candidate registered now with
        ``promote`` gets its decision. ``rescore`` scores a model on this run's test set: when the
        lineage shows the champion was evaluated on other data (``lineage['evaluation']``), the
        champion is compared on this run's test set, not on the metrics it was registered with.
        ``companions`` are artifacts stored with the version (``profile``, ``test_predictions``:
        :mod:`framework.monitor.profile`), content-addressed like the model; read them back with
        :meth:`companion`.
        """
        check_name(name)
        check_alias(alias)
        if direction not in ("maximize", "minimize"):
            raise UsageError(f"direction must be 'maximize' or 'minimize', found {direction!r}")
        if input_schema is not None:  # checked once here: serving trusts what is stored
            from framework.schema.loading import validate_row_schema

            validate_row_schema(dict(input_schema), source=f"the input schema of {name}")
        what = f"{name} (new version)"
        if isinstance(model, (str, os.PathLike)):
            if not Path(model).is_file():
                raise UsageError(f"model file {model} does not exist")
            if check_types:
                artifacts.trusted_types(model, what=what)
            sha, size = self.artifacts.put_file(model)
        else:
            self.artifacts.tmp.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".skops", dir=self.artifacts.tmp)
            os.close(fd)
            try:
                artifacts.save_model(model, tmp)
                if check_types:
                    artifacts.trusted_types(tmp, what=what)
                sha, size = self.artifacts.put_file(tmp)
            finally:
                Path(tmp).unlink(missing_ok=True)
        extras = {}
        for key, data in sorted((companions or {}).items()):
            c_sha, c_size = self.artifacts.put_bytes(data)
            extras[key] = {"sha256": c_sha, "size": c_size}
        crash_point("after-artifact")

        metrics = dict(metrics)
        params = dict(params or {})
        schema = None if input_schema is None else dict(input_schema)
        full_lineage = dict(lineage or {})
        full_lineage["tags"] = dict(tags or {})
        full_lineage["sweep_id"] = sweep_id
        full_lineage["registered_by"] = actor
        same = [v for v in self.store.find_versions(name, sha)
                if v.metrics == metrics and v.params == params and v.input_schema == schema]
        comparisons: dict[int, Comparison] = {}
        for attempt in range(1, _CAS_ATTEMPTS + 1):
            champion = self._champion(name, alias)
            expected = champion.version if champion else None
            comparison = None
            if champion is not None:
                if champion.version not in comparisons:
                    comparisons[champion.version] = self._comparison(champion, full_lineage,
                                                                     rescore)
                comparison = comparisons[champion.version]
            verdicts = evaluate(list(gates), metrics,
                                champion_metrics=comparison.metrics if comparison else None,
                                champion_version=expected, primary_metric=primary_metric,
                                primary_direction=direction)
            rescored = comparison.metrics if comparison and comparison.rescored else None
            wins, status, reasons = decide(verdicts, metrics, champion, primary_metric,
                                           direction, rescored)
            if comparison is not None and comparison.rescored:
                reasons.append(f"champion v{comparison.version} scored on this run's test set "
                               f"{comparison.test_set}, not the one it was registered with")
            move = wins and promote
            if not promote:
                status = "candidate"
            try:
                if same:
                    if extras and any(k not in same[-1].extras for k in extras):
                        self.store.set_extras(name, same[-1].version, extras)
                        same[-1] = self.store.get_version(name, same[-1].version) or same[-1]
                    return self._again(same[-1], move=move, status=status, verdicts=verdicts,
                                       reasons=reasons, alias=alias, expected=expected,
                                       actor=actor, promote=promote, attempt=attempt,
                                       comparison=comparison)
                row = ModelVersion(
                    name=name, version=0, aliases=(),
                    artifact_path=artifacts.ArtifactStore.relpath(sha),
                    sha256=sha, metrics=metrics, params=params, input_schema=schema,
                    target=target, lineage=full_lineage, created_at=utc_now(), status=status,
                    gates=[v.to_dict() for v in verdicts], reasons=reasons,
                    primary_metric=primary_metric, direction=direction, size=size,
                    extras=extras)
                saved, _move = self.store.add_version(row, alias=alias, expected=expected,
                                                      move=move, actor=actor,
                                                      reason="; ".join(reasons))
            except AliasConflict:
                # the champion moved between our read and our write: judge again
                time.sleep(random.random() * 0.002 * min(attempt, 10))
                continue
            return Registration(self._absolute(saved), move, alias, expected,
                                saved.version if move else expected, reasons, verdicts,
                                attempts=attempt, comparison=comparison)
        raise RegistryError(f"{name}: {alias} kept moving; gave up after {_CAS_ATTEMPTS} attempts")

    def _again(self, existing: ModelVersion, *, move: bool, status: str, verdicts: list[Verdict],
               reasons: list[str], alias: str, expected: int | None, actor: str, promote: bool,
               attempt: int, comparison: Comparison | None) -> Registration:
        """A registration of what ``existing`` already is: judged now if it is a candidate and
        promotion is asked for, else left as it is."""
        name, number = existing.name, existing.version
        if existing.status == "candidate" and promote:
            self.store.decide(name, number, status=status,
                              gates=[v.to_dict() for v in verdicts], reasons=reasons,
                              alias=alias, expected=expected, move=move, actor=actor,
                              reason="; ".join(reasons))
            judged = self.get(name, number)
            return Registration(judged, move, alias, expected, number if move else expected,
                                reasons, verdicts, attempts=attempt, comparison=comparison)
        from framework.registry.gates import gates_from_verdicts

        current = self.store.alias_version(name, alias)
        return Registration(self._absolute(existing), False, alias, current, current,
                            [f"identical to v{number} (same model bytes, metrics and params): "
                             "nothing new recorded", *existing.reasons],
                            gates_from_verdicts(existing.gates), attempts=attempt,
                            unchanged=True)

    def _comparison(self, champion: ModelVersion, lineage: Mapping[str, Any],
                    rescore: Rescorer | None) -> Comparison:
        """What the champion is judged on: its registered metrics when it was evaluated on the
        same test set as this registration, else its scores on this one (when ``rescore`` can
        compute them)."""
        ours = (lineage.get("evaluation") or {}).get("sha256")
        theirs = (champion.lineage.get("evaluation") or {}).get("sha256")
        if rescore is None or ours is None or ours == theirs:
            return Comparison(champion.version, dict(champion.metrics), dict(champion.metrics),
                              rescored=False)
        model = self.load(champion)
        evaluation = lineage["evaluation"]
        where = f"{evaluation.get('path', 'test set')} (sha256 {ours[:12]})"
        return Comparison(champion.version, {k: v for k, v in rescore(model).items()},
                          dict(champion.metrics), rescored=True, test_set=where)

    def archive(self, name: str, versions: Sequence[int], *, restore: bool = False) -> None:
        """Archive ``versions`` of ``name`` (hidden from ``registry list``, removed by ``gc``),
        or bring them back with ``restore``. A version holding an alias is never archived."""
        for version in versions:
            self.get(name, version)  # clear error for an unknown model or version
        self.store.set_archived(name, list(versions), None if restore else utc_now())

    def gc(self, *, dry_run: bool = False) -> list[tuple[ModelVersion, int]]:
        """Remove the artifacts of archived versions (the model and its companions: never those
        of a version that holds an alias, nor any that a kept version of any model shares) and
        mark them removed. Returns each archived version with the bytes it freed (0 when all
        were shared or already gone)."""
        every = [mv for name in self.store.model_names() for mv in self.store.versions(name)]

        def shas(mv: ModelVersion) -> list[str]:
            return [mv.sha256, *(str(e["sha256"]) for e in mv.extras.values())]

        kept = {sha for mv in every if not mv.archived_at or mv.aliases for sha in shas(mv)}
        done = []
        for mv in every:
            if not mv.archived_at or mv.removed_at or mv.aliases:
                continue
            freed = 0
            for sha in dict.fromkeys(shas(mv)):
                path = self.artifacts.path(sha)
                if sha in kept:
                    continue  # a version that stays has the same bytes
                if dry_run:
                    freed += path.stat().st_size if path.exists() else 0
                else:
                    freed += self.artifacts.remove(sha)
            if not dry_run:
                self.store.mark_removed(mv.name, mv.version, utc_now())
            done.append((self._absolute(mv), freed))
        return done

    def set_alias(self, name: str, version: int, alias: str, *, reason: str = "",
                  actor: str | None = None) -> AliasMove | None:
        """Point ``alias`` at ``version`` (a manual promotion); None when it already does."""
        check_alias(alias)
        mv = self.get(name, version)  # clear error for an unknown model or version
        if mv.archived_at:
            raise UsageError(f"{name} v{version} is archived: restore it first "
                             f"(registry archive {name} {version} --restore)")
        actor = actor or user_actor()
        for _ in range(_CAS_ATTEMPTS):
            current = self.store.alias_version(name, alias)
            if current == version:
                return None
            try:
                return self.store.move_alias(name, alias, version, expected=current, actor=actor,
                                             reason=reason or "manual promotion")
            except AliasConflict:
                continue
        raise RegistryError(f"{name}@{alias} kept moving; gave up")  # pragma: no cover

    def check(self) -> list[str]:
        """Inconsistencies between rows and artifacts (empty when all is well)."""
        problems = self.store.check()
        for name in self.store.model_names():
            for mv in self.store.versions(name):
                path = self.artifact_root / mv.artifact_path
                if mv.removed_at:
                    continue  # removed by gc, on purpose
                if not path.exists():
                    if not self.artifacts.has(mv.sha256):
                        problems.append(f"{name} v{mv.version}: artifact {path} missing")
                elif artifacts.sha256_file(path) != mv.sha256:
                    problems.append(f"{name} v{mv.version}: artifact {path} hash mismatch")
        return problems


def open_registry(path: str | os.PathLike[str] | None = None, *, create: bool = True,
                  project_dir: str | os.PathLike[str] = ".") -> Registry:
    """Open (and, with ``create``, create) a registry: ``path`` is its folder, ``sqlite:///folder``
    or a ``postgresql://`` URL; without it, the project's (see :func:`registry_path`,
    :func:`registry_url` and :func:`artifacts_location`)."""
    root = registry_path(path, project_dir=project_dir)
    url = registry_url(path, project_dir=project_dir)
    store: Store
    if url is not None:
        from framework.registry.postgres import PostgresStore

        store = PostgresStore(url, create=create)
    else:
        from framework.registry.sqlite import SQLiteStore

        store = SQLiteStore(root, create=create)
    folder, remote = artifacts_location(root, project_dir=project_dir)
    return Registry(root, store, artifact_root=folder, remote=remote, project_dir=project_dir)


@dataclass(frozen=True)
class Migration:
    """What ``registry migrate`` copied."""

    rows: dict[str, int]
    artifacts: int
    artifact_bytes: int


def migrate(source: Registry, target: Registry) -> Migration:
    """Copy every row of ``source`` (versions, aliases, alias history, labels, monitor runs, ids
    and all) into the empty ``target`` in one transaction, after every artifact they name (sha256
    checked on the way), then check that the two registries hold the same rows."""
    from framework.registry.sql import SQLStore

    if not isinstance(source.store, SQLStore) or not isinstance(target.store, SQLStore):
        raise UsageError("registry migrate copies between SQL registries (SQLite, PostgreSQL)")
    rows = source.store.dump()
    if target.model_names():
        raise UsageError("the target registry already holds versions: migrate into an empty one")
    copied = size = 0
    for name in source.model_names():
        for mv in source.versions(name):
            shas = [] if mv.removed_at else [mv.sha256]
            shas += [e["sha256"] for e in mv.extras.values() if isinstance(e, dict)]
            for sha in shas:
                have = target.artifacts.path(sha)
                if have.exists() and artifacts.sha256_file(have) == sha and \
                        target.artifacts.remote is None:
                    continue
                what = f"{name} v{mv.version}'s artifact"
                src = artifacts.verify_file(source.artifacts.fetch(sha, what=what), sha,
                                            what=what)
                _, n = target.artifacts.put_file(src)
                copied, size = copied + 1, size + n
    from framework.registry.sql import FEATURE_COLUMNS

    sha_at = [c.strip() for c in FEATURE_COLUMNS.split(",")].index("sha256")
    for row in rows.get("feature_versions", []):  # the feature store's tables
        sha = row[sha_at]
        have = target.artifacts.path(sha)
        if have.exists() and artifacts.sha256_file(have) == sha and target.artifacts.remote is None:
            continue
        what = f"feature set {row[0]}@{row[1]}"
        src = artifacts.verify_file(source.artifacts.fetch(sha, what=what), sha, what=what)
        _, n = target.artifacts.put_file(src)
        copied, size = copied + 1, size + n
    target.store.copy_rows(rows)
    if target.store.dump() != rows:
        raise RegistryError("the copy differs from the source after migrate; the target was "
                            "written in one transaction: inspect it before using it")
    return Migration({t: len(r) for t, r in rows.items()}, copied, size)


def resolve(uri: str, *, registry: str | os.PathLike[str] | None = None) -> ModelVersion:
    """The :class:`ModelVersion` a URI names, e.g. ``resolve("models:/breast_cancer@champion")``."""
    with open_registry(registry, create=False) as reg:
        return reg.resolve(uri)


def search(name: str | None = None, where: Iterable[str | Condition] = (), *,
           registry: str | os.PathLike[str] | None = None, **options: Any) -> list[ModelVersion]:
    """The versions that meet every condition, e.g. ``search("breast_cancer", ["roc_auc > 0.99",
    "log_loss < 0.1"], order_by="roc_auc", limit=10)`` (see :meth:`Registry.search`)."""
    with open_registry(registry, create=False) as reg:
        return reg.search(name, where, **options)


def load(uri: str | ModelVersion, *, registry: str | os.PathLike[str] | None = None,
         trusted: Iterable[str] | None = None) -> Any:
    """The fitted estimator a URI names, e.g. ``load("breast_cancer@champion")``.

    Given a :class:`ModelVersion` (from :func:`resolve`), loads exactly that version's artifact
    (hash-checked) without looking at the registry again: serving resolves once, then loads what
    it resolved even if the alias moves in between. (When the file is not on this machine, the
    registry's store, a DVC remote for example, provides it.)
    """
    if isinstance(uri, ModelVersion) and os.path.exists(uri.artifact_path):
        what = f"{uri.name} version {uri.version}"
        path = artifacts.verify_file(uri.artifact_path, uri.sha256, what=what)
        return artifacts.load_model(path, what=what, trusted=trusted)
    with open_registry(registry, create=False) as reg:
        return reg.load(uri, trusted=trusted)


def compare(a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """Params diff, metrics delta and gate verdicts of two versions, side by side."""
    fa, fb = flatten(a.params), flatten(b.params)
    params = [{"key": k, "a": fa.get(k), "b": fb.get(k)}
              for k in sorted(set(fa) | set(fb)) if fa.get(k, _MISSING) != fb.get(k, _MISSING)]
    metrics = []
    for k in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(k), b.metrics.get(k)
        delta = vb - va if _num(va) and _num(vb) else None
        metrics.append({"metric": k, "a": va, "b": vb, "delta": delta})
    ga = {(g["metric"], g["rule"], g.get("by")): g for g in a.gates}
    gb = {(g["metric"], g["rule"], g.get("by")): g for g in b.gates}
    gates = []
    for key in list(dict.fromkeys([*ga, *gb])):
        gates.append({"metric": key[0], "rule": key[1], **({"by": key[2]} if key[2] else {}),
                      "a": _verdict_brief(ga.get(key)), "b": _verdict_brief(gb.get(key))})
    return {"model": a.name, "a": a.version, "b": b.version,
            "aliases": {"a": list(a.aliases), "b": list(b.aliases)},
            "status": {"a": a.status, "b": b.status},
            "params": params, "metrics": metrics, "gates": gates}


_MISSING = object()


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _verdict_brief(v: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"value": v.get("value"), "threshold": v.get("threshold"), "passed": v.get("passed"),
            "message": v.get("message")}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
