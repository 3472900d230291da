"""One dataclass config per hierarchical task (presets: `patrol`, `hurdle`, `obstacle`, `toy`), with the paper's
settings for the transition policies (PPO inside AIRL) and the switch (Double DQN). A YAML file overrides any
field (`python -m control hierarchy ... --config task.yaml`); values are converted to the field's type (PyYAML
reads `1e-4` as a string)."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from control.envs import env_kwargs_problem
from control.hierarchy.airl import AIRLSettings
from control.hierarchy.jaco_registry import JACO_TASKS
from control.hierarchy.switch import SwitchSettings
from control.hierarchy.walker import BODY_DIM, OBSERVATION_KWARGS

TASKS = ("patrol", "hurdle", "obstacle", *JACO_TASKS, "toy")
CHAIN_STRIDE = 1000  # chain k of seed s trains with seed s + CHAIN_STRIDE * k
HANDOVER_STARTS = ("fixed", "switches", "chain")  # `HierarchyConfig.handover_starts`
CANDIDATE_SCORES = ("own", "task")  # `HierarchyConfig.candidate_score`: where candidate runs are counted
# task kwargs that define the primitives' envs too (the ball envs' `apex_height`): each primitive's env is built with
# them wherever it is built (its training, its success counts, its initiation set)
SHARED_TASK_KWARGS = ("apex_height",)


class ConfigError(ValueError):
    """A task name, config file or field a user got wrong (the CLI prints it and exits 2)."""


@dataclass
class TransitionSettings:
    """PPO inside AIRL for one transition policy (paper: gamma 0.995, lambda 0.97, lr 3e-4, 64x64 actor/critic)."""

    steps: int = field(default=200_000, metadata={"help": "Env steps per transition policy."})
    horizon: int = field(default=100, metadata={"help": "Most steps of a transition (authors: 100)."})
    gamma: float = field(default=0.995, metadata={"help": "Discount."})
    gae_lambda: float = field(default=0.97, metadata={"help": "GAE lambda."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Adam learning rate."})
    hidden: tuple[int, ...] = field(default=(64, 64), metadata={"help": "Actor and critic hidden sizes."})
    num_envs: int = field(default=4, metadata={"help": "Parallel transition envs."})
    num_steps: int = field(default=512, metadata={"help": "Steps per env per rollout."})
    update_epochs: int = field(default=10, metadata={"help": "PPO epochs per rollout."})
    minibatch_size: int = field(default=64, metadata={"help": "PPO minibatch size."})
    ent_coef: float = field(default=0.0, metadata={"help": "Entropy coefficient."})
    checkpoint_every: int = field(default=20_480, metadata={"help": "Steps between checkpoints."})


@dataclass(frozen=True)
class Refinement:
    """One entry of `primitive_refine`, read from its mapping (`HierarchyConfig.refine_spec`)."""

    sources: list[str]
    steps: int
    start_prob: float = 0.5


@dataclass
class HierarchyConfig:
    """A compositional task, its primitives, and the settings of every stage."""

    task: str = field(
        default="hurdle",
        metadata={"help": "Preset name (patrol, hurdle, obstacle, picking, catching, serve, toy)."},
    )
    task_env: str = field(default="Hierarchy/Walker2dHurdle-v0", metadata={"help": "The task's env id."})
    task_kwargs: dict = field(default_factory=dict, metadata={"help": "gymnasium.make kwargs of the task."})
    primitives: dict = field(
        default_factory=dict, metadata={"help": "Primitive name -> the env id it is trained in."}
    )
    primitive_steps: dict = field(default_factory=dict, metadata={"help": "Primitive name -> PPO env steps."})
    primitive_seed: int = field(default=1, metadata={"help": "Seed of the primitives (shared by all seeds)."})
    primitive_env_kwargs: dict = field(
        default_factory=dict,
        metadata={
            "help": "Primitive name -> env kwargs of its PPO training only (the Walker presets: the authors' "
            "random pushes for Forward and Backward); its success is measured in the plain env."
        },
    )
    primitive_ppo: dict = field(
        default_factory=dict,
        metadata={
            "help": "Primitive name -> TrainConfig fields of its PPO that differ from the defaults (the Walker "
            "presets: Jump with 8 envs x 1024 steps per rollout, minibatch 256)."
        },
    )
    primitive_init: dict = field(
        default_factory=dict,
        metadata={
            "help": "Primitive name -> the primitive whose trained weights its PPO starts from (ours: Jump from "
            "Forward, which already runs; inputs new to the source start at zero weight)."
        },
    )
    primitive_starts: dict = field(
        default_factory=dict,
        metadata={
            "help": "Primitive name -> the primitives whose running states (recorded from their greedy episodes "
            "in their own envs) its PPO episodes may start from, with the probability `start_prob` of its env "
            "kwargs (ours: Balance from Forward and Backward, so it learns to stop from a run)."
        },
    )
    primitive_refine: dict = field(
        default_factory=dict,
        metadata={
            "help": "Primitive name -> {from: [primitives], steps: N, start_prob: p}: after its own training its "
            "PPO goes on for N env steps in a run of its own (primitives/<name>-refined/, which the task uses), "
            "with probability p of an episode starting from the states the `from` primitives end in, recorded "
            "from their greedy episodes started as their training starts them (ours, Patrol: Forward and "
            "Backward from Balance's stops, which they must set off from after a balance phase)."
        },
    )
    primitive_candidates: dict = field(
        default_factory=dict,
        metadata={
            "help": "Primitive name -> N: its PPO is run N times (seeds s, s+1, ..., s its PPO seed) and the task "
            "uses the run with the most greedy successes in `candidate_episodes` held-out episodes of the env its "
            "states are recorded in (its own; Balance from the running states it trains from); ties go to the "
            "earlier seed. Run s is primitives/<name>/, the others primitives/<name>-seed<k>/, the choice and "
            "every run's counts primitives/<name>-chosen.json. Single runs differ more than most settings do."
        },
    )
    candidate_episodes: int = field(
        default=30, metadata={"help": "Greedy episodes per candidate run of `primitive_candidates`."}
    )
    candidate_score: dict = field(
        default_factory=dict,
        metadata={
            "help": "Primitive name -> 'own' (the default) or 'task': where its `primitive_candidates` are "
            "counted. 'task': each run in the task itself, with the task's other primitives, switching at once "
            "(no transition policies): the subtasks completed over `candidate_episodes` task episodes (seeds "
            "apart from the evaluation's). For a primitive whose own count does not rank its runs as the task does "
            "(serve's Hit: its runs from the Toss's recorded release, 41 and 39 of 50 there, served 0.26 and 0.42). "
            "One primitive per task, not one that other primitives start from or that is refined."
        },
    )
    scripted_primitives: bool = field(
        default=False,
        metadata={"help": "Toy task only: hand-written primitives instead of PPO-trained ones."},
    )
    initiation_portion: dict = field(
        default_factory=dict,
        metadata={"help": "Primitive name -> fraction of its episodes' start kept as its initiation set."},
    )
    expert_episodes: int = field(default=30, metadata={"help": "Episodes of each primitive for its set."})
    pairs: list = field(default_factory=list, metadata={"help": "Transition pairs [from, to]."})
    starts_per_pair: int = field(default=100, metadata={"help": "Hand-over snapshots saved per pair."})
    start_episodes: int = field(default=100, metadata={"help": "Most task episodes run to collect them."})
    transition: TransitionSettings = field(default_factory=TransitionSettings)
    airl: AIRLSettings = field(default_factory=AIRLSettings)
    switch: SwitchSettings = field(default_factory=SwitchSettings)
    handover_starts: str = field(
        default="fixed",
        metadata={
            "help": "How each pair's hand-over snapshots (where its transition and switch train from) are "
            "collected, pair after pair in the task's order: 'fixed' (the paper's), by running the task with the "
            "transitions trained so far and the fixed hand-over rule; 'switches' (ours), the same for the "
            "transitions, but each switch trains from snapshots collected again with the switches trained so "
            "far (`<task>/s<seed>/switches/starts-<i>-<j>.json`); 'chain' (ours), each pair's transition and "
            "switch trained together (in the transitions stage) from snapshots collected with the DQN chain "
            "of the pairs before it: the hand-overs the evaluated DQN chain meets."
        },
    )
    fixed_handover_steps: int = field(
        default=20, metadata={"help": "The fixed rule: transition steps before the hand-over."}
    )
    eval_episodes: int = field(default=50, metadata={"help": "Evaluation episodes per seed and policy."})
    seeds: list = field(default_factory=lambda: [1, 2, 3], metadata={"help": "Seeds of transitions+switch."})
    chains: int = field(
        default=1,
        metadata={
            "help": "Per seed s, train the transitions and switches this many times (chain k with seed "
            f"s + {CHAIN_STRIDE} k, in <task>/s<that seed>/) and evaluate, for each hand-over policy, the chain "
            "that completes the most subtasks in `chain_episodes` validation episodes (task seeds apart from "
            "the evaluation's); ties go to the earlier chain. Single training runs of a chain differ widely."
        },
    )
    chain_episodes: int = field(
        default=20, metadata={"help": "Validation episodes per chain and policy when `chains` > 1."}
    )
    root: str = field(default="runs/hierarchy", metadata={"help": "Root folder of every stage's runs."})
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Start the task over: empty its folder (every seed's starts, transitions, switches, "
            "evaluations) and retrain the shared primitives whose recorded settings differ."
        },
    )

    @property
    def pair_list(self) -> list[tuple[str, str]]:
        return [(str(i), str(j)) for i, j in self.pairs]

    def start_sources(self, name: str) -> list[str]:
        """The primitives whose running states primitive `name` starts from (`primitive_starts`: one or a list)."""
        sources = self.primitive_starts.get(name, [])
        return [sources] if isinstance(sources, str) else list(sources)

    def refine_spec(self, name: str) -> Refinement:
        """`primitive_refine[name]` as a `Refinement` (ConfigError naming the entry if it is malformed)."""
        where, entry = f"primitive_refine.{name}", self.primitive_refine[name]
        if not isinstance(entry, dict) or "from" not in entry or "steps" not in entry:
            raise ConfigError(
                f"{where}: expected a mapping with 'from' and 'steps' (and 'start_prob'), got {entry!r}"
            )
        unknown = sorted(set(entry) - {"from", "steps", "start_prob"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: from, steps, start_prob")
        sources = [entry["from"]] if isinstance(entry["from"], str) else entry["from"]
        if not isinstance(sources, list) or not all(isinstance(n, str) for n in sources):
            raise ConfigError(
                f"{where}.from: expected a primitive's name or a list of names, got {entry['from']!r}"
            )
        try:
            steps, prob = int(entry["steps"]), float(entry.get("start_prob", 0.5))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: steps must be an integer and start_prob a number ({exc})") from exc
        if steps < 1 or not 0.0 <= prob <= 1.0 or not sources:
            raise ConfigError(
                f"{where}: expected steps >= 1, start_prob in [0, 1] and at least one 'from' primitive"
            )
        return Refinement(sources, steps, prob)

    def task_dir(self, seed: int) -> Path:
        return Path(self.root) / self.task / f"s{seed}"

    def chain_seeds(self, seed: int) -> list[int]:
        """The training seeds of seed `seed`'s chains of transitions and switches (`chains`): itself first."""
        return [seed + CHAIN_STRIDE * k for k in range(int(self.chains))]

    @property
    def training_seeds(self) -> list[int]:
        """Every seed the transitions and switch stages train with: each seed's chains."""
        return [c for seed in self.seeds for c in self.chain_seeds(int(seed))]

    def primitive_kwargs(self) -> dict[str, Any]:
        """The task's kwargs that every primitive's env is built with too (`SHARED_TASK_KWARGS`)."""
        return {k: v for k, v in self.task_kwargs.items() if k in SHARED_TASK_KWARGS}

    def candidate_seeds(self, name: str) -> list[int]:
        """The PPO seeds of primitive `name`'s training runs: its own seed, and more with `primitive_candidates`."""
        first = int(self.primitive_ppo.get(name, {}).get("seed", self.primitive_seed))
        return [first + k for k in range(int(self.primitive_candidates.get(name, 1)))]

    def scored_in_task(self, name: str) -> bool:
        """Whether primitive `name` has candidate runs, counted in the task (`candidate_score`)."""
        return name in self.primitive_candidates and self.candidate_score.get(name, "own") == "task"

    def candidate_dir(self, name: str, seed: int) -> Path:
        """The run folder of primitive `name`'s training with `seed` (its first seed's: primitives/<name>/)."""
        suffix = "" if seed == self.candidate_seeds(name)[0] else f"-seed{seed}"
        return Path(self.root) / "primitives" / f"{name}{suffix}"

    def chosen_path(self, name: str) -> Path:
        """Where the choice among primitive `name`'s candidate runs is kept (`primitive_candidates`)."""
        return Path(self.root) / "primitives" / f"{name}-chosen.json"

    def base_primitive_dir(self, name: str) -> Path:
        """The primitive's own PPO run (what other primitives' training starts from): with
        `primitive_candidates`, the run chosen among them (FileNotFoundError before the choice is made)."""
        if name not in self.primitive_candidates:
            return self.candidate_dir(name, self.candidate_seeds(name)[0])
        path = self.chosen_path(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: {name!r} is not chosen among its candidate runs yet; run the primitives stage"
            )
        return self.candidate_dir(name, int(json.loads(path.read_text())["chosen_seed"]))

    def primitive_dir(self, name: str) -> Path:
        """The run the tasks use: the primitive's refinement where `primitive_refine` names it, else its own."""
        if name in self.primitive_refine:
            return Path(self.root) / "primitives" / f"{name}-refined"
        return self.base_primitive_dir(name)

    def transition_dir(self, seed: int, pair: tuple[str, str]) -> Path:
        return self.task_dir(seed) / "transitions" / f"{pair[0]}-{pair[1]}"

    def switch_dir(self, seed: int, pair: tuple[str, str]) -> Path:
        return self.task_dir(seed) / "switches" / f"{pair[0]}-{pair[1]}"


