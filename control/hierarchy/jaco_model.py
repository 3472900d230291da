"""The Kinova Jaco arm and three-finger hand that the `dm-control` wheel ships
(`dm_control/third_party/kinova/jaco_arm.xml`, `jaco_hand.xml`, `common.xml`, meshes), composed with MuJoCo's
`MjSpec` into one model for the arm tasks: the hand attached at the wrist site, the arm on a 0.25 m pedestal (as
in Lee et al.'s scene), a floor, one object (a 6 cm cube for picking and catching, an 8 cm ball for tossing and
hitting) and a visual target sphere.

The files are found through the installed `dm_control` package at run time. dm_control adds the arm's actuators
in Python (velocity servos capped at the real arm's firmware speeds, 36-48 deg/s, with the motors' reflected
inertia as joint armature); at those speeds a ball cannot be tossed or hit, so we add our own velocity servos
(:class:`ArmDrive`: faster limits, the datasheet's peak torques, lighter armature) and gravity compensation of
the arm and hand (as the Kinova controller does), with position servos on the fingers, and keep dm_control's geometry, masses, joint ranges and
contact settings.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

ARM_JOINTS = tuple(f"joint_{i}" for i in range(1, 7))
LARGE_JOINTS = ARM_JOINTS[:3]
HAND_PREFIX = "hand/"
FINGER_JOINTS = tuple(f"{HAND_PREFIX}finger_{i}" for i in range(1, 4))
GRIP_SITE = f"{HAND_PREFIX}gripsite"  # between the fingers, where a grasped object sits
PEDESTAL_HEIGHT = 0.25
CUBE_HALF = 0.03  # Lee et al.'s picking/catching box: 6 cm, 0.1 kg
BALL_RADIUS = 0.04  # their tossing/hitting ball: 8 cm, 0.1 kg
OBJECT_MASS = 0.1
# Arm joint angles with the hand pointing down, the grip site ~0.3 m above the floor at (0.45, 0.25): the start
# pose of every arm env (found by inverse kinematics on this model; elbow up).
HOME_ARM = (2.5242, 3.7592, 1.9244, -0.4579, 1.5562, 0.838)
HOME_FINGERS = 0.2  # rad, open
FINGER_RANGE = (0.15, 1.35)  # rad, dm_control's finger joint range: open, closed


@dataclass(frozen=True)
class ArmDrive:
    """Velocity servos on the six arm joints (dm_control's actuator type, faster limits) and position servos on
    the three fingers (a grip command). The policy's action in [-1, 1] is an arm joint's target speed as a
    fraction of its limit, and a finger's target angle across its range (-1 open, +1 closed)."""

    large_speed: float = 4.0  # rad/s, joints 1-3 (the real firmware: 0.63)
    small_speed: float = 5.0  # rad/s, joints 4-6 (0.84)
    large_torque: float = 30.5  # N m, Kinova KA-75+ peak torque (dm_control's value)
    small_torque: float = 6.8  # N m, KA-58 peak torque
    finger_torque: float = 3.0  # N m (dm_control: 1, which lets a lifted cube slip)
    arm_gain: float = 60.0  # N m s/rad
    finger_gain: float = 10.0  # N m/rad
    large_armature: float = 0.1  # kg m^2 (dm_control: 4, the geared motors' reflected inertia)
    small_armature: float = 0.05  # (dm_control: 2)

    def speed_limits(self) -> np.ndarray:
        return np.array([self.large_speed] * 3 + [self.small_speed] * 3)


# The ball envs' drive (toss, hit, serve). A toss to the 1.2 m apex from a release at or below 0.6 m needs the hand
# to move straight up at >= 3.43 m/s; with the default limits the best a resolved-rate controller reaches by
# 0.6 m is 2.8-3.0 m/s (an apex of ~1.05 m), with 6 / 7 rad/s 3.9-4.4 m/s (`tests/test_control_hierarchy_jaco.py`
# checks both). Lee et al.'s arm had torque motors and no speed cap.
BALL_DRIVE = ArmDrive(large_speed=6.0, small_speed=7.0)


def kinova_dir() -> Path:
    """The Kinova model files inside the installed dm_control package."""
    spec = importlib.util.find_spec("dm_control")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the Jaco arm envs need the Kinova Jaco model of the dm-control package: pip install dm-control "
            "(part of ares-align's `control` extra)"
        )
    path = Path(spec.origin).parent / "third_party" / "kinova"
    if not (path / "jaco_arm.xml").is_file():
        raise FileNotFoundError(f"{path}: no jaco_arm.xml in this dm_control installation")
    return path


