"""The Kinova Jaco arm tasks of Lee et al. (ICLR 2019), as used by Byun & Perrault (ICLR 2022): the primitives
Pick, Catch, Toss and Hit, and the tasks repetitive picking, repetitive catching and serve (toss, then hit).

Gymnasium `MujocoEnv`s on the Jaco arm and hand that dm_control ships (`jaco_model.py`), with our own rewards,
success rules and termination, following the authors' released environments (`jaco_pick.py`, `jaco_catch.py`,
`jaco_toss.py`, `jaco_hit.py`, `jaco_keep_pick.py`, `jaco_keep_catch.py`, `jaco_serve.py`): what a subtask rewards
and when it succeeds or fails is one :class:`~control.hierarchy.jaco_skills.Skill` per primitive, which a
primitive env runs once and a task env runs again and again (or one after the other). Differences from the
authors' envs are listed in docs/control_hierarchy.md.

Every arm env has the same 43-dim observation, so a primitive trained alone runs unchanged inside a task:
sin and cos of the six arm joints (12), the three finger angles (3), joint speeds clipped to +-10 (9), the
object's position (3), orientation quaternion (4), linear and angular velocity clipped to +-10 and +-30 (6), the
grip site's position (3) and the object's offset from it (3). Actions in [-1, 1]: the six arm joints' target
speeds as fractions of their limits, the three fingers' target angles (-1 open, +1 closed). `info` carries `success` (a subtask completed at this step),
`subtasks` (completed in a row; a failure ends the episode), `primitive` (what the task expects next) and the
reward terms. Envs keep their own time limits (`subtask_steps` per subtask).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box

from control.hierarchy.jaco_model import (
    ARM_JOINTS,
    BALL_DRIVE,
    FINGER_JOINTS,
    FINGER_RANGE,
    GRIP_SITE,
    HOME_ARM,
    HOME_FINGERS,
    ArmDrive,
    jaco_spec,
    kinova_dir,
)
from control.hierarchy.jaco_skills import (
    CatchSkill,
    HitSkill,
    PickRules,
    PickSkill,
    Skill,
    TossRules,
    TossSkill,
    ball_rules,
)
from control.hierarchy.pickling import PickledAsBuilt
from control.hierarchy.start_states import check_start_prob, load_states

OBS_DIM = 43
ARM_OBS_DIM = 24  # the arm's own state (angles, fingers, speeds): what a transition discriminator compares
TIMESTEP = 0.004  # s, MuJoCo step (the authors: 0.002 with 4 per action)
FRAME_SKIP = 5  # 50 actions per second


class JacoArmEnv(MujocoEnv, PickledAsBuilt):
    """Base class: the arm, one object, and a sequence of subtasks, each run by a skill (`skill_for`); pickled as
    the constructor call that built it."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 50}
    obj = "cube"  # the object of this env: "cube" or "ball"
    default_drive = ArmDrive()  # the arm's drive when the constructor gets none

    def __init__(
        self,
        max_subtasks: int = 1,
        subtask_steps: int = 150,
        random_steps: int = 10,
        reset_noise_scale: float = 0.01,
        control_cost: float = 1e-4,
        drive: ArmDrive | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        self.max_subtasks, self.subtask_steps, self.random_steps = max_subtasks, subtask_steps, random_steps
        self.reset_noise_scale, self.control_cost = reset_noise_scale, control_cost
        self.drive = drive or self.default_drive
        MujocoEnv.__init__(
            self,
            str(
                kinova_dir() / "jaco_arm.xml"
            ),  # the source; the model itself is composed in _initialize_simulation
            FRAME_SKIP,
            observation_space=Box(-np.inf, np.inf, (OBS_DIM,), np.float64),
            render_mode=render_mode,
            default_camera_config={
                "distance": 3.0,
                "azimuth": 150.0,
                "elevation": -20.0,
                "lookat": [0.4, 0.6, 0.6],
            },
            **kwargs,
        )
        model = self.model
        self.arm_qpos = np.array([model.joint(n).qposadr[0] for n in ARM_JOINTS + FINGER_JOINTS])
        self.arm_dofs = np.array([model.joint(n).dofadr[0] for n in ARM_JOINTS + FINGER_JOINTS])
        self.obj_qpos = model.joint("object").qposadr[0]
        self.obj_dofs = model.joint("object").dofadr[0]
        self.grip_site = model.site(GRIP_SITE).id
        self.target_mocap = model.body("target").mocapid[0]
        self.speed_limits = self.drive.speed_limits()
        self.action_space = Box(-1.0, 1.0, (len(ARM_JOINTS) + len(FINGER_JOINTS),), np.float32)
        self.home = np.array(HOME_ARM + (HOME_FINGERS,) * 3)
        self.successes = self.steps_in_subtask = 0
        self.skill: Skill | None = None

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = jaco_spec(self.obj, self.drive).compile()
        model.opt.timestep = TIMESTEP
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    # --- what subclasses define ---
    def skill_for(self, index: int) -> Skill:
        """The skill that runs subtask `index` (0-based) of this env."""
        raise NotImplementedError

    def expected_primitive(self) -> str:
        return self.skill.expected_primitive()

    # --- state of the arm and the object ---
    def grip_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.grip_site].copy()

    def object_pos(self) -> np.ndarray:
        return self.data.qpos[self.obj_qpos : self.obj_qpos + 3].copy()

    def object_vel(self) -> np.ndarray:
        return self.data.qvel[self.obj_dofs : self.obj_dofs + 3].copy()

    def hand_distance(self) -> float:
        return float(np.linalg.norm(self.object_pos() - self.grip_pos()))

    def place_object(self, pos: np.ndarray, vel: np.ndarray | None = None) -> None:
        """Put the object at `pos`, upright, with linear velocity `vel` (default at rest)."""
        qpos, qvel = self.data.qpos.copy(), self.data.qvel.copy()
        qpos[self.obj_qpos : self.obj_qpos + 7] = [*pos, 1.0, 0.0, 0.0, 0.0]
        qvel[self.obj_dofs : self.obj_dofs + 6] = 0.0
        if vel is not None:
            qvel[self.obj_dofs : self.obj_dofs + 3] = vel
        self.set_state(qpos, qvel)

    def set_target(self, pos: np.ndarray) -> None:
        self.data.mocap_pos[self.target_mocap] = pos
        mujoco.mj_forward(self.model, self.data)

    def target_pos(self) -> np.ndarray:
        return self.data.mocap_pos[self.target_mocap].copy()

    # --- gymnasium API ---
    def _get_obs(self) -> np.ndarray:
        qpos, qvel = self.data.qpos, self.data.qvel
        arm = qpos[self.arm_qpos[:6]]
        o, v = self.obj_qpos, self.obj_dofs
        grip = self.data.site_xpos[self.grip_site]
        return np.concatenate(
            [
                np.sin(arm),
                np.cos(arm),
                qpos[self.arm_qpos[6:]],
                np.clip(qvel[self.arm_dofs], -10, 10),
                qpos[o : o + 3],
                qpos[o + 3 : o + 7],
                np.clip(qvel[v : v + 3], -10, 10),
                np.clip(qvel[v + 3 : v + 6], -30, 30),
                grip,
                qpos[o : o + 3] - grip,
            ]
        )

    def reset_model(self) -> np.ndarray:
        noise = self.reset_noise_scale
        qpos = self.init_qpos.copy()
        qpos[self.arm_qpos] = self.home + self.np_random.uniform(-noise, noise, len(self.home))
        qvel = np.zeros(self.model.nv)
        qvel[self.arm_dofs] = self.np_random.uniform(-noise, noise, len(self.arm_dofs))
        self.set_state(qpos, qvel)
        self.successes = self.steps_in_subtask = 0
        self.skill = self.skill_for(0)
        self.skill.place(self)
        for _ in range(self.random_steps):  # the authors' extra perturbation of the arm
            self.do_simulation(
                self._ctrl(self.np_random.uniform(-1, 1, self.action_space.shape)), self.frame_skip
            )
            self.skill.hold(self)
        self.skill.begin(self)
        return self._get_obs()

    def _get_reset_info(self) -> dict[str, Any]:
        return {"success": False, "subtasks": 0, "primitive": self.expected_primitive()}

    def _ctrl(self, action: np.ndarray) -> np.ndarray:
        """Arm joints: target speeds; fingers: target angles across their range."""
        action = np.clip(action, -1.0, 1.0)
        low, high = FINGER_RANGE
        return np.concatenate([action[:6] * self.speed_limits, low + (action[6:] + 1.0) * (high - low) / 2])

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        self.skill.before_step(self)
        self.do_simulation(self._ctrl(action), self.frame_skip)
        self.steps_in_subtask += 1
        terms, status = self.skill.step(self, self.steps_in_subtask)
        terms["reward_ctrl"] = -self.control_cost * float(np.square(action).sum())
        reward = float(sum(terms.values()))
        success = status == "success"
        terminated = status == "failure"
        if success:
            self.successes += 1
            done_all = self.max_subtasks > 0 and self.successes >= self.max_subtasks
            terminated = terminated or done_all
            if not done_all:
                self.steps_in_subtask = 0
                self.skill = self.skill_for(self.successes)
                self.skill.place(self)
                self.skill.begin(self)
        elif status == "next":  # the same subtask goes on under another primitive (serve: toss -> hit)
            self.skill = self.skill.successor
            self.skill.begin(self)
        truncated = not terminated and self.steps_in_subtask >= self.subtask_steps
        info = {
            "success": success,
            "subtasks": self.successes,
            "primitive": self.expected_primitive(),
            **terms,
        }
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, truncated, info

    # --- snapshots: the transition policies start from saved hand-over states ---
    def get_snapshot(self) -> dict[str, Any]:
        """The whole state as arrays and numbers (no objects): restorable with `set_snapshot`."""
        return {
            "qpos": self.data.qpos.copy(),
            "qvel": self.data.qvel.copy(),
            # what mj_step left behind: the grip site's position from the start of the last step (the observation
            # reads it) and the solver's warm start; restored, the episode goes on exactly as it would have
            "grip_xpos": self.data.site_xpos[self.grip_site].copy(),
            "qacc_warmstart": self.data.qacc_warmstart.copy(),
            "target": self.target_pos(),
            "successes": self.successes,
            "steps_in_subtask": self.steps_in_subtask,
            "skill": self.skill.name,
            **{f"skill_{k}": v for k, v in self.skill.state().items()},
        }

    def set_snapshot(self, snapshot: dict[str, Any]) -> np.ndarray:
        """Restore a snapshot (after `reset`, which seeds and builds the env); returns the observation."""
        self.successes = int(snapshot["successes"])
        self.steps_in_subtask = int(snapshot["steps_in_subtask"])
        skill = self.skill_for(self.successes)
        while skill.name != str(snapshot["skill"]):
            if skill.successor is None:
                raise ValueError(f"snapshot of skill {snapshot['skill']!r}: this env has no such skill")
            skill = skill.successor
        skill.load_state({k[len("skill_") :]: v for k, v in snapshot.items() if k.startswith("skill_")})
        self.skill = skill
        self.set_state(np.asarray(snapshot["qpos"]), np.asarray(snapshot["qvel"]))
        self.set_target(np.asarray(snapshot["target"]))
        # snapshots of earlier versions lack these two: their first observation then differs from the live one
        if "grip_xpos" in snapshot:
            self.data.site_xpos[self.grip_site] = np.asarray(snapshot["grip_xpos"])
            self.data.qacc_warmstart[:] = np.asarray(snapshot["qacc_warmstart"])
        return self._get_obs()


