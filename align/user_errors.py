"""User errors as one or two lines and exit code 2, never a traceback, for every command of the project.

Commands raise `UserError` (or `run_state.RunFolderError`) for a bad flag, typo, malformed record, missing
file or wrong config, naming what is at fault; `run_command` turns it into the message, and a stop request
(`stopping.StopRequested`, a second Ctrl-C) into exit code 130. Standard library only.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable

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
