"""Command line: ``python -m cyconv info | check | bench``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import List, Optional


def _oracle_name() -> str:
    """What ``check`` compares with: SciPy when it is installed, else the reference."""
    return "scipy.signal" if importlib.util.find_spec("scipy") else "cyconv.reference"


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m cyconv",
        description="cyconv: configuration, self-check and benchmarks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the build and runtime configuration")
    check = sub.add_parser(
        "check",
        help=f"run every compiled kernel variant against {_oracle_name()}",
        description=(
            "Run every compiled kernel variant this CPU supports on random problems and "
            f"compare each result with {_oracle_name()} (SciPy when it is installed, else "
            "cyconv.reference); exit 1 on any mismatch."
        ),
    )
    check.add_argument(
        "--variant", action="append", help="check only this SIMD variant (repeatable)"
    )
    sub.add_parser(
        "bench", help="side-by-side benchmark (see `python -m cyconv bench -h`)", add_help=False
    )
    if argv[:1] == ["bench"]:
        from .bench import cli

        return cli.main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "info":
        from . import show_config

        show_config()
        return 0
    from . import _check

    return 1 if _check.run(args.variant) else 0


def run() -> int:
    """:func:`main`, ending quietly when the reader of the output goes away (``| head``)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at devnull so that flush
        # cannot raise a second BrokenPipeError.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(run())