# --- primitives ---
class JacoPick(JacoArmEnv):
    """Pick up the cube from the floor and hold it in the air (success: held for `hold_steps` in a row).
    `drop_charge` (ours, training only): a drop charges back that share of the lift reward paid so far."""

    def __init__(self, drop_charge: float = 0.0, **kwargs: Any):
        if not drop_charge >= 0.0:
            raise ValueError(f"drop_charge must be >= 0, got {drop_charge!r}")
        self.rules = PickRules(drop_charge=float(drop_charge))
        super().__init__(**kwargs)

    def skill_for(self, index: int) -> Skill:
        return PickSkill(self.np_random, self.rules)


class JacoCatch(JacoArmEnv):
    """Catch the cube thrown towards the arm and hold it (success: in the hand, in the air for `hold_steps`)."""

    def skill_for(self, index: int) -> Skill:
        return CatchSkill(self.np_random, wait_steps=0)


class BallEnv(JacoArmEnv):
    """Base of the ball envs (toss, hit, serve): the faster drive, and `apex_height` (ours, default 1.2 m), the
    toss's apex, which also sets Hit's drop, hitting and target heights (`jaco_skills.ball_rules`)."""

    obj = "ball"
    default_drive = BALL_DRIVE  # a straight toss to the apex needs faster joints than the cube tasks

    def __init__(self, apex_height: float = TossRules.apex_height, **kwargs: Any):
        if isinstance(apex_height, bool) or not isinstance(apex_height, int | float):
            raise ValueError(f"apex_height must be a number of metres, not {apex_height!r}")
        self.toss_rules, self.hit_rules = ball_rules(float(apex_height))
        super().__init__(**kwargs)


