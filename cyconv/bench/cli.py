"""The command line ``python -m cyconv bench``: options, ``--list`` and :func:`main`."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from .harness import Progress, Settings, run
from .machine import (
    busy_fraction,
    cyconv_unavailable_reason,
    default_threads,
    machine_info,
)
from .output import write_outputs
from .peers import SYSTEMS, SYSTEMS_BY_NAME, systems_for
from .report import report_text
from .suite import Layer, filter_layers, load_suite

__all__ = ["build_parser", "list_text", "main"]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,..., got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be positive integers, got {text!r}")
    return sorted(set(values))


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``python -m cyconv bench``."""
    parser = argparse.ArgumentParser(
        prog="python -m cyconv bench",
        description=(
            "Compare cyconv with NumPy, SciPy, PyTorch, ONNX Runtime and OpenCV on the layers "
            "of the benchmark suite. Every result is checked against a float64 reference before "
            "it is timed. Prints a Markdown table (GFLOP/s, higher is better)."
        ),
        epilog=(
            "Table cells: '-' not compared on this layer, 'n/i' not installed, '(!)' wrong "
            "result (excluded from the ratio), '*' fewer samples than asked (time budget), "
            "'~' other programs loaded the CPU meanwhile. "
            "Exit status 1 when a cyconv result was wrong, raised, or cyconv was unusable."
        ),
    )
    parser.add_argument(
        "--layers",
        type=_str_list,
        default=[],
        metavar="SUBSTR[,SUBSTR...]",
        help="run only layers whose name contains one of these (case-insensitive)",
    )
    parser.add_argument(
        "--threads",
        type=_int_list,
        default=None,
        metavar="N[,N...]",
        help="thread count(s); several give a scaling sweep and plot (default: usable cores, "
        f"here {default_threads()})",
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        metavar="R",
        help="timed samples per system (default 10, --quick 3)",
    )
    parser.add_argument(
        "--warmup",
        type=_positive_int,
        default=1,
        metavar="W",
        help="untimed calls before timing, after the checked call (default 1)",
    )
    parser.add_argument(
        "--max-time",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="time budget per system and layer (default 5, --quick 0.25)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the results (JSON), the report (Markdown) and PNG charts here",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 3 samples, small budget, 1024^3 matmul"
    )
    parser.add_argument(
        "--all-peers",
        action="store_true",
        help="run every peer that can compute a layer, not only those the suite lists",
    )
    parser.add_argument(
        "--peers",
        type=_str_list,
        default=None,
        metavar="NAME[,NAME...]",
        help="run only these peers (cyconv always runs): "
        + ", ".join(s.name for s in SYSTEMS if not s.is_cyconv),
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="take the samples of a layer's systems in turns instead of one system after the "
        "other: spreads bursts of outside load evenly, but thread pools left spinning by one "
        "system slow the next",
    )
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=None,
        metavar="K",
        help="time each layer's systems in K rounds of blocks, in alternating order, and pool "
        "the samples (default 3, --quick 1); --repeats is the total over the rounds",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument(
        "--suite", type=Path, default=None, help="a suite JSON file instead of the packaged one"
    )
    parser.add_argument("--list", action="store_true", help="list layers and systems, then exit")
    return parser


def list_text(layers: Sequence[Layer], all_peers: bool) -> str:
    """What ``--list`` prints: the layers with their systems, then every system's availability."""
    lines = ["layers:"]
    for layer in layers:
        systems = ", ".join(s.name for s in systems_for(layer, all_peers=all_peers))
        lines.append(f"  {layer.name!r}: {layer.gflop:.3g} GFLOP, {layer.dtype}; {systems}")
    lines.append("systems:")
    for s in SYSTEMS:
        reason = s.unavailable_reason()
        lines.append(f"  {s.name:20s} {s.label:24s} {'available' if not reason else reason}")
    return "\n".join(lines)


def _settings(args: argparse.Namespace) -> Settings:
    """The run options, with the defaults of a full or a ``--quick`` run filled in."""
    return Settings(
        threads=args.threads or [default_threads()],
        repeats=args.repeats or (3 if args.quick else 10),
        warmup=args.warmup,
        max_time=args.max_time or (0.25 if args.quick else 5.0),
        min_sample=0.002 if args.quick else 0.02,
        matmul_n=1024 if args.quick else 2048,
        all_peers=args.all_peers,
        peers=args.peers,
        seed=args.seed,
        min_warmup=0.05 if args.quick else 0.2,
        interleave=args.interleave,
        rounds=args.rounds or (1 if args.quick else 3),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cyconv bench``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``bench``; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 when a cyconv result was wrong or cyconv failed, 2 on
        usage errors.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on errors
        return int(exc.code or 0)
    try:
        suite = load_suite(args.suite)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot load the benchmark suite: {exc}", file=sys.stderr)
        return 2
    layers = filter_layers(suite, args.layers)
    if not layers:
        names = "\n  ".join(layer.name for layer in suite)
        print(f"error: no layer matches {args.layers}; layers:\n  {names}", file=sys.stderr)
        return 2
    if args.peers is not None:
        unknown = [p for p in args.peers if p not in SYSTEMS_BY_NAME]
        if unknown:
            known = sorted(s.name for s in SYSTEMS if not s.is_cyconv)
            print(f"error: unknown peers {unknown}; known: {known}", file=sys.stderr)
            return 2
    if args.list:
        print(list_text(layers, args.all_peers))
        return 0

    settings = _settings(args)
    command = shlex.join(["python", "-m", "cyconv", "bench", *argv])
    progress = Progress()
    started = datetime.datetime.now(datetime.timezone.utc).astimezone()
    progress.update("collecting machine information and importing peers")
    machine = machine_info()
    cy_reason = cyconv_unavailable_reason()
    if cy_reason:
        progress.message(f"warning: {cy_reason}; only the peers are timed")
    busy = busy_fraction()
    machine["busy_before_start"] = busy
    if busy is not None and busy > 0.1:
        progress.message(
            f"warning: the machine is {100 * busy:.0f} % busy with other work; "
            "timings will be noisy"
        )
    if max(settings.threads) > machine["usable_cores"]:
        progress.message(f"warning: more threads than the {machine['usable_cores']} usable cores")

    data = run(layers, settings, progress)
    data["elapsed_s"] = time.perf_counter() - progress.start
    machine["busy_after_end"] = busy_fraction(0.2)
    text = report_text(command, started, machine, layers, settings, data)
    if args.output is not None:
        try:
            text += "\n" + write_outputs(
                args.output, text, command, started, machine, layers, settings, data
            )
        except OSError as exc:
            text += f"\nerror: cannot write to {args.output}: {exc}"
    print(text)
    cy_bad = bool(cy_reason) or any(
        r["is_cyconv"] and r.get("status") in ("error", "mismatch") for r in data["results"]
    )
    return 1 if cy_bad else 0
