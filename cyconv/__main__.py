"""Command line: ``python -m cyconv info | check | bench``."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m cyconv",
        description="cyconv: configuration, self-check and benchmarks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the build and runtime configuration")
    check = sub.add_parser("check", help="run every compiled kernel against SciPy")
    check.add_argument("--variant", action="append",
                       help="check only this SIMD variant (repeatable)")
    sub.add_parser("bench", help="side-by-side benchmark (see `python -m cyconv bench -h`)",
                   add_help=False)
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


if __name__ == "__main__":
    sys.exit(main())