_WALKER = dict(
    primitive_steps={
        # Forward's success in its own env, seeds 1-3: 5 / 22 / 11 of 30 at 1M steps, 23 / 28 / 27 at 2M (BENCHMARKS)
        "forward": 2_000_000,
        "backward": 1_000_000,
        "balance": 1_500_000,
        "jump": 2_000_000,
        "crawl": 600_000,
    },
    primitive_init={"jump": "forward"},
    primitive_starts={"balance": ["forward", "backward"]},
    primitive_ppo={"jump": {"num_envs": 8, "num_steps": 1024, "minibatch_size": 256}},
    primitive_env_kwargs={
        "forward": {"push_force": 100.0},
        "backward": {"push_force": 100.0},
        # every episode starts from one of Forward's and Backward's running states (`primitive_starts`); the speed
        # cost's slope eased above 0.5 m/s, so that stopping from a run pays more than falling
        "balance": {
            "push_force": 400.0,
            "push_prob": 0.1,
            "start_prob": 1.0,
            "weights": {"balance_speed_cap": 0.5},
        },
        "jump": {"restart_prob": 0.75},
    },
    # the authors' portions
    initiation_portion={"forward": 0.2, "backward": 0.2, "balance": 1.0, "jump": 0.4, "crawl": 0.1},
    # the discriminator held at 75% accuracy: left free it wins within a few rollouts (D on the policy ~0.05),
    # slowed to a few steps per rollout it never learns at our budget (D ~1 on everything); see BENCHMARKS.md
    airl=AIRLSettings(state_dims=BODY_DIM, max_accuracy=0.75),
    transition=TransitionSettings(steps=81_920),
    switch=SwitchSettings(episodes=300),
)
_WALKER_PRIMITIVES = {
    "forward": "Hierarchy/Walker2dForward-v0",
    "backward": "Hierarchy/Walker2dBackward-v0",
    "jump": "Hierarchy/Walker2dJump-v0",
    "crawl": "Hierarchy/Walker2dCrawl-v0",
    "balance": "Hierarchy/Walker2dBalance-v0",
}


