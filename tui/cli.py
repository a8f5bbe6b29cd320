"""The `lstm-tui` command line: finds the command, runs it, and turns errors into exit codes.

    lstm-tui [CORPUS] [options]           open the interface and train (the default command)
    lstm-tui CHECKPOINT [options]         a saved model (by its first bytes): the same as `play`
    lstm-tui COMMAND ... [options]        train, sample, play, inspect, ... (tui.commands.COMMANDS)

Each command lives in its own module under tui/commands/, imported only when it runs; adding one
is a module plus a line in tui.commands.COMMANDS. Bad usage or bad input ends with exit code 2
and one line `lstm-tui: error: ...`, before any screen is drawn. Textual is imported only by the
interface's commands, lazily: the headless commands start fast and run where no terminal exists.

Exit codes: 0 success; 1 training diverged or the model could not be saved; 2 bad usage or bad
input; 130 interrupted (Ctrl+C); 143 terminated (SIGTERM); 129 hang-up (SIGHUP).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import core
from tui.commands import COMMANDS, DEFAULT, available, opens_a_model
from tui.commands.common import EXIT_INTERRUPTED, EXIT_USAGE
from tui.commands.options import PROG, UsageError


def _quiet_encoding_errors() -> None:
    """A terminal that cannot show a character gets '?' instead of a crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (ValueError, OSError):
                pass


def run_command(name: str | None, argv: Sequence[str]) -> int:
    """Parse `argv` with the command's own parser and run it (None: the default command)."""
    command = DEFAULT if name is None else COMMANDS[name]
    if not available(command):
        raise core.LstmTuiError(f"'{PROG} {name}' is not part of this installation")
    module = importlib.import_module(command.module)
    args = module.build_parser().parse_args(list(argv))
    return int(module.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lstm-tui` script; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    name = args_list[0] if args_list and args_list[0] in COMMANDS else None
    rest = args_list[1:] if name else args_list
    if name is None and rest and not rest[0].startswith("-") and opens_a_model(rest[0]):
        name = "play"  # `lstm-tui MODEL.npz`: a saved model, not a text to train on
    _quiet_encoding_errors()
    try:
        return run_command(name, rest)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except core.LstmTuiError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f"{PROG}: error: out of memory; try a smaller --hidden, --layers, --batch or --seq-len", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as e:  # --help and --version end parsing this way; return their code instead
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)


if __name__ == "__main__":
    sys.exit(main())
