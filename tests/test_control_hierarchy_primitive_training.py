"""A primitive's PPO training that was killed and resumed equals an uninterrupted one: the same training episodes
(returns, lengths) and the same weights, because the checkpoints keep the envs' whole state (physics, course,
random generators, episode statistics in progress, the reward normaliser's running returns)."""

from __future__ import annotations

import dataclasses
import io
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import control  # noqa: F401  (registers the Hierarchy/ ids)
from align.run_state import ConfigChanged
from control.config import TrainConfig
from control.hierarchy.resumable import ResumableEnvs
from control.hooks import LoopHooks
from control.run import load_checkpoint
from control.train import train


class Killed(Exception):
    pass


def killed_after(base: type[LoopHooks], rollouts: int) -> LoopHooks:
    """`base` hooks whose process 'dies' in the middle of rollout number `rollouts` + 1's update."""

    class Crash(base):
        seen = 0

        def after_rollout(self) -> None:
            super().after_rollout()
            Crash.seen += 1
            if Crash.seen > rollouts:
                raise Killed

    return Crash()


def config(out) -> TrainConfig:
    return TrainConfig(
        algo="ppo",
        env_id="Hierarchy/Walker2dJump-v0",
        total_steps=6 * 256,
        num_steps=256,
        update_epochs=2,
        minibatch_size=64,
        checkpoint_every=512,
        eval_episodes=1,
        compile="off",
        out_dir=str(out),
    )


def weights(out) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "checkpoint.pt")["agent"]


def episodes(out) -> list[str]:
    return (out / "episodes.csv").read_text().splitlines()


def run_killed_and_resumed(out, hooks: type[LoopHooks]) -> dict:
    with pytest.raises(Killed):
        train(config(out), killed_after(hooks, 3))  # dies in rollout 4: the checkpoint at rollout 2 is kept
    assert load_checkpoint(out / "checkpoint.pt")["global_step"] == 512
    return train(config(out), hooks())


def test_a_resumed_primitive_training_equals_an_uninterrupted_one(tmp_path):
    whole = train(config(tmp_path / "whole"), ResumableEnvs())
    resumed = run_killed_and_resumed(tmp_path / "resumed", ResumableEnvs)
    assert len(episodes(tmp_path / "whole")) >= 10  # several episodes, some across the checkpoint
    assert episodes(tmp_path / "resumed") == episodes(tmp_path / "whole")
    for name, value in weights(tmp_path / "whole").items():
        assert torch.equal(weights(tmp_path / "resumed")[name], value), name
    assert resumed["eval_mean_return"] == whole["eval_mean_return"]


def test_without_the_envs_state_a_resumed_training_drifts(tmp_path):
    """The control: the loop's usual fresh reset on resume gives other episodes and other weights."""
    train(config(tmp_path / "whole"), LoopHooks())
    run_killed_and_resumed(tmp_path / "resumed", LoopHooks)
    assert episodes(tmp_path / "resumed") != episodes(tmp_path / "whole")
    first = next(iter(weights(tmp_path / "whole")))
    assert not torch.equal(weights(tmp_path / "resumed")[first], weights(tmp_path / "whole")[first])


