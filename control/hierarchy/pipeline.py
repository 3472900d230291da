"""The stages of a hierarchical task, each resumable from its run folders under `cfg.root`:

1. `primitives`: each primitive trained with our PPO (`control.train`, a normal run folder
   `primitives/<name>/`), refined where `primitive_refine` asks (`primitives/<name>-refined/`, a run that goes on
   from its weights), then its initiation set collected (`initiation.npz` in the run the task uses).
2. `transitions`: per seed, hand-over snapshots of the task (`<task>/s<seed>/transitions/starts-<i>-<j>.json`)
   and one AIRL transition policy per pair (`<task>/s<seed>/transitions/<i>-<j>/`, a control run folder).
3. `switch`: per seed and pair, the Double-DQN switch (`<task>/s<seed>/switches/<i>-<j>/`).
4. `evaluate`: per seed, success counts of the three policies (`<task>/s<seed>/evaluation.json`).

Stages over several seeds run through `control.sweep.map_jobs` (local processes or Ray).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from align.progress import Progress
from align.run_state import ConfigChanged, ConfigDifference, write_json_atomic
from control.config import TrainConfig
from control.hierarchy.airl import AIRLHooks, ExpertData
from control.hierarchy.config import HierarchyConfig
from control.hierarchy.controller import (
    MODES,
    Composition,
    SwitchEnv,
    SwitchPolicy,
    collect_handover_snapshots,
    collect_initiation_set,
    run_episode,
)
from control.hierarchy.policies import Policy, RunPolicy
from control.hierarchy.primitive_eval import primitive_success
from control.hierarchy.resumable import ResumableEnvs
from control.hierarchy.start_states import (
    NoRunningStates,
    record_handover_states,
    record_running_states,
    save_states,
)
from control.hierarchy.switch import SwitchFeatures, load_switch, train_switch
from control.hierarchy.task_record import recorded_otherwise, train_run
from control.hierarchy.transition_env import load_snapshots, save_snapshots
from control.hierarchy.warm_start import warm_start
from control.sweep import map_jobs

EVAL_SEED = 10**6
VALIDATION_SEED = 2 * 10**6  # the chains' validation episodes (`chains`), apart from the evaluation's
# `handover_starts: switches`: the task episodes the switches' starts come from
SWITCH_STARTS_SEED = 3 * 10**6
CANDIDATE_SEED = 40_000  # episode seeds of the candidate runs' counts: apart from the benchmark's (20,000)
# `candidate_score: task`: the task episode seeds of the counts in the task, apart from EVAL_SEED's, VALIDATION_SEED's
CANDIDATE_TASK_SEED = 9 * 10**6
REFINED_FROM = "refined_from.json"  # the step of the primitive's own run that a refinement began from


def _global_step(run: Path) -> int:
    """The step a run folder's training last finished at (its `summary.json`; 0 before any)."""
    summary = run / "summary.json"
    return int(json.loads(summary.read_text()).get("global_step", 0)) if summary.is_file() else 0


