"""The ARES recipe's config loading, importable by tests (recipes/ is a folder of scripts, not a package)."""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "recipes" / "ares_scienceqa.py"
_spec = importlib.util.spec_from_file_location("ares_scienceqa_recipe", _path)
recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipe)

SECTIONS = recipe.SECTIONS
load_config = recipe.load_config
