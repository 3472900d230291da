"""Walker2d-v5 with curbs and ceilings: the primitive skills (Forward, Backward, Jump, Crawl) and the compositional
tasks (Patrol, Hurdle, Obstacle course) of Lee et al. (ICLR 2019), as used by Byun & Perrault (ICLR 2022).

Our own reward and termination code on gymnasium's `Walker2dEnv` with a generated `xml_file`. The reward terms
follow the authors' released environments (velocity tracking towards 3 m/s, alive bonus, upright and height
terms, foot-speed and control costs; Jump: a bonus for rising while over a curb and for the feet passing it;
collisions end the episode); differences are listed in docs/control_hierarchy.md.

Every env has the same 21-dim observation, so a primitive trained alone runs unchanged inside a task:
`qpos[1:]` (8), `clip(qvel, -10, 10)` (9), and the next obstacle within `detect_distance` ahead of the torso:
(distance to its start, distance to its end, curb height or 0, ceiling bottom height or 0); with nothing in sight
(detect_distance, detect_distance, 0, 0). With `feet_features=True` (ours) four more follow: per foot (right, left),
the distance from its sole's centre to the next obstacle's start (detect_distance with nothing in sight) and the
centre's height, so that a policy sees where its feet will come down against a curb without inferring it from the
joint angles (every env of a task and its primitives must agree on the option). `info` carries `success` (a
subtask completed at this step, or a primitive's episode goal reached), `subtasks` (completed so far, in a row: a
failure ends the episode), `primitive` (the primitive the task expects next) and `collision`. Envs keep their own
time limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv
from gymnasium.spaces import Box

from control.hierarchy.pickling import PickledAsBuilt
from control.hierarchy.start_states import check_start_prob, load_states
from control.hierarchy.walker_model import (
    MAX_CEILINGS,
    MAX_CURBS,
    PARKED_X,
    ObstacleShape,
    TemporaryModelFile,
    ceiling_name,
    curb_name,
    walker_course_xml,
)

OBS_DIM = 21
FEET_DIM = 4  # `feet_features`: per foot, distance to the next obstacle's start and height
# env kwargs that shape the observation: a task and all its primitives must agree on them (name -> default)
OBSERVATION_KWARGS = {"feet_features": False}
BODY_DIM = 17  # the walker's own state: the part a transition discriminator compares
TARGET_SPEED = 3.0  # m/s, the velocity-tracking target of the authors' rewards
CURB_PASS_MARGIN = 1.5  # a curb counts as passed once the rearmost body point is this far beyond it (authors)
CEILING_PASS_MARGIN = 0.15  # same for a ceiling (authors' obstacle course)
NEAR_CEILING_AFTER = 3.0  # the low-height allowance lasts this far past a ceiling's end (authors)
CLEARANCE_BEFORE = 0.3  # Jump's clearance term watches the feet from this far before a curb
BEYOND_CAP_SLOPE = 0.1  # Balance's speed cost above `balance_speed_cap`: this fraction of -|v|'s slope
RESTART_RUN_ON = 5.0  # a Jump training episode restarted in front of a curb succeeds this far past its end


@dataclass
class Obstacle:
    kind: str  # "curb" or "ceiling"
    start: float
    end: float


@dataclass(frozen=True)
class RewardWeights:
    """Reward weights per primitive (the authors' values, except `rise_over_curb`)."""

    velocity: float = 1.0  # x 2 for jump and crawl
    alive: float = 1.0
    upright: float = 0.1
    height: float = 1.0  # x 2 for jump; 0 for crawl
    foot_speed: float = 0.01
    control: float = 1e-3
    # x clipped vertical speed when the torso crosses a curb's edge or middle. Authors: 100; ours 0: at our curb
    # height it pays for rising into the curb (failed jumps earn it) and charges the leaps that clear it (they
    # cross descending), see docs/control_hierarchy.md
    rise_over_curb: float = 0.0
    feet_past_curb: float = 200.0  # x (1, 2, 3)/3 when the rearmost foot crosses its start, middle, end
    collision: float = 10.0
    # ours: per step and foot near a curb, x how far its sole is below the curb's top (fraction of the height)
    clearance: float = 2.0
    # ours, off by default: paid once per curb when a foot touches the floor `takeoff_window` metres (its centre;
    # nearest, farthest) before the curb's start, unless a foot has touched down nearer than the window, and
    # charged back if one does later: paid when the feet leave the floor for the curb from the window, the take-off
    # spot of the bounds that clear it (measured: benchmarks/walker_jump.py `takeoff`)
    takeoff: float = 0.0
    takeoff_window: tuple[float, float] = (0.65, 1.05)
    success: float = 100.0
    duck: float = 1.0  # ours: per metre the torso top is above a ceiling's bottom while one is in sight
    # ours: Balance's speed cost -|v| has a tenth of its slope above this speed (None: the authors' -|v| at every
    # speed). With the full slope a walker handed over at a run's 3 m/s earns less per step than a fall's 0 and
    # learns to fall; with the gentler slope beyond the cap staying up pays, and slowing down still does
    balance_speed_cap: float | None = None

    def __post_init__(self) -> None:
        window = self.takeoff_window
        if not (
            isinstance(window, (list, tuple))
            and len(window) == 2
            and all(isinstance(v, (int, float)) for v in window)
            and 0.0 <= window[0] < window[1]
        ):
            raise ValueError(
                f"weights.takeoff_window: expected [near, far] with 0 <= near < far, got {window!r}"
            )
        object.__setattr__(self, "takeoff_window", (float(window[0]), float(window[1])))  # JSON gives a list


class WalkerCourseEnv(Walker2dEnv, PickledAsBuilt):
    """Base class: a walker, a course of obstacles (and goals), a sequence of subtasks."""

    primitive: str | None = None  # the reward of a primitive env; None: the expected primitive's (tasks)

    def __init__(
        self,
        shape: ObstacleShape | None = None,
        detect_distance: float = 4.0,
        max_subtasks: int = 5,
        subtask_steps: int = 1000,
        reset_noise_scale: float = 0.01,
        random_steps: int = 5,
        weights: RewardWeights | dict | None = None,
        max_angle: float | None = None,
        push_force: float = 0.0,
        push_prob: float = 0.2,
        feet_features: bool = False,
        **kwargs: Any,
    ):
        if not isinstance(feet_features, bool):
            raise ValueError(f"feet_features: expected true or false, got {feet_features!r}")
        self.feet_features = feet_features
        if isinstance(weights, dict):  # from JSON env kwargs
            weights = RewardWeights(**weights)
        self.shape, self.weights = shape or ObstacleShape(), weights or RewardWeights()
        self.max_angle, self.push_force, self.push_prob = max_angle, push_force, push_prob
        self.detect_distance, self.max_subtasks, self.subtask_steps = (
            detect_distance,
            max_subtasks,
            subtask_steps,
        )
        self.random_steps = random_steps
        self.obstacles: list[Obstacle] = []
        # this episode's curb height (Jump's `curb_heights` draws one per episode)
        self.curb_height = self.shape.curb_height
        self.next_obstacle = self.successes = self.steps_in_subtask = 0
        self._clear_takeoff()
        with TemporaryModelFile(walker_course_xml(self.shape)) as path:
            super().__init__(
                xml_file=path,
                reset_noise_scale=reset_noise_scale,
                terminate_when_unhealthy=True,
                **kwargs,
            )
        self.keep_constructor_args()  # Walker2dEnv recorded the temporary xml path; unpickling builds anew
        dims = OBS_DIM + (FEET_DIM if feet_features else 0)
        self.observation_space = Box(-np.inf, np.inf, (dims,), np.float64)
        name_to_id = {self.model.geom(i).name: i for i in range(self.model.ngeom)}
        self.curb_ids = [name_to_id[curb_name(i)] for i in range(MAX_CURBS)]
        self.ceiling_ids = [name_to_id[ceiling_name(i)] for i in range(MAX_CEILINGS)]
        self.is_obstacle = np.zeros(self.model.ngeom, bool)
        self.is_obstacle[self.curb_ids + self.ceiling_ids] = True
        body = {self.model.body(i).name: i for i in range(self.model.nbody)}
        self.torso, self.feet = body["torso"], [body["foot"], body["foot_left"]]
        self.foot_geoms = [name_to_id["foot_geom"], name_to_id["foot_left_geom"]]
        self.floor_geom = name_to_id["floor"]

    # --- what subclasses define ---
    def make_course(self) -> None:
        """Draw the episode's obstacles (and goals) with `self.np_random`."""
        self.obstacles = []

    def expected_primitive(self) -> str:
        return self.primitive

    def goal_reached(self, x: float) -> bool:
        """A subtask other than passing an obstacle (Patrol's goals); called every step."""
        return False

    def episode_done(self) -> bool:
        """The episode's goal is reached (checked after each step's subtask bookkeeping)."""
        return self.max_subtasks > 0 and self.successes >= self.max_subtasks

    # --- course bookkeeping ---
    def _place_obstacles(self) -> None:
        curbs = iter(self.curb_ids)
        ceilings = iter(self.ceiling_ids)
        for i in self.curb_ids + self.ceiling_ids:
            self.model.geom_pos[i][0] = PARKED_X - 3 * i
        half = self.curb_height / 2
        for i in self.curb_ids:  # the box's height and what the collision broad phase knows of it
            if self.model.geom_size[i, 2] != half:
                self.model.geom_size[i, 2] = self.model.geom_aabb[i, 5] = self.model.geom_pos[i, 2] = half
                self.model.geom_rbound[i] = float(np.linalg.norm(self.model.geom_size[i]))
        for obstacle in self.obstacles:
            gid = next(curbs) if obstacle.kind == "curb" else next(ceilings)
            self.model.geom_pos[gid][0] = (obstacle.start + obstacle.end) / 2

    def _add(self, kind: str, start: float) -> None:
        length = self.shape.curb_width if kind == "curb" else self.shape.ceiling_length
        self.obstacles.append(Obstacle(kind, start, start + length))

    def upcoming(self) -> Obstacle | None:
        """The next obstacle not yet passed, if any is within sight of the torso."""
        if self.next_obstacle >= len(self.obstacles):
            return None
        o = self.obstacles[self.next_obstacle]
        return o if o.start - self.data.qpos[0] <= self.detect_distance else None

    def _near_ceiling(self, x: float) -> bool:
        return any(
            o.kind == "ceiling" and o.start - self.detect_distance <= x <= o.end + NEAR_CEILING_AFTER
            for o in self.obstacles
        )

    def _rear_x(self) -> float:
        xpos = self.data.xpos
        return min(xpos[self.torso, 0], xpos[self.feet[0], 0], xpos[self.feet[1], 0])

    def _push(self) -> None:
        """The authors' random perturbation: with probability `push_prob` a random body gets a force and torque
        of up to `push_force` (each of 6 components uniform) for this step; otherwise none."""
        self.data.xfrc_applied[:] = 0.0
        if self.np_random.random() < self.push_prob:
            body = int(self.np_random.integers(self.model.nbody))
            self.data.xfrc_applied[body] = self.np_random.uniform(-self.push_force, self.push_force, 6)

    def _collided(self) -> bool:
        ncon = self.data.ncon
        return bool(ncon) and bool(self.is_obstacle[self.data.contact.geom[:ncon]].any())

    # --- gymnasium API ---
    def _get_obs(self) -> np.ndarray:
        qpos, qvel = self.data.qpos, self.data.qvel
        far = self.detect_distance
        features = (far, far, 0.0, 0.0)
        o = self.upcoming()
        if o is not None:
            x = qpos[0]
            curb = o.kind == "curb"
            features = (
                o.start - x,
                o.end - x,
                self.curb_height if curb else 0.0,
                0.0 if curb else self.shape.ceiling_bottom,
            )
        parts = [qpos[1:], np.clip(qvel, -10, 10), features]
        if self.feet_features:
            centres = self.data.geom_xpos[self.foot_geoms]
            ahead = np.full(2, far) if o is None else o.start - centres[:, 0]
            parts.append(np.stack([ahead, centres[:, 2]], 1).ravel())
        return np.concatenate(parts)

    def reset_model(self) -> np.ndarray:
        noise = self._reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(-noise, noise, self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(-noise, noise, self.model.nv)
        self.next_obstacle = self.successes = self.steps_in_subtask = 0
        self._clear_takeoff()
        self.make_course()
        qpos[0] += self.start_x()
        self.set_state(qpos, qvel)
        self._place_obstacles()
        for _ in range(self.random_steps):  # the authors' extra perturbation
            self.do_simulation(self.np_random.uniform(-1, 1, self.model.nu), self.frame_skip)
        return self._get_obs()

    def start_x(self) -> float:
        return 0.0

    def _get_reset_info(self) -> dict[str, Any]:
        return {"success": False, "subtasks": 0, "primitive": self.expected_primitive(), "collision": False}

    def step(self, action: np.ndarray):
        data = self.data
        x_before, z_before = data.qpos[0], data.qpos[1]
        rear_before = min(data.xpos[self.feet[0], 0], data.xpos[self.feet[1], 0])
        reward_primitive = self.primitive or self.expected_primitive()
        in_sight = self.upcoming()
        if self.push_force > 0:
            self._push()
        self.do_simulation(action, self.frame_skip)
        x, z, angle = data.qpos[0], data.qpos[1], data.qpos[2]
        rear_after = min(data.xpos[self.feet[0], 0], data.xpos[self.feet[1], 0])
        velocity, z_velocity = (x - x_before) / self.dt, (z - z_before) / self.dt

        reward, terms = self._reward(reward_primitive, action, velocity, angle, in_sight)
        collision = self._collided()
        if in_sight is not None and in_sight.kind == "curb" and reward_primitive == "jump" and not collision:
            reward += self._jump_bonus(in_sight, x_before, x, rear_before, rear_after, z_velocity)
        if self.weights.takeoff and reward_primitive == "jump":
            terms["reward_takeoff"] = self._takeoff(
                in_sight if in_sight and in_sight.kind == "curb" else None
            )
            reward += terms["reward_takeoff"]

        success = False
        if self.next_obstacle < len(self.obstacles):
            o = self.obstacles[self.next_obstacle]
            margin = CURB_PASS_MARGIN if o.kind == "curb" else CEILING_PASS_MARGIN
            if self._rear_x() > o.end + margin:
                self.next_obstacle += 1
                success = True
        success = success or self.goal_reached(x)
        low_ok = self.primitive == "crawl" or self._near_ceiling(x)
        upright = self.max_angle is None or low_ok or abs(angle) < self.max_angle
        healthy = z > (0.3 if low_ok else 0.8) and upright
        terminated = collision or not healthy
        if collision:
            reward -= self.weights.collision
        self.steps_in_subtask += 1
        if success and not terminated:
            self.successes += 1
            self.steps_in_subtask = 0
            reward += self.weights.success
        else:
            success = False
        if not terminated and self.episode_done():
            terminated = success = True
        truncated = not terminated and self.steps_in_subtask >= self.subtask_steps
        if truncated and self.max_subtasks == 0:  # a walking primitive's goal: stay up for the whole episode
            success = True
        info = {
            "success": success,
            "subtasks": self.successes,
            "primitive": self.expected_primitive(),
            "collision": collision,
            "x_position": x,
            **terms,
        }
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, truncated, info

    # --- rewards ---
    def _reward(
        self, primitive: str, action: np.ndarray, velocity: float, angle: float, in_sight: Obstacle | None
    ) -> tuple[float, dict[str, float]]:
        """The authors' shaped reward of `primitive` (without the obstacle bonuses)."""
        w, data = self.weights, self.data
        direction = -1.0 if primitive == "backward" else 1.0
        scale = 2.0 if primitive in ("jump", "crawl") else 1.0
        speed = direction * velocity
        feet_z = max(data.xpos[self.feet[0], 2], data.xpos[self.feet[1], 2])
        delta_h = data.xpos[self.torso, 2] - feet_z
        height_weight = {"jump": 2.0, "crawl": 0.0, "balance": 0.5}.get(primitive, 1.0) * w.height
        foot_speed = 0.0 if primitive == "balance" else np.abs(data.qvel[5]) + np.abs(data.qvel[8])
        if primitive == "balance":  # stand still
            cap, moving = w.balance_speed_cap, abs(velocity)
            if cap is not None and moving > cap:
                moving = cap + BEYOND_CAP_SLOPE * (moving - cap)
            velocity_term = -w.velocity * moving
        else:
            velocity_term = scale * w.velocity * (TARGET_SPEED - abs(speed - TARGET_SPEED))
        terms = {
            "reward_velocity": velocity_term,
            "reward_alive": w.alive,
            "reward_upright": w.upright * np.cos(angle),
            "reward_height": -height_weight * abs(1.1 - delta_h),
            "reward_foot": -w.foot_speed * foot_speed,
            "reward_ctrl": -w.control * float(np.square(action).sum()),
        }
        if primitive == "jump" and in_sight is not None and in_sight.kind == "curb" and w.clearance:
            terms["reward_clearance"] = -w.clearance * self._feet_below_curb(in_sight)
        if primitive == "crawl" and in_sight is not None and in_sight.kind == "ceiling":
            top = data.xpos[self.torso, 2] + 0.2 * abs(np.cos(angle))  # the torso capsule's upper end
            terms["reward_duck"] = -w.duck * max(0.0, top - (self.shape.ceiling_bottom - 0.05))
        return float(sum(terms.values())), terms

    def _feet_below_curb(self, curb: Obstacle) -> float:
        """Summed over the feet near the curb (a foot capsule reaching from `CLEARANCE_BEFORE` m before its start
        to its end): how far the foot's lowest point is below the curb's top, as a fraction of the curb's height
        (0 when it is above it)."""
        h, below = self.curb_height, 0.0
        for gid in self.foot_geoms:
            centre, axis = self.data.geom_xpos[gid], self.data.geom_xmat[gid].reshape(3, 3)[:, 2]
            radius, half = self.model.geom_size[gid, 0], self.model.geom_size[gid, 1]
            ends_x, ends_z = (
                centre[0] + np.array([-1, 1]) * half * axis[0],
                centre[2] + np.array([-1, 1]) * half * axis[2],
            )
            if ends_x.max() + radius >= curb.start - CLEARANCE_BEFORE and ends_x.min() - radius <= curb.end:
                below += float(np.clip((h - (ends_z.min() - radius)) / h, 0.0, 1.0))
        return below

    def _clear_takeoff(self) -> None:
        """The take-off term's state at an episode's start: which feet touch the floor, the obstacle whose take-off
        was paid, the obstacle a foot touched down too near to (-1: none)."""
        self.feet_down, self.takeoff_paid, self.too_near = [False, False], -1, -1

    def feet_on_floor(self) -> list[bool]:
        """Whether each foot (right, left) touches the floor now."""
        data, down = self.data, [False, False]
        for j in range(data.ncon):
            pair = (int(data.contact.geom1[j]), int(data.contact.geom2[j]))
            if self.floor_geom in pair:
                for f, gid in enumerate(self.foot_geoms):
                    down[f] = down[f] or gid in pair
        return down

    def _takeoff(self, curb: Obstacle | None) -> float:
        """The take-off term of this step: +weight when a foot touches down in the window before `curb` and no foot
        has touched down nearer the curb than the window (once per curb); -weight when, after that, one does."""
        data, w = self.data, self.weights
        down = self.feet_on_floor()
        touched = [d and not before for d, before in zip(down, self.feet_down, strict=True)]
        self.feet_down = down
        if curb is None or not any(touched):
            return 0.0
        near, far = w.takeoff_window
        before = [
            curb.start - data.geom_xpos[g, 0] for g, t in zip(self.foot_geoms, touched, strict=True) if t
        ]
        index, term = self.next_obstacle, 0.0
        if any(0.0 < d < near for d in before):  # too near: this curb's take-off is missed
            if self.takeoff_paid == index:
                term = -w.takeoff
            self.takeoff_paid, self.too_near = -1, index
        elif self.takeoff_paid != index and self.too_near != index and any(near <= d <= far for d in before):
            self.takeoff_paid, term = index, w.takeoff
        return term

    def _jump_bonus(
        self, curb: Obstacle, x_before: float, x: float, rear_before: float, rear_after: float, z_vel: float
    ) -> float:
        """Rising while the torso crosses the curb's start, middle or end; the rearmost foot crossing them."""
        w, bonus = self.weights, 0.0
        for i, edge in enumerate((curb.start, (curb.start + curb.end) / 2, curb.end)):
            if x_before <= edge < x:
                bonus += w.rise_over_curb * float(np.clip(z_vel, -2.0, 2.0))
            if rear_before <= edge < rear_after:
                bonus += w.feet_past_curb * (i + 1) / 3
        return bonus

    # --- snapshots: the transition policies start from saved hand-over states ---
    def get_snapshot(self) -> dict[str, Any]:
        return {
            "qpos": self.data.qpos.copy(),
            "qvel": self.data.qvel.copy(),
            "obstacles": [(o.kind, o.start, o.end) for o in self.obstacles],
            "curb_height": self.curb_height,
            "next_obstacle": self.next_obstacle,
            "successes": self.successes,
            "steps_in_subtask": self.steps_in_subtask,
            "feet_down": list(self.feet_down),
            "takeoff_paid": self.takeoff_paid,
            "too_near": self.too_near,
        }

    def set_snapshot(self, snapshot: dict[str, Any]) -> np.ndarray:
        """Restore a snapshot (after `reset`, which seeds and builds the env); returns the observation."""
        self.obstacles = [Obstacle(*o) for o in snapshot["obstacles"]]
        self.curb_height = float(snapshot.get("curb_height", self.shape.curb_height))
        self._place_obstacles()
        self.next_obstacle, self.successes = snapshot["next_obstacle"], snapshot["successes"]
        self.steps_in_subtask = snapshot["steps_in_subtask"]
        self.feet_down = [bool(d) for d in snapshot.get("feet_down", (False, False))]
        self.takeoff_paid = int(snapshot.get("takeoff_paid", -1))
        self.too_near = int(snapshot.get("too_near", -1))
        self.set_state(snapshot["qpos"], snapshot["qvel"])
        return self._get_obs()

    # --- the whole state, for training that resumes exactly where it stopped ---
    def get_env_state(self) -> dict[str, Any]:
        """A snapshot plus MuJoCo's full integration state (time, warm-start accelerations: the next steps are
        bit-identical) and the env's random generator."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, physics, spec)
        return {**self.get_snapshot(), "physics": physics, "np_random": self.np_random.bit_generator.state}

    def set_env_state(self, state: dict[str, Any]) -> np.ndarray:
        """Restore `get_env_state`'s dict; returns the observation."""
        self.set_snapshot(state)
        mujoco.mj_setState(
            self.model, self.data, np.asarray(state["physics"]), mujoco.mjtState.mjSTATE_INTEGRATION
        )
        mujoco.mj_forward(self.model, self.data)
        self.np_random.bit_generator.state = state["np_random"]
        return self._get_obs()


# --- primitives ---
class WalkerForward(WalkerCourseEnv):
    """Walk forward for 1000 steps without falling (success: still up at the time limit).

    `start_states` (ours, for training): an .npz of walker states (`qpos`, `qvel`, one row each; the pipeline
    records them from other primitives' greedy episodes, `primitive_starts`); with probability `start_prob` an
    episode starts from one of them (x moved to 0) instead of the reset pose: the states a task hands the
    primitive over in (Balance: a run to stop; Forward and Backward: a stop to set off from)."""

    primitive = "forward"

    def __init__(self, start_states: str | None = None, start_prob: float = 0.5, **kwargs: Any):
        self.start_prob, self.start_qpos, self.start_qvel = check_start_prob(start_prob), None, None
        super().__init__(max_subtasks=0, **kwargs)
        if start_states is not None:
            self.start_qpos, self.start_qvel = load_states(start_states, self.model.nq, self.model.nv)

    def reset_model(self) -> np.ndarray:
        obs = super().reset_model()
        if self.start_qpos is not None and self.np_random.random() < self.start_prob:
            i = int(self.np_random.integers(len(self.start_qpos)))
            qpos = self.start_qpos[i].copy()
            qpos[0] = 0.0
            self.set_state(qpos, self.start_qvel[i])
            obs = self._get_obs()
        return obs


class WalkerBackward(WalkerForward):
    """Walk backward for 1000 steps without falling."""

    primitive = "backward"


class WalkerJump(WalkerCourseEnv):
    """Run up to one curb 5.5-8.5 m ahead, jump it without touching it (a subtask once the rearmost body point is
    1.5 m past it) and run on until that point passes `finish_x` (authors: 15 m): the episode's success. With
    `finish_x=None` the episode ends at the curb's subtask.

    `curbs > 1` (ours, for training only): that many curbs, each `gap` metres after the previous one, the
    episode's success once all are passed: many jumps per episode, most of them from a run.

    `restart_prob > 0` (ours, for training only): with that probability an episode starts from one of the env's
    own earlier running states (no curb in sight, faster than 2 m/s; `restart_buffer` of them kept) with the
    curb `restart_ahead` metres ahead, and succeeds `RESTART_RUN_ON` metres past it. Every such episode is a
    jump from a run, instead of one per 5.5-8.5 m run-up: the jump gets most of the samples.

    `curb_heights=(low, high)` (ours, for training only): each episode's curbs get a height drawn uniformly from
    that range (the observation carries it), instead of the shape's `curb_height`: low curbs are cleared early
    and high ones ask for more than the task's."""

    primitive = "jump"

    def __init__(
        self,
        curb_range: tuple[float, float] = (5.5, 8.5),
        finish_x: float | None = 15.0,
        curbs: int = 1,
        gap: tuple[float, float] = (4.0, 7.0),
        restart_prob: float = 0.0,
        restart_ahead: tuple[float, float] = (1.5, 4.0),
        restart_buffer: int = 256,
        curb_heights: tuple[float, float] | None = None,
        **kwargs: Any,
    ):
        if curb_heights is not None:
            ok = isinstance(curb_heights, (list, tuple)) and len(curb_heights) == 2
            if not (ok and all(isinstance(h, (int, float)) for h in curb_heights)) or not (
                0.0 < curb_heights[0] <= curb_heights[1]
            ):
                raise ValueError(
                    f"curb_heights: expected [low, high] with 0 < low <= high, got {curb_heights!r}"
                )
        if not 1 <= curbs <= MAX_CURBS:
            raise ValueError(f"curbs: expected 1 to {MAX_CURBS}, got {curbs}")
        if restart_prob > 0 and curbs != 1:
            raise ValueError("restart_prob: restarts place one curb (curbs must be 1)")
        self.curb_range, self.finish_x, self.curbs, self.gap = curb_range, finish_x, curbs, gap
        self.restart_prob, self.restart_ahead, self.restart_buffer = (
            restart_prob,
            restart_ahead,
            restart_buffer,
        )
        self.curb_heights = None if curb_heights is None else (float(curb_heights[0]), float(curb_heights[1]))
        self.running_states: list[np.ndarray] = []
        self.finish_at = finish_x
        super().__init__(max_subtasks=curbs, **kwargs)

    def reset_model(self) -> np.ndarray:
        self.finish_at = self.finish_x
        if self.curb_heights is not None:
            self.curb_height = float(self.np_random.uniform(*self.curb_heights))
        if not (
            self.restart_prob > 0 and self.running_states and self.np_random.random() < self.restart_prob
        ):
            return super().reset_model()
        state = self.running_states[int(self.np_random.integers(len(self.running_states)))]
        self.next_obstacle = self.successes = self.steps_in_subtask = 0
        self._clear_takeoff()
        self.obstacles = []
        self._add("curb", float(state[0] + self.np_random.uniform(*self.restart_ahead)))
        self.finish_at = self.obstacles[0].end + RESTART_RUN_ON
        self.set_state(np.concatenate([[0.0], state[1:9]]), state[9:])
        self._place_obstacles()
        return self._get_obs()

    def step(self, action: np.ndarray):
        result = super().step(action)
        if (
            self.restart_prob > 0
            and not result[2]
            and self.upcoming() is None
            and self.data.qvel[0] > 2.0
            and self.np_random.random() < 0.05
        ):
            # position-free: x offset 0 (the torso's x lies in qpos[0]; the curb is placed relative to it)
            state = np.concatenate([[0.0], self.data.qpos[1:], self.data.qvel])
            if len(self.running_states) < self.restart_buffer:
                self.running_states.append(state)
            else:
                self.running_states[int(self.np_random.integers(self.restart_buffer))] = state
        return result

    def get_env_state(self) -> dict[str, Any]:
        return {
            **super().get_env_state(),
            "running_states": np.asarray(self.running_states).reshape(-1, 18),
            "finish_at": self.finish_at,
        }

    def set_env_state(self, state: dict[str, Any]) -> np.ndarray:
        self.running_states = list(np.asarray(state["running_states"]))
        self.finish_at = state["finish_at"]
        return super().set_env_state(state)

    def make_course(self) -> None:
        self.obstacles = []
        x = self.np_random.uniform(*self.curb_range)
        for _ in range(self.curbs):
            self._add("curb", x)
            x += self.np_random.uniform(*self.gap)

    def episode_done(self) -> bool:
        if self.finish_at is None or self.curbs > 1 or self.successes == 0:
            return super().episode_done()
        return self._rear_x() > self.finish_at


class WalkerCrawl(WalkerCourseEnv):
    """Get under one ceiling 1.5-3.5 m ahead without touching it (success: out past its end); the torso may go
    down to 0.3 m."""

    primitive = "crawl"

    def __init__(self, ceiling_range: tuple[float, float] = (1.5, 3.5), **kwargs: Any):
        self.ceiling_range = ceiling_range
        super().__init__(max_subtasks=1, **kwargs)

    def make_course(self) -> None:
        self.obstacles = []
        self._add("ceiling", self.np_random.uniform(*self.ceiling_range))


class WalkerBalance(WalkerForward):
    """Stand still for 1000 steps without falling (success: still up at the time limit). Lee et al.'s Balance:
    reward -|v| instead of velocity tracking, height term x 0.5, no foot term; 10 random steps at reset.
    `start_states` as Forward's (the pipeline's: Forward's and Backward's running states), so that Balance also
    learns to come to a stop from a run, as it must when a task hands over to it."""

    primitive = "balance"

    def __init__(self, random_steps: int = 10, **kwargs: Any):
        super().__init__(random_steps=random_steps, **kwargs)


# --- compositional tasks ---
class WalkerPatrol(WalkerCourseEnv):
    """Forward to the goal at +L, back to the goal at -L, and so on: each goal reached is a subtask (max 5).
    The first direction is random; each leg must end within `subtask_steps` (authors: 800). After each goal the
    task expects `balance` for `balance_steps` (Lee et al.'s Patrol and the seed authors': forward, balance,
    backward, balance, ...), then the next direction's primitive; `balance_steps=0`: no balance."""

    def __init__(
        self,
        track_half_length: float = 2.0,
        subtask_steps: int = 800,
        balance_steps: int = 150,
        **kwargs: Any,
    ):
        self.track_half_length, self.direction = track_half_length, 1
        self.balance_steps, self.balance_left = balance_steps, 0
        super().__init__(subtask_steps=subtask_steps, **kwargs)

    def make_course(self) -> None:
        self.obstacles = []
        self.direction = 1 if self.np_random.random() < 0.5 else -1
        self.balance_left = 0

    def start_x(self) -> float:
        return -self.direction * self.track_half_length

    def expected_primitive(self) -> str:
        if self.balance_left > 0:
            return "balance"
        return "forward" if self.direction == 1 else "backward"

    def goal_reached(self, x: float) -> bool:
        self.balance_left = max(
            0, self.balance_left - 1
        )  # called once per step: the balance period runs down
        if self.direction * x > self.track_half_length:
            self.direction = -self.direction
            self.balance_left = self.balance_steps
            return True
        return False

    def get_snapshot(self) -> dict[str, Any]:
        return {**super().get_snapshot(), "direction": self.direction, "balance_left": self.balance_left}

    def set_snapshot(self, snapshot: dict[str, Any]) -> np.ndarray:
        self.direction, self.balance_left = snapshot["direction"], snapshot.get("balance_left", 0)
        return super().set_snapshot(snapshot)


class _ObstacleTask(WalkerCourseEnv):
    """Forward until an obstacle comes within `detect_distance`, then its primitive until it is passed."""

    def expected_primitive(self) -> str:
        o = self.upcoming()
        return "forward" if o is None else ("jump" if o.kind == "curb" else "crawl")


class WalkerHurdle(_ObstacleTask):
    """Five curbs at random spacing (the first 7.5-8.5 m ahead, then gaps of `gap` metres); each one jumped
    is a subtask."""

    def __init__(self, gap: tuple[float, float] = (8.0, 12.0), **kwargs: Any):
        self.gap = gap
        super().__init__(**kwargs)

    def make_course(self) -> None:
        self.obstacles = []
        x = self.np_random.uniform(7.5, 8.5)
        for _ in range(MAX_CURBS):
            self._add("curb", x)
            x += self.np_random.uniform(*self.gap)


class WalkerObstacleCourse(_ObstacleTask):
    """Three curbs and two ceilings in random order at 8, 19, 30, 41, 52 m (+-0.5 m, the authors' layout);
    each one passed is a subtask."""

    def make_course(self) -> None:
        self.obstacles = []
        kinds = ["curb"] * 3 + ["ceiling"] * 2
        self.np_random.shuffle(kinds)
        for kind, x in zip(kinds, (8.0, 19.0, 30.0, 41.0, 52.0), strict=True):
            self._add(kind, x + self.np_random.uniform(-0.5, 0.5))