def _walker_task(
    task: str, env: str, names: list[str], pairs: list[list[str]], fixed: int
) -> HierarchyConfig:
    cfg = HierarchyConfig(
        task=task,
        task_env=env,
        primitives={n: _WALKER_PRIMITIVES[n] for n in names},
        pairs=pairs,
        fixed_handover_steps=fixed,
        **{k: dataclasses.replace(v) if dataclasses.is_dataclass(v) else dict(v) for k, v in _WALKER.items()},
    )
    # the shared settings name every Walker primitive; a task keeps the entries of its own
    cfg.primitive_init = {k: v for k, v in cfg.primitive_init.items() if k in names}
    cfg.primitive_starts = {k: v for k, v in cfg.primitive_starts.items() if k in names}
    return cfg


def preset(task: str) -> HierarchyConfig:
    """The preset of `task` (a fresh object)."""
    if task == "patrol":  # Lee et al.'s Patrol: a balance phase between the legs
        pairs = [
            ["forward", "balance"],
            ["balance", "backward"],
            ["backward", "balance"],
            ["balance", "forward"],
        ]
        names = ["forward", "backward", "balance"]
        cfg = _walker_task("patrol", "Hierarchy/Walker2dPatrol-v0", names, pairs, 50)
        # four transitions that must stop a run or start one: longer training measured 1.25 -> 1.81 (BENCHMARKS)
        cfg.transition = dataclasses.replace(cfg.transition, steps=204_800)
        cfg.switch = dataclasses.replace(cfg.switch, episodes=600)
        # each pair's transition and switch trained on ~50 hand-overs did worse on fresh ones (0.67-0.78 against
        # 0.94-0.96 for the first pair); 300 hand-overs per pair, and each switch trained from the hand-overs the
        # switches before it lead to: the DQN switch 2.97 -> 3.74, higher on every seed (BENCHMARKS)
        cfg.starts_per_pair, cfg.start_episodes = 300, 600
        cfg.handover_starts = "switches"
        # after a balance phase Forward and Backward must set off from a stop: they train on from Balance's
        # (with the 1M-step Forward, switching at once, 3 seeds: 1.23 against 0.98 for the same training without
        # those starts; with the transitions within the seed spread, 1.75 against 1.59; BENCHMARKS)
        refine = {"from": ["balance"], "steps": 500_000, "start_prob": 0.5}
        cfg.primitive_refine = {"forward": dict(refine), "backward": dict(refine)}
        return cfg
    if task == "hurdle":
        pairs = [["forward", "jump"], ["jump", "forward"]]
        return _walker_task("hurdle", "Hierarchy/Walker2dHurdle-v0", ["forward", "jump"], pairs, 20)
    if task == "obstacle":
        names = ["forward", "jump", "crawl"]
        pairs = [["forward", "jump"], ["jump", "forward"], ["forward", "crawl"], ["crawl", "forward"]]
        return _walker_task("obstacle", "Hierarchy/Walker2dObstacleCourse-v0", names, pairs, 20)
    if task in JACO_TASKS:
        from control.hierarchy.jaco_config import jaco_preset

        return jaco_preset(task)
    if task == "toy":
        return HierarchyConfig(
            task="toy",
            task_env="Hierarchy/PointDashPark-v0",
            primitives={"dash": "Hierarchy/PointDash-v0", "park": "Hierarchy/PointPark-v0"},
            primitive_steps={"dash": 20_480, "park": 40_960},
            scripted_primitives=True,
            initiation_portion={"dash": 0.3, "park": 0.3},
            expert_episodes=30,
            pairs=[["dash", "park"]],  # a park ends at rest, where a dash starts: no transition needed
            starts_per_pair=100,
            start_episodes=300,
            transition=TransitionSettings(
                steps=8192, horizon=40, num_envs=4, num_steps=256, minibatch_size=64, checkpoint_every=2048
            ),
            airl=AIRLSettings(epochs=3),
            switch=SwitchSettings(
                episodes=200, learning_starts=100, target_update=200, learning_rate=1e-3, checkpoint_every=25
            ),
            fixed_handover_steps=10,
            eval_episodes=50,
        )
    raise ConfigError(
        f"unknown hierarchical task {task!r}{did_you_mean(task, TASKS)}; expected {', '.join(TASKS)}"
    )


