"""MuJoCo's notices about gymnasium's own model files, kept out of a run's console and working folder.

gymnasium's `half_cheetah.xml` sets a compiler attribute MuJoCo has deprecated (`settotalmass`); MuJoCo's default
warning handler then prints a WARNING line and appends it to `MUJOCO_LOG.TXT` in the working folder each time
the model is compiled, which is every env a run makes (training, every evaluation, every sweep job). Nothing
the user can act on. `quiet_model_deprecations` installs a handler that drops exactly those deprecation notices
and prints every other MuJoCo warning to stderr as MuJoCo does (without the log file).
"""

from __future__ import annotations

import sys

import gymnasium as gym

DEPRECATED = "is deprecated and will be removed in a future release"


def warning_handler(message: str) -> None:
    """MuJoCo's warning callback: compiler deprecation notices dropped, anything else printed."""
    if message.startswith("compiler attribute") and DEPRECATED in message:
        return
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def quiet_model_deprecations(env_id: str) -> None:
    """Install `warning_handler` as MuJoCo's warning callback in this process when `env_id` is one of
    gymnasium's MuJoCo envs (other envs do not import MuJoCo for it) and MuJoCo still has its default one (a
    handler the user installed stays)."""
    spec = gym.registry.get(env_id)
    if spec is None or "mujoco" not in str(spec.entry_point):
        return
    import mujoco

    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(warning_handler)
