"""The command line every recipe shares: `--config`, `--set`, `--overwrite`, `--quiet`, a `--help` that
describes the recipe and lists its shipped configs and sections, and one way of ending: exit 0 when done, 2
with one or two lines for a user error, 130 with "stopped at step N of M; rerun the same command to resume"
after Ctrl-C or SIGTERM.

Standard library only: `--help` and argument errors return before torch is imported; the recipe's `work`
imports what it needs when work starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from align.stopping import GracefulStop
from align.train_hooks import TrainHooks
from align.user_errors import ArgumentParser, run_command

CONFIG_DIR = Path(__file__).resolve().parent.parent / "recipes" / "configs"


@dataclass(frozen=True)
class Recipe:
    """What `--help` says about a recipe: its docstring, default and shipped configs (names under
    recipes/configs -> what each is for), its sections (name -> what they configure) and an example `--set`."""

    prog: str
    doc: str
    default_config: str
    configs: Mapping[str, str]
    sections: Mapping[str, str]
    example_set: str
    config_dir: Path = field(default=CONFIG_DIR)


def _epilog(recipe: Recipe) -> str:
    lines = ["shipped configs (--config NAME, or a path to your own YAML):"]
    for name, summary in recipe.configs.items():
        default = " (default)" if name == recipe.default_config else ""
        lines.append(f"  {name}{default}: {summary}")
    lines.append("")
    lines.append("sections (--set SECTION.FIELD=VALUE; the YAML file's top-level keys):")
    width = max(len(s) for s in recipe.sections)
    lines += [f"  {name:<{width}}  {what}" for name, what in recipe.sections.items()]
    lines.append("")
    lines.append(
        "The run folder records the config at its first start: a later start with the same config resumes,\n"
        "one that changes a result-changing field is refused (--overwrite starts over). Ctrl-C stops at the\n"
        "next safe point; rerun the same command to resume."
    )
    return "\n".join(lines)


def recipe_parser(recipe: Recipe) -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=recipe.prog,
        description=recipe.doc,
        epilog=_epilog(recipe),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--overwrit` is a typo to report, not a destructive `--overwrite`
    )
    parser.add_argument(
        "--config",
        default=recipe.default_config,
        help="YAML config: a shipped config's name (listed below) or a path (default: %(default)s).",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help=f"Override one setting (repeatable), e.g. --set {recipe.example_set}.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Delete the run folder's earlier run (its recorded config, stages, checkpoints) and start over.",
    )
    parser.add_argument("--quiet", action="store_true", help="No progress bars or periodic progress lines.")
    return parser


def recipe_arguments(recipe: Recipe, argv: list[str] | None = None) -> argparse.Namespace:
    return recipe_parser(recipe).parse_args(argv)


def run_recipe(
    recipe: Recipe,
    work: Callable[[argparse.Namespace, TrainHooks], int | None],
    argv: list[str] | None = None,
) -> int:
    """Parse the arguments, then run `work(args, hooks)` with Ctrl-C/SIGTERM turned into a stop at the next
    safe point; returns the exit code (0, 2 for a user error, 130 when stopped)."""
    args = recipe_arguments(recipe, argv)
    prog = Path(recipe.prog).stem

    def main() -> int | None:
        with GracefulStop() as stop:
            return work(args, TrainHooks(stop=stop, quiet=args.quiet))

    return run_command(main, prog)