def did_you_mean(name: str, known) -> str:
    """' (did you mean 'x'?)' for the closest of `known` (difflib), or ''."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _convert(kind: Any, value: Any, where: str, current: Any = None) -> Any:
    """`value` as the field type `kind`; a nested dataclass from a mapping of the fields that change, the others
    kept from `current` (the preset's section), so `airl: {epochs: 1}` changes the epochs alone."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {kind.__name__} fields, got {value!r}")
        return _from_mapping(current if dataclasses.is_dataclass(current) else kind(), value, where)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return text in ("1", "true", "yes", "on")
    if kind in (int, float, str):
        try:
            return kind(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}") from exc
    if origin is tuple or kind is tuple:
        return tuple(int(v) for v in value)
    return value


def _from_mapping(base: Any, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(type(base))
    names = {f.name for f in dataclasses.fields(base)}
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"{where}: unknown field {key!r} of {type(base).__name__}"
                + (did_you_mean(key, names) or f"; known: {', '.join(sorted(names))}")
            )
        changes[key] = _convert(hints[key], value, f"{where}.{key}", getattr(base, key))
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:  # a settings class's own check (`__post_init__`)
        raise ConfigError(f"{where}: {exc}") from exc


def load_config(task: str, path: str | None = None, **overrides: Any) -> HierarchyConfig:
    """The preset of `task`, then the fields of the YAML file at `path`, then `overrides` (None: unset)."""
    cfg = preset(task)
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of HierarchyConfig fields")
        cfg = _from_mapping(cfg, values, str(path))
    cfg = _from_mapping(cfg, {k: v for k, v in overrides.items() if v is not None}, "overrides")
    _check_primitive_names(cfg)
    return cfg


def _env_class(env_id: str) -> type | None:
    """The class behind a registered env id (None for an unknown id or a factory function)."""
    try:
        entry = gym.spec(env_id).entry_point
    except gym.error.Error:
        return None
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name, None)
    return entry if isinstance(entry, type) else None


