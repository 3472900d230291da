"""Envs pickled as the constructor call that built them: gymnasium's `EzPickle` rebuilds an env from the arguments
it was given, but records only those that the class calling it passes on, so a subclass's own keywords (an arm
env's `apex_height`, a walker's `restart_prob`) were lost on the way."""

from __future__ import annotations

from typing import Any

from gymnasium import utils


class PickledAsBuilt(utils.EzPickle):
    """Records the most-derived class's constructor arguments before any `__init__` runs; `keep_constructor_args`
    restores them after a base class (`Walker2dEnv`, `MujocoEnv`) recorded its own."""

    def __new__(cls, *args: Any, **kwargs: Any):
        self = super().__new__(cls)
        self._built_with = (args, dict(kwargs))
        utils.EzPickle.__init__(self, *args, **kwargs)
        return self

    def keep_constructor_args(self) -> None:
        args, kwargs = self._built_with
        utils.EzPickle.__init__(self, *args, **kwargs)
