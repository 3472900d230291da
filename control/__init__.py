"""RL control sidecar: PPO-family algorithms on gymnasium Atari, MuJoCo and Box2D. Independent of `align`.

Importing `control` registers the `Hierarchy/*` gymnasium ids of the hierarchical tasks (string entry points:
nothing heavy is imported until an env is made)."""

from control.hierarchy import registration as _registration  # noqa: F401