def _takes_start_states(cls: type | None) -> bool:
    """Whether the env class's constructor (or a base class's) takes `start_states` (unknown envs: assumed to)."""
    if cls is None:
        return True
    return any(
        "start_states" in inspect.signature(c.__init__).parameters
        for c in cls.__mro__
        if "__init__" in vars(c)
    )


def _check_start_states(cfg: HierarchyConfig, where: str, name: str, sources: list[str]) -> None:
    """A primitive started from recorded states must take them (`start_states`), from envs of its own family."""
    if cfg.scripted_primitives:
        raise ConfigError(
            f"{where}: scripted primitives are not trained, so they cannot start from recorded states"
        )
    env_id = cfg.primitives[name]
    family = _env_class(env_id)
    if not _takes_start_states(family):
        raise ConfigError(f"{where}: {name!r} ({env_id}) cannot start from recorded states (no start_states)")
    for source in sources:
        other = _env_class(cfg.primitives[source])
        if family is not None and other is not None and other.__module__ != family.__module__:
            raise ConfigError(f"{where}: {source!r}'s states ({cfg.primitives[source]}) do not fit {env_id}")


def _check_primitive_names(cfg: HierarchyConfig) -> None:
    """Every primitive that `primitive_init`, `primitive_starts` and `primitive_refine` name is one of the task's,
    a refinement starts from primitives that are not refined themselves, and primitives started from recorded
    states can take them."""
    if not isinstance(cfg.primitive_refine, dict):
        raise ConfigError(
            f"primitive_refine: expected a mapping of primitive names, got {cfg.primitive_refine!r}"
        )
    refine_sources = {k: cfg.refine_spec(k).sources for k in cfg.primitive_refine}
    named = {f"primitive_init.{k}": [k, v] for k, v in cfg.primitive_init.items()}
    for k in cfg.primitive_starts:
        named[f"primitive_starts.{k}"] = [k, *cfg.start_sources(k)]
    for k, sources in refine_sources.items():
        named[f"primitive_refine.{k}"] = [k, *sources]
    for where, names in named.items():
        unknown = [n for n in names if n not in cfg.primitives]
        if unknown:
            raise ConfigError(
                f"{where}: {unknown[0]!r} is not a primitive of {cfg.task} ({', '.join(cfg.primitives)})"
            )
    for k, sources in refine_sources.items():
        refined = [n for n in sources if n in cfg.primitive_refine]
        if refined:
            raise ConfigError(
                f"primitive_refine.{k}: {refined[0]!r} is refined itself; refine from unrefined primitives"
            )
    _check_env_kwargs(cfg)
    _check_chains(cfg)
    if cfg.handover_starts not in HANDOVER_STARTS:
        raise ConfigError(
            f"handover_starts: expected one of {', '.join(HANDOVER_STARTS)}, got {cfg.handover_starts!r}"
        )
    for k in cfg.primitive_starts:
        _check_start_states(cfg, f"primitive_starts.{k}", k, cfg.start_sources(k))
    for k, sources in refine_sources.items():
        _check_start_states(cfg, f"primitive_refine.{k}", k, sources)
    _check_candidates(cfg)


