"""The command line, ``bptt <command> ...`` (``python -m bptt_core`` is the same): the dashboard's
diagnostics as files.

    bptt jacobian --cell gru --hidden-size 1024 --seq-len 64 --out results/

Each command is a module of this package with ``add_parser(subparsers)``, which declares its options
and sets ``func``, and the function that runs it. Building the parser imports neither torch nor
pandas (``bptt --help`` answers at once); a command imports what it needs when it runs. A bad setting
prints the library's ValueError message (which names the setting) to stderr and exits with status 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import sys

from bptt_core import __version__
from bptt_core.extras import missing_package, missing_package_message

from . import jacobian, report, runs, sweep
from .options import EXIT_BAD_SETTING, EXIT_IO_ERROR, EXIT_MISSING_PACKAGE

COMMANDS = (jacobian, report, sweep, runs)  # a new command: a module with add_parser(subparsers), listed here


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bptt", description="BPTT Explorer diagnostics from the command line.")
    parser.add_argument("--version", action="version", version=f"bptt-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on an unknown option
    try:
        return args.func(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except OSError as e:
        print(f"error: cannot write the output: {e}", file=sys.stderr)
        return EXIT_IO_ERROR
    except ModuleNotFoundError as e:  # a core-only install: the command's optional packages are missing
        package = missing_package(e)
        if package is None:
            raise
        print(f"error: {missing_package_message(package, f'bptt {args.command}')}", file=sys.stderr)
        return EXIT_MISSING_PACKAGE
