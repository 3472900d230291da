"""The Walker2d-v5 primitives and tasks step, reset, report subtasks, success and the expected primitive, and
terminate as documented; snapshots restore a state exactly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import control.envs  # noqa: F401  (registers the Hierarchy/ ids)
from control.hierarchy.registration import NAMESPACE, WALKER_ENVS
from control.hierarchy.walker import CURB_PASS_MARGIN, FEET_DIM, OBS_DIM

ZERO = np.zeros(6)


def make(name: str, **kwargs):
    env = gym.make(f"{NAMESPACE}/{name}", **kwargs)
    return env, env.unwrapped


def teleport(raw, x: float) -> None:
    """Move the whole walker along x (the root slide joint), keeping its pose and speed."""
    qpos, qvel = raw.data.qpos.copy(), raw.data.qvel.copy()
    qpos[0] = x
    raw.set_state(qpos, qvel)


@pytest.mark.parametrize("name", sorted(WALKER_ENVS))
def test_each_walker_env_steps_resets_and_reports(name):
    env, _ = make(name)
    obs, info = env.reset(seed=0)
    assert obs.shape == (OBS_DIM,) and info["subtasks"] == 0 and isinstance(info["primitive"], str)
    rng = np.random.default_rng(0)
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 6))
        assert np.isfinite(obs).all() and np.isfinite(reward)
        assert {"success", "subtasks", "primitive", "collision"} <= set(info)
        if terminated or truncated:
            obs, info = env.reset()
    env.close()


def test_hurdle_expects_jump_near_a_curb_and_counts_it_once_passed():
    env, raw = make("Walker2dHurdle-v0")
    obs, info = env.reset(seed=3)
    curbs = raw.obstacles
    assert [o.kind for o in curbs] == ["curb"] * 5
    gaps = np.diff([o.start for o in curbs])
    assert 7.5 <= curbs[0].start <= 8.5 and ((gaps >= 8.0) & (gaps <= 12.0)).all()
    assert info["primitive"] == "forward" and obs[17:].tolist() == [4.0, 4.0, 0.0, 0.0]
    teleport(raw, curbs[0].start - 3.0)
    obs, _, terminated, _, info = env.step(ZERO)
    assert not terminated and info["primitive"] == "jump"
    assert obs[17] == pytest.approx(3.0, abs=0.05) and obs[19] == pytest.approx(0.25)
    teleport(raw, curbs[0].end + CURB_PASS_MARGIN + 0.5)
    obs, reward, terminated, _, info = env.step(ZERO)
    assert info["success"] and info["subtasks"] == 1 and not terminated and reward > 50
    assert info["primitive"] == "forward"  # the next curb is out of sight


def test_hurdle_ends_with_success_after_five_curbs():
    env, raw = make("Walker2dHurdle-v0")
    env.reset(seed=1)
    for k, curb in enumerate(raw.obstacles):
        teleport(raw, curb.end + CURB_PASS_MARGIN + 0.5)
        _, _, terminated, _, info = env.step(ZERO)
        assert info["success"] and info["subtasks"] == k + 1
        assert terminated == (k == 4)


def test_touching_a_curb_or_falling_terminates():
    env, raw = make("Walker2dHurdle-v0")
    env.reset(seed=2)
    teleport(raw, raw.obstacles[0].start + 0.1)  # the feet inside the curb
    _, reward, terminated, _, info = env.step(ZERO)
    assert terminated and info["collision"] and not info["success"]
    env.reset(seed=2)
    qpos = raw.data.qpos.copy()
    qpos[1] = 0.5  # the torso far below 0.8 m
    raw.set_state(qpos, raw.data.qvel)
    _, _, terminated, _, info = env.step(ZERO)
    assert terminated and not info["collision"]


def test_obstacle_course_expects_crawl_under_a_ceiling_and_allows_a_low_torso_there():
    env, raw = make("Walker2dObstacleCourse-v0")
    obs, info = env.reset(seed=4)
    kinds = [o.kind for o in raw.obstacles]
    assert sorted(kinds) == ["ceiling", "ceiling", "curb", "curb", "curb"]
    k = kinds.index("ceiling")
    raw.next_obstacle = k  # as if the obstacles before it had been passed
    teleport(raw, raw.obstacles[k].start - 2.0)
    qpos = raw.data.qpos.copy()
    qpos[1] = 0.5  # low: allowed near a ceiling (authors: 0.3 m there, 0.8 m elsewhere)
    raw.set_state(qpos, raw.data.qvel)
    obs, _, terminated, _, info = env.step(ZERO)
    assert info["primitive"] == "crawl" and obs[20] == pytest.approx(1.1) and obs[19] == 0.0
    assert not terminated


def test_the_jump_training_course_of_several_curbs_ends_after_the_last():
    env, raw = make("Walker2dJump-v0", curbs=3, gap=(4.0, 5.0))
    env.reset(seed=0)
    starts = [o.start for o in raw.obstacles]
    assert len(starts) == 3 and all(4.0 <= g <= 5.0 for g in np.diff(starts))
    for k, curb in enumerate(raw.obstacles):
        teleport(raw, curb.end + CURB_PASS_MARGIN + 0.3)
        _, _, terminated, _, info = env.step(ZERO)
        assert info["success"] and info["subtasks"] == k + 1 and terminated == (k == 2)
    with pytest.raises(ValueError, match="curbs"):
        gym.make(f"{NAMESPACE}/Walker2dJump-v0", curbs=9)


def test_jump_training_restarts_from_its_own_running_states_in_front_of_a_curb():
    env, raw = make("Walker2dJump-v0", restart_prob=1.0)
    env.reset(seed=0)
    assert raw.running_states == [] and raw.obstacles[0].start >= 5.5  # nothing kept yet: a normal start
    for _ in range(300):  # running fast on open ground: some of these states are kept
        qpos, qvel = raw.data.qpos.copy(), raw.data.qvel.copy()
        qpos[:3], qvel[0] = (0.0, 1.25, 0.0), 3.0
        raw.set_state(qpos, qvel)
        env.step(ZERO)
    assert 3 <= len(raw.running_states) <= 40
    kept = raw.running_states[0]
    obs, _ = env.reset(seed=1)
    assert raw.data.qpos[0] == 0.0 and raw.data.qvel[0] == pytest.approx(3.0, abs=0.5)
    assert 1.5 <= raw.obstacles[0].start <= 4.0 and obs[17] == pytest.approx(raw.obstacles[0].start, abs=1e-9)
    assert any(np.array_equal(raw.data.qvel, k[9:]) for k in raw.running_states) and kept.shape == (18,)
    raw.set_state(raw.init_qpos, raw.init_qvel)  # upright
    teleport(raw, raw.obstacles[0].end + CURB_PASS_MARGIN + 0.5)
    _, _, terminated, _, info = env.step(ZERO)
    assert info["subtasks"] == 1 and not terminated  # passed; it must still run on past the finish
    raw.set_state(raw.init_qpos, raw.init_qvel)
    teleport(raw, raw.obstacles[0].end + 5.5)
    _, _, terminated, _, info = env.step(ZERO)
    assert terminated and info["success"]


def test_jump_pays_for_feet_below_the_curb_top_near_it_and_not_elsewhere():
    env, raw = make("Walker2dJump-v0")
    terms = []
    for before, lift in ((1.0, 0.0), (0.25, 0.0), (0.2, 0.3), (-0.05, 0.35)):  # torso metres before the curb
        env.reset(seed=0)
        qpos = raw.data.qpos.copy()
        qpos[0], qpos[1] = raw.obstacles[0].start - before - 0.2, qpos[1] + lift
        raw.set_state(qpos, raw.data.qvel * 0)
        _, _, terminated, _, info = env.step(ZERO)
        assert not terminated
        terms.append(info.get("reward_clearance", 0.0))
    far, on_the_ground_near, lifted_near, lifted_over = terms
    assert far == 0.0 and lifted_near == 0.0 and lifted_over == 0.0
    assert -2 * 2.0 <= on_the_ground_near < -2.0  # both feet, most of the curb's height below its top


def test_jump_curb_heights_draw_each_episodes_curb_and_it_collides_at_that_height():
    env, raw = make("Walker2dJump-v0", curb_heights=(0.05, 0.35))
    heights = []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        teleport(raw, raw.obstacles[0].start - 1.0)  # the curb in sight
        obs = env.step(ZERO)[0]
        heights.append(raw.curb_height)
        assert obs[19] == raw.curb_height  # the observation carries this episode's height
    assert 0.05 <= min(heights) < 0.15 and 0.25 < max(heights) <= 0.35 and len(set(heights)) == 20
    assert make("Walker2dJump-v0")[1].curb_height == 0.25  # without the option: the shape's height
    for height, touches in ((0.08, False), (0.25, True)):  # feet 0.13-0.16 m up over the curb's start
        env, raw = make("Walker2dJump-v0", curb_heights=(height, height))
        env.reset(seed=0)
        qpos = raw.data.qpos.copy()
        qpos[0], qpos[1] = raw.obstacles[0].start - 0.1, qpos[1] + 0.1
        raw.set_state(qpos, raw.data.qvel * 0)
        _, _, terminated, _, info = env.step(ZERO)
        assert info["collision"] is touches and terminated is touches
    snapshot = raw.get_snapshot()
    env.reset(seed=1)
    raw.curb_height = 0.1
    raw.set_snapshot(snapshot)
    assert raw.curb_height == 0.25 and raw.model.geom_size[raw.curb_ids[0], 2] == 0.125
    with pytest.raises(ValueError, match="curb_heights"):
        make("Walker2dJump-v0", curb_heights=(0.3, 0.1))


@pytest.mark.parametrize("name", ["Walker2dJump-v0", "Walker2dForward-v0", "Walker2dObstacleCourse-v0"])
def test_feet_features_give_each_foots_distance_to_the_next_obstacle_and_its_height(name):
    plain, _ = make(name)
    env, raw = make(name, feet_features=True)
    assert env.observation_space.shape == (OBS_DIM + FEET_DIM,)
    obs, plain_obs = env.reset(seed=3)[0], plain.reset(seed=3)[0]
    assert np.array_equal(obs[:OBS_DIM], plain_obs)  # the same env, inputs appended
    if raw.obstacles:
        teleport(raw, raw.obstacles[0].start - 1.0)  # the next obstacle 1 m ahead of the torso
        obs = env.step(ZERO)[0]
    feet = raw.data.geom_xpos[raw.foot_geoms]
    ahead = raw.obstacles[0].start - feet[:, 0] if raw.obstacles else np.full(2, raw.detect_distance)
    assert np.allclose(obs[OBS_DIM::2], ahead) and np.allclose(obs[OBS_DIM + 1 :: 2], feet[:, 2])
    if raw.obstacles:
        assert 0.5 < ahead.min() and ahead.max() < 1.5  # the feet are near the torso
    with pytest.raises(ValueError, match="feet_features"):
        make(name, feet_features="yes")


def test_a_walker_falls_by_height_only_unless_an_angle_limit_is_set():
    for max_angle, falls in ((None, False), (1.0, True)):
        env, raw = make("Walker2dForward-v0", max_angle=max_angle)
        env.reset(seed=0)
        qpos = raw.data.qpos.copy()
        qpos[2] = 1.2  # leaning 69 degrees, the torso still above 0.8 m (authors: only the height counts)
        raw.set_state(qpos, raw.data.qvel * 0)
        _, _, terminated, _, info = env.step(ZERO)
        assert raw.data.qpos[1] > 0.8 and terminated == falls and not info["success"]


def test_patrol_turns_at_each_goal():
    env, raw = make("Walker2dPatrol-v0")
    _, info = env.reset(seed=0)
    direction = raw.direction
    assert info["primitive"] == ("forward" if direction == 1 else "backward")
    assert raw.data.qpos[0] == pytest.approx(-2.0 * direction, abs=0.1)
    teleport(raw, direction * 2.2)
    _, _, terminated, _, info = env.step(ZERO)
    assert info["success"] and info["subtasks"] == 1 and not terminated
    assert raw.direction == -direction and info["primitive"] == "balance"  # first a balance phase (authors)
    for _ in range(raw.balance_steps - 1):
        raw.set_state(raw.init_qpos + np.eye(9)[0] * direction * 2.2, raw.init_qvel)  # standing at the goal
        _, _, terminated, _, info = env.step(ZERO)
        assert info["primitive"] == "balance" and not terminated and not info["success"]
    _, _, _, _, info = env.step(ZERO)
    assert info["primitive"] == ("backward" if direction == 1 else "forward") and info["subtasks"] == 1
    env, raw = make("Walker2dPatrol-v0", balance_steps=0)
    env.reset(seed=0)
    teleport(raw, raw.direction * 2.2)
    _, _, _, _, info = env.step(ZERO)
    assert info["success"] and info["primitive"] != "balance"


def test_balance_pays_for_standing_still():
    env, raw = make("Walker2dBalance-v0")
    env.reset(seed=0)
    rewards = {}
    for speed in (0.0, 2.0):
        raw.set_state(raw.init_qpos, raw.init_qvel + np.eye(9)[0] * speed)
        _, rewards[speed], _, _, info = env.step(ZERO)
        assert info["primitive"] == "balance"
    assert rewards[0.0] > rewards[2.0] + 1.0  # -|v|: moving costs
    env, raw = make("Walker2dBalance-v0", weights={"balance_speed_cap": 0.5})
    env.reset(seed=0)
    capped = {}
    for speed in (0.0, 2.0):
        raw.set_state(raw.init_qpos, raw.init_qvel + np.eye(9)[0] * speed)
        _, capped[speed], _, _, _ = env.step(ZERO)
    assert capped[0.0] == pytest.approx(rewards[0.0])  # standing: the same reward
    assert 0.5 < capped[0.0] - capped[2.0] < 0.8  # 2 m/s costs 0.5 + 0.1 x 1.5, not 2
    assert capped[2.0] > 0.0  # so staying up pays more than a fall
    raw.set_state(raw.init_qpos, raw.init_qvel + np.eye(9)[0] * 3.0)
    _, faster, _, _, _ = env.step(ZERO)
    assert capped[2.0] - faster > 0.05  # and slowing down still pays


@pytest.mark.parametrize("env_id", ["Walker2dBalance-v0", "Walker2dForward-v0", "Walker2dBackward-v0"])
def test_walker_primitives_start_from_recorded_states(tmp_path, env_id):
    env, raw = make(env_id)
    env.reset(seed=0)
    qpos = np.tile(raw.init_qpos, (3, 1))
    qvel = np.zeros((3, 9))
    qpos[:, 0], qvel[:, 0] = [4.0, 7.0, -2.0], [2.5, -3.0, 3.5]  # x is moved to 0; the speeds are kept
    np.savez(tmp_path / "starts.npz", qpos=qpos, qvel=qvel)
    env, raw = make(env_id, start_states=str(tmp_path / "starts.npz"), start_prob=0.5)
    speeds, xs = [], []
    for seed in range(200):
        env.reset(seed=seed)
        speeds.append(raw.data.qvel[0])
        xs.append(raw.data.qpos[0])
    recorded = np.isin(np.round(speeds, 6), [2.5, -3.0, 3.5])
    assert (np.asarray(xs)[recorded] == 0.0).all()  # recorded starts are moved to x = 0
    assert 70 <= recorded.sum() <= 130 and len(set(np.round(np.asarray(speeds)[recorded], 6))) == 3
    env, raw = make(env_id, start_states=str(tmp_path / "starts.npz"), start_prob=0.0)
    for seed in range(20):
        env.reset(seed=seed)
        assert abs(raw.data.qvel[0]) < 2.2  # standing starts only
    np.savez(tmp_path / "bad.npz", qpos=qpos[:, :5], qvel=qvel[:, :5])
    with pytest.raises(ValueError, match="bad.npz"):
        make(env_id, start_states=str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="start_prob"):
        make(env_id, start_prob=1.5)


def test_primitives_succeed_as_documented():
    env, raw = make("Walker2dJump-v0")
    env.reset(seed=0)
    assert len(raw.obstacles) == 1 and 5.5 <= raw.obstacles[0].start <= 8.5
    teleport(raw, raw.obstacles[0].end + CURB_PASS_MARGIN + 0.5)
    _, reward, terminated, _, info = env.step(ZERO)
    assert info["success"] and info["subtasks"] == 1 and not terminated  # the curb: a subtask...
    assert reward > 50
    teleport(raw, 15.5)
    _, _, terminated, _, info = env.step(ZERO)
    assert terminated and info["success"]  # ...and running on past 15 m (authors): the episode's goal
    env, raw = make("Walker2dJump-v0", finish_x=None)
    env.reset(seed=0)
    teleport(raw, raw.obstacles[0].end + CURB_PASS_MARGIN + 0.5)
    _, _, terminated, _, info = env.step(ZERO)
    assert terminated and info["success"]  # without a finish line the curb is the goal
    env, raw = make("Walker2dForward-v0", subtask_steps=3)
    env.reset(seed=0)
    results = [env.step(ZERO) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]  # truncated at the time limit...
    assert results[-1][4]["success"] and not any(
        r[2] for r in results
    )  # ...which is a walking primitive's success


def test_snapshot_restores_the_state_exactly():
    env, raw = make("Walker2dObstacleCourse-v0")
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, 6))
    snapshot = raw.get_snapshot()
    actions = rng.uniform(-1, 1, (15, 6))
    first = [env.step(a)[0] for a in actions]
    env.reset(seed=99)  # another course
    raw.set_snapshot(snapshot)
    again = [env.step(a)[0] for a in actions]
    np.testing.assert_allclose(np.array(again), np.array(first))
    assert [o.start for o in raw.obstacles] == [o[1] for o in snapshot["obstacles"]]


def test_running_states_are_recorded_after_the_run_up_and_load_as_balance_starts(tmp_path):
    from control.hierarchy.policies import ScriptedPolicy
    from control.hierarchy.start_states import SKIP_STEPS, record_running_states, save_states

    env, raw = make("Walker2dForward-v0")
    lengths = []
    for k in range(3):  # how long each zero-action episode lasts (it falls)
        env.reset(seed=k)
        steps, done = 0, False
        while not done and steps < 120:
            _, _, terminated, truncated, _ = env.step(ZERO)
            steps, done = steps + 1, terminated or truncated
        lengths.append(steps)
    qpos, qvel = record_running_states(env, ScriptedPolicy(lambda obs: ZERO), 3, 0, max_steps=120)
    # every 4th step from step 50, less the last 20 steps of a fall
    expected = sum(len([t for t in range(SKIP_STEPS, n - 1) if t % 4 == 0][:-5]) for n in lengths)
    assert qpos.shape == (expected, 9) and qvel.shape == (expected, 9) and expected > 0
    save_states(tmp_path / "run.npz", qpos, qvel)
    env, raw = make("Walker2dBalance-v0", start_states=str(tmp_path / "run.npz"), start_prob=1.0)
    env.reset(seed=0)
    assert any(np.array_equal(raw.data.qvel, row) for row in qvel)  # started from one of them
    none = record_running_states(env, ScriptedPolicy(lambda obs: ZERO), 1, 0, max_steps=SKIP_STEPS)
    assert none[0].shape == (0, 9)  # nothing before the run-up's end


def takeoff_paid(raw, env, *feet_before_curb: float) -> float:
    """The take-off term summed while the walker, dropped from 5 cm up, touches down with its feet centred each
    distance before the curb in turn (one drop per distance)."""
    total = 0.0
    for before in feet_before_curb:
        qpos = raw.init_qpos.copy()
        qpos[1] += 0.05
        raw.set_state(qpos, raw.init_qvel * 0)
        foot_x = raw.data.geom_xpos[raw.foot_geoms, 0].mean()
        teleport(raw, raw.data.qpos[0] + raw.obstacles[0].start - before - foot_x)
        raw.feet_down = [False, False]  # in the air
        for _ in range(30):
            _, _, terminated, _, info = env.step(ZERO)
            assert not terminated
            total += info.get("reward_takeoff", 0.0)
    return total


def test_the_takeoff_term_pays_a_touch_down_in_its_window_once_and_charges_back_a_nearer_one():
    weights = {"takeoff": 7.0, "takeoff_window": [0.6, 1.0]}
    for drops, paid in (
        ((0.8,), 7.0),  # in the window
        ((0.8, 0.9), 7.0),  # paid once per curb
        ((1.5,), 0.0),  # too far (the curb in sight)
        ((0.8, 0.3), 0.0),  # then a step nearer the curb: charged back
        ((0.3, 0.8), 0.0),  # nearer first: the window no longer pays
    ):
        env, raw = make("Walker2dJump-v0", weights=weights)
        env.reset(seed=0)
        assert takeoff_paid(raw, env, *drops) == paid, drops
    env, raw = make("Walker2dJump-v0")  # off by default: no term
    env.reset(seed=0)
    assert takeoff_paid(raw, env, 0.8) == 0.0
    with pytest.raises(ValueError, match="takeoff_window"):
        make("Walker2dJump-v0", weights={"takeoff": 1.0, "takeoff_window": [1.0, 0.5]})