def _not_a_primitive(cfg: HierarchyConfig, where: str, name: Any) -> ConfigError:
    """The error for a field entry `where` naming `name`, which is not one of the task's primitives."""
    return ConfigError(
        f"{where}: {name!r} is not a primitive of {cfg.task} ({', '.join(cfg.primitives)})"
        f"{did_you_mean(str(name), cfg.primitives)}"
    )


def _check_env_kwargs(cfg: HierarchyConfig) -> None:
    """`primitive_env_kwargs`: a mapping per primitive of the task that the primitive's env can be built with
    (entries of the other Walker tasks' primitives are left alone)."""
    if not isinstance(cfg.primitive_env_kwargs, dict):
        raise ConfigError(
            f"primitive_env_kwargs: expected a mapping of primitive names, got {cfg.primitive_env_kwargs!r}"
        )
    if isinstance(cfg.task_kwargs, dict) and (problem := env_kwargs_problem(cfg.task_env, cfg.task_kwargs)):
        raise ConfigError(f"task_kwargs: {cfg.task_env} refuses {cfg.task_kwargs!r}: {problem}")
    for name, kwargs in cfg.primitive_env_kwargs.items():
        where = f"primitive_env_kwargs.{name}"
        if name not in cfg.primitives and name in _WALKER_PRIMITIVES:
            continue  # the Walker presets share one mapping: another Walker task's entry, unused here
        if name not in cfg.primitives:
            raise _not_a_primitive(cfg, where, name)
        if not isinstance(kwargs, dict):
            raise ConfigError(f"{where}: expected a mapping of env keyword arguments, got {kwargs!r}")
        if problem := env_kwargs_problem(cfg.primitives[name], kwargs):
            raise ConfigError(f"{where}: {cfg.primitives[name]} refuses {kwargs!r}: {problem}")
        for key, value in cfg.primitive_kwargs().items():
            if key in kwargs and kwargs[key] != value:
                raise ConfigError(
                    f"{where}.{key} is {kwargs[key]!r} but the task's (task_kwargs.{key}) is {value!r}: the task "
                    "sets it for all its primitives' envs"
                )
    _check_observation_kwargs(cfg)


