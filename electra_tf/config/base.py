"""Typed configs from YAML: the (de)serialisation that `ElectraConfig` (pretraining) and
`FinetuneConfig` share.

A config is a dataclass whose fields are section dataclasses (`model:`, `optimizer:`, ...), each
with typed fields and a `validate()`. Unknown keys and wrongly typed values raise `ConfigError`
naming the offending key, because a misspelled option that is silently ignored (TF Model
Garden's `**kwargs`) costs a user a training run. Command-line overrides use dotted keys:
`--set model.hidden_size=128` (`apply_overrides`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from typing import Any, Literal, Optional

import yaml

from electra_tf.errors import ConfigError, first_line
from electra_tf.files import write_text_atomically

# The shipped configs (the repository's `configs/` is a link to this folder).
DEFAULT_CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "configs")


class YamlConfig:
    """Base of the top-level config dataclasses: dict and YAML round trips with checked keys
    and types. Subclasses are dataclasses of sections; `validate` checks every section."""

    def validate(self):
        for section in dataclasses.fields(self):
            getattr(self, section.name).validate()
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | os.PathLike) -> None:
        """Writes the config atomically (a reader never sees half a file)."""
        write_text_atomically(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    def with_settings(self, settings: dict[str, Any]):
        """A copy with each `{"section.key": value}` set (None: left as it is), checked as a
        loaded config is: the command line's flags and the Python API's keyword arguments are
        shortcuts for these fields."""
        data = self.to_dict()
        for key, value in settings.items():
            if value is not None:
                section, name = key.split(".")
                data[section][name] = value
        return type(self).from_dict(data)

    @classmethod
    def from_dict(cls, data: dict):
        return dataclass_from_dict(cls, data, prefix="").validate()

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Optional[list[str]] = None):
        """Reads `path` (or a shipped config's name), applies `section.key=value` overrides."""
        return load_yaml_config(cls, path, overrides)


def with_shortcuts(config, shortcuts: dict[str, str], settings: dict, strategy, caller: str):
    """`config` with the keyword arguments `settings` of `caller` (`pretrain`, `finetune`) set
    on the fields `shortcuts` names (None leaves a field as it is). `strategy` may be a name or
    a ready `tf.distribute.Strategy` object, which is used as it is and not stored.

    Raises:
        TypeError: a keyword argument that is no shortcut (as Python would say it).
        ConfigError: a value the field does not take.
    """
    unknown = sorted(set(settings) - set(shortcuts))
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword arguments {unknown}; the settings it "
                        f"takes are {sorted(shortcuts)}.")
    if isinstance(strategy, str):
        settings = dict(settings, strategy=strategy)
    return config.with_settings({shortcuts[name]: value for name, value in settings.items()})


def resolve_config_path(name_or_path: str | os.PathLike) -> str:
    """Accepts a path, or a shipped config name such as `electra_small` or `finetune/imdb`."""
    path = os.fspath(name_or_path)
    if os.path.exists(path):
        return path
    candidate = os.path.join(DEFAULT_CONFIG_DIR, f"{path}.yaml")
    if os.path.exists(candidate):
        return candidate
    return path  # load_yaml_config reports the missing file


def load_yaml_config(cls, path: str | os.PathLike, overrides: Optional[list[str]] = None):
    """Reads YAML into the config dataclass `cls` (which has `from_dict`), with overrides.
    `path` may also be a shipped config's name (`electra_tiny`, `finetune/imdb`)."""
    path = resolve_config_path(path)
    if not os.path.isfile(path):
        raise ConfigError(f"Config file not found: {path!r}. The shipped configs live in "
                          "`configs/` (e.g. configs/electra_small.yaml, configs/finetune/imdb.yaml).")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"Config file {path!r} is not valid UTF-8 YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path!r} must hold a mapping at the top level.")
    apply_overrides(data, overrides or [])
    try:
        return cls.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Applies `section.key=value` strings (value parsed as YAML) to a nested dict in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Override {item!r} must look like section.key=value, "
                              "e.g. model.hidden_size=128.")
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override {item!r}: {part!r} is not a section.")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            problem = first_line(err, limit=None)
            raise ConfigError(f"Override {item!r}: the value {raw!r} is not valid YAML "
                              f"({problem}); quote strings and close brackets.") from None
    return data


def dataclass_from_dict(cls, data: Any, prefix: str):
    """`cls(**data)` for a (nested) config dataclass, every key and type checked; `prefix` is
    the dotted path of `data` in error messages (`"model."`)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"Unknown config key '{prefix}{unknown[0]}'. Valid keys here: "
                          f"{', '.join(names)}.")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(hint, value, key: str):
    """Checks `value` against the annotation `hint`; ints are accepted where floats are expected."""
    if dataclasses.is_dataclass(hint):
        return dataclass_from_dict(hint, value, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner, value, key)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {list(choices)}, got {value!r}.")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}.")
        return value
    if hint is float:
        if isinstance(value, str):
            # PyYAML reads `1e-12` (no dot) as a string; accept any text Python parses as a
            # number (and check it below: `nan` and `inf` parse too).
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}.")
        if not math.isfinite(value):  # no setting of ours means anything at NaN or infinity
            raise ConfigError(f"{key} must be a finite number, got {value!r}.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}.")
        return value
    return value