def test_the_envs_state_loads_from_a_weights_only_checkpoint(tmp_path):
    hooks = ResumableEnvs()
    cfg = config(tmp_path / "run")
    cfg.total_steps = 256
    train(cfg, hooks)
    buffer = io.BytesIO()
    torch.save(hooks.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = ResumableEnvs()
    restored.load_state_dict(state)
    saved = restored.saved["envs"][0]["env"]
    assert isinstance(saved["physics"], np.ndarray) and saved["physics"].dtype == np.float64
    assert saved["np_random"] == hooks.subs[0].unwrapped.np_random.bit_generator.state


def test_a_warm_started_primitive_begins_as_its_source_and_then_trains(tmp_path):
    """Jump from Forward: the same weights, except zero weights on the obstacle inputs Forward never saw vary
    (so the new policy acts exactly as Forward does), whose normalisation is measured in the Jump env."""
    from control.hierarchy.walker import BODY_DIM, OBS_DIM
    from control.hierarchy.warm_start import warm_start

    source = config(tmp_path / "forward")
    source.env_id, source.total_steps = "Hierarchy/Walker2dForward-v0", 512
    train(source)
    target = config(tmp_path / "jump")
    target.total_steps, target.env_kwargs = 512, {"curb_range": (1.0, 1.5)}  # the curb in sight at once
    new_inputs = warm_start(tmp_path / "forward", target, measure_steps=300)
    assert new_inputs == list(range(BODY_DIM, OBS_DIM))
    before, start = weights(tmp_path / "forward"), weights(tmp_path / "jump")
    for name, value in before.items():
        expected = value.clone()
        if name.endswith("0.weight"):
            expected[:, BODY_DIM:] = 0.0
        assert torch.equal(start[name], expected), name
    norm = load_checkpoint(tmp_path / "jump" / "checkpoint.pt")["norm"]
    assert (norm["obs_var"][BODY_DIM : BODY_DIM + 2] > 1e-3).all()  # the curb distances vary in the Jump env
    summary = train(target, ResumableEnvs())
    assert summary["global_step"] == 512  # counted from the warm start
    assert not torch.equal(weights(tmp_path / "jump")["actor.0.weight"], start["actor.0.weight"])


def test_a_warm_start_into_a_longer_observation_pads_the_new_inputs_with_zeros(tmp_path):
    """Forward (21 inputs) -> Jump with `feet_features` (25): the appended inputs get zero weights and zero Adam
    moments, measured normalisation, and the run trains from there."""
    from control.hierarchy.walker import BODY_DIM, FEET_DIM, OBS_DIM
    from control.hierarchy.warm_start import warm_start

    source = config(tmp_path / "forward")
    source.env_id, source.total_steps = "Hierarchy/Walker2dForward-v0", 512
    train(source)
    target = config(tmp_path / "jump")
    target.total_steps = 512
    target.env_kwargs = {"curb_range": (1.0, 1.5), "feet_features": True}
    new_inputs = warm_start(tmp_path / "forward", target, measure_steps=300)
    assert new_inputs == list(range(BODY_DIM, OBS_DIM + FEET_DIM))
    before, start = weights(tmp_path / "forward"), weights(tmp_path / "jump")
    for name in ("actor.0.weight", "critic.0.weight"):
        assert start[name].shape == (before[name].shape[0], OBS_DIM + FEET_DIM)
        assert torch.equal(start[name][:, :BODY_DIM], before[name][:, :BODY_DIM])
        assert not start[name][:, BODY_DIM:].any()
    state = load_checkpoint(tmp_path / "jump" / "checkpoint.pt")
    moments = [m for s in state["optimizer"]["state"].values() for m in (s["exp_avg"], s["exp_avg_sq"])]
    padded = [m for m in moments if m.shape[-1] == OBS_DIM + FEET_DIM]
    assert len(padded) == 4 and all(not m[:, OBS_DIM:].any() for m in padded)
    assert (state["norm"]["obs_var"][OBS_DIM:] > 1e-4).all()  # the feet move while walking to the curb
    summary = train(target, ResumableEnvs())
    assert summary["global_step"] == 512
    assert weights(tmp_path / "jump")["actor.0.weight"][:, OBS_DIM:].any()  # the new inputs are learnt


def tiny_patrol(root, refine_steps: int, **fields):
    """Patrol with tiny primitives (no recorded starts, no pushes), Forward refined from Backward's states
    (`fields` override these)."""
    from control.hierarchy.config import load_config

    tiny = {"num_steps": 256, "update_epochs": 2, "eval_episodes": 1, "compile": "off", "quiet": True}
    defaults = dict(
        root=str(root),
        primitive_steps={"forward": 512, "backward": 512, "balance": 256},
        primitive_starts={},
        primitive_env_kwargs={},
        # Backward barely trained: it acts ~0, so its walker stays up long enough to have states to record
        primitive_ppo={"forward": tiny, "backward": {**tiny, "learning_rate": 1e-7}, "balance": tiny},
        primitive_refine={"forward": {"from": "backward", "steps": refine_steps, "start_prob": 1.0}},
        expert_episodes=2,
    )
    return load_config("patrol", **{**defaults, **fields})


def test_a_refined_primitive_trains_on_from_its_own_run_and_the_task_uses_it(tmp_path):
    """`primitive_refine`: Forward goes on from its trained weights in a run of its own, its episodes starting
    from Backward's recorded states; the task (initiation set, policies) uses the refinement, other primitives'
    training the primitive's own run; a rerun trains nothing again."""
    from control.hierarchy.pipeline import load_primitives, run_stage

    cfg = tiny_patrol(tmp_path, 768)
    results = run_stage(cfg, "primitives", workers=2)
    assert [r["primitive"] for r in results] == ["forward", "backward", "balance"]
    base, refined = tmp_path / "primitives" / "forward", tmp_path / "primitives" / "forward-refined"
    assert cfg.primitive_dir("forward") == refined and cfg.base_primitive_dir("forward") == base
    assert cfg.primitive_dir("backward") == tmp_path / "primitives" / "backward"
    recorded = json.loads((refined / "config.json").read_text())
    assert recorded["env_kwargs"]["start_states"] == str(
        tmp_path / "primitives" / "forward-refine-starts.npz"
    )
    assert recorded["env_kwargs"]["start_prob"] == 1.0 and recorded["total_steps"] == 768
    assert json.loads((refined / "summary.json").read_text())["global_step"] == 768  # its own steps
    with np.load(tmp_path / "primitives" / "forward-refine-starts.npz") as states:
        assert states["qpos"].shape[0] > 0 and states["qpos"].shape[1:] == (9,)
    assert (refined / "initiation.npz").is_file() and not (base / "initiation.npz").is_file()
    assert not torch.equal(
        weights(refined)["actor.0.weight"], weights(base)["actor.0.weight"]
    )  # it trained on
    env = gym.make("Hierarchy/Walker2dPatrol-v0")
    assert load_primitives(cfg, env, ["forward"])["forward"].global_step == 768  # the refinement
    stamps = {p: p.stat().st_mtime_ns for p in (refined / "checkpoint.pt", base / "checkpoint.pt")}
    run_stage(cfg, "primitives", workers=1)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs are not trained again
    assert json.loads((refined / "refined_from.json").read_text()) == {"base_global_step": 512}

    # Forward's own run trains on: its refinement began from an older Forward, refused until --overwrite,
    # which refines the new Forward again (from its weights, not from scratch)
    longer = dataclasses.replace(cfg, primitive_steps={**cfg.primitive_steps, "forward": 768})
    with pytest.raises(ConfigChanged, match="base_global_step: 512 -> 768"):
        run_stage(longer, "primitives", workers=1)
    run_stage(dataclasses.replace(longer, overwrite=True), "primitives", workers=1)
    assert json.loads((refined / "refined_from.json").read_text()) == {"base_global_step": 768}
    assert json.loads((refined / "summary.json").read_text())["global_step"] == 768


def test_primitive_refine_entries_are_checked_where_they_are_loaded():
    from control.hierarchy.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="primitive_refine.forward: 'jump' is not a primitive of patrol"):
        load_config("patrol", primitive_refine={"forward": {"from": ["jump"], "steps": 10}})
    with pytest.raises(ConfigError, match="primitive_refine.forward: 'balance' is refined itself"):
        load_config(
            "patrol",
            primitive_refine={
                "forward": {"from": "balance", "steps": 10},
                "balance": {"from": "backward", "steps": 10},
            },
        )
    with pytest.raises(ConfigError, match="primitive_refine.forward: unknown key 'step'"):
        load_config("patrol", primitive_refine={"forward": {"from": "balance", "steps": 10, "step": 1}})
    with pytest.raises(
        ConfigError, match="primitive_refine.forward: expected a mapping with 'from' and 'steps'"
    ):
        load_config("patrol", primitive_refine={"forward": "balance"})
    with pytest.raises(
        ConfigError, match="primitive_refine.forward.from: expected a primitive's name or a list"
    ):
        load_config("patrol", primitive_refine={"forward": {"from": [["balance"]], "steps": 10}})
    with pytest.raises(ConfigError, match="primitive_refine: expected a mapping"):
        load_config("patrol", primitive_refine=["forward"])
    with pytest.raises(ConfigError, match="'jump' .* cannot start from recorded states"):
        load_config("hurdle", primitive_refine={"jump": {"from": "forward", "steps": 10}})
    with pytest.raises(ConfigError, match="primitive_refine.park: scripted primitives"):
        load_config("toy", primitive_refine={"park": {"from": "dash", "steps": 10}})
    with pytest.raises(ConfigError, match="start_prob in"):
        load_config("patrol", primitive_refine={"forward": {"from": "balance", "steps": 10, "start_prob": 2}})


