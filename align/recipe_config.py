"""Loading a recipe's YAML config (sections `ares`, `ppo`, `sft`, `baseline_sft`) into dataclasses, with
`--set section.field=value` overrides from the command line. Unknown sections or fields are errors."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "recipes" / "configs"


def _coerce(cls: type, name: str, raw: str) -> Any:
    """Parse a command-line value by the field's declared type."""
    kind = str({f.name: f for f in dataclasses.fields(cls)}[name].type)
    if raw.lower() in ("none", "null") and "None" in kind:
        return None
    try:
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("bool"):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
    except ValueError:
        raise ValueError(f"--set {cls.__name__}.{name}={raw!r}: expected a value of type {kind}") from None
    return raw


def build(cls: type, values: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown} for {cls.__name__}; known: {sorted(names)}")
    fixed = {
        k: (
            float(v)
            if isinstance(v, int)
            and "float" in str(next(f.type for f in dataclasses.fields(cls) if f.name == k))
            else v
        )
        for k, v in values.items()
    }
    return cls(**fixed)


def load_sections(config: str, sections: dict[str, type], overrides: list[str]) -> dict[str, Any]:
    """Read `config` (a path, or a name under recipes/configs) and apply `section.field=value` overrides."""
    path = Path(config)
    if not path.is_file():
        path = CONFIG_DIR / f"{config}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"config {config!r} not found (looked for it as a path and as {path})")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; expected {sorted(sections)}")
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in sections:
            raise ValueError(
                f"--set {item!r}: expected section.field=value with section in {sorted(sections)}"
            )
        if name not in {f.name for f in dataclasses.fields(sections[section])}:
            raise ValueError(f"--set {item!r}: {sections[section].__name__} has no field {name!r}")
        data.setdefault(section, {})[name] = _coerce(sections[section], name, raw)
    return {
        name: build(cls, data.get(name) or {}, f"{path} [{name}]")
        if name in data or name != "baseline_sft"
        else None
        for name, cls in sections.items()
    }


def recipe_arguments(description: str, default_config: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        default=default_config,
        help="YAML config: a path, or a name under recipes/configs (default: %(default)s).",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="Override one setting, e.g. --set ppo.learning_rate=1e-5 (repeatable).",
    )
    return parser.parse_args()
