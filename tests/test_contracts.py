"""docs/CONTRACTS.md names only things that exist, and the layering it states holds."""

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = (ROOT / "docs" / "CONTRACTS.md").read_text()


def _resolve(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_dotted_name_in_contracts_imports():
    names = set(re.findall(r"`((?:align|teacher|control)(?:\.\w+)+)", CONTRACTS))
    assert len(names) > 20
    missing = sorted(n for n in names if not _resolve(n))
    assert not missing, f"docs/CONTRACTS.md names what does not exist: {missing}"


def test_every_file_in_contracts_exists():
    paths = set(
        re.findall(r"`((?:tests|align|teacher|control|recipes|data)/[\w/.]+\.(?:py|md|json))`", CONTRACTS)
    )
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/CONTRACTS.md names files that do not exist: {missing}"


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return found


SHARED_HELPERS = {
    "align.run_state",
    "align.stopping",
    "align.progress",
    "align.user_errors",
    "align.checkpoints",
}


def test_layering_holds():
    assert not any(m.startswith(("align", "control")) for m in _imports("teacher"))
    from_align = {m for m in _imports("control") if m.startswith(("align", "teacher"))}
    assert from_align <= SHARED_HELPERS, from_align - SHARED_HELPERS
    for helper in SHARED_HELPERS:  # the shared helpers stay free of align's and teacher's machinery
        path = ROOT / (helper.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text())
        inner = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert all(m in SHARED_HELPERS for m in inner if m.startswith(("align", "teacher"))), helper
    assert not any(m.startswith("align.ares") for m in _imports("align.eval"))
