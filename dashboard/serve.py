"""``bptt-explorer``: serve the dashboard from an installed copy, from any working directory.

    bptt-explorer [--port 8501] [--address 127.0.0.1]

Runs ``python -m streamlit run <dashboard/router.py>`` with the project's Streamlit settings. Those
live in one file, ``dashboard/streamlit.toml`` (shipped in the wheel; the checkout's
``.streamlit/config.toml`` is a link to it, which ``streamlit run app.py`` reads from the repository
root): Streamlit reads a config file only from the working directory and the home folder, so they
are passed here as its ``--section.key=value`` options instead. ``--port`` and ``--address`` come
after them and so win.

Nothing here imports streamlit: the command line answers ``--help`` at once, and without the
``dashboard`` extra it says what to install instead of failing on an import.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tomllib
from pathlib import Path

from bptt_core import __version__
from bptt_core.extras import missing_package_message

HERE = Path(__file__).resolve().parent
ROUTER = HERE / "router.py"
CONFIG = HERE / "streamlit.toml"
EXIT_MISSING = 3  # as bptt's: an optional dependency is not installed
MAX_PORT = 65535


def config_flags(path: Path = CONFIG) -> list[str]:
    """The TOML's settings as Streamlit's command-line options, in file order: ``[server]
    headless = true`` -> ``--server.headless=true``; a list repeats its option once per item."""
    with path.open("rb") as fh:
        table = tomllib.load(fh)
    return [f"--{key}={_flag_value(v)}" for key, value in _flatten(table) for v in _items(value)]


def _flatten(table: dict, prefix: str = ""):
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _items(value) -> list:
    return list(value) if isinstance(value, list) else [value]


def _flag_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PORT}, got {text!r}") from None
    if not 1 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PORT}, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bptt-explorer",
        description="Serve the BPTT Explorer dashboard (Streamlit) with the project's settings.",
    )
    parser.add_argument("--version", action="version", version=f"bptt-explorer {__version__}")
    parser.add_argument("--port", type=_port, default=None, help="TCP port (default: Streamlit's, 8501)")
    parser.add_argument(
        "--address",
        default=None,
        help="address to listen on, e.g. 127.0.0.1 for this machine only (default: Streamlit's, every interface)",
    )
    return parser


def command(argv: list[str] | None = None) -> list[str]:
    """The full command line that serves the dashboard (argparse exits 2 on a bad option)."""
    args = build_parser().parse_args(argv)
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROUTER), *config_flags()]
    if args.port is not None:
        cmd.append(f"--server.port={args.port}")
    if args.address is not None:
        cmd.append(f"--server.address={args.address}")
    return cmd


def main(argv: list[str] | None = None) -> int:
    cmd = command(argv)
    if importlib.util.find_spec("streamlit") is None:
        print(f"error: {missing_package_message('streamlit', 'bptt-explorer')}", file=sys.stderr)
        return EXIT_MISSING
    # exec, not a child: Streamlit gets this process (its id, its signals, its exit status)
    os.execv(sys.executable, cmd)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    raise SystemExit(main())