def test_primitive_candidates_train_each_seed_and_the_task_uses_the_run_counted_best(tmp_path):
    """`primitive_candidates`: Forward trained with seeds 1 and 2 (primitives/forward/, primitives/forward-seed2/),
    each counted in its own env on held-out seeds, the run with the most successes chosen (ties: the earlier
    seed); the refinement and the task start from the chosen run; a rerun trains and counts nothing again, and
    other counts re-count without training."""
    from control.hierarchy.pipeline import CANDIDATE_SEED, run_stage
    from control.hierarchy.primitive_eval import run_success

    cfg = tiny_patrol(tmp_path, 256, primitive_candidates={"forward": 2, "backward": 2}, candidate_episodes=3)
    with pytest.raises(FileNotFoundError, match="forward-chosen.json: 'forward' is not chosen"):
        cfg.base_primitive_dir("forward")
    results = run_stage(cfg, "primitives", workers=2)
    runs = {1: tmp_path / "primitives" / "forward", 2: tmp_path / "primitives" / "forward-seed2"}
    for seed, run in runs.items():
        assert json.loads((run / "config.json").read_text())["seed"] == seed
        assert json.loads((run / "summary.json").read_text())["global_step"] == 512
    assert not torch.equal(weights(runs[1])["actor.0.weight"], weights(runs[2])["actor.0.weight"])
    chosen = json.loads((tmp_path / "primitives" / "forward-chosen.json").read_text())
    assert [c["seed"] for c in chosen["candidates"]] == [1, 2] and chosen["episodes"] == 3
    for counted in chosen["candidates"]:  # the counts are the runs' own greedy episodes on the held-out seeds
        again = run_success("Hierarchy/Walker2dForward-v0", runs[counted["seed"]], 3, CANDIDATE_SEED)
        assert (counted["successes"], counted["falls"], counted["mean_length"]) == (
            again.successes,
            again.falls,
            again.mean_length,
        )
    successes = [c["successes"] for c in chosen["candidates"]]
    assert chosen["chosen_seed"] == [1, 2][successes.index(max(successes))]
    base = runs[chosen["chosen_seed"]]
    assert cfg.base_primitive_dir("forward") == base
    assert results[0]["chosen"]["chosen_seed"] == chosen["chosen_seed"]
    refined = tmp_path / "primitives" / "forward-refined"
    backward = json.loads((tmp_path / "primitives" / "backward-chosen.json").read_text())["chosen_seed"]
    marker = {
        "base_global_step": 512,
        "base_run": base.name,
        "backward_run": cfg.base_primitive_dir("backward").name,
    }
    assert json.loads((refined / "refined_from.json").read_text()) == marker
    assert json.loads((refined / "config.json").read_text())["seed"] == 1  # the primitive's own settings
    assert cfg.candidate_dir("backward", 1) == cfg.primitive_dir("backward")  # one run: as before

    files = [*(r / "checkpoint.pt" for r in runs.values()), tmp_path / "primitives" / "forward-chosen.json"]
    stamps = {p: p.stat().st_mtime_ns for p in files}
    run_stage(cfg, "primitives", workers=1)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps  # nothing trained or counted again
    recount = dataclasses.replace(cfg, candidate_episodes=2)
    run_stage(recount, "primitives", workers=1)
    assert json.loads((tmp_path / "primitives" / "forward-chosen.json").read_text())["episodes"] == 2
    assert {p: p.stat().st_mtime_ns for p in files[:2]} == {p: stamps[p] for p in files[:2]}

    # another Backward chosen (here by hand): the refinement started from the other one's states is refused
    # until --overwrite, which records its states and refines again
    other = 3 - backward
    path = tmp_path / "primitives" / "backward-chosen.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "chosen_seed": other}))
    with pytest.raises(ConfigChanged, match="backward_run"):
        run_stage(recount, "primitives", workers=1)
    run_stage(dataclasses.replace(recount, overwrite=True), "primitives", workers=1)
    again = json.loads((refined / "refined_from.json").read_text())
    assert again["backward_run"] == cfg.candidate_dir("backward", other).name
    with np.load(tmp_path / "primitives" / "forward-refine-starts.npz") as states:  # recorded again
        assert states["qpos"].shape[0] > 0
    assert (tmp_path / "primitives" / "forward-refine-starts.npz").stat().st_mtime >= path.stat().st_mtime