def _finished(run: Path, steps: int) -> bool:
    """Whether the run folder holds a finished run of `steps` (the loop stops at a whole number of rollouts)."""
    config = run / "config.json"
    if not ((run / "summary.json").is_file() and config.is_file()):
        return False
    c = json.loads(config.read_text())
    batch = (c.get("num_envs") or 1) * (c.get("num_steps") or 1)
    return _global_step(run) >= max(1, steps // batch) * batch


def task_env(cfg: HierarchyConfig) -> gym.Env:
    return gym.make(cfg.task_env, **cfg.task_kwargs)


# --- 1. primitives ---
def train_primitive(cfg: HierarchyConfig, name: str) -> dict[str, Any]:
    """PPO on the primitive's own env (the same as `python -m control train --env <id> --out-dir <dir>`), its
    refinement where `primitive_refine` asks for one, then its initiation set."""
    chosen = {}
    if not cfg.scripted_primitives:
        train_base(cfg, name)
        if name in cfg.primitive_candidates:
            chosen = {"chosen": choose_candidate(cfg, name)}
        if name in cfg.primitive_refine:
            refine_primitive(cfg, name)
    return {**collect_expert(cfg, name), **chosen}


def train_base(cfg: HierarchyConfig, name: str) -> Path:
    """The primitive's own PPO run (`primitives/<name>/`), or with `primitive_candidates` each of its candidate
    runs and then the choice among them; returns the run other primitives and the task start from."""
    for seed in cfg.candidate_seeds(name):
        train_candidate(cfg, name, seed)
    if name in cfg.primitive_candidates:
        choose_candidate(cfg, name)
    return cfg.base_primitive_dir(name)


def train_candidate(cfg: HierarchyConfig, name: str, seed: int) -> Path:
    """One PPO run of the primitive (`cfg.candidate_dir(name, seed)`), after the primitive its weights start
    from (`primitive_init`) and the states its episodes start from (`primitive_starts`) are there."""
    out, steps = cfg.candidate_dir(name, seed), int(cfg.primitive_steps[name])
    train_cfg, hooks = primitive_train_config(cfg, name, seed), ResumableEnvs()
    changed = recorded_otherwise(train_cfg, hooks)
    if _finished(out, steps) and not changed:
        return out
    if changed and cfg.overwrite:
        shutil.rmtree(out)  # before the warm start, which a run started over must begin from again
    source = cfg.primitive_init.get(name)
    if source and not (out / "checkpoint.pt").is_file():
        warm_start(train_base(cfg, source), train_cfg)
    if name in cfg.primitive_starts:
        record_starts(cfg, name)
    train_run(train_cfg, hooks, cfg.overwrite)
    return out


def choose_candidate(cfg: HierarchyConfig, name: str) -> dict[str, Any]:
    """`primitive_candidates`: each finished candidate run counted on held-out episode seeds, by default its
    greedy successes in the env the primitive's states are recorded in (`recording_env`), with
    `candidate_score: task` the subtasks it completes in the task (`task_score`); the highest count wins, ties
    the earlier seed. Kept in `cfg.chosen_path(name)`, counted again only when a candidate (or, counted in the
    task, another of its primitives) trained on or the candidates or the way they are counted changed."""
    path, runs = cfg.chosen_path(name), {s: cfg.candidate_dir(name, s) for s in cfg.candidate_seeds(name)}
    scored_in = "task" if cfg.scored_in_task(name) else "own"
    others = [n for n in cfg.primitives if n != name] if scored_in == "task" else []
    for other in others:  # the task's other primitives, as the task runs them
        train_base(cfg, other)
        if other in cfg.primitive_refine:
            refine_primitive(cfg, other)
    made = [run / "checkpoint.pt" for run in runs.values()]
    made += [cfg.primitive_dir(o) / "checkpoint.pt" for o in others]
    made += [cfg.chosen_path(o) for o in others if o in cfg.primitive_candidates]
    if path.is_file():
        kept = json.loads(path.read_text())
        newest = max(p.stat().st_mtime for p in made)
        seeds = [c["seed"] for c in kept["candidates"]]
        same = seeds == list(runs) and kept["episodes"] == cfg.candidate_episodes
        if same and kept.get("scored_in", "own") == scored_in and path.stat().st_mtime >= newest:
            return kept
    counts = []
    for seed, run in runs.items():
        counted = task_score(cfg, name, run) if scored_in == "task" else own_score(cfg, name, run)
        counts.append({"seed": seed, "run": run.name, **counted})
    best = max(counts, key=lambda c: c["score"])  # the first of the best: the earlier seed
    chosen = {
        "chosen_seed": best["seed"],
        "scored_in": scored_in,
        "episodes": cfg.candidate_episodes,
        "episode_seeds_from": CANDIDATE_TASK_SEED if scored_in == "task" else CANDIDATE_SEED,
        "candidates": counts,
    }
    write_json_atomic(path, chosen)
    return chosen


def own_score(cfg: HierarchyConfig, name: str, run: Path) -> dict[str, Any]:
    """A candidate run of primitive `name` counted in the env its states are recorded in: greedy successes,
    falls, collisions, timeouts in `candidate_episodes` episodes from `CANDIDATE_SEED` (its `score`: successes)."""
    env = recording_env(cfg, name)
    policy = RunPolicy(run, env.observation_space, env.action_space)
    result = primitive_success(env, policy, cfg.candidate_episodes, CANDIDATE_SEED)
    env.close()
    fields = ("successes", "falls", "collisions", "timeouts", "mean_length")
    return {
        "global_step": policy.global_step,
        "score": result.successes,
        **{k: getattr(result, k) for k in fields},
    }


def task_score(cfg: HierarchyConfig, name: str, run: Path) -> dict[str, Any]:
    """A candidate run of primitive `name` counted in the task: the task run `candidate_episodes` times from
    `CANDIDATE_TASK_SEED` with that run as `name` and the task's other primitives, switching at once (its
    `score`: the subtasks completed, summed over the episodes)."""
    env = task_env(cfg)
    primitives = load_primitives(cfg, env, [n for n in cfg.primitives if n != name])
    primitives[name] = policy = RunPolicy(run, env.observation_space, env.action_space)
    comp = Composition(primitives, horizon=cfg.transition.horizon, fixed_steps=cfg.fixed_handover_steps)
    result = evaluate_composition(env, comp, ["none"], cfg.candidate_episodes, CANDIDATE_TASK_SEED)["none"]
    env.close()
    return {
        "global_step": policy.global_step,
        "score": int(sum(result["counts"])),
        "mean": result["mean"],
        "counts": result["counts"],
    }


def refine_primitive(cfg: HierarchyConfig, name: str) -> Path:
    """`primitive_refine`: PPO goes on from the trained primitive's weights in a run of its own
    (`primitives/<name>-refined/`), its episodes starting from the states the named primitives end in."""
    spec = cfg.refine_spec(name)
    out = cfg.primitive_dir(name)
    train_cfg, hooks = refine_train_config(cfg, name), ResumableEnvs()
    for source in spec.sources:
        train_base(cfg, source)
    base = cfg.base_primitive_dir(name)
    base_step = {"base_global_step": _global_step(base)}  # finished just before
    if name in cfg.primitive_candidates:
        base_step["base_run"] = base.name  # the candidate chosen
    # the runs whose states it starts from, where they are chosen among candidates
    for source in spec.sources:
        if source in cfg.primitive_candidates:
            base_step[f"{source}_run"] = cfg.base_primitive_dir(source).name
    marker = out / REFINED_FROM
    begun = json.loads(marker.read_text()) if marker.is_file() else None
    # the primitive trained on after its refinement began, or another run of it or of a source was chosen
    base_moved = begun is not None and begun != base_step
    changed = base_moved or recorded_otherwise(train_cfg, hooks)
    if _finished(out, spec.steps) and not changed:
        return out
    if changed and cfg.overwrite:
        shutil.rmtree(out)  # before the warm start, which a run started over must begin from again
    elif base_moved:
        differences = [ConfigDifference(k, begun.get(k), v) for k, v in base_step.items()]
        raise ConfigChanged(out, differences, "--overwrite")
    record_states(cfg, start_states_path(cfg, name, refined=True), spec.sources, f"primitive_refine.{name}")
    if not (out / "checkpoint.pt").is_file():
        warm_start(cfg.base_primitive_dir(name), train_cfg)
        marker.write_text(json.dumps(base_step))
    train_run(train_cfg, hooks, cfg.overwrite)
    return out


def start_states_path(cfg: HierarchyConfig, name: str, refined: bool = False) -> Path:
    """Where the states that primitive `name`'s training starts from are kept (`primitive_starts`; with
    `refined`, those of its refinement, `primitive_refine`)."""
    stem = f"{name}-refine-starts" if refined else f"{name}-starts"
    return Path(cfg.root) / "primitives" / f"{stem}.npz"


def record_starts(cfg: HierarchyConfig, name: str) -> Path:
    """The running states of the primitives that `name` starts from (`primitive_starts`)."""
    return record_states(
        cfg, start_states_path(cfg, name), cfg.start_sources(name), f"primitive_starts.{name}"
    )


def recording_env(cfg: HierarchyConfig, source: str) -> gym.Env:
    """The env a source primitive's states are recorded in: its own, every episode started from its own
    recorded starts where it has `primitive_starts` (Balance from a run: the stops it comes to)."""
    kwargs = cfg.primitive_kwargs()
    if source in cfg.primitive_starts:
        kwargs.update(start_states=str(start_states_path(cfg, source)), start_prob=1.0)
    return gym.make(cfg.primitives[source], **kwargs)


def record_states(
    cfg: HierarchyConfig, path: Path, sources: list[str], where: str, episodes: int = 10
) -> Path:
    """Train the primitives `sources`, then record their greedy states into `path` (`record_running_states`; an
    env that marks its hand-over states, `record_handover_states`), unless a file newer than each of their
    checkpoints is already there."""
    for source in sources:
        train_base(cfg, source)
    made = [cfg.base_primitive_dir(s) / "checkpoint.pt" for s in sources]
    made += [cfg.chosen_path(s) for s in sources if s in cfg.primitive_candidates]  # another run chosen
    newest = max(p.stat().st_mtime for p in made)
    if path.is_file() and path.stat().st_mtime >= newest:
        return path
    qpos, qvel = [], []
    for i, source in enumerate(sources):
        env = recording_env(cfg, source)
        policy = RunPolicy(cfg.base_primitive_dir(source), env.observation_space, env.action_space)
        record = record_handover_states if hasattr(env.unwrapped, "handover_state") else record_running_states
        p, v = record(env, policy, episodes, cfg.primitive_seed + 700 + 100 * i)
        env.close()
        qpos.append(p)
        qvel.append(v)
    qpos, qvel = np.concatenate(qpos), np.concatenate(qvel)
    if not len(qpos):
        raise NoRunningStates(
            f"{where}: {', '.join(sources)} left no states to start from in their recorded episodes (a walker "
            "fell early in each, or no toss reached its apex); train them longer"
        )
    save_states(path, qpos, qvel)
    return path


def primitive_train_config(cfg: HierarchyConfig, name: str, seed: int | None = None) -> TrainConfig:
    """The PPO run of primitive `name` (with `seed`, one of its candidate seeds; default its first): what
    `python -m control train --env <its id> --seed <seed> --out-dir <its dir>` runs."""
    seed = cfg.candidate_seeds(name)[0] if seed is None else seed
    steps = int(cfg.primitive_steps[name])
    env_kwargs = {**cfg.primitive_kwargs(), **cfg.primitive_env_kwargs.get(name, {})}
    if name in cfg.primitive_starts:
        env_kwargs["start_states"] = str(start_states_path(cfg, name))
    settings = {
        "algo": "ppo",
        "env_id": cfg.primitives[name],
        "env_kwargs": env_kwargs,
        "total_steps": steps,
        "out_dir": str(cfg.candidate_dir(name, seed)),
        "eval_every": max(steps // 5, 1),
        "checkpoint_every": max(steps // 20, 1),
    }
    return TrainConfig(**{**settings, **cfg.primitive_ppo.get(name, {}), "seed": seed})


def refine_train_config(cfg: HierarchyConfig, name: str) -> TrainConfig:
    """The refinement's PPO run: the primitive's own settings, `steps` long, in `primitives/<name>-refined/`, its
    episodes starting from the recorded states with probability `start_prob`."""
    spec, base = cfg.refine_spec(name), primitive_train_config(cfg, name)
    env_kwargs = {
        **base.env_kwargs,
        "start_states": str(start_states_path(cfg, name, refined=True)),
        "start_prob": spec.start_prob,
    }
    return dataclasses.replace(
        base,
        env_kwargs=env_kwargs,
        total_steps=spec.steps,
        out_dir=str(cfg.primitive_dir(name)),
        eval_every=max(spec.steps // 5, 1),
        checkpoint_every=max(spec.steps // 20, 1),
    )


def collect_expert(cfg: HierarchyConfig, name: str) -> dict[str, Any]:
    """The primitive's initiation set (`primitives/<name>/initiation.npz`, or its refinement's), collected
    again when the primitive trained on after it."""
    path = cfg.primitive_dir(name) / "initiation.npz"
    checkpoint = path.with_name("checkpoint.pt")
    if path.is_file() and checkpoint.is_file() and path.stat().st_mtime < checkpoint.stat().st_mtime:
        path.unlink()  # collected from the primitive before its training went on
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        env = gym.make(cfg.primitives[name], **cfg.primitive_kwargs())
        policy = load_primitives(cfg, env, [name])[name]
        data = collect_initiation_set(
            env, policy, cfg.expert_episodes, float(cfg.initiation_portion[name]), cfg.primitive_seed + 500
        )
        env.close()
        np.savez_compressed(path, **data)
    with np.load(path) as data:
        return {
            "primitive": name,
            "samples": int(len(data["obs"])),
            "episodes_kept": int(data["episodes_kept"]),
        }


def load_primitives(cfg: HierarchyConfig, env: gym.Env, names: list[str] | None = None) -> dict[str, Policy]:
    """The primitives `names` (default: all of the task's) as greedy policies."""
    names = list(cfg.primitives) if names is None else names
    if cfg.scripted_primitives:
        if cfg.task != "toy":
            raise ValueError(f"scripted_primitives exist for the toy task only, not {cfg.task!r}")
        from control.hierarchy.toy import scripted_primitives

        return {n: p for n, p in scripted_primitives().items() if n in names}
    return {n: RunPolicy(cfg.primitive_dir(n), env.observation_space, env.action_space) for n in names}


# --- 2. transitions ---
def starts_path(cfg: HierarchyConfig, seed: int, pair: tuple[str, str]) -> Path:
    return cfg.task_dir(seed) / "transitions" / f"starts-{pair[0]}-{pair[1]}.json"


def collect_starts(cfg: HierarchyConfig, seed: int, pair: tuple[str, str], env: gym.Env) -> int:
    """Hand-over snapshots of `pair`, unless saved already: the task run with the primitives and the transition
    policies trained so far (fixed hand-over rule; switching at once before any exists; with `handover_starts:
    chain` the switches trained so far decide their pairs' hand-overs), so pairs that only occur after an
    earlier hand-over succeeded get their starts too."""
    path = starts_path(cfg, seed, pair)
    if not path.is_file() and not path.with_suffix(".pkl").is_file():
        comp = composition_for_seed(cfg, seed, env)
        mode = ("trained" if cfg.handover_starts == "chain" else "fixed") if comp.transitions else "none"
        found = collect_handover_snapshots(
            env, comp, [pair], cfg.starts_per_pair, seed * 7919, cfg.start_episodes, mode
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_snapshots(path, found[pair])
    return len(load_snapshots(path))


def train_transition(
    cfg: HierarchyConfig, seed: int, pair: tuple[str, str], expert: ExpertData, hooks: AIRLHooks | None = None
) -> dict[str, Any]:
    """AIRL on the pair's hand-over starts: PPO (paper settings) with the discriminator reward as a hook
    (`hooks`: the AIRL hooks to use, e.g. to inspect the discriminator afterwards)."""

    t = cfg.transition
    out = cfg.transition_dir(seed, pair)
    if _finished(out, t.steps):
        return json.loads((out / "summary.json").read_text())
    env_kwargs = {
        "task_id": cfg.task_env,
        "starts": str(starts_path(cfg, seed, pair)),
        "target": pair[1],
        "horizon": t.horizon,
        "task_kwargs": dict(cfg.task_kwargs),
    }
    train_cfg = TrainConfig(
        algo="ppo",
        env_id="Hierarchy/Transition-v0",
        env_kwargs=env_kwargs,
        seed=seed,
        total_steps=t.steps,
        num_envs=t.num_envs,
        num_steps=t.num_steps,
        update_epochs=t.update_epochs,
        minibatch_size=t.minibatch_size,
        learning_rate=t.learning_rate,
        gamma=t.gamma,
        gae_lambda=t.gae_lambda,
        ent_coef=t.ent_coef,
        hidden=tuple(t.hidden),
        eval_episodes=0,
        checkpoint_every=t.checkpoint_every,
        out_dir=str(out),
    )
    return train_run(train_cfg, hooks or AIRLHooks(expert, cfg.airl, t.gamma), cfg.overwrite)


def transitions_for_seed(cfg: HierarchyConfig, seed: int) -> dict[str, Any]:
    """Every pair in order: its hand-over starts, then its AIRL transition policy (with `handover_starts:
    chain`, then its switch too, so the next pair's starts are collected with it)."""
    env = task_env(cfg)
    starts, results = {}, {}
    for pair in cfg.pair_list:
        key = f"{pair[0]}-{pair[1]}"
        starts[key] = collect_starts(cfg, seed, pair, env)
        if not starts[key]:
            results[key] = {"skipped": "no hand-over of this pair happened"}
            continue
        initiation = cfg.primitive_dir(pair[1]) / "initiation.npz"
        if not initiation.is_file():
            raise FileNotFoundError(
                f"{initiation}: {pair[1]}'s initiation set is missing: run the 'primitives' stage first"
            )
        results[key] = train_transition(cfg, seed, pair, ExpertData.load(str(initiation)))
        if cfg.handover_starts == "chain":
            results[key]["switch"] = train_pair_switch(cfg, seed, pair)
    env.close()
    return {"seed": seed, "starts": starts, "transitions": results}


# --- 3. switch ---
def _transition_policy(cfg: HierarchyConfig, seed: int, pair: tuple[str, str], env: gym.Env) -> RunPolicy:
    return RunPolicy(cfg.transition_dir(seed, pair), env.observation_space, env.action_space)


def switch_starts_path(cfg: HierarchyConfig, seed: int, pair: tuple[str, str]) -> Path:
    return cfg.switch_dir(seed, pair).parent / f"starts-{pair[0]}-{pair[1]}.json"


def switch_starts(
    cfg: HierarchyConfig, seed: int, pair: tuple[str, str], env: gym.Env
) -> list[dict[str, Any]]:
    """The hand-over snapshots the pair's switch trains from: its transition's, or (`handover_starts:
    switches`) snapshots collected once, before the pair's switch trains, by running the task with the
    switches trained so far (mode 'trained'; other episode seeds than the transitions' and the evaluation's).
    Where that run never reaches the pair, the transition's snapshots."""
    transition_starts = starts_path(cfg, seed, pair)
    if cfg.handover_starts != "switches":
        return load_snapshots(transition_starts)
    path = switch_starts_path(cfg, seed, pair)
    if not path.is_file():
        comp = composition_for_seed(cfg, seed, env)
        comp.switches.pop(pair, None)  # its own switch never decides where its starts are
        found = collect_handover_snapshots(
            env,
            comp,
            [pair],
            cfg.starts_per_pair,
            SWITCH_STARTS_SEED + 7919 * seed,
            cfg.start_episodes,
            "trained",
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_snapshots(path, found[pair])
    return load_snapshots(path) or load_snapshots(transition_starts)


def train_pair_switch(cfg: HierarchyConfig, seed: int, pair: tuple[str, str]) -> dict[str, Any]:
    """The pair's Double-DQN switch (resumes; a finished one returns its summary)."""
    env = task_env(cfg)
    primitives = load_primitives(cfg, env)
    transition = _transition_policy(cfg, seed, pair, env)
    starts = switch_starts(cfg, seed, pair, env)
    switch_env = SwitchEnv(env, pair, transition, primitives[pair[1]], starts, cfg.transition.horizon)
    features = SwitchFeatures(transition.normalise, cfg.transition.horizon)
    result = train_switch(switch_env, features, cfg.switch, cfg.switch_dir(seed, pair), seed)
    env.close()
    return result


def switches_for_seed(cfg: HierarchyConfig, seed: int) -> dict[str, Any]:
    """Every pair's switch, in the task's pair order (with `handover_starts: switches` a pair's starts are
    collected with the switches of the pairs before it; with `chain` the transitions stage trained them)."""
    results = {}
    for pair in cfg.pair_list:
        if not (cfg.transition_dir(seed, pair) / "checkpoint.pt").is_file():
            results[f"{pair[0]}-{pair[1]}"] = {"skipped": "no transition policy"}
            continue
        results[f"{pair[0]}-{pair[1]}"] = train_pair_switch(cfg, seed, pair)
    return {"seed": seed, "switches": results}


# --- 4. evaluate ---
def composition_for_seed(cfg: HierarchyConfig, seed: int, env: gym.Env) -> Composition:
    """Primitives, and whatever transitions and switches of this seed exist."""
    comp = Composition(
        load_primitives(cfg, env), horizon=cfg.transition.horizon, fixed_steps=cfg.fixed_handover_steps
    )
    for pair in cfg.pair_list:
        if (cfg.transition_dir(seed, pair) / "checkpoint.pt").is_file():
            transition = _transition_policy(cfg, seed, pair, env)
            comp.transitions[pair] = transition
            if (cfg.switch_dir(seed, pair) / "checkpoint.pt").is_file():
                features = SwitchFeatures(transition.normalise, cfg.transition.horizon)
                comp.switches[pair] = SwitchPolicy(load_switch(cfg.switch_dir(seed, pair), features)[1])
    return comp


def evaluate_composition(
    env: gym.Env, comp: Composition, modes: list[str], episodes: int, seed: int
) -> dict[str, Any]:
    """Success counts (subtasks completed in a row) of each hand-over mode on the same episode seeds."""
    results = {}
    with Progress(len(modes) * episodes, "evaluate", unit="episode") as bar:
        for mode in modes:
            t0 = time.perf_counter()
            runs = []
            for k in range(episodes):
                runs.append(run_episode(env, comp, mode, seed + k))
                bar.update(1, policy=mode, subtasks=float(np.mean([r.subtasks for r in runs])))
            results[mode] = _mode_result(runs, time.perf_counter() - t0)
    return results


def _mode_result(runs: list[Any], seconds: float) -> dict[str, Any]:
    counts = [r.subtasks for r in runs]
    steps = sum(r.steps for r in runs)
    return {
        "mean": float(np.mean(counts)),
        "std": float(np.std(counts)),
        "counts": counts,
        "steps": steps,
        "transition_steps": sum(r.transition_steps for r in runs),
        "steps_per_s": steps / seconds,
    }


def _modes(comp: Composition) -> list[str]:
    """The hand-over policies a composition can run: switching at once, and the fixed rule and the DQN switch
    where its transitions (and every pair's switch) exist."""
    modes = ["none"]
    if comp.transitions:
        modes.append("fixed")
    if comp.switches and set(comp.switches) == set(comp.transitions):
        modes.append("dqn")
    return modes


def choose_chains(
    cfg: HierarchyConfig, seed: int, env: gym.Env, comps: dict[int, Composition]
) -> dict[str, Any]:
    """`chains` > 1: each chain of `seed` (`comps`: its composition per chain seed) run with each hand-over policy
    that uses its transitions on `chain_episodes` validation episodes (task seeds apart from the evaluation's);
    per policy the chain with the most subtasks (ties: the earlier chain). Switching at once uses no chain (the
    first is kept)."""
    chosen: dict[str, Any] = {"none": {"chain_seed": seed}}
    validation: dict[str, dict[int, float]] = {}
    for chain, comp in comps.items():
        modes = [m for m in _modes(comp) if m != "none"]
        scores = evaluate_composition(env, comp, modes, cfg.chain_episodes, VALIDATION_SEED + 1000 * seed)
        for mode, result in scores.items():
            validation.setdefault(mode, {})[chain] = result["mean"]
    for mode, means in validation.items():
        best = max(means, key=lambda c: (means[c], -c))
        chosen[mode] = {"chain_seed": best, "validation_means": {str(c): m for c, m in means.items()}}
    return chosen


def evaluate_seed(cfg: HierarchyConfig, seed: int) -> dict[str, Any]:
    env = task_env(cfg)
    comps = {chain: composition_for_seed(cfg, chain, env) for chain in cfg.chain_seeds(seed)}
    chains = choose_chains(cfg, seed, env, comps) if cfg.chains > 1 else None
    episodes = EVAL_SEED + 1000 * seed  # the same evaluation episodes for every policy
    if chains is None:
        results = evaluate_composition(env, comps[seed], _modes(comps[seed]), cfg.eval_episodes, episodes)
    else:  # each policy with its chain
        results = {}
        for mode, chosen in chains.items():
            comp = comps[chosen["chain_seed"]]
            results.update(evaluate_composition(env, comp, [mode], cfg.eval_episodes, episodes))
    env.close()
    report = {"task": cfg.task, "seed": seed, "episodes": cfg.eval_episodes, "results": results}
    if chains is not None:
        report["chains"] = chains
    path = cfg.task_dir(seed) / "evaluation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    return report


# --- running stages over seeds ---
def _stage_job(cfg_dict: dict[str, Any], stage: str, seed: int) -> dict[str, Any]:
    from control.hierarchy.config import load_config

    cfg = load_config(cfg_dict["task"], None, **{k: v for k, v in cfg_dict.items() if k != "task"})
    fn = {"transitions": transitions_for_seed, "switch": switches_for_seed, "evaluate": evaluate_seed}[stage]
    return fn(cfg, seed)


STAGES = ("primitives", "transitions", "switch", "evaluate")


def run_stage(
    cfg: HierarchyConfig,
    stage: str,
    workers: int | None = 1,
    backend: str = "local",
    ray_address: str | None = None,
) -> list[dict[str, Any]]:
    """Run one stage (primitives: every primitive; the others: every seed) and return its results."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: expected one of {STAGES}")
    if stage == "primitives":
        if workers == 1 and backend == "local":
            return [train_primitive(cfg, name) for name in cfg.primitives]
        # in waves: the primitives' own runs, those that start from another primitive's weights or states after
        # the others; then the refinements (which start from the states of trained primitives) and the sets
        # (one job per candidate run; the states a wave's runs start from are recorded before its jobs, the
        # choice among a primitive's candidates made after them, each in a job: the parent process never loads
        # a policy, as torch in a parent that forks workers can deadlock them)
        later = set(cfg.primitive_init) | set(cfg.primitive_starts)  # they need other primitives trained
        trained = not cfg.scripted_primitives
        in_task = [n for n in cfg.primitives if trained and cfg.scored_in_task(n)]  # `candidate_score: task`
        for wave in (
            [n for n in cfg.primitives if n not in later],
            [n for n in cfg.primitives if n in later],
        ):
            steps = (
                [("starts", n, None) for n in wave if n in cfg.primitive_starts and trained],
                [("candidate", n, seed) for n in wave for seed in cfg.candidate_seeds(n) if trained],
                [
                    ("choose", n, None)
                    for n in wave
                    if trained and n in cfg.primitive_candidates and n not in in_task
                ],
            )
            for step in steps:
                jobs = [{"cfg_dict": _as_dict(cfg), "name": n, "seed": s, "step": k} for k, n, s in step]
                if jobs:
                    map_jobs(_primitive_job, jobs, workers, backend, ray_address)
        # the rest of each primitive (refinement, initiation set); a primitive counted in the task after the others
        results = {}
        for names in ([n for n in cfg.primitives if n not in in_task], in_task):
            jobs = [{"cfg_dict": _as_dict(cfg), "name": name} for name in names]
            if jobs:
                results.update(
                    zip(names, map_jobs(_primitive_job, jobs, workers, backend, ray_address), strict=True)
                )
        return [results[name] for name in cfg.primitives]
    seeds = cfg.seeds if stage == "evaluate" else cfg.training_seeds  # (every chain of every seed)
    if workers == 1 and backend == "local":
        return [_stage_job(_as_dict(cfg), stage, int(seed)) for seed in seeds]
    jobs = [{"cfg_dict": _as_dict(cfg), "stage": stage, "seed": int(s)} for s in seeds]
    return map_jobs(_stage_job, jobs, workers, backend, ray_address)


def _primitive_job(
    cfg_dict: dict[str, Any], name: str, seed: int | None = None, step: str = "all"
) -> dict[str, Any]:
    """One step of primitive `name`'s training: `starts` (record the states it starts from), `candidate` (its
    run with `seed`), `choose` (among its candidates) or `all` (`train_primitive`: the rest of it)."""
    from control.hierarchy.config import load_config

    cfg = load_config(cfg_dict["task"], None, **{k: v for k, v in cfg_dict.items() if k != "task"})
    if step == "starts":
        return {"primitive": name, "starts": str(record_starts(cfg, name))}
    if step == "candidate":
        return {"primitive": name, "seed": seed, "run": str(train_candidate(cfg, name, seed))}
    if step == "choose":
        return {"primitive": name, "chosen": choose_candidate(cfg, name)}
    return train_primitive(cfg, name)


def _as_dict(cfg: HierarchyConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def report(cfg: HierarchyConfig) -> dict[str, Any]:
    """Mean and spread over seeds of each policy's success count (from every seed's evaluation.json)."""
    per_mode: dict[str, list[float]] = {m: [] for m in MODES}
    episodes: dict[str, list[int]] = {m: [] for m in MODES}
    seeds = []
    for seed in cfg.seeds:
        path = cfg.task_dir(seed) / "evaluation.json"
        if not path.is_file():
            continue
        seeds.append(seed)
        for mode, r in json.loads(path.read_text())["results"].items():
            per_mode[mode].append(r["mean"])
            episodes[mode] += r["counts"]
    return {
        "task": cfg.task,
        "seeds": seeds,
        "policies": {
            m: {
                "mean": float(np.mean(v)),
                "seed_std": float(np.std(v)),
                "episode_std": float(np.std(episodes[m])),
                "seeds": len(v),
                "seed_means": [float(x) for x in v],
            }
            for m, v in per_mode.items()
            if v
        },
    }
