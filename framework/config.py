"""Compose ``conf/`` with Hydra's public API and turn the result into plain, resolved data.

Hydra's own errors (an unknown group option, a bad override) become :class:`ConfigError` with the
file or the override named; an override that picks an option that does not exist gets a
did-you-mean before Hydra even starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, UsageError, did_you_mean
from framework.spec import ConfigSource

CONFIG_NAME = "config"
_OVERRIDE = re.compile(r"^(?P<prefix>\+{0,2}|~)(?P<key>[\w./@-]+)(?:=(?P<value>.*))?$")


def conf_dir(root: Path) -> Path:
    """The project's ``conf/`` folder; a clear error when the folder holds no project."""
    folder = root / "conf"
    if not (folder / f"{CONFIG_NAME}.yaml").is_file():
        raise UsageError(f"no conf/{CONFIG_NAME}.yaml in {root}: run this in a project folder, or "
                         "create one with `python -m framework init`")
    return folder


def check_group_overrides(root: Path, overrides: Sequence[str]) -> None:
    """Refuse ``group=option`` overrides whose option file does not exist, with a did-you-mean.

    Hydra refuses them too, but later and without a suggestion; sweeps (``a,b``) and
    ``choice(...)`` values are left to Hydra.
    """
    folder = root / "conf"
    for override in overrides:
        match = _OVERRIDE.match(override)
        if not match or match["value"] is None or match["prefix"] == "~":
            continue
        group, value = match["key"], match["value"]
        group_dir = folder / group
        if not group_dir.is_dir() or not re.fullmatch(r"[\w.-]+", value) or value == "null":
            continue
        if not (group_dir / f"{value}.yaml").is_file():
            options = sorted(p.stem for p in group_dir.glob("*.yaml"))
            raise ConfigError(f"no option '{value}' in config group '{group}' "
                              f"(conf/{group}/); available: {', '.join(options)}",
                              file=f"command line override '{override}'",
                              hint=did_you_mean(value, options))


def compose_raw(root: Path, overrides: Sequence[str]) -> tuple[Any, ConfigSource]:
    """Compose ``conf/`` with overrides (Hydra's compose API): the DictConfig with its ``hydra``
    node, and where its parts came from."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    folder = conf_dir(root)
    check_group_overrides(root, overrides)
    try:
        with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.3",
                                   job_name="framework"):
            cfg = hydra_compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise _explain_hydra_error(exc, root, overrides) from None
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    source = ConfigSource(root=root, choices=_plain_choices(choices), overrides=tuple(overrides))
    return cfg, source


def compose(root: Path, overrides: Sequence[str]) -> tuple[dict[str, Any], ConfigSource]:
    """Compose ``conf/`` with overrides into resolved data (without ``hydra``) and its source."""
    from omegaconf import OmegaConf

    cfg, source = compose_raw(root, overrides)
    job_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return resolve(job_cfg, source), source


def source_from_hydra(root: Path) -> ConfigSource:
    """The :class:`ConfigSource` of the running Hydra job (inside ``@hydra.main``)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    hc = HydraConfig.get()
    choices = OmegaConf.to_container(hc.runtime.choices)
    return ConfigSource(root=root, choices=_plain_choices(choices),
                        overrides=tuple(hc.overrides.task))


def resolve(cfg: Any, source: ConfigSource) -> dict[str, Any]:
    """Resolve interpolations into plain data; name the key (and its file) of any that fails."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    try:
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError("no value given ('???'); set it in the file or on the command line, "
                          f"e.g. {key}=...", file=source.where(key), key=key) from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(f"cannot resolve the value: {getattr(exc, 'msg', exc)}",
                          file=source.where(key), key=key) from None
    assert isinstance(data, dict)
    return {str(k): v for k, v in data.items()}


def _plain_choices(choices: Any) -> dict[str, str | None]:
    if not isinstance(choices, Mapping):
        return {}
    return {str(k): (None if v is None else str(v)) for k, v in choices.items()
            if not str(k).startswith("hydra")}


def _explain_hydra_error(exc: BaseException, root: Path, overrides: Sequence[str]) -> ConfigError:
    """A :class:`ConfigError` for a Hydra error; for an unknown key, with a did-you-mean."""
    message = _hydra_message(exc)
    failed = re.search(r"Could not override '([^']+)'", message)
    if not failed:
        return ConfigError(message, file="conf/")
    key = failed[1]
    override = next((o for o in overrides if o.split("=", 1)[0] == key), key)
    others = [o for o in overrides if o != override]
    parent, _, last = key.rpartition(".")
    hint = None
    try:
        base, _ = compose(root, others)
        node: Any = base
        for part in filter(None, parent.split(".")):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            hint = did_you_mean(last, node) or f"keys of '{parent or '(root)'}': {', '.join(node)}"
            hint += f"; to add a new key, write +{override}"
    except ConfigError:
        pass
    return ConfigError(f"'{key}' is not a key of the composed config", file=f"command line "
                       f"override '{override}'", hint=hint or message.replace("\n", " "))


def _hydra_message(exc: BaseException) -> str:
    text = str(exc).strip()
    text = re.sub(r"\n+Config search path:.*", "", text, flags=re.S)
    return text.replace("\n\t", "\n    ").replace("\n\n", "\n")
