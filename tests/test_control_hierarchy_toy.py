"""The hierarchy pipeline end to end on the small point-line task: switching at once fails, an AIRL transition
policy with the Double-DQN switch (or the fixed rule) raises the success count; a killed stage resumes; task
configs load from YAML with clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from control.__main__ import main as cli
from control.hierarchy.config import load_config
from control.hierarchy.pipeline import report, run_stage
from control.hierarchy.switch import EPISODE_COLUMNS, read_episodes


def test_transition_and_switch_raise_success_above_switching_at_once(tmp_path, capsys):
    assert (
        cli(
            [
                "hierarchy",
                "all",
                "--task",
                "toy",
                "--seeds",
                "1",
                "--root",
                str(tmp_path),
                "--eval-episodes",
                "20",
            ]
        )
        == 0
    )
    summary = report(load_config("toy", root=str(tmp_path), seeds=[1]))["policies"]
    assert summary["none"]["mean"] <= 1.0  # the dash's end state is outside the park's initiation set
    assert summary["dqn"]["mean"] >= 3.5 and summary["fixed"]["mean"] >= 3.5  # max 4
    evaluation = json.loads((tmp_path / "toy" / "s1" / "evaluation.json").read_text())
    assert evaluation["results"]["dqn"]["transition_steps"] > 0
    switch_log = read_episodes(tmp_path / "toy" / "s1" / "switches" / "dash-park" / "episodes.csv")
    outcomes = [float(row["outcome"]) for row in switch_log]
    assert len(outcomes) == 200 and sum(o > 0 for o in outcomes[-40:]) > sum(o > 0 for o in outcomes[:40])
    assert '"report"' in capsys.readouterr().out


def test_a_killed_transition_stage_resumes_from_its_run_folder(tmp_path):
    root, yaml_path = str(tmp_path), tmp_path / "toy.yaml"
    yaml_path.write_text("transition:\n  steps: 6144\n  checkpoint_every: 1024\n")
    cfg = load_config("toy", str(yaml_path), root=root, seeds=[1])
    run_stage(cfg, "primitives")
    args = [sys.executable, "-m", "control", "hierarchy", "transitions", "--task", "toy", "--seeds", "1"]
    args += ["--root", root, "--config", str(yaml_path)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = cfg.transition_dir(1, ("dash", "park")) / "checkpoint.pt", time.time() + 120
    while time.time() < deadline and not ckpt.is_file():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(ckpt, weights_only=True)
    assert 0 < saved["global_step"] < cfg.transition.steps and "discriminator" in saved["hooks"]
    starts = cfg.task_dir(1) / "transitions" / "starts-dash-park.json"
    stamp = starts.stat().st_mtime
    result = run_stage(cfg, "transitions")[0]["transitions"]["dash-park"]
    assert result["global_step"] == cfg.transition.steps
    assert starts.stat().st_mtime == stamp  # the saved hand-over starts were reused


def test_the_switch_resumes_its_episode_count(tmp_path):
    cfg = load_config("toy", root=str(tmp_path), seeds=[1])
    cfg.transition.steps, cfg.switch.episodes, cfg.switch.checkpoint_every = 1024, 30, 10
    for stage in ("primitives", "transitions", "switch"):
        run_stage(cfg, stage)
    log = cfg.switch_dir(1, ("dash", "park")) / "episodes.csv"
    with log.open("a") as f:  # what a killed run wrote after its last checkpoint
        f.write("31,3,1.0,0.5,100\n")
    cfg.switch.episodes = 50
    run_stage(cfg, "switch")
    assert log.read_text().splitlines()[0] == ",".join(EPISODE_COLUMNS)  # one header row
    episodes = [int(row["episode"]) for row in read_episodes(log)]
    assert episodes == list(range(1, 51))


def test_task_config_from_yaml(tmp_path):
    path = tmp_path / "hurdle.yaml"
    path.write_text(
        "seeds: [4, 5]\nswitch:\n  learning_rate: 1e-4\n  hidden: [32, 32]\ntransition:\n  steps: 1000\n"
    )
    cfg = load_config("hurdle", str(path))
    assert cfg.seeds == [4, 5] and cfg.switch.learning_rate == 1e-4 and cfg.switch.hidden == (32, 32)
    assert cfg.transition.steps == 1000 and cfg.transition.gamma == 0.995  # the paper's, untouched
    assert cfg.pair_list == [("forward", "jump"), ("jump", "forward")]
    path.write_text("switch:\n  learning_rat: 1\n")
    with pytest.raises(ValueError, match="unknown field 'learning_rat'"):
        load_config("hurdle", str(path))
    with pytest.raises(ValueError, match="unknown hierarchical task 'maze'"):
        load_config("maze")


def test_a_run_counts_as_finished_at_its_last_whole_rollout(tmp_path):
    from control.hierarchy.pipeline import _finished

    (tmp_path / "config.json").write_text(json.dumps({"num_envs": 1, "num_steps": 2048}))
    assert not _finished(tmp_path, 800_000)  # no summary yet
    (tmp_path / "summary.json").write_text(json.dumps({"global_step": 798_720}))  # 390 rollouts of 2048
    assert _finished(tmp_path, 800_000) and not _finished(tmp_path, 802_816)


def test_stages_run_over_seeds_in_worker_processes(tmp_path):
    cfg = load_config("toy", root=str(tmp_path), seeds=[1, 2], eval_episodes=3)
    run_stage(cfg, "primitives")
    results = run_stage(cfg, "evaluate", workers=2)  # each seed a job of control.sweep.map_jobs
    assert [r["seed"] for r in results] == [1, 2]
    assert all(r["results"]["none"]["counts"] == [1, 1, 1] for r in results)  # no transitions yet: 1 of 4
    assert report(cfg)["seeds"] == [1, 2]


def test_a_slower_discriminator_takes_its_set_steps_and_leaves_the_policy_more_reward(tmp_path):
    """The discriminator balance options: `airl.updates` minibatch steps per rollout instead of passes over it,
    and `airl.max_accuracy`, which skips the steps where the discriminator already wins. With 1 step per rollout
    it makes exactly that many Adam steps; both options separate the policy from the expert less than 3 passes
    per rollout do (the policy's D stays higher: more reward to learn from)."""
    import dataclasses

    from control.hierarchy.airl import AIRLHooks, ExpertData
    from control.hierarchy.pipeline import collect_starts, task_env, train_transition

    policy_d, adam_steps, accuracy = {}, {}, {}
    for name, airl in (
        ("fast", {"epochs": 3}),
        ("capped", {"epochs": 3, "max_accuracy": 0.7}),
        ("slow", {"updates": 1}),
    ):
        cfg = load_config("toy", root=str(tmp_path / name), seeds=[1])
        cfg.transition.steps = 4096
        cfg.airl = dataclasses.replace(cfg.airl, **airl)
        run_stage(cfg, "primitives")
        collect_starts(cfg, 1, ("dash", "park"), task_env(cfg))
        hooks = AIRLHooks(
            ExpertData.load(str(cfg.primitive_dir("park") / "initiation.npz")), cfg.airl, cfg.transition.gamma
        )
        train_transition(cfg, 1, ("dash", "park"), hooks.expert, hooks)
        policy_d[name], accuracy[name] = hooks.stats["airl/policy_D"], hooks.stats["airl/accuracy"]
        adam_steps[name] = max(int(s["step"]) for s in hooks.optimizer.state_dict()["state"].values())
    rollouts = 4096 // (cfg.transition.num_envs * cfg.transition.num_steps)
    assert adam_steps["slow"] == rollouts and adam_steps["fast"] > 10 * rollouts
    assert adam_steps["capped"] < adam_steps["fast"] and accuracy["capped"] < accuracy["fast"] - 0.05
    assert policy_d["slow"] > policy_d["fast"] + 0.1 and policy_d["capped"] > policy_d["fast"] + 0.1


def test_chains_train_each_seed_twice_and_evaluate_each_policy_with_its_validated_chain(tmp_path):
    """`chains: 2`: the transitions and switches of seed 1 are trained again with seed 1001 (its own folder);
    each policy is evaluated with the chain that did best on the validation episodes, which are not the
    evaluation's, and the recorded result is that chain's own."""
    import gymnasium as gym

    from control.hierarchy.config import ConfigError
    from control.hierarchy.pipeline import (
        EVAL_SEED,
        VALIDATION_SEED,
        composition_for_seed,
        evaluate_composition,
    )

    cfg = load_config("toy", root=str(tmp_path), seeds=[1], eval_episodes=10, chains=2, chain_episodes=6)
    assert cfg.training_seeds == [1, 1001]
    for stage in ("primitives", "transitions", "switch"):
        run_stage(cfg, stage, workers=2)
    for chain in (1, 1001):
        assert (cfg.transition_dir(chain, ("dash", "park")) / "checkpoint.pt").is_file()
        assert (cfg.switch_dir(chain, ("dash", "park")) / "checkpoint.pt").is_file()
    evaluation = run_stage(cfg, "evaluate")[0]
    chains = evaluation["chains"]
    assert set(chains) == {"none", "fixed", "dqn"} == set(evaluation["results"])
    env = gym.make(cfg.task_env, **cfg.task_kwargs)
    for mode in ("fixed", "dqn"):
        means = {int(c): m for c, m in chains[mode]["validation_means"].items()}
        assert set(means) == {1, 1001}
        assert chains[mode]["chain_seed"] == max(means, key=lambda c: (means[c], -c))
        chosen = composition_for_seed(cfg, chains[mode]["chain_seed"], env)
        again = evaluate_composition(env, chosen, [mode], 6, VALIDATION_SEED + 1000)[mode]["mean"]
        assert again == means[chains[mode]["chain_seed"]]
        counts = evaluate_composition(env, chosen, [mode], 10, EVAL_SEED + 1000)[mode]["counts"]
        assert counts == evaluation["results"][mode]["counts"]
    env.close()
    assert report(cfg)["seeds"] == [1] and not (tmp_path / "toy" / "s1001" / "evaluation.json").exists()
    with pytest.raises(ConfigError, match="chains: expected a whole number"):
        load_config("toy", root=str(tmp_path), chains=0)
    with pytest.raises(ConfigError, match="chain 1 trains with seed 1001"):
        load_config("toy", root=str(tmp_path), seeds=[1, 1001], chains=2)


def test_handover_starts_switches_collects_the_switch_starts_again_with_the_trained_switches(tmp_path):
    """`handover_starts: switches`: the switch trains from hand-over snapshots collected (into switches/) with
    the switches trained so far, other episodes than the transition's; the 'trained' hand-over mode runs the DQN
    switch where a pair has one and the fixed rule elsewhere; a misspelt value is a ConfigError."""
    import gymnasium as gym

    from control.hierarchy.config import ConfigError
    from control.hierarchy.controller import run_episode
    from control.hierarchy.pipeline import composition_for_seed, starts_path, switch_starts_path
    from control.hierarchy.transition_env import load_snapshots

    cfg = load_config("toy", root=str(tmp_path), seeds=[1], eval_episodes=10, handover_starts="switches")
    for stage in ("primitives", "transitions", "switch"):
        run_stage(cfg, stage)
    pair = ("dash", "park")
    chain, transition = (load_snapshots(p(cfg, 1, pair)) for p in (switch_starts_path, starts_path))
    assert len(chain) == cfg.starts_per_pair and (cfg.switch_dir(1, pair) / "checkpoint.pt").is_file()
    assert [(s["x"], s["v"]) for s in chain] != [(s["x"], s["v"]) for s in transition]  # other episodes
    summary = run_stage(cfg, "evaluate")[0]["results"]
    assert summary["dqn"]["mean"] >= summary["none"]["mean"] + 1.0
    env = gym.make(cfg.task_env, **cfg.task_kwargs)
    comp = composition_for_seed(cfg, 1, env)
    steps = {mode: run_episode(env, comp, mode, 5).transition_steps for mode in ("fixed", "dqn", "trained")}
    assert steps["trained"] == steps["dqn"] != steps["fixed"]
    comp.switches.clear()
    assert run_episode(env, comp, "trained", 5).transition_steps == steps["fixed"]
    env.close()
    with pytest.raises(
        ConfigError, match="handover_starts: expected one of fixed, switches, chain, got 'chians'"
    ):
        load_config("toy", root=str(tmp_path), handover_starts="chians")


def test_handover_starts_chain_trains_each_pair_s_switch_before_the_next_pair_s_starts(tmp_path):
    """`handover_starts: chain`: the transitions stage trains each pair's transition and then its switch; the
    next pair's starts are the hand-overs of the task run with that switch deciding (mode 'trained'), not the
    fixed rule's."""
    import gymnasium as gym

    from control.hierarchy.controller import Composition, collect_handover_snapshots
    from control.hierarchy.pipeline import composition_for_seed, starts_path
    from control.hierarchy.transition_env import load_snapshots

    pairs = [["dash", "park"], ["park", "dash"]]
    cfg = load_config("toy", root=str(tmp_path), seeds=[1], handover_starts="chain", pairs=pairs)
    run_stage(cfg, "primitives")
    run_stage(cfg, "transitions")
    for pair in (("dash", "park"), ("park", "dash")):
        assert (cfg.switch_dir(1, pair) / "checkpoint.pt").is_file()  # trained in the transitions stage
    env = gym.make(cfg.task_env, **cfg.task_kwargs)
    full = composition_for_seed(cfg, 1, env)
    first = ("dash", "park")
    before = Composition(
        full.primitives,
        {first: full.transitions[first]},
        {first: full.switches[first]},
        full.horizon,
        full.fixed_steps,
    )
    saved = load_snapshots(starts_path(cfg, 1, ("park", "dash")))

    def collected(mode: str) -> list:
        found = collect_handover_snapshots(
            env, before, [("park", "dash")], cfg.starts_per_pair, 7919, cfg.start_episodes, mode
        )
        return [(s["x"], s["v"], s["successes"]) for s in found[("park", "dash")]]

    assert [(s["x"], s["v"], s["successes"]) for s in saved] == collected("trained") != collected("fixed")
    env.close()
