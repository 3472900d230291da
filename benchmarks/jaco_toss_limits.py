"""What limits a straight toss on our Jaco arm (BENCHMARKS.md, "Toss, what limits it"):

1. the drive: the best straight-up speed of the grip site at the release height, for each arm drive, from a
   resolved-rate controller (a linear program over the joint speeds at each step, sideways speed held at zero)
   on the arm's real dynamics, without the ball;
2. the grasp: a scripted toss with the ball (grasp from above, then straight up at the joint limits, fingers
   opened and the hand braked at `--open-at`), printing the grip site's and the ball's upward speed per step;
3. the palm-up reach (`--reach`): how far above horizontal the hand can point its fingers with the grip site at a
   toss spot, within the joint limits and without touching itself or the pedestal (inverse kinematics from random
   arm poses: the position solved exactly, the fingers turned up in its null space; a search, so a lower bound on
   the true reach).

    python benchmarks/jaco_toss_limits.py --open-at 0.45
    python benchmarks/jaco_toss_limits.py --reach
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import mujoco
import numpy as np
from scipy.optimize import linprog

import control.envs  # noqa: F401  (registers the Hierarchy/ ids)
from control.hierarchy.jaco_model import ARM_JOINTS, BALL_DRIVE, ArmDrive
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

    def reach_step(self, goal: np.ndarray) -> np.ndarray:
        """The arm joints' step (damped least squares) that moves the grip site towards `goal`."""
        jp, _ = self.jacobians()
        return jp.T @ np.linalg.solve(jp @ jp.T + 1e-4 * np.eye(3), goal - self.raw.grip_pos())

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
        arm.d.qpos[raw.arm_qpos[:6]] += arm.reach_step(start)
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


def fingers_up_reach(spot: np.ndarray, tries: int, rng: np.random.Generator) -> tuple[int, float | None]:
    """(poses that reach `spot`, the largest upward z of the fingers' direction among those touching nothing)."""
    env = gym.make("Hierarchy/JacoToss-v0")
    env.reset(seed=0)
    raw = env.unwrapped
    arm, m, d = Arm(raw), raw.model, raw.data
    qpos = raw.arm_qpos[:6]
    joints = [m.joint(n).id for n in ARM_JOINTS]
    low, high = m.jnt_range[joints].T
    limited = m.jnt_limited[joints].astype(bool)
    low, high = np.where(limited, low, -np.pi), np.where(limited, high, np.pi)
    ball = m.body("object").id
    reached, best = 0, None
    for _ in range(tries):
        d.qpos[qpos] = rng.uniform(low, high)
        d.qpos[raw.obj_qpos : raw.obj_qpos + 3] = [2.0, 2.0, 0.03]  # the ball out of the way
        for _ in range(400):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            jp, jr = arm.jacobians()
            step = arm.reach_step(spot)
            axis = d.site_xmat[raw.grip_site].reshape(3, 3)[:, 2]
            turn = np.cross(axis, [0.0, 0.0, 1.0]) if axis[2] > -0.99 else np.array([1.0, 0.0, 0.0])
            null = np.eye(6) - np.linalg.pinv(jp) @ jp
            step = step + null @ (0.3 * jr.T @ turn)
            d.qpos[qpos] = np.where(limited, np.clip(d.qpos[qpos] + step, low, high), d.qpos[qpos] + step)
        mujoco.mj_forward(m, d)
        if np.linalg.norm(spot - raw.grip_pos()) > 0.01:
            continue
        reached += 1
        touching = any(
            ball not in (m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]) for c in d.contact[: d.ncon]
        )
        up = float(d.site_xmat[raw.grip_site].reshape(3, 3)[2, 2])
        if not touching and (best is None or up > best):
            best = up
    env.close()
    return reached, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--open-at", type=float, default=0.45, help="Grip height (m) where the hand opens and brakes."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reach", action="store_true", help="Only the palm-up reach at three toss spots.")
    parser.add_argument("--tries", type=int, default=60, help="Random arm poses per spot (--reach).")
    args = parser.parse_args()
    if args.reach:
        rng = np.random.default_rng(args.seed)
        for xy in ((0.4, 0.3), (0.3, 0.3), (0.2, 0.4)):
            for z in (0.3, 0.45):
                reached, best = fingers_up_reach(np.array([*xy, z]), args.tries, rng)
                angle = (
                    "none" if best is None else f"{np.degrees(np.arcsin(best)):.0f} degrees above horizontal"
                )
                print(
                    f"grip site at {xy + (z,)}: {reached}/{args.tries} poses reach it; fingers up at most {angle}"
                )
        return
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
