"""RL control sidecar: PPO-family algorithms on gymnasium Atari, MuJoCo and Box2D, and transition policies for
hierarchical tasks. Independent of `align`, except for its standard-library run-folder helpers
(`align.run_state`, `align.stopping`, `align.progress`, `align.user_errors`) and safe checkpoint IO
(`align.checkpoints`), which every command of the project shares.

Importing `control` registers the `Hierarchy/*` gymnasium ids: at once when gymnasium is loaded, otherwise the
moment it is imported, so `python -m control --help` does not pay for gymnasium.
"""

from control.gym_ids import register_hierarchy_ids

register_hierarchy_ids()