def _check_observation_kwargs(cfg: HierarchyConfig) -> None:
    """The env kwargs that shape the observation (`walker.OBSERVATION_KWARGS`) agree between `task_kwargs` and
    every primitive's `primitive_env_kwargs`: a primitive runs inside the task on the task's observation."""
    if not isinstance(cfg.task_kwargs, dict):
        raise ConfigError(
            f"task_kwargs: expected a mapping of env keyword arguments, got {cfg.task_kwargs!r}"
        )
    for key, default in OBSERVATION_KWARGS.items():
        task_value = cfg.task_kwargs.get(key, default)
        for name in cfg.primitives:
            value = (cfg.primitive_env_kwargs.get(name) or {}).get(key, default)
            if value != task_value:
                raise ConfigError(
                    f"primitive_env_kwargs.{name}.{key} is {value!r} but the task's (task_kwargs.{key}) is "
                    f"{task_value!r}: they shape the observation, so a task and all its primitives must agree"
                )


def _check_chains(cfg: HierarchyConfig) -> None:
    """`chains` >= 1 and `chain_episodes` >= 1; no chain's seed is another of the task's seeds."""
    if isinstance(cfg.chains, bool) or not isinstance(cfg.chains, int) or cfg.chains < 1:
        raise ConfigError(f"chains: expected a whole number >= 1, got {cfg.chains!r}")
    if cfg.chain_episodes < 1:
        raise ConfigError(f"chain_episodes: expected a whole number >= 1, got {cfg.chain_episodes}")
    seeds = {int(s) for s in cfg.seeds}
    for seed in sorted(seeds):
        clash = [c for c in cfg.chain_seeds(seed)[1:] if c in seeds]
        if clash:
            raise ConfigError(
                f"chains: seed {seed}'s chain {(clash[0] - seed) // CHAIN_STRIDE} trains with seed {clash[0]}, which is also one "
                f"of the seeds; use seeds below {CHAIN_STRIDE} with chains"
            )


