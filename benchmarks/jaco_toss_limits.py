"""What limits a straight toss on our Jaco arm (BENCHMARKS.md, "Toss, what limits it"):

1. the drive: the best straight-up speed of the grip site at the release height, for each arm drive, from a
   resolved-rate controller (a linear program over the joint speeds at each step, sideways speed held at zero)
   on the arm's real dynamics, without the ball;
2. the grasp: a scripted toss with the ball (grasp from above, then straight up at the joint limits, fingers
   opened and the hand braked at `--open-at`), printing the grip site's and the ball's upward speed per step.

    python benchmarks/jaco_toss_limits.py --open-at 0.45
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import mujoco
import numpy as np
from scipy.optimize import linprog

import control.envs  # noqa: F401  (registers the Hierarchy/ ids)
from control.hierarchy.jaco_model import BALL_DRIVE, ArmDrive
from control.hierarchy.jaco_skills import GRAVITY, TossRules


class Arm:
    """The grip site's Jacobian and two controllers on a Jaco env."""

    def __init__(self, raw):
        self.raw, self.m, self.d = raw, raw.model, raw.data
        self.jacp, self.jacr = np.zeros((3, self.m.nv)), np.zeros((3, self.m.nv))
        self.dofs = raw.arm_dofs[:6]

    def jacobians(self) -> tuple[np.ndarray, np.ndarray]:
        mujoco.mj_jacSite(self.m, self.d, self.jacp, self.jacr, self.raw.grip_site)
        return self.jacp[:, self.dofs], self.jacr[:, self.dofs]

    def grip_velocity(self) -> np.ndarray:
        return self.jacobians()[0] @ self.d.qvel[self.dofs]

    def move(self, velocity: np.ndarray, fingers: float) -> np.ndarray:
        """The action moving the grip site at `velocity` with the hand kept pointing down."""
        jp, jr = self.jacobians()
        jac = np.vstack([jp, jr])
        axis = self.d.site_xmat[self.raw.grip_site].reshape(3, 3)[:, 2]
        error = np.concatenate([velocity, 4.0 * np.cross(axis, [0.0, 0.0, -1.0])])
        speeds = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(6), error)
        return np.clip(np.concatenate([speeds / self.raw.speed_limits, [fingers] * 3]), -1.0, 1.0)

    def straight_up(self, xy: np.ndarray, fingers: float) -> np.ndarray:
        """The joint speeds (within their limits) that move the grip site up fastest, holding it over `xy`."""
        jp, _ = self.jacobians()
        limits = self.raw.speed_limits
        drift = 20.0 * (xy - self.raw.grip_pos()[:2])
        plan = linprog(-jp[2], A_eq=jp[:2], b_eq=drift, bounds=[(-v, v) for v in limits])
        return np.concatenate([plan.x / limits, [fingers] * 3])


def best_upward_speed(drive: ArmDrive, start_z: float) -> float:
    env = gym.make("Hierarchy/JacoToss-v0", drive=drive)
    env.reset(seed=0)
    raw = env.unwrapped
    arm = Arm(raw)
    start = np.array([*TossRules().spot, start_z])
    for _ in range(200):  # inverse kinematics to the start, at rest
        mujoco.mj_forward(arm.m, arm.d)
        jp, _ = arm.jacobians()
        arm.d.qpos[raw.arm_qpos[:6]] += jp.T @ np.linalg.solve(
            jp @ jp.T + 1e-4 * np.eye(3), start - raw.grip_pos()
        )
    arm.d.qvel[:] = 0.0
    mujoco.mj_forward(arm.m, arm.d)
    for _ in range(100):
        raw.do_simulation(raw._ctrl(arm.straight_up(start[:2], -1.0)), raw.frame_skip)
        if raw.grip_pos()[2] >= TossRules().release_height:
            return float(arm.grip_velocity()[2])
    return float("nan")


def scripted_toss(open_at: float, seed: int) -> None:
    env = gym.make("Hierarchy/JacoToss-v0")
    env.reset(seed=seed)
    raw = env.unwrapped
    arm = Arm(raw)
    ball = raw.object_pos()
    for steps, goal, fingers in ((40, 0.12, -1.0), (25, 0.01, -1.0)):  # above the ball, down to it
        for _ in range(steps):
            env.step(arm.move(4.0 * (ball + [0.0, 0.0, goal] - raw.grip_pos()), fingers))
    for _ in range(20):
        env.step(arm.move(np.zeros(3), 1.0))  # grasp
    for _ in range(15):
        env.step(arm.move(np.array([0.0, 0.0, 0.5]), 1.0))  # lift
    xy = raw.grip_pos()[:2].copy()
    for t in range(60):
        below = raw.grip_pos()[2] < open_at
        action = arm.straight_up(xy, 1.0) if below else arm.move(np.zeros(3), -1.0)
        _, _, terminated, truncated, info = env.step(action)
        print(
            f"step {t:2d}: grip z {raw.grip_pos()[2]:.3f} up {arm.grip_velocity()[2]:5.2f} m/s | ball z "
            f"{raw.object_pos()[2]:.3f} up {raw.object_vel()[2]:5.2f} m/s | ball from grip {raw.hand_distance():.3f} m"
            f" | fingers {np.round(arm.d.qpos[raw.arm_qpos[6:]], 2)}"
        )
        if terminated or truncated:
            held = not raw.skill.released
            print(f"ended: success {info['success']}, still held above the release height: {held}")
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--open-at", type=float, default=0.45, help="Grip height (m) where the hand opens and brakes."
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rules = TossRules()
    needed = np.sqrt(2 * GRAVITY * (rules.apex_height - rules.release_height))
    print(f"needed at the release height {rules.release_height} m: {needed:.2f} m/s upwards")
    for name, drive in (("cube envs' drive", ArmDrive()), ("ball envs' drive", BALL_DRIVE)):
        speeds = [best_upward_speed(drive, z) for z in (0.08, 0.2)]
        print(
            f"{name} ({drive.large_speed:g} / {drive.small_speed:g} rad/s): best upward speed at "
            f"{rules.release_height} m {min(speeds):.2f}-{max(speeds):.2f} m/s (from 0.08 m and 0.2 m)"
        )
    scripted_toss(args.open_at, args.seed)


if __name__ == "__main__":
    main()
