"""The recipes' config loading, importable by tests (recipes/ is a folder of scripts, not a package)."""

import importlib.util
from pathlib import Path

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def load_recipe(name: str):
    """The module of `recipes/<name>.py`."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recipe = load_recipe("ares_scienceqa")
SECTIONS = recipe.SECTIONS
load_config = recipe.load_config
