"""``python -m framework package NAME@ALIAS -o dist/``: a registered version as a wheel.

What ``dist/`` holds afterwards (for ``breast_cancer`` v3)::

    breast_cancer_model-3-py3-none-any.whl     the package (pip install it anywhere)
    breast_cancer-model-3.tar.gz               a container build context:
        Dockerfile                             slim Python base, installs the lock, nothing else
        requirements.lock                      every distribution, exact version and sha256
        wheels/                                each locked wheel, for an offline install
    wheelhouse/                                the same wheels, reused by the next build

The wheel's package ``breast_cancer_model/`` holds ``model.skops``, ``model.json`` (the version:
metrics, params, input schema, lineage, gates), ``openapi.json``, ``card.md`` and ``card.html``
(the model card), ``requirements.lock``, ``example.json`` (the first test rows, recorded at
registration) with ``expected.json`` (the predictions recorded for them), the reference
``profile.bin`` when the version has one, and ``MANIFEST.sha256``, the sha256 of every other
file, checked each time the server starts. Its entry point ``breast_cancer-serve`` runs
:mod:`framework.deploy.runtime`.

The server code travels as ``framework-serve``, a wheel of this framework's own modules whose
dependencies are only what serving needs (as ``mlflow-skinny`` is to ``mlflow``): no DVC, no
Hydra. The lock is the closure of those dependencies and of the distributions the model file
names, at the versions installed in the environment that runs ``package`` (the one that trained
the model), each with the sha256 of its wheel, downloaded by pip into the wheelhouse.

Reproducible: every zip and tar member has a fixed time, owner and mode, members are sorted, and
nothing in the package depends on when or where it was built, so the same version built twice
gives identical bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import framework
from framework.errors import FrameworkError

#: Every member of a wheel or tarball has this time (the zip format's earliest).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
TAR_MTIME = 315532800  # 1980-01-01T00:00:00Z
RUNTIME_DIST = "framework-serve"
#: What serving needs beside the model's own libraries.
RUNTIME_ROOTS = ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "skops", "starlette",
                 "uvicorn", "h11", "jsonschema")
#: The members of a package, beside ``__init__.py``; ``profile.bin`` only when the version has
#: a reference profile.
MODEL_FILE = "model.skops"
META_FILE = "model.json"
MANIFEST = "MANIFEST.sha256"
LOCK_FILE = "requirements.lock"
EXAMPLE_FILE = "example.json"
EXPECTED_FILE = "expected.json"
PROFILE_FILE = "profile.bin"
#: The install step, the same in the Dockerfile and in ``package verify`` (a test keeps them so).
INSTALL_ARGS = ("install", "--no-index", "--find-links", "{wheels}", "--require-hashes",
                "--only-binary=:all:", "-r", "{lock}")


class PackageError(FrameworkError):
    """A package cannot be built, verified, stored or started (exit 1, or 2 when it is the
    user's input)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Names:
    """How a model's package is named: ``breast_cancer`` gives the distribution
    ``breast_cancer-model``, the import package ``breast_cancer_model`` and the command
    ``breast_cancer-serve``."""

    model: str
    version: int

    @property
    def dist(self) -> str:
        return f"{self.model}-model"

    @property
    def module(self) -> str:
        module = re.sub(r"\W", "_", self.model).lower() + "_model"
        return module if module[0].isalpha() else f"m_{module}"

    @property
    def script(self) -> str:
        return f"{self.model}-serve"

    @property
    def wheel(self) -> str:
        return wheel_name(self.dist, str(self.version))

    @property
    def context(self) -> str:
        return f"{self.dist}-{self.version}.tar.gz"


def normalize(name: str) -> str:
    """PEP 503's normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(dist: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{re.sub(r'[-_.]+', '_', dist).lower()}-{version}-{tag}.whl"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- reproducible archives -------------------------------------------------------------------------

class Wheel:
    """A pure-Python wheel built in memory, written with fixed times and sorted members."""

    def __init__(self, dist: str, version: str) -> None:
        self.dist = dist
        self.version = version
        self.files: dict[str, bytes] = {}

    def add(self, arcname: str, data: bytes) -> None:
        if arcname in self.files:
            raise PackageError(f"{arcname} added twice to {self.dist}")
        self.files[arcname] = data

    def write(self, folder: Path, *, summary: str, requires: Sequence[str],
              entry_points: Mapping[str, str] | None = None,
              description: str = "") -> Path:
        norm = re.sub(r"[-_.]+", "_", self.dist).lower()
        info = f"{norm}-{self.version}.dist-info"
        lines = ["Metadata-Version: 2.1", f"Name: {self.dist}", f"Version: {self.version}",
                 f"Summary: {summary}", "Requires-Python: >=3.11"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        metadata = "\n".join(lines) + "\n"
        if description:
            metadata += "Description-Content-Type: text/markdown\n\n" + description
        files = dict(self.files)
        files[f"{info}/METADATA"] = metadata.encode()
        files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: framework "
                                  f"{framework.__version__}\nRoot-Is-Purelib: true\n"
                                  "Tag: py3-none-any\n").encode()
        if entry_points:
            body = "[console_scripts]\n" + "".join(f"{k} = {v}\n"
                                                  for k, v in sorted(entry_points.items()))
            files[f"{info}/entry_points.txt"] = body.encode()
        record = f"{info}/RECORD"
        rows = []
        for name in sorted(files):
            digest = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest())
            rows.append(f"{name},sha256={digest.rstrip(b'=').decode()},{len(files[name])}")
        rows.append(f"{record},,")
        files[record] = ("\n".join(rows) + "\n").encode()
        # the package first, the .dist-info last (as the wheel spec recommends), each sorted
        order = sorted(files, key=lambda n: (n.startswith(info), n))
        return write_zip(folder / wheel_name(self.dist, self.version), order, files)


def write_zip(path: Path, order: Iterable[str], files: Mapping[str, bytes]) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name], compresslevel=9)
    write_atomic(path, buf.getvalue())
    return path


def write_tar_gz(path: Path, members: Mapping[str, Path | bytes]) -> Path:
    """A gzip'd tarball of ``members`` (name: file or bytes) with fixed times, owners and
    modes, sorted: the same members give the same bytes."""
    from framework.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                           compresslevel=1) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_members(tar, members)
        raw.flush()
        os.fsync(raw.fileno())
    return path


def _add_members(tar: tarfile.TarFile, members: Mapping[str, Path | bytes]) -> None:
    dirs = sorted({str(Path(n).parent) for n in members} - {"."})
    for d in dirs:
        info = tarfile.TarInfo(d)
        info.type = tarfile.DIRTYPE
        _fixed(info, 0o755)
        tar.addfile(info)
    for name in sorted(members):
        src = members[name]
        data = src if isinstance(src, bytes) else None
        info = tarfile.TarInfo(name)
        info.size = len(data) if data is not None else Path(src).stat().st_size
        _fixed(info, 0o644)
        if data is not None:
            tar.addfile(info, io.BytesIO(data))
        else:
            with open(src, "rb") as f:
                tar.addfile(info, f)


def _fixed(info: tarfile.TarInfo, mode: int) -> None:
    info.mtime = TAR_MTIME
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""


def write_atomic(path: Path, data: bytes) -> None:
    from framework.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# -- the lock --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Locked:
    """One distribution of the lock: its exact version and the sha256 of its files."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def line(self) -> str:
        pins = "".join(f" \\\n    --hash=sha256:{h}" for h in self.hashes)
        return f"{normalize(self.name)}=={self.version}{pins}"


def closure(roots: Iterable[str]) -> dict[str, str]:
    """``{normalized name: installed version}`` for ``roots`` and everything they require in
    this environment (markers evaluated here, no extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    stack = [normalize(r) for r in roots]
    while stack:
        name = stack.pop()
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise PackageError(f"{name} is needed to serve the model and is not installed in "
                               f"this environment ({sys.prefix})") from None
        found[name] = dist.version
        for raw in dist.requires or ():
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            stack.append(normalize(req.name))
    return dict(sorted(found.items()))


def model_distributions(type_names: Iterable[str]) -> set[str]:
    """The installed distributions that provide the modules a model file names."""
    from importlib import metadata

    providers = metadata.packages_distributions()
    out = set()
    for name in type_names:
        top = name.split(".", 1)[0]
        if top in ("builtins", "functools", "collections", "operator"):
            continue
        for dist in providers.get(top, ()):
            out.add(normalize(dist))
    out.discard(normalize("framework"))
    return out


def _wheel_pin(filename: str) -> tuple[str, str] | None:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return normalize(str(name)), str(version)


def fill_wheelhouse(pins: Mapping[str, str], wheelhouse: Path, *, quiet: bool = True) -> None:
    """Put a wheel of each ``name==version`` in ``wheelhouse``, downloading (with this
    environment's pip and its index configuration) only those it lacks."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    have = {_wheel_pin(p.name) for p in wheelhouse.glob("*.whl")}
    missing = [f"{n}=={v}" for n, v in pins.items() if (n, v) not in have]
    if not missing:
        return
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--dest", str(wheelhouse), *missing]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise PackageError(f"pip could not download {len(missing)} locked wheel(s) into "
                           f"{wheelhouse} ({', '.join(missing[:4])}"
                           f"{', ...' if len(missing) > 4 else ''}):\n{tail}\n"
                           "put their wheels in that folder (or pass --wheelhouse DIR) to "
                           "package offline")


def lock(pins: Mapping[str, str], wheelhouse: Path) -> list[Locked]:
    """Each pin with the sha256 of its wheel(s) in ``wheelhouse``."""
    from framework.registry.artifacts import sha256_file

    wanted = set(pins.items())
    hashes: dict[tuple[str, str], list[str]] = {}
    for path in sorted(wheelhouse.glob("*.whl")):
        pin = _wheel_pin(path.name)
        if pin in wanted:
            hashes.setdefault(pin, []).append(sha256_file(path))
    out = []
    for name, version in pins.items():
        found = hashes.get((name, version))
        if not found:
            raise PackageError(f"no wheel of {name}=={version} in {wheelhouse}")
        out.append(Locked(name, version, tuple(sorted(found))))
    return out


def lock_text(header: Sequence[str], entries: Iterable[Locked]) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    return "\n".join(lines + [e.line() for e in sorted(entries, key=lambda e: e.name)]) + "\n"


# -- the runtime wheel -----------------------------------------------------------------------------

def runtime_wheel(folder: Path) -> Path:
    """``framework-serve``: this framework's modules (not its project templates), requiring
    only the serving libraries, at this framework's version."""
    from importlib import metadata

    from packaging.requirements import Requirement

    root = Path(framework.__file__).resolve().parent
    wheel = Wheel(RUNTIME_DIST, framework.__version__)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or "__pycache__" in rel.parts or rel.parts[0] == "templates" \
                or path.suffix in (".pyc", ".pyo") or path.name.startswith("."):
            continue
        wheel.add(f"framework/{rel.as_posix()}", path.read_bytes())
    declared = {}
    try:
        for raw in metadata.requires("framework") or ():
            req = Requirement(raw)
            if req.marker is None:
                declared[normalize(req.name)] = str(req)
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        pass
    requires = [declared.get(normalize(r), normalize(r)) for r in RUNTIME_ROOTS]
    return wheel.write(folder, summary="The serving runtime of framework (no pipeline "
                                       "dependencies)", requires=requires)


# -- the model wheel -------------------------------------------------------------------------------

INIT_TEMPLATE = '''"""{title}

Packaged by framework {framework}. ``load()`` gives the fitted estimator, ``serve()`` starts the
REST server (MLflow's scoring protocol), as the ``{script}`` command does. Every file of this
package is sha256-checked first (``MANIFEST.sha256``), and the model is loaded by the framework's
exact allowlist of types, never by pickle.
"""

from pathlib import Path

NAME = {name!r}
VERSION = {version!r}
HERE = Path(__file__).resolve().parent


def load():
    """The fitted estimator."""
    from framework.deploy.runtime import open_package

    return open_package(HERE).estimator


def serve(argv=None):
    """``{script} [--host H] [--port P] ...``; ``--help`` lists the flags."""
    from framework.deploy.runtime import main

    return main(HERE, argv)
'''


@dataclass
class Built:
    wheel: Path
    context: Path
    runtime: Path
    locked: list[Locked]
    seconds: float
    files: dict[str, int]


def example_of(registry: Any, mv: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The input example (``dataframe_split``) and the predictions recorded for it at
    registration: the first test rows and their stored predictions."""
    import pyarrow.parquet as pq

    from framework.monitor.profile import INPUT_EXAMPLE, TEST_PREDICTIONS, read_test_predictions

    data = registry.companion(mv, INPUT_EXAMPLE)
    stored = registry.companion(mv, TEST_PREDICTIONS)
    if data is None and stored is not None:
        data = _example_from_test_table(mv)
    if data is None or stored is None:
        raise PackageError(f"{mv.name} v{mv.version} has no input example recorded (it was "
                           "registered without --reference, and its test table is not here "
                           "as it was); register it again to package it", exit_code=2)
    frame = pq.read_table(io.BytesIO(data)).to_pandas()
    predictions = read_test_predictions(stored).head(len(frame))
    from framework.io import to_plain

    example = {"dataframe_split": {"columns": list(frame.columns),
                                   "data": to_plain(frame.to_numpy(dtype=object).tolist())}}
    expected: dict[str, Any] = {"predict": to_plain(predictions["y_pred"].tolist())}
    proba = [c for c in predictions.columns if c.startswith("proba_")]
    if proba:
        expected["predict_proba"] = to_plain(predictions[sorted(
            proba, key=lambda c: int(c.split("_")[1]))].to_numpy().tolist())
    return example, expected


def _example_from_test_table(mv: Any) -> bytes | None:
    """For a version registered before input examples were recorded: the first rows of its test
    table, when the workspace holds that table with the sha256 its lineage records."""
    from framework import io as fio
    from framework.monitor.profile import example_bytes
    from framework.registry.artifacts import sha256_file

    evaluation = (mv.lineage or {}).get("evaluation") or {}
    path, sha = evaluation.get("path"), evaluation.get("sha256")
    if not path or not sha or not Path(path).is_file() or sha256_file(path) != sha:
        return None
    known = set((mv.input_schema or {}).get("properties") or ())
    test = fio.read(path)
    test = test[[c for c in test.columns if c in known or c == mv.target]]
    return example_bytes(test, mv.serving_schema(), mv.target)


def package(uri: str, out: str | os.PathLike[str], *, registry: str | None = None,
            wheelhouse: str | os.PathLike[str] | None = None,
            trusted: Sequence[str] | None = None, intended_use: str | None = None,
            progress: Any = None) -> Built:
    """Build the package of the version ``uri`` names into ``out`` (see the module's doc)."""
    from framework import io as fio
    from framework.deploy.card import card_html, card_markdown
    from framework.monitor.profile import PROFILE
    from framework.registry import open_registry
    from framework.registry.artifacts import sha256_file
    from framework.serve.model import ready
    from framework.serve.openapi import openapi_spec

    started = time.perf_counter()
    out = Path(out)
    say = progress or (lambda message: None)
    with open_registry(registry, create=False) as reg:
        mv = reg.resolve(uri)
        if mv.removed_at:
            raise PackageError(f"{mv.name} v{mv.version}: its artifact was removed by `registry "
                               "gc`", exit_code=2)
        trusted = fio.project_trusted() if trusted is None else tuple(trusted)
        say(f"loading {mv.name} v{mv.version}")
        model_path = reg.artifacts.fetch(mv.sha256, what=f"{mv.name} version {mv.version}")
        estimator = reg.load(mv, trusted=trusted)
        type_names = fio.model_types(model_path, trusted)
        example, expected = example_of(reg, mv)
        profile = reg.companion(mv, PROFILE)
        model_bytes = Path(model_path).read_bytes()
    names = Names(mv.name, mv.version)
    loaded = ready(mv, estimator, alias=None)
    pins = closure([*RUNTIME_ROOTS, *sorted(model_distributions(type_names))])
    house = Path(wheelhouse) if wheelhouse else out / "wheelhouse"
    say(f"locking {len(pins)} distributions (wheels in {house})")
    fill_wheelhouse(pins, house)
    locked = lock(pins, house)
    runtime = runtime_wheel(house)
    runtime_lock = Locked(RUNTIME_DIST, framework.__version__, (sha256_file(runtime),))
    header = [f"{mv.name} v{mv.version} ({mv.uri}), packaged by framework "
              f"{framework.__version__}",
              f"locked from the environment that trained it: Python "
              f"{sys.version_info.major}.{sys.version_info.minor}, "
              f"{sys.platform}; install with",
              "  pip " + " ".join(INSTALL_ARGS).format(wheels="wheels", lock=LOCK_FILE)]
    deps_lock = lock_text(header, [*locked, runtime_lock])

    meta = mv.to_dict()
    meta.pop("artifact_path", None)
    meta.pop("state", None)
    meta["aliases"] = []  # where an alias points is the registry's, not the package's
    meta["package"] = {"distribution": names.dist, "module": names.module,
                       "script": names.script, "framework": framework.__version__,
                       "trusted_types": list(trusted), "model_types": sorted(type_names),
                       "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    files: dict[str, bytes] = {
        MODEL_FILE: model_bytes,
        META_FILE: _json(meta),
        "openapi.json": _json(openapi_spec(loaded)),
        LOCK_FILE: deps_lock.encode(),
        EXAMPLE_FILE: _json(example),
        EXPECTED_FILE: _json(expected),
        "card.md": card_markdown(mv, loaded, names, intended_use).encode(),
        "card.html": card_html(mv, loaded, names, intended_use).encode(),
    }
    if profile is not None:
        files[PROFILE_FILE] = profile
    title = f"{mv.name} v{mv.version}: {loaded.estimator.__class__.__name__} predicting " \
            f"{mv.target or 'its target'}"
    files["__init__.py"] = INIT_TEMPLATE.format(
        title=title, framework=framework.__version__, script=names.script, name=mv.name,
        version=mv.version).encode()
    files[MANIFEST] = manifest_text(files).encode()
    wheel = Wheel(names.dist, str(mv.version))
    for name in sorted(files):
        wheel.add(f"{names.module}/{name}", files[name])
    requires = [f"{RUNTIME_DIST}=={framework.__version__}"] + \
        [f"{e.name}=={e.version}" for e in locked]
    say(f"writing {names.wheel}")
    wheel_path = wheel.write(out, summary=title, requires=requires,
                             entry_points={names.script: f"{names.module}:serve"},
                             description=files["card.md"].decode())
    # the build context: the Dockerfile, the whole lock (the package's own wheel included)
    full_lock = lock_text(header, [*locked, runtime_lock,
                                   Locked(names.dist, str(mv.version),
                                          (sha256_file(wheel_path),))])
    members: dict[str, Path | bytes] = {
        "Dockerfile": dockerfile(names, header[0]).encode(),
        LOCK_FILE: full_lock.encode(),
        ".dockerignore": b"*\n!Dockerfile\n!requirements.lock\n!wheels/\n",
        f"wheels/{runtime.name}": runtime,
        f"wheels/{wheel_path.name}": wheel_path,
    }
    for path in sorted(house.glob("*.whl")):
        if _wheel_pin(path.name) in {(e.name, e.version) for e in locked}:
            members[f"wheels/{path.name}"] = path
    say(f"writing {names.context}")
    context = write_tar_gz(out / names.context, members)
    return Built(wheel_path, context, runtime, locked, time.perf_counter() - started,
                 {name: len(data) for name, data in files.items()})


def _json(data: Any) -> bytes:
    from framework.io import to_plain

    return (json.dumps(to_plain(data), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def manifest_text(files: Mapping[str, bytes]) -> str:
    """``sha256  name`` for each file (``sha256sum`` can check it)."""
    return "".join(f"{sha256_bytes(files[name])}  {name}\n" for name in sorted(files))


def dockerfile(names: Names, title: str) -> str:
    install = " ".join(INSTALL_ARGS).format(wheels="/pkg/wheels", lock=f"/pkg/{LOCK_FILE}")
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"""# {title}
# docker build -t {normalize(names.dist)}:{names.version} - < {names.context}
FROM python:{py}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY {LOCK_FILE} /pkg/{LOCK_FILE}
COPY wheels /pkg/wheels
RUN python -m pip {install} --no-cache-dir \\
    && rm -rf /pkg/wheels \\
    && useradd --create-home --uid 10001 model
USER model
EXPOSE 8080
CMD ["{names.script}", "--host", "0.0.0.0", "--port", "8080"]
"""


def parse_lock(text: str) -> list[Locked]:
    """The entries of a lock written by :func:`lock_text`."""
    out = []
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, *opts = line.split()
        name, _, version = head.partition("==")
        hashes = tuple(o.split(":", 1)[1] for o in opts if o.startswith("--hash=sha256:"))
        out.append(Locked(name, version, hashes))
    return out


def wheel_member(path: str | os.PathLike[str], member: str) -> bytes:
    """One file of the package inside a wheel (``MODULE/member``), or a PackageError."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.count("/") == 1 and name.endswith(f"_model/{member}"):
                    return archive.read(name)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{path}: not a readable wheel ({exc})", exit_code=2) from None
    raise PackageError(f"{path}: not a model package (no {member})", exit_code=2)