class JacoToss(BallEnv):
    """Pick up the ball, toss it straight up to the apex height and let it fall back over its spot."""

    def __init__(self, random_steps: int = 0, subtask_steps: int = 200, **kwargs: Any):
        super().__init__(random_steps=random_steps, subtask_steps=subtask_steps, **kwargs)

    def skill_for(self, index: int) -> Skill:
        return TossSkill(self.np_random, rules=self.toss_rules)

    def handover_state(self) -> bool:
        """A state Hit's training may start from (`primitive_starts: {hit: [toss]}`): the ball released and rising."""
        skill = self.skill
        return (
            isinstance(skill, TossSkill) and skill.released and not skill.falling and self.object_vel()[2] > 0
        )

    def handover_kept(self) -> bool:
        """Whether this episode's hand-over states are worth keeping: its toss passed the apex check (serve's)."""
        return isinstance(self.skill, TossSkill) and self.skill.falling


class JacoHit(BallEnv):
    """Hit the ball falling from above, at the hitting height, into the target.

    `start_states` (ours, for training): an .npz of arm-and-ball states (`qpos`, `qvel` rows; the pipeline records
    them from the Toss's greedy episodes just after the release, `primitive_starts: {hit: [toss]}`); with
    probability `start_prob` an episode starts from one of them instead of a drop, and the hit first waits for the
    ball's apex, as in serve."""

    def __init__(self, start_states: str | None = None, start_prob: float = 0.5, **kwargs: Any):
        self.start_prob, self.start_qpos, self.start_qvel = check_start_prob(start_prob), None, None
        super().__init__(**kwargs)
        if start_states is not None:
            self.start_qpos, self.start_qvel = load_states(start_states, self.model.nq, self.model.nv)

    def skill_for(self, index: int) -> Skill:
        return HitSkill(self.np_random, drop=True, rules=self.hit_rules)

    def reset_model(self) -> np.ndarray:
        obs = super().reset_model()
        if self.start_qpos is not None and self.np_random.random() < self.start_prob:
            i = int(self.np_random.integers(len(self.start_qpos)))
            self.skill = HitSkill(self.np_random, drop=False, rules=self.hit_rules)
            self.skill.place(self)
            self.set_state(self.start_qpos[i].copy(), self.start_qvel[i].copy())
            self.skill.begin(self)
            obs = self._get_obs()
        return obs


