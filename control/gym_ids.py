"""Registration of the `Hierarchy/*` gymnasium ids on `import control`, without importing gymnasium early.

If gymnasium is loaded, the ids are registered at once; otherwise a one-shot import hook registers them right
after gymnasium's own module has run (the ids' entry points are strings, so nothing heavy is imported until
an env is made)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any


def _register() -> None:
    from control.hierarchy.registration import register_all

    register_all()


class _RegisterAfter(importlib.abc.Loader):
    """Runs gymnasium's own loader, then registers our ids."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _register()


class _GymnasiumHook(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)  # one shot; and lets find_spec below see the real finders
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfter(spec.loader)
        return spec


def register_hierarchy_ids() -> None:
    """Register now if gymnasium is loaded, else when it is imported (idempotent)."""
    if "gymnasium" in sys.modules:
        _register()
    elif not any(isinstance(f, _GymnasiumHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _GymnasiumHook())
