"""Recipe configs: YAML sections of dataclasses, with `--set section.field=value` overrides.

One conversion path serves YAML values and command-line strings: every value is converted by the type the
dataclass declares for its field (`1e-4` is a float for a float field whether PyYAML read it as a string
or the shell passed it), nested dataclasses are built from nested mappings (`ppo.sampling.top_k=50`), and an
unknown section or field, a value of the wrong type or out of range, is a `ConfigError` that names the field,
the value and where it came from (`--set ...` or the YAML file), with "did you mean" for misspelt names.

Standard library and PyYAML only: the recipes' `--help` and argument errors never import torch (the section
dataclasses are imported when work starts).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from align.user_errors import UserError, did_you_mean

_NONE = ("none", "null", "~", "")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")

# Range checks by field name, in every section: counts and rates that only make sense above zero, and the
# ones where 0 means "all", "none" or "skip".
POSITIVE_FIELDS = frozenset(
    {
        "learning_rate",
        "batch_size",
        "minibatch_size",
        "sampling_batch_size",
        "diffusion_batch_size",
        "prompts_per_iteration",
        "samples_per_prompt",
        "num_samples",
        "max_new_tokens",
        "correction_max_new_tokens",
        "eval_max_new_tokens",
        "ppo_epochs",
        "epochs_per_rollout",
        "gradient_accumulation_steps",
        "iterations",
        "steps",
        "num_inference_steps",
        "eval_inference_steps",
        "eval_samples_per_text",
        "max_length",
        "max_target_tokens",
        "rationale_tokens",
        "answer_tokens",
        "teacher_concurrency",
        "judge_concurrency",
        "threads",
        "r",
        "sample_rate",
        "num_train_timesteps",
        "temperature",
        "adaptive_kl_horizon",
    }
)
NON_NEGATIVE_FIELDS = frozenset(
    {
        "epochs",
        "rounds",
        "rl_iterations",
        "max_train_problems",
        "max_eval_problems",
        "max_problems",
        "max_train_prompts",
        "max_examples",
        "held_out_pairs",
        "prompts",
        "weight_decay",
        "warmup_ratio",
        "kl_coef",
        "kl_beta",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
        "clip_range",
        "save_every",
        "save_steps",
        "eval_count",
        "n_audio",
        "value_warmup_iterations",
        "prompt_tokens",
        "max_prompt_tokens",
        "top_k",
        "dropout",
        "value_head_hidden",
        "train_steps_per_trajectory",
        "diffusion_timesteps",
        "duration_weight",
        "min_train_step_std",
    }
)

# Fields that never change a run's results (where files go, logging, checkpoint frequency, parallel
# requests): left out of the config a run folder records, so they may change between starts.
NEUTRAL_FIELDS = frozenset(
    {
        "output_dir",
        "report_to",
        "save_every",
        "save_steps",
        "threads",
        "teacher_concurrency",
        "judge_concurrency",
        "cache",
        "judge_cache",
        "n_audio",
    }
)


class ConfigError(UserError, ValueError):
    """A config file, `--config` name or `--set` override that cannot be used; the message names it."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(tp: Any, value: Any, where: str) -> Any:
    """`value` converted to type `tp` (float, int, bool, str, Optional, tuple/list, dataclass), or a
    ConfigError naming `where` and the value."""
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
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{where}: cannot read {value!r} as {_type_name(tp)}"
        )
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} settings, got {value!r}")
        return from_mapping(tp, value, where)
    if origin in (tuple, list):
        items = value
        if isinstance(value, str):
            items = [v.strip() for v in value.strip().strip("[]()").split(",") if v.strip()]
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
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
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
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
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return _parse_float(value, where, "a number")
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _parse_bool(raw: str, where: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{where}: expected true or false, got {raw!r}")


def _parse_float(raw: str, where: str, what: str) -> float:
    try:
        return float(raw.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{where}: expected {what}, got {raw!r}") from None


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of every field of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_mapping(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a mapping, converting every value by its field's type; the dataclass's own
    checks (`__post_init__`) become ConfigErrors naming `where`."""
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        hint = did_you_mean(unknown[0], types_)
        known = hint or f"; known: {', '.join(sorted(types_))}"
        raise ConfigError(f"{where}: unknown setting(s) {unknown} for {cls.__name__}{known}")
    converted = {k: coerce(types_[k], v, f"{where} {cls.__name__}.{k}") for k, v in values.items()}
    try:
        return cls(**converted)
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}: {err}") from None


def set_override(data: dict[str, Any], sections: Mapping[str, type], item: str) -> str:
    """Apply one `section.field[.subfield]=value` override to the raw config mapping; the value is converted
    by the field's type here, so a bad value blames `--set`. Returns the dotted field name."""
    key, sep, raw = item.partition("=")
    path = key.strip().split(".")
    shown = f"--set {item}"
    if not sep:
        raise ConfigError(f"{shown}: expected section.field=value")
    if path[0] not in sections:
        raise ConfigError(
            f"{shown}: unknown section {path[0]!r}{did_you_mean(path[0], sections)}; "
            f"sections: {', '.join(sections)}"
        )
    if len(path) < 2:
        raise ConfigError(f"{shown}: expected section.field=value (e.g. {path[0]}.<field>=...)")
    cls: Any = sections[path[0]]
    node = data.get(path[0])
    if not isinstance(node, dict):
        node = data[path[0]] = {}
    for depth, name in enumerate(path[1:], start=1):
        types_ = field_types(cls)
        if name not in types_:
            prefix = ".".join(path[:depth])
            close = did_you_mean(name, types_).replace(" '", f" '{prefix}.")
            known = close or f"; {prefix} has {', '.join(sorted(types_))}"
            raise ConfigError(f"{shown}: {cls.__name__} has no field {name!r}{known}")
        if depth == len(path) - 1:
            node[name] = coerce(types_[name], raw, shown)
            return ".".join(path)
        cls = _dataclass_of(types_[name])
        if cls is None:
            raise ConfigError(f"{shown}: {'.'.join(path[: depth + 1])} is not a group of settings")
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    raise AssertionError("unreachable")


def _dataclass_of(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def shipped_configs(config_dir: str | Path | None) -> list[str]:
    """The config names under `config_dir` (file stems of its YAML files)."""
    if config_dir is None or not Path(config_dir).is_dir():
        return []
    return sorted(p.stem for p in Path(config_dir).glob("*.yaml"))


def resolve_config(config: str | Path, config_dir: str | Path | None, shipped: Collection[str] = ()) -> Path:
    """`config` as a path, or as a name (with or without `.yaml`) under `config_dir`; an error naming it
    and the recipe's shipped configs otherwise."""
    path = Path(config)
    if path.is_file():
        return path
    if config_dir is not None:
        stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
        named = Path(config_dir) / f"{stem}.yaml"
        if path.parent == Path(".") and named.is_file():
            return named
    names = list(shipped) or shipped_configs(config_dir)
    hint = did_you_mean(path.stem, names)
    listed = f"; shipped configs: {', '.join(names)}" if names else ""
    raise ConfigError(f"--config {config}: no such file or shipped config{hint}{listed}")


def _check_ranges(
    cls: type, values: Mapping[str, Any], prefix: str, origin: Mapping[str, str], default_origin: str
) -> None:
    """Counts and rates that must be > 0 (or >= 0), by field name, among the values given for a section and
    its groups (before the dataclass's own checks, so the message names the field and where it was set)."""
    types_ = field_types(cls)
    for key, raw in values.items():
        if key not in types_:
            continue  # an unknown field: `from_mapping` names it
        name, tp = f"{prefix}.{key}", types_[key]
        group = _dataclass_of(tp)
        if group is not None and isinstance(raw, Mapping):
            _check_ranges(group, raw, name, origin, default_origin)
            continue
        if key not in POSITIVE_FIELDS and key not in NON_NEGATIVE_FIELDS:
            continue
        where = origin.get(name, default_origin)
        value = coerce(tp, raw, origin.get(name, f"{default_origin} {cls.__name__}.{key}"))
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        positive = key in POSITIVE_FIELDS
        if not (value > 0 if positive else value >= 0):
            raise ConfigError(f"{where}: {name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def load_sections(
    config: str | Path,
    sections: Mapping[str, type],
    overrides: list[str],
    config_dir: str | Path | None = None,
    optional: tuple[str, ...] = (),
    shipped: Collection[str] = (),
) -> dict[str, Any]:
    """Read `config` (a path, or a name in `config_dir`), apply `--set` overrides, build each section.

    Sections named in `optional` are None when the file does not have them (and no override sets them);
    every other section is built, from its defaults when absent.
    """
    import yaml

    path = resolve_config(config, config_dir, shipped)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected sections {', '.join(sections)} at the top level")
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {unknown}{did_you_mean(unknown[0], sections)}; "
            f"expected {', '.join(sections)}"
        )
    origin: dict[str, str] = {}
    for item in overrides:
        origin[set_override(data, sections, item)] = f"--set {item}"
    built = {}
    for name, cls in sections.items():
        if name not in data and name in optional:
            built[name] = None
            continue
        overridden = [shown for field, shown in origin.items() if field.startswith(name + ".")]
        where = f"{path} [{name}]" + (f" with {', '.join(overridden)}" if overridden else "")
        _check_ranges(cls, data.get(name) or {}, name, origin, f"{path} [{name}]")
        built[name] = from_mapping(cls, data.get(name) or {}, where)
    return built


def config_record(sections: Mapping[str, Any]) -> dict[str, Any]:
    """The sections as plain data (a run folder's recorded config)."""
    return {
        name: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        for name, value in sections.items()
    }


def neutral_fields(record: Mapping[str, Any], extra: Collection[str] = ()) -> list[str]:
    """The dotted names in a recorded config whose field never changes results (`NEUTRAL_FIELDS`), and
    `extra` dotted names: what a later start may change without being refused."""
    names: list[str] = list(extra)

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, child in value.items():
                name = f"{prefix}{key}"
                if key in NEUTRAL_FIELDS:
                    names.append(name)
                else:
                    walk(name + ".", child)

    walk("", record)
    return names
