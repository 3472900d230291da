"""The recipes' config loading, importable by tests (recipes/ is a folder of scripts, not a package)."""

import importlib.util
import sys
from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.py"))


def load_recipe(name: str):
    """The module of `recipes/<name>.py` (recipes/ is on the path while it imports, as when run as a script)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(RECIPES_DIR))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(RECIPES_DIR))
    return module


recipe = load_recipe("ares_scienceqa")
SECTIONS = recipe.sections()
load_config = recipe.load_config
