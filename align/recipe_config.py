"""Recipe configs: YAML sections of dataclasses, with `--set section.field=value` overrides.

One conversion path serves YAML values and command-line strings: every value is converted by the type the
dataclass declares for its field (`1e-4` is a float for a float field whether PyYAML read it as a string
or the shell passed it), nested dataclasses are built from nested mappings (`ppo.sampling.top_k=50`), and an
unknown section or field, or a value of the wrong type, is an error that names the field and the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_NONE = ("none", "null", "~", "")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(tp: Any, value: Any, where: str) -> Any:
    """`value` converted to type `tp` (float, int, bool, str, Optional, tuple/list, dataclass), or a
    ValueError naming `where` and the value."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            if type(None) in args:
                return None
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]) and isinstance(value, bool | str):
            # an optional section switched on or off: `lora: true` is the default settings, `false` none
            flag = value if isinstance(value, bool) else _parse_bool(value, where)
            return inner[0]() if flag else None
        errors = []
        for option in inner:
            try:
                return coerce(option, value, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(
            errors[0] if len(errors) == 1 else f"{where}: cannot read {value!r} as {_type_name(tp)}"
        )
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping of {tp.__name__} settings, got {value!r}")
        return from_mapping(tp, value, where)
    if origin in (tuple, list):
        items = value
        if isinstance(value, str):
            items = [v.strip() for v in value.strip().strip("[]()").split(",") if v.strip()]
        if not isinstance(items, list | tuple):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        converted = [coerce(item_type, v, f"{where}[{k}]") for k, v in enumerate(items)]
        return tuple(converted) if origin is tuple else converted
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return _parse_bool(value, where)
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                number = _parse_float(value, where, "an integer")
                if number.is_integer():
                    return int(number)
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return _parse_float(value, where, "a number")
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{where}: expected a string, got {value!r}")
    return value


def _parse_bool(raw: str, where: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{where}: expected true or false, got {raw!r}")


def _parse_float(raw: str, where: str, what: str) -> float:
    try:
        return float(raw.strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"{where}: expected {what}, got {raw!r}") from None


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of every field of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_mapping(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a mapping, converting every value by its field's type."""
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown} for {cls.__name__}; known: {sorted(types_)}")
    return cls(**{k: coerce(types_[k], v, f"{where} {cls.__name__}.{k}") for k, v in values.items()})


def set_override(data: dict[str, Any], sections: Mapping[str, type], item: str) -> None:
    """Apply one `section.field[.subfield]=value` override to the raw config mapping (value kept raw: it
    is converted with the YAML values by `from_mapping`)."""
    key, sep, raw = item.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or path[0] not in sections:
        raise ValueError(f"--set {item!r}: expected section.field=value with section in {sorted(sections)}")
    cls: Any = sections[path[0]]
    node = data.get(path[0])
    if not isinstance(node, dict):
        node = data[path[0]] = {}
    for depth, name in enumerate(path[1:], start=1):
        types_ = field_types(cls)
        if name not in types_:
            raise ValueError(f"--set {item!r}: {cls.__name__} has no field {name!r}; known: {sorted(types_)}")
        if depth == len(path) - 1:
            node[name] = raw
            return
        cls = _dataclass_of(types_[name])
        if cls is None:
            raise ValueError(f"--set {item!r}: {'.'.join(path[: depth + 1])} is not a group of settings")
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child


def _dataclass_of(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def load_sections(
    config: str | Path,
    sections: Mapping[str, type],
    overrides: list[str],
    config_dir: str | Path | None = None,
    optional: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Read `config` (a path, or a name in `config_dir`), apply `--set` overrides, build each section.

    Sections named in `optional` are None when the file does not have them (and no override sets them);
    every other section is built, from its defaults when absent.
    """
    path = Path(config)
    if not path.is_file() and config_dir is not None:
        path = Path(config_dir) / f"{config}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"config {str(config)!r} not found (looked for it as a path and as {path})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected sections {sorted(sections)} at the top level")
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; expected {sorted(sections)}")
    for item in overrides:
        set_override(data, sections, item)
    return {
        name: from_mapping(cls, data.get(name) or {}, f"{path} [{name}]")
        if name in data or name not in optional
        else None
        for name, cls in sections.items()
    }


def recipe_arguments(
    description: str, default_config: str, argv: list[str] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        default=default_config,
        help="YAML config: a path, or a name under the recipe's configs/ folder (default: %(default)s).",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="Override one setting, e.g. --set ppo.learning_rate=1e-5 or --set ppo.sampling.top_k=20.",
    )
    return parser.parse_args(argv)