def _add_servo(spec: mujoco.MjSpec, joint: str, gain: float, torque: float, position: bool = False) -> None:
    actuator = spec.add_actuator(name=joint, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
    if position:
        actuator.set_to_position(kp=gain)
    else:
        actuator.set_to_velocity(kv=gain)
    actuator.ctrllimited = True
    actuator.ctrlrange = [-100.0, 100.0]  # the env scales and clips actions; this only bounds ctrl
    actuator.forcelimited = True
    actuator.forcerange = [-torque, torque]


def jaco_spec(obj: str, drive: ArmDrive | None = None) -> mujoco.MjSpec:
    """The arm, hand, pedestal, floor, object (`cube` or `ball`, body and free joint `object`) and target."""
    if obj not in ("cube", "ball"):
        raise ValueError(f"unknown object {obj!r}: expected 'cube' or 'ball'")
    drive = drive or ArmDrive()
    root = kinova_dir()
    spec = mujoco.MjSpec.from_file(str(root / "jaco_arm.xml"))
    hand = mujoco.MjSpec.from_file(str(root / "jaco_hand.xml"))
    spec.site("wristsite").attach_body(hand.body("hand"), HAND_PREFIX, "")
    spec.body("b_base").pos = [0.0, 0.0, PEDESTAL_HEIGHT]
    for body in spec.bodies:
        if body.name and body.name != "world":
            body.gravcomp = 1.0
    for name in ARM_JOINTS:
        large = name in LARGE_JOINTS
        spec.joint(name).armature = drive.large_armature if large else drive.small_armature
        _add_servo(spec, name, drive.arm_gain, drive.large_torque if large else drive.small_torque)
    for name in FINGER_JOINTS:
        _add_servo(spec, name, drive.finger_gain, drive.finger_torque, position=True)

    world = spec.worldbody
    world.add_light(pos=[0.5, 0.5, 3.0], dir=[0.0, 0.0, -1.0], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[4, 4, 0.1],
        rgba=[0.6, 0.6, 0.6, 1],
        contype=1,
        conaffinity=3,
    )
    world.add_geom(
        name="pedestal",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.06, PEDESTAL_HEIGHT / 2, 0],
        pos=[0, 0, PEDESTAL_HEIGHT / 2],
        rgba=[0.3, 0.3, 0.3, 1],
        contype=0,
        conaffinity=0,
    )
    body = world.add_body(name="object", pos=[0.5, 0.25, 0.1])
    body.add_freejoint(name="object")
    if obj == "cube":
        size, kind, friction = [CUBE_HALF] * 3, mujoco.mjtGeom.mjGEOM_BOX, [1.0, 0.005, 0.0001]
    else:
        size, kind, friction = [BALL_RADIUS, 0, 0], mujoco.mjtGeom.mjGEOM_SPHERE, [2.0, 0.02, 0.0005]
    body.add_geom(
        name="object",
        type=kind,
        size=size,
        mass=OBJECT_MASS,
        rgba=[0.8, 0.2, 0.2, 1],
        friction=friction,
        contype=3,
        conaffinity=3,
        condim=4,
    )
    target = world.add_body(name="target", pos=[0.4, 2.0, 1.2], mocap=True)
    target.add_geom(
        name="target",
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        size=[0.2, 0, 0],
        rgba=[0.3, 0.6, 0.3, 0.3],
        contype=0,
        conaffinity=0,
    )
    return spec
