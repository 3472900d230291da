"""What one subtask of an arm env rewards, and when it succeeds or fails: one :class:`Skill` per primitive (Pick,
Catch, Toss, Hit), run once by the primitive's own env and again and again (or one after the other) by a task.
Reward terms and rules follow Lee et al.'s released `jaco_*.py` environments; distances are to the hand's grip
site (theirs: the mean of the hand and finger bodies), and our changes are marked `ours` below and listed in
docs/control_hierarchy.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from control.hierarchy.jaco_model import BALL_RADIUS, CUBE_HALF

if TYPE_CHECKING:
    from control.hierarchy.jaco import JacoArmEnv

GRAVITY = 9.81


class Skill:
    """Progress of one subtask. `place` puts the object for it (at reset and when the previous subtask ended),
    `hold` keeps it there during the reset's random arm steps, `begin` starts the bookkeeping, `before_step`
    acts on the object before each physics step (a throw), `step` returns (reward terms, status) with status
    "running", "success", "failure" or "next" (the subtask goes on under `successor`: serve's toss -> hit)."""

    name = ""
    successor: Skill | None = None

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.start = np.zeros(3)

    def expected_primitive(self) -> str:
        return self.name

    def place(self, env: JacoArmEnv) -> None:
        env.place_object(self.start)

    def hold(self, env: JacoArmEnv) -> None:
        """Keep the object at its start while the arm is perturbed at reset."""
        env.place_object(self.start)

    def begin(self, env: JacoArmEnv) -> None:
        pass

    def before_step(self, env: JacoArmEnv) -> None:
        pass

    def step(self, env: JacoArmEnv, t: int) -> tuple[dict[str, float], str]:
        raise NotImplementedError

    # snapshots: plain numbers and arrays, so hand-over states can be stored in any data format
    def state(self) -> dict[str, Any]:
        return {
            k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items() if k != "rng"
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            current = getattr(self, key, None)
            if isinstance(current, np.ndarray):
                value = np.asarray(value, dtype=np.float64)
            elif isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            setattr(self, key, value)


@dataclass(frozen=True)
class PickRules:
    """Lee et al.'s picking settings (their box spot, target height and reward weights)."""

    spot_low: tuple[float, float] = (0.5, 0.2)  # the cube's x, y: uniform in [low, low + spread]
    spread: float = 0.1
    target_z: float = 0.3  # hold the cube up here
    in_hand: float = 0.08  # m from the grip site (theirs: 0.06 from their hand centre)
    in_air: float = 0.05  # the cube's centre above this height (it rests at 0.03)
    hold_steps: int = 25  # in the hand, in the air, near the target (theirs: 50 of 8 ms; ours 25 of 20 ms)
    # a held step counts only with the cube within this of the target point (Lee et al.'s rule); without it our
    # Pick "held" a loosely pinched cube 2-3 cm off the floor and dropped it in 9 of 30 episodes
    hold_radius: float = 0.1
    guide: float = 20.0  # per metre the hand gets closer before the pick (theirs: 2)
    pick: float = 100.0  # per metre the cube rises towards target_z
    # per step held, x max(0, 1 - distance to the target point / hold_reach) (theirs: 2 (1 - distance)); with
    # the strict hold rule above and 10 (1 - distance), our PPO pinched the cube off the floor for ~76% of the full
    # hold pay and never lifted it (0 of 30 after 2M steps)
    hold: float = 10.0
    hold_reach: float = 0.3
    success: float = 10.0  # per step left in the subtask, at success (theirs)
    # ours, off by default: at a drop, charge back this share of the lift reward paid so far, so that lifting the
    # cube a little and dropping it (which ends the episode) pays nothing
    drop_charge: float = 0.0


class PickSkill(Skill):
    """Pick the cube up from the floor and hold it at the target point (Lee et al.'s `jaco_pick.py`)."""

    name = "pick"

    def __init__(self, rng: np.random.Generator, rules: PickRules | None = None):
        super().__init__(rng)
        self.rules = rules or PickRules()
        r = self.rules
        xy = np.asarray(r.spot_low) + rng.uniform(0.0, r.spread, 2)
        self.start = np.array([xy[0], xy[1], CUBE_HALF])
        self.target = np.array([xy[0], xy[1], r.target_z])
        self.picked, self.pick_height, self.held, self.last_distance = False, CUBE_HALF, 0, 0.0
        self.lift_paid = 0.0

    def state(self) -> dict[str, Any]:
        return {k: v for k, v in super().state().items() if k != "rules"}

    def begin(self, env: JacoArmEnv) -> None:
        self.last_distance = env.hand_distance()

    def step(self, env: JacoArmEnv, t: int) -> tuple[dict[str, float], str]:
        r, pos = self.rules, env.object_pos()
        distance = env.hand_distance()
        in_hand, in_air = distance < r.in_hand, pos[2] > r.in_air
        names = ("guide", "pick", "hold", "success", "drop")
        terms = {f"reward_{n}": 0.0 for n in names}
        status = "running"
        if in_hand and in_air:
            self.picked = True
            height = min(r.target_z, pos[2])
            if height > self.pick_height:
                terms["reward_pick"] = r.pick * (height - self.pick_height)
                self.lift_paid += terms["reward_pick"]
                self.pick_height = height
            off_target = float(np.linalg.norm(self.target - pos))
            terms["reward_hold"] = r.hold * max(0.0, 1.0 - off_target / r.hold_reach)
            if off_target < r.hold_radius:
                self.held += 1
            if self.held >= r.hold_steps:
                status = "success"
                terms["reward_success"] = r.success * max(0, env.subtask_steps - t)
        if not self.picked:
            terms["reward_guide"] = r.guide * (self.last_distance - distance)
            self.last_distance = distance
        elif not in_hand:
            status = "failure"  # dropped
            terms["reward_drop"] = -r.drop_charge * self.lift_paid
        return terms, status


@dataclass(frozen=True)
class CatchRules:
    """Catching settings: Lee et al.'s thrower position, reward weights and hold rule; our throw is slower."""

    thrower: tuple[float, float, float] = (0.0, 2.0, 1.5)  # where the cube is thrown from (theirs)
    aim_low: tuple[float, float, float] = (0.4, 0.3, 0.85)  # it passes a point uniform in [low, low + spread]
    spread: float = 0.1
    flight_time: float = 0.5  # s to reach that point (ours; theirs: an 8.8 m/s throw, ~0.2 s)
    in_hand: float = 0.08
    on_ground: float = 0.05  # the cube's centre at or below this height: failure
    hold_steps: int = 25  # steps in the hand, in the air (counted, theirs: 50 of 8 ms)
    catch: float = 100.0  # per step in the hand
    hold: float = 4.0  # per step in the hand, x (1 - distance to the aim point)
    guide: float = 20.0  # ours: per metre the hand gets closer to the cube before the catch


class CatchSkill(Skill):
    """Catch the thrown cube and hold it (Lee et al.'s `jaco_catch.py` / `jaco_keep_catch.py`): the cube waits
    at the thrower for `wait_steps` (repetitive catching: 25 after each catch; the primitive: 0), then flies."""

    name = "catch"

    def __init__(self, rng: np.random.Generator, wait_steps: int = 0, rules: CatchRules | None = None):
        super().__init__(rng)
        self.rules = rules or CatchRules()
        r = self.rules
        self.start = np.asarray(r.thrower, dtype=np.float64)
        self.aim = np.asarray(r.aim_low) + rng.uniform(0.0, r.spread, 3)
        t = r.flight_time
        self.throw_velocity = (self.aim - self.start) / t + np.array([0.0, 0.0, 0.5 * GRAVITY * t])
        self.wait, self.thrown, self.held, self.last_distance = wait_steps, False, 0, 0.0

    def state(self) -> dict[str, Any]:
        return {k: v for k, v in super().state().items() if k != "rules"}

    def before_step(self, env: JacoArmEnv) -> None:
        if self.thrown:
            return
        if self.wait > 0:
            self.wait -= 1
            env.place_object(self.start)
            return
        env.place_object(self.start, self.throw_velocity)
        self.thrown = True

    def begin(self, env: JacoArmEnv) -> None:
        self.last_distance = env.hand_distance()

    def step(self, env: JacoArmEnv, t: int) -> tuple[dict[str, float], str]:
        r, pos = self.rules, env.object_pos()
        distance = env.hand_distance()
        terms = {"reward_guide": 0.0, "reward_catch": 0.0, "reward_hold": 0.0}
        if not self.thrown:
            return terms, "running"
        if pos[2] <= r.on_ground:
            return terms, "failure"
        if distance < r.in_hand:
            self.held += 1
            terms["reward_catch"] = r.catch
            terms["reward_hold"] = r.hold * (1.0 - float(np.linalg.norm(self.aim - pos)))
            if self.held >= r.hold_steps:
                return terms, "success"
        elif self.held == 0:
            terms["reward_guide"] = r.guide * (self.last_distance - distance)
        self.last_distance = distance
        return terms, "running"


@dataclass(frozen=True)
class TossRules:
    """Lee et al.'s tossing settings (reward weights, release height, tolerances); a lower apex (ours)."""

    spot: tuple[float, float] = (0.4, 0.3)  # the ball's x, y (+- spread), and where it must fall back
    spread: float = 0.04
    release_height: float = 0.6  # the ball must have left the hand when it rises past this height
    apex_height: float = 1.2  # its highest point must be within apex_tolerance of this (theirs: 2.0)
    apex_tolerance: float = 0.1
    land_tolerance: float = 0.1  # x and y within this of the spot when it falls back past the release height
    apex_off: float = 0.3  # ours: farther than this (|x off| + |y off|) from its spot at the apex: failed
    in_hand: float = 0.10
    guide: float = 100.0  # per metre the hand gets closer to the top of the ball before the pick
    pick: float = 200.0  # per metre the ball rises in the hand, up to the release height
    release: float = 50.0
    rise: float = 200.0  # ours: per metre the released ball rises to the apex height, x (1 - off / apex_off)
    up: float = 50.0  # at the apex, x (1 - |apex - apex_height| / apex_height); + up within the tolerance
    # per step after the release (theirs: 2 from the pick on), x max(0, 0.5 - |x off| - |y off|): with theirs our
    # Toss reached the apex (1.08-1.26 m) but drifted 1.2-1.5 m sideways (0 of 30 after 3M steps)
    stable: float = 20.0
    success: float = 100.0


class TossSkill(Skill):
    """Pick the ball up, toss it straight up to the apex height, and let it fall back over its spot (Lee et al.'s
    `jaco_toss.py`). In serve (`in_serve`) the toss hands over to its `successor` (hit) at the release."""

    name = "toss"

    def __init__(self, rng: np.random.Generator, in_serve: bool = False, rules: TossRules | None = None):
        super().__init__(rng)
        self.rules = rules or TossRules()
        r = self.rules
        xy = np.asarray(r.spot) + rng.uniform(-r.spread, r.spread, 2)
        self.start = np.array([xy[0], xy[1], BALL_RADIUS])
        self.in_serve = in_serve
        self.picked = self.released = self.falling = False
        self.pick_height, self.max_height, self.last_distance = 0.0, 0.0, 0.0

    def state(self) -> dict[str, Any]:
        return {k: v for k, v in super().state().items() if k not in ("rules", "successor")}

    def hold(self, env: JacoArmEnv) -> None:
        pass  # the ball rests on the floor

    def begin(self, env: JacoArmEnv) -> None:
        self.last_distance = self._distance_to_top(env)

    def _distance_to_top(self, env: JacoArmEnv) -> float:
        return float(np.linalg.norm(env.grip_pos() - (self.start + [0.0, 0.0, BALL_RADIUS])))

    def step(self, env: JacoArmEnv, t: int) -> tuple[dict[str, float], str]:
        r, pos = self.rules, env.object_pos()
        z = pos[2]
        off = abs(pos[0] - r.spot[0]) + abs(pos[1] - r.spot[1])  # the ball's distance from its spot, x and y
        in_hand, in_air = env.hand_distance() < r.in_hand, z > BALL_RADIUS + 0.03
        names = ("guide", "pick", "release", "rise", "up", "stable", "success")
        terms = {f"reward_{n}": 0.0 for n in names}
        status = "running"
        if not self.picked and not (in_hand and in_air):
            distance = self._distance_to_top(env)
            terms["reward_guide"] = r.guide * (self.last_distance - distance)
            self.last_distance = distance
        height = min(z, r.release_height)
        if in_hand and not self.released and self.pick_height < height:
            terms["reward_pick"] = r.pick * (height - self.pick_height)
            self.picked, self.pick_height = True, z
        if self.picked and not in_hand and not in_air:
            return terms, "failure"  # dropped
        if not self.released and z > r.release_height:
            if in_hand:
                return terms, "failure"  # still held above the release height
            terms["reward_release"], self.released = r.release, True
            if self.in_serve:
                return terms, "next"
        if self.released:  # ours: from the pick on, holding the ball forever would pay more than a toss
            terms["reward_stable"] = r.stable * max(0.0, 0.5 - off)
        if self.released and not self.falling:
            if z > self.max_height:
                low = max(self.max_height, r.release_height)
                straight = max(0.0, 1.0 - off / r.apex_off)  # a sideways throw rises for nothing
                terms["reward_rise"] = r.rise * straight * max(0.0, min(z, r.apex_height) - low)
                self.max_height = z
            else:  # the apex has passed
                if off > r.apex_off:  # thrown sideways: it cannot fall back over its spot (ours)
                    return terms, "failure"
                terms["reward_up"] = r.up * (1.0 - abs(r.apex_height - z) / r.apex_height)
                if abs(z - r.apex_height) >= r.apex_tolerance:
                    return terms, "failure"
                terms["reward_up"] += r.up
                self.falling = True
        if self.falling and z < r.release_height:
            landed = abs(pos[0] - r.spot[0]) < r.land_tolerance and abs(pos[1] - r.spot[1]) < r.land_tolerance
            if landed:
                terms["reward_success"] = r.success
                status = "success"
            else:
                status = "failure"
        return terms, status


@dataclass(frozen=True)
class HitRules:
    """Lee et al.'s hitting settings (reward weights, thresholds), scaled to our arm: a lower start and hitting
    height and a nearer target (theirs: dropped from 2.0 m, hit at 1.0 m, target 1.7 m away at (0.4, 2.0, 1.2))."""

    drop_from: tuple[float, float, float] = (0.4, 0.3, 1.2)  # +- spread in each axis, speed +- spread m/s
    spread: float = 0.1
    hit_height: float = 0.8
    hit_tolerance: float = 0.1  # the first touch must be within this of the hitting height
    touch: float = 0.12  # the ball within this of the grip site counts as a touch
    target: tuple[float, float, float] = (0.4, 1.3, 1.0)
    target_radius: float = 0.2
    apex_height: float = 1.2  # serve: the toss's apex must be within apex_tolerance of this
    apex_tolerance: float = 0.1
    hit: float = 100.0  # at the touch, x (1 - |z - hit_height|); + hit if within the tolerance
    sideways: float = 1.0  # per step after the hit, x |x speed|
    target_reward: float = 200.0
    success: float = 1000.0


def ball_rules(apex_height: float = TossRules.apex_height) -> tuple[TossRules, HitRules]:
    """The toss's and the hit's rules for a toss that peaks at `apex_height` (ours; the shipped 1.2 m needs the ball
    to leave the hand at 3.43 m/s, which our arm's toss did not reach): Hit's ball drops from that height, is hit
    0.4 m below it and sent to a target 0.2 m below it, the shipped heights all moved by the same amount."""
    toss, hit = TossRules(), HitRules()
    low = toss.release_height + toss.apex_tolerance
    if not low < apex_height <= 3.0:
        raise ValueError(
            f"apex_height must be in ({low:g}, 3] m (above the release height), got {apex_height!r}"
        )

    def moved(z: float) -> float:
        return round(z + apex_height - hit.apex_height, 6)

    x, y, z = hit.drop_from
    tx, ty, tz = hit.target
    return replace(toss, apex_height=apex_height), replace(
        hit,
        drop_from=(x, y, moved(z)),
        hit_height=moved(hit.hit_height),
        target=(tx, ty, moved(tz)),
        apex_height=apex_height,
    )


class HitSkill(Skill):
    """Hit the falling ball at the hitting height into the target (Lee et al.'s `jaco_hit.py`). `drop`: the
    primitive's own start (the ball released above the arm); in serve the ball comes from the toss, whose apex is
    checked first (theirs: a serve fails if the toss misses its apex height)."""

    name = "hit"

    def __init__(self, rng: np.random.Generator, drop: bool = True, rules: HitRules | None = None):
        super().__init__(rng)
        self.rules = rules or HitRules()
        r = self.rules
        self.drop = drop
        self.start = np.asarray(r.drop_from) + rng.uniform(-r.spread, r.spread, 3)
        self.start_velocity = rng.uniform(-r.spread, r.spread, 3)
        self.falling = drop
        self.hit_done = False
        self.max_height, self.min_target_distance, self.last_x = 0.0, 5.0, 0.0

    def state(self) -> dict[str, Any]:
        return {k: v for k, v in super().state().items() if k != "rules"}

    def place(self, env: JacoArmEnv) -> None:
        env.set_target(np.asarray(self.rules.target))
        if self.drop:
            env.place_object(self.start)

    def hold(self, env: JacoArmEnv) -> None:
        if self.drop:
            env.place_object(self.start)

    def begin(self, env: JacoArmEnv) -> None:
        if self.drop:
            env.place_object(self.start, self.start_velocity)
        self.last_x = float(env.object_pos()[0])

    def step(self, env: JacoArmEnv, t: int) -> tuple[dict[str, float], str]:
        r, pos = self.rules, env.object_pos()
        z = pos[2]
        terms = {"reward_hit": 0.0, "reward_sideways": 0.0, "reward_target": 0.0, "reward_success": 0.0}
        x_speed = (pos[0] - self.last_x) / env.dt
        self.last_x = float(pos[0])
        if not self.falling:  # serve: wait for the apex of the toss
            if z > self.max_height:
                self.max_height = z
            elif abs(z - r.apex_height) >= r.apex_tolerance:
                return terms, "failure"
            else:
                self.falling = True
        touched = env.hand_distance() < r.touch
        if self.falling and touched and not self.hit_done:
            miss = abs(z - r.hit_height)
            terms["reward_hit"] = r.hit * (1.0 - miss)
            if miss >= r.hit_tolerance:
                return terms, "failure"
            terms["reward_hit"] += r.hit
            self.hit_done = True
        if self.hit_done:
            terms["reward_sideways"] = -r.sideways * abs(x_speed)
            distance = float(np.linalg.norm(pos - np.asarray(r.target)))
            self.min_target_distance = min(self.min_target_distance, distance)
            if distance < r.target_radius:
                terms["reward_target"] = r.target_reward
                terms["reward_success"] = r.success
                return terms, "success"
        if z < BALL_RADIUS + 0.03:  # on the floor
            if self.hit_done:
                terms["reward_target"] = r.target_reward * (2.0 - self.min_target_distance) / 2.0
            return terms, "failure"
        return terms, "running"