def test_candidates_counted_in_the_task_run_after_the_other_primitives_and_count_the_task_switching_at_once(
    tmp_path,
):
    """`candidate_score: task`: Balance's two runs are counted in Patrol itself, with the trained Forward and
    Backward, switching at once, on task seeds of their own; the counts are those of the task run with that run
    as Balance, the best is chosen; a rerun counts nothing again, another Forward counts again."""
    from control.hierarchy.controller import Composition
    from control.hierarchy.pipeline import (
        CANDIDATE_TASK_SEED,
        evaluate_composition,
        load_primitives,
        run_stage,
        task_env,
    )
    from control.hierarchy.policies import RunPolicy

    cfg = tiny_patrol(
        tmp_path,
        256,
        primitive_refine={},
        primitive_candidates={"balance": 2},
        candidate_score={"balance": "task"},
        candidate_episodes=2,
    )
    results = run_stage(cfg, "primitives", workers=2)
    assert [r["primitive"] for r in results] == ["forward", "backward", "balance"]
    path = tmp_path / "primitives" / "balance-chosen.json"
    chosen = json.loads(path.read_text())
    assert chosen["scored_in"] == "task" and chosen["episode_seeds_from"] == CANDIDATE_TASK_SEED
    assert [c["seed"] for c in chosen["candidates"]] == [1, 2] and chosen["episodes"] == 2
    env = task_env(cfg)
    others = load_primitives(cfg, env, ["forward", "backward"])
    for counted in chosen["candidates"]:
        run = cfg.candidate_dir("balance", counted["seed"])
        comp = Composition({**others, "balance": RunPolicy(run, env.observation_space, env.action_space)})
        again = evaluate_composition(env, comp, ["none"], 2, CANDIDATE_TASK_SEED)["none"]
        assert counted["counts"] == again["counts"] and counted["score"] == sum(again["counts"])
        assert "successes" not in counted  # not counted in Balance's own env
    scores = [c["score"] for c in chosen["candidates"]]
    assert chosen["chosen_seed"] == [1, 2][scores.index(max(scores))]
    assert cfg.base_primitive_dir("balance") == cfg.candidate_dir("balance", chosen["chosen_seed"])
    forward = tmp_path / "primitives" / "forward" / "checkpoint.pt"
    assert path.stat().st_mtime >= forward.stat().st_mtime  # counted after the others trained

    stamp = path.stat().st_mtime_ns
    run_stage(cfg, "primitives", workers=1)
    assert path.stat().st_mtime_ns == stamp  # nothing counted again
    forward.touch()  # Forward trained on: Balance's runs meet another Forward in the task
    run_stage(cfg, "primitives", workers=1)
    assert path.stat().st_mtime_ns > stamp
    own = dataclasses.replace(cfg, candidate_score={})  # counted in its own env: counted again, there
    run_stage(own, "primitives", workers=1)
    assert json.loads(path.read_text())["scored_in"] == "own"
    assert "successes" in json.loads(path.read_text())["candidates"][0]


