"""benchmarks/walker_jump.py's contact classes on scripted states: a foot pressed into a curb's top is 'top',
into its front face 'face'."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from walker_jump import takeoff_summary, touch_kind  # noqa: E402


def foot_extent(raw, gid: int) -> tuple[float, float, float]:
    """The foot capsule's (lowest z, rearmost x, foremost x)."""
    centre, axis = raw.data.geom_xpos[gid], raw.data.geom_xmat[gid].reshape(3, 3)[:, 2]
    radius, half = raw.model.geom_size[gid, 0], raw.model.geom_size[gid, 1]
    xs = centre[0] + np.array([-1, 1]) * half * axis[0]
    zs = centre[2] + np.array([-1, 1]) * half * axis[2]
    return zs.min() - radius, xs.min() - radius, xs.max() + radius


def pressed(height: float, where: str):
    """The Jump env with one curb `height` high and the right foot pressed 1 cm into its top or front face."""
    env = gym.make("Hierarchy/Walker2dJump-v0", curb_heights=[height, height])
    env.reset(seed=0)
    raw = env.unwrapped
    curb, gid = raw.obstacles[0], raw.foot_geoms[0]
    qpos, qvel = raw.init_qpos.copy(), np.zeros(raw.model.nv)
    raw.set_state(qpos, qvel)
    low, rear, front = foot_extent(raw, gid)
    if where == "top":  # over the curb's middle, 1 cm into its top
        qpos[0] += (curb.start + curb.end) / 2 - (rear + front) / 2
        qpos[1] += height - 0.01 - low
    else:  # in front of it, low, its foremost point 1 cm into the face
        qpos[0] += curb.start + 0.01 - front
        qpos[1] += 0.1 - low
    raw.set_state(qpos, qvel)
    mujoco.mj_forward(raw.model, raw.data)
    return env, raw


@pytest.mark.parametrize(("height", "where"), [(0.1, "top"), (0.4, "face")])
def test_a_foot_pressed_into_the_curb_is_classed_by_the_contact_normal(height, where):
    env, raw = pressed(height, where)
    assert touch_kind(raw) == where
    env.close()


def test_a_misspelt_ppo_setting_is_refused_with_its_name(tmp_path):
    import subprocess

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "walker_jump.py"
    out = subprocess.run(
        [sys.executable, str(script), "train", "--forward", str(tmp_path), "--out", str(tmp_path / "j")]
        + ["--ppo-kwargs", '{"gae_lamda": 0.99}'],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "gae_lamda" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "j").exists()


def test_the_takeoff_summary_counts_the_curbs_reached_by_where_the_nearest_touch_down_was():
    rows = [
        {"outcome": "passed", "last_touch_downs": [(1, 2.7), (1, 0.9)]},  # in the window
        {"outcome": "collision", "last_touch_downs": [(1, 2.6), (1, 1.1)]},  # beyond it
        {"outcome": "passed", "last_touch_downs": [(0, 0.8), (1, 0.5)]},  # the nearer one is outside
        {"outcome": "collision", "last_touch_downs": [(0, 0.7)]},  # in the window
        {"outcome": "fall", "last_touch_downs": [(1, 0.9)]},  # never reached the curb: not counted
        {"outcome": "collision", "last_touch_downs": []},  # no touch-down before it: not counted
    ]
    assert takeoff_summary(rows, (0.65, 1.05)) == {
        "in_window": {"passed": 1, "reached": 2},
        "outside": {"passed": 1, "reached": 2},
    }
