"""Registers the gymnasium ids of the hierarchical tasks (entry points are strings: nothing heavy is imported
until an env is made). `import control` calls `register_all` (see `control.gym_ids`)."""

from __future__ import annotations

import gymnasium as gym

from control.hierarchy.jaco_registry import ENTRY_MODULE as JACO_MODULE
from control.hierarchy.jaco_registry import JACO_ENVS

NAMESPACE = "Hierarchy"

WALKER_ENVS = {
    "Walker2dForward-v0": "WalkerForward",
    "Walker2dBackward-v0": "WalkerBackward",
    "Walker2dJump-v0": "WalkerJump",
    "Walker2dCrawl-v0": "WalkerCrawl",
    "Walker2dBalance-v0": "WalkerBalance",
    "Walker2dPatrol-v0": "WalkerPatrol",
    "Walker2dHurdle-v0": "WalkerHurdle",
    "Walker2dObstacleCourse-v0": "WalkerObstacleCourse",
}
TOY_ENVS = {
    "PointDash-v0": "PointDash",
    "PointPark-v0": "PointPark",
    "PointDashPark-v0": "PointDashPark",
}


def register_all() -> None:
    for name, cls in WALKER_ENVS.items():
        if f"{NAMESPACE}/{name}" not in gym.registry:
            gym.register(f"{NAMESPACE}/{name}", entry_point=f"control.hierarchy.walker:{cls}")
    for name, cls in JACO_ENVS.items():
        if f"{NAMESPACE}/{name}" not in gym.registry:
            gym.register(f"{NAMESPACE}/{name}", entry_point=f"{JACO_MODULE}:{cls}")
    for name, cls in TOY_ENVS.items():
        if f"{NAMESPACE}/{name}" not in gym.registry:
            gym.register(f"{NAMESPACE}/{name}", entry_point=f"control.hierarchy.toy:{cls}")
    if f"{NAMESPACE}/Transition-v0" not in gym.registry:
        gym.register(
            f"{NAMESPACE}/Transition-v0", entry_point="control.hierarchy.transition_env:TransitionEnv"
        )


register_all()