def test_candidate_score_entries_are_checked_where_they_are_loaded():
    from control.hierarchy.config import ConfigError, load_config

    serve = {"primitive_candidates": {"hit": 3}}
    assert load_config("serve", candidate_score={"hit": "task"}, **serve).scored_in_task("hit")
    assert not load_config("serve", candidate_score={"hit": "own"}, **serve).scored_in_task("hit")
    with pytest.raises(ConfigError, match="candidate_score.hit: expected one of own, task, got 'tasks'"):
        load_config("serve", candidate_score={"hit": "tasks"}, **serve)
    with pytest.raises(
        ConfigError, match="candidate_score.hitt: 'hitt' is not a primitive .*did you mean 'hit'"
    ):
        load_config("serve", candidate_score={"hitt": "task"}, **serve)
    assert not load_config("serve", candidate_score={"toss": "task"}, **serve).scored_in_task(
        "toss"
    )  # one run
    with pytest.raises(ConfigError, match="candidate_score.toss: 'hit' trains from 'toss'"):
        load_config("serve", candidate_score={"toss": "task"}, primitive_candidates={"toss": 2})
    with pytest.raises(ConfigError, match="'toss' and 'hit' are both counted in the task"):
        load_config(
            "serve",
            candidate_score={"toss": "task", "hit": "task"},
            primitive_candidates={"toss": 2, "hit": 2},
            primitive_starts={},
        )
    with pytest.raises(ConfigError, match="candidate_score.forward: 'forward' is refined"):
        load_config(
            "patrol",
            candidate_score={"forward": "task"},
            primitive_candidates={"forward": 2},
            primitive_refine={"forward": {"from": "backward", "steps": 10}},
            primitive_starts={},
        )
    with pytest.raises(ConfigError, match="candidate_score: expected a mapping"):
        load_config("serve", candidate_score="task", **serve)


def test_primitive_candidates_entries_are_checked_where_they_are_loaded():
    from control.hierarchy.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="primitive_candidates.balanse: .*did you mean 'balance'"):
        load_config("patrol", primitive_candidates={"balanse": 3})
    for bad in (0, 2.5, "3", True):
        with pytest.raises(ConfigError, match="primitive_candidates.balance: expected a whole number"):
            load_config("patrol", primitive_candidates={"balance": bad})
    with pytest.raises(ConfigError, match="primitive_candidates: expected a mapping"):
        load_config("patrol", primitive_candidates=["balance"])
    with pytest.raises(ConfigError, match="primitive_candidates.park: scripted primitives"):
        load_config("toy", primitive_candidates={"park": 2})
    with pytest.raises(ConfigError, match="candidate_episodes: expected a whole number >= 1"):
        load_config("patrol", candidate_episodes=0)
    cfg = load_config("hurdle", primitive_candidates={"jump": 3}, primitive_ppo={"jump": {"seed": 5}})
    assert cfg.candidate_seeds("jump") == [5, 6, 7] and cfg.candidate_seeds("forward") == [1]
    assert cfg.candidate_dir("jump", 5).name == "jump" and cfg.candidate_dir("jump", 7).name == "jump-seed7"
