"""User errors as one or two lines and exit code 2, never a traceback, for every command of the project.

Commands raise `UserError` (or `run_state.RunFolderError`) for a bad flag, typo, malformed record, missing
file or wrong config, naming what is at fault; `run_command` turns it into the message, and a stop request
(`stopping.StopRequested`, a second Ctrl-C) into exit code 130. Standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Iterable
from typing import NoReturn

from align.run_state import RunFolderError
from align.stopping import EXIT_STOPPED, StopRequested

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in what the user gave (flag, field, file, record); its message names it."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, value: str, choices: Iterable[str], listed: int = 12) -> UserError:
    """`unknown <kind> 'value' (did you mean ...?); choose from a, b, c`."""
    choices = list(choices)
    shown = ", ".join(choices[:listed]) + (", ..." if len(choices) > listed else "")
    return UserError(f"unknown {kind} {value!r}{did_you_mean(value, choices)}; choose from {shown}")


def strict_bool(text: str) -> bool:
    """An argparse type: true/false, yes/no, 1/0, on/off (any case); anything else is an error."""
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def positive_int(text: str) -> int:
    """An argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but an error is one line (`prog: error: ...`, with "did you mean" for a misspelt flag or
    choice) plus a pointer to --help, exit code 2, instead of the whole usage."""

    def error(self, message: str) -> NoReturn:
        message += self._suggestion(message)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")

    def _suggestion(self, message: str) -> str:
        if message.startswith("unrecognized arguments:"):
            flags = _all_flags(self)
            for word in message.split(":", 1)[1].split():
                if word.startswith("-"):
                    hint = did_you_mean(word.split("=")[0], flags)
                    if hint:
                        return hint
            return ""
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            return did_you_mean(match.group(1), re.findall(r"'([^']*)'", match.group(2)))
        return ""


def _all_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The option strings of a parser and of its subcommands' parsers."""
    flags = []
    for action in parser._actions:
        flags += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags += _all_flags(sub)
    return flags


def run_command(main: Callable[[], int | None], prog: str) -> int:
    """Run a command's `main`, mapping user errors to exit 2 and stops to exit 130 (one or two lines)."""
    try:
        return int(main() or 0)
    except (UserError, RunFolderError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except StopRequested as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_STOPPED