def _check_candidates(cfg: HierarchyConfig) -> None:
    """`primitive_candidates`: a whole number >= 1 of runs per primitive of the task, for trained primitives."""
    if not isinstance(cfg.primitive_candidates, dict):
        raise ConfigError(
            f"primitive_candidates: expected a mapping of primitive names to run counts, got "
            f"{cfg.primitive_candidates!r}"
        )
    for name, count in cfg.primitive_candidates.items():
        where = f"primitive_candidates.{name}"
        if name not in cfg.primitives:
            raise _not_a_primitive(cfg, where, name)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"{where}: expected a whole number of runs >= 1, got {count!r}")
        if cfg.scripted_primitives:
            raise ConfigError(
                f"{where}: scripted primitives are not trained, so there are no runs to choose from"
            )
    if cfg.candidate_episodes < 1:
        raise ConfigError(f"candidate_episodes: expected a whole number >= 1, got {cfg.candidate_episodes}")
    _check_candidate_score(cfg)


def _check_candidate_score(cfg: HierarchyConfig) -> None:
    """`candidate_score`: 'own' or 'task' per primitive of the task; a primitive with candidates counted in the
    task needs the task's other primitives trained first, so none of them may start from it; one at most."""
    if not isinstance(cfg.candidate_score, dict):
        raise ConfigError(
            f"candidate_score: expected a mapping of primitive names to 'own' or 'task', got {cfg.candidate_score!r}"
        )
    for name, score in cfg.candidate_score.items():
        where = f"candidate_score.{name}"
        if score not in CANDIDATE_SCORES:
            raise ConfigError(f"{where}: expected one of {', '.join(CANDIDATE_SCORES)}, got {score!r}")
        if name not in cfg.primitives:  # (one without candidates has a single run: nothing to count)
            raise _not_a_primitive(cfg, where, name)
    in_task = [n for n in cfg.primitives if cfg.scored_in_task(n)]
    if len(in_task) > 1:
        raise ConfigError(
            f"candidate_score: {in_task[0]!r} and {in_task[1]!r} are both counted in the task; each count needs "
            "the other chosen first, so count one of them there"
        )
    for name in in_task:
        users = [k for k, v in cfg.primitive_init.items() if v == name]
        users += [k for k in cfg.primitive_starts if name in cfg.start_sources(k)]
        users += [k for k in cfg.primitive_refine if name in cfg.refine_spec(k).sources]
        if users:
            raise ConfigError(
                f"candidate_score.{name}: {users[0]!r} trains from {name!r}'s chosen run, but counting {name!r} "
                f"in the task needs {users[0]!r} trained first; count it in its own env ('own')"
            )
        if name in cfg.primitive_refine:
            raise ConfigError(
                f"candidate_score.{name}: {name!r} is refined after the choice (primitive_refine), so the task "
                "would count runs it does not use; count it in its own env ('own')"
            )