# --- tasks ---
class JacoRepetitivePicking(JacoArmEnv):
    """Pick five times: after each successful pick the cube reappears at a random spot on the floor."""

    def __init__(self, max_subtasks: int = 5, **kwargs: Any):
        super().__init__(max_subtasks=max_subtasks, **kwargs)

    def skill_for(self, index: int) -> Skill:
        return PickSkill(self.np_random)


class JacoRepetitiveCatching(JacoArmEnv):
    """Catch five times: after each catch the cube goes back to the thrower, waits, and is thrown again."""

    def __init__(self, max_subtasks: int = 5, wait_steps: int = 25, **kwargs: Any):
        self.wait_steps = wait_steps
        super().__init__(max_subtasks=max_subtasks, **kwargs)

    def skill_for(self, index: int) -> Skill:
        return CatchSkill(self.np_random, wait_steps=0 if index == 0 else self.wait_steps)


class JacoServe(BallEnv):
    """Toss the ball, then hit it into the target: one subtask (the serve), two primitives; the task expects
    `toss` until the ball has left the hand above the release height, then `hit`."""

    def __init__(self, random_steps: int = 0, subtask_steps: int = 300, **kwargs: Any):
        super().__init__(random_steps=random_steps, subtask_steps=subtask_steps, **kwargs)

    def skill_for(self, index: int) -> Skill:
        toss = TossSkill(self.np_random, in_serve=True, rules=self.toss_rules)
        toss.successor = HitSkill(self.np_random, drop=False, rules=self.hit_rules)
        return toss
