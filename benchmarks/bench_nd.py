"""1-D and 3-D convolution against PyTorch: conv3d vs F.conv3d, conv1d vs F.conv1d.

Usage::

    python benchmarks/bench_nd.py                      # 2 threads, 7 rounds, NCDHW / NCL
    python benchmarks/bench_nd.py --quick              # 3 rounds of short blocks
    python benchmarks/bench_nd.py --layout NDHWC       # channels last (NLC for the 1-D cases)
    python benchmarks/bench_nd.py --family conv1d --threads 1 --json results/nd.json
    python benchmarks/bench_nd.py --memory             # peak extra memory of one cyconv call

The layers (float32, batch ``--batch``): 3-D U-Net layers (32->32 3x3x3 at
32^3, 16->16 at 64^3), a C3D layer (64->128 3x3x3 at 8x28x28), a depthwise
3x3x3 layer (64 channels at 16x32x32), a strided 3-D layer; 1-D layers over
16000 samples (64->64 k=3, depthwise k=31 with 64 channels, a strided one).

Every cyconv result is checked against PyTorch's (the float32 tolerance of
:mod:`cyconv.testing`, relative to a float64 magnitude scale computed by
PyTorch) before anything is timed. The timing runs in interleaved rounds, as
in ``benchmarks/bench_grad.py``: in each round each system makes a block of
calls (the order reversed every other round); the figure is the median time
per call, GFLOP/s is ``2 * N * O * (C / groups) * prod(kernel) *
prod(output) / t``, the ratio is PyTorch's median over cyconv's (above 1:
cyconv is faster) and the last column the ratio of the fastest calls, which
a loaded machine disturbs less. The table ends with the geometric mean and
the lowest ratio per family. Both systems run on ``--threads`` threads
(``torch.set_num_threads``).

With channels last, cyconv gets a C-contiguous ``(N, D, H, W, C)`` array
and PyTorch the same memory as a ``channels_last_3d`` tensor; in 1-D, where
PyTorch has no channels-last format, it gets the ``(N, L, C)`` array as a
permuted view (as a user holding such an array would call it).

``--memory`` reports, for one call of each cyconv layer, the peak of the
memory ``tracemalloc`` sees allocated during the call (NumPy's allocations
and the package's own Python-level buffers) next to the size of the output
and of the weights. Needs PyTorch, except with ``--memory``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a source tree: use its cyconv
    sys.path.insert(0, str(ROOT))

from bench_grad import interleaved  # noqa: E402  (this directory: the same interleaved rounds)

import cyconv  # noqa: E402
from cyconv import _dispatch, testing  # noqa: E402


class Case(NamedTuple):
    """One layer: input ``(N, C, *size)``, weight ``(O, C / groups, *kernel)``."""

    family: str  # "conv3d" or "conv1d"
    name: str
    C: int
    O: int
    size: Tuple[int, ...]
    kernel: Tuple[int, ...]
    stride: int = 1
    padding: int = 0
    groups: int = 1


CASES: List[Case] = [
    Case("conv3d", "U-Net 3x3x3 32->32 @32^3", 32, 32, (32, 32, 32), (3, 3, 3), 1, 1),
    Case("conv3d", "U-Net 3x3x3 16->16 @64^3", 16, 16, (64, 64, 64), (3, 3, 3), 1, 1),
    Case("conv3d", "C3D 3x3x3 64->128 @8x28x28", 64, 128, (8, 28, 28), (3, 3, 3), 1, 1),
    Case("conv3d", "depthwise 3x3x3 64 @16x32x32", 64, 64, (16, 32, 32), (3, 3, 3), 1, 1, 64),
    Case("conv3d", "3x3x3/2 32->64 @32^3", 32, 64, (32, 32, 32), (3, 3, 3), 2, 1),
    Case("conv1d", "k3 64->64 @16000", 64, 64, (16000,), (3,), 1, 1),
    Case("conv1d", "depthwise k31 64 @16000", 64, 64, (16000,), (31,), 1, 15, 64),
    Case("conv1d", "k4/2 64->128 @16000", 64, 128, (16000,), (4,), 2, 1),
]

LAYOUTS = {"conv3d": ("NCDHW", "NDHWC"), "conv1d": ("NCL", "NLC")}


def _gmean(values: List[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _gflop(case: Case, batch: int, out_spatial: Tuple[int, ...]) -> float:
    per_output = (case.C // case.groups) * math.prod(case.kernel)
    return 2 * batch * case.O * per_output * math.prod(out_spatial) / 1e9


def _last(case: Case, layout: str) -> bool:
    return layout.upper() in ("NDHWC", "NLC")


def _layout_of(case: Case, layout: str) -> str:
    return LAYOUTS[case.family][1 if layout.upper() in ("NDHWC", "NLC") else 0]


def make_arrays(case: Case, batch: int, layout: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, w, b)`` float32, ``x`` in ``layout`` (C-contiguous)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, case.C) + case.size, dtype=np.float32)
    if _last(case, layout):
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    fan_in = (case.C // case.groups) * math.prod(case.kernel)
    w = rng.standard_normal((case.O, case.C // case.groups) + case.kernel) / math.sqrt(fan_in)
    b = rng.standard_normal(case.O)
    return x, w.astype(np.float32), b.astype(np.float32)


def cyconv_fn(case: Case, x, w, b, layout: str, nt: int) -> Callable[[], np.ndarray]:
    fn = getattr(cyconv, case.family)
    kw = dict(stride=case.stride, padding=case.padding, groups=case.groups)
    lay = _layout_of(case, layout)

    def run() -> np.ndarray:
        return fn(x, w, b, layout=lay, n_threads=nt, **kw)

    return run


def torch_fns(torch, case: Case, x, w, b, layout: str):
    """``(run, to_numpy, scale)``: PyTorch's call, its result in cyconv's layout, and the
    float64 magnitude scale (PyTorch on ``|x|``, ``|w|``, ``|b|``) in that layout."""
    F = torch.nn.functional
    fn = getattr(F, case.family)
    kw = dict(stride=case.stride, padding=case.padding, groups=case.groups)
    last = _last(case, layout)
    tw, tb = torch.from_numpy(w), torch.from_numpy(b)
    if not last:
        tx = torch.from_numpy(x)
    elif case.family == "conv3d":
        tx = torch.from_numpy(x).permute(0, 4, 1, 2, 3)  # a channels_last_3d tensor, no copy
        assert tx.is_contiguous(memory_format=torch.channels_last_3d)
    else:
        tx = torch.from_numpy(x).permute(0, 2, 1)

    def run():
        return fn(tx, tw, tb, **kw)

    def to_numpy(t) -> np.ndarray:
        a = t.detach().numpy()
        return np.moveaxis(a, 1, -1) if last else a

    d = torch.float64
    scale = to_numpy(fn(tx.abs().to(d), tw.abs().to(d), tb.abs().to(d), **kw))
    return run, to_numpy, scale


def check(case: Case, got: np.ndarray, want: np.ndarray, scale: np.ndarray) -> None:
    if got.dtype != np.float32:
        raise SystemExit(f"{case.name}: cyconv returned {got.dtype}, not float32")
    try:
        testing.assert_close(got, want, scale, np.float32)
    except AssertionError as exc:
        raise SystemExit(f"{case.name}: cyconv differs from PyTorch: {exc}") from None


def _selected(args: argparse.Namespace) -> List[Case]:
    out = []
    for case in CASES:
        if args.family and case.family not in args.family:
            continue
        if args.cases and not any(part in case.name for part in args.cases.split(",")):
            continue
        out.append(case)
    return out


def _missing(case: Case) -> Optional[str]:
    if not hasattr(cyconv, case.family):
        return f"this cyconv has no {case.family}"
    return None


def run_timing(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    rows: List[Dict[str, Any]] = []
    print(
        f"| layer (batch {args.batch}, {args.layout}) | PyTorch ms | cyconv ms | PyTorch GFLOP/s "
        "| cyconv GFLOP/s | PyTorch / cyconv | ratio of the fastest calls |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in _selected(args):
        reason = _missing(case)
        if reason:
            print(f"| {case.name} | skipped: {reason} | | | | | |")
            continue
        x, w, b = make_arrays(case, args.batch, args.layout)
        cy = cyconv_fn(case, x, w, b, args.layout, args.threads)
        th, to_numpy, scale = torch_fns(torch, case, x, w, b, args.layout)
        got = cy()
        check(case, got, to_numpy(th()), scale)
        last = _last(case, args.layout)
        out_spatial = got.shape[1:-1] if last else got.shape[2:]
        gflop = _gflop(case, args.batch, tuple(out_spatial))
        del got, scale
        gc.collect()
        samples = interleaved({"cyconv": cy, "torch": th}, args.rounds, args.block)
        t_cy, t_th = (statistics.median(samples[k]) for k in ("cyconv", "torch"))
        best = min(samples["torch"]) / min(samples["cyconv"])
        rows.append(
            dict(
                family=case.family,
                layer=case.name,
                layout=_layout_of(case, args.layout),
                gflop=gflop,
                cyconv_s=t_cy,
                torch_s=t_th,
                cyconv_gflops=gflop / t_cy,
                torch_gflops=gflop / t_th,
                ratio=t_th / t_cy,
                ratio_of_minima=best,
                samples=samples,
            )
        )
        print(
            f"| {case.name} | {1e3 * t_th:.2f} | {1e3 * t_cy:.2f} | {gflop / t_th:.1f} "
            f"| {gflop / t_cy:.1f} | {t_th / t_cy:.2f} | {best:.2f} |",
            flush=True,
        )
    summary = {}
    for family in ("conv3d", "conv1d"):
        fam = [r for r in rows if r["family"] == family]
        if fam:
            ratios = [r["ratio"] for r in fam]
            summary[family] = dict(
                gmean=_gmean(ratios),
                min=min(ratios),
                gmean_of_minima=_gmean([r["ratio_of_minima"] for r in fam]),
            )
    print()
    for family, v in summary.items():
        print(
            f"{family}: geometric mean {v['gmean']:.2f}, lowest {v['min']:.2f} "
            f"(fastest calls: geometric mean {v['gmean_of_minima']:.2f})"
        )
    return dict(torch=torch.__version__, rows=rows, summary=summary)


def run_memory(args: argparse.Namespace) -> dict:
    """Peak memory traced during one cyconv call of each layer, vs output + weights."""
    rows: List[Dict[str, Any]] = []
    print(
        f"| layer (batch {args.batch}, {args.layout}) | peak traced MiB | output MiB "
        "| weights MiB | peak / (output + weights) |"
    )
    print("|---|---:|---:|---:|---:|")
    mib = 2.0**20
    for case in _selected(args):
        reason = _missing(case)
        if reason:
            print(f"| {case.name} | skipped: {reason} | | | |")
            continue
        x, w, b = make_arrays(case, args.batch, args.layout)
        cy = cyconv_fn(case, x, w, b, args.layout, args.threads)
        cy()  # warm up: plans, thread pool, first-use buffers
        gc.collect()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            y = cy()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        extra = peak - base
        fixed = y.nbytes + w.nbytes + b.nbytes
        rows.append(
            dict(
                family=case.family,
                layer=case.name,
                layout=_layout_of(case, args.layout),
                peak_bytes=extra,
                output_bytes=y.nbytes,
                weight_bytes=w.nbytes + b.nbytes,
                ratio=extra / fixed,
            )
        )
        print(
            f"| {case.name} | {extra / mib:.2f} | {y.nbytes / mib:.2f} "
            f"| {(w.nbytes + b.nbytes) / mib:.3f} | {extra / fixed:.2f} |",
            flush=True,
        )
        del y
    return dict(memory=rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1, help="inputs per call")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=float, default=0.3, help="seconds per block of calls")
    parser.add_argument(
        "--layout",
        default="NCDHW",
        type=str.upper,
        choices=["NCDHW", "NDHWC", "NCL", "NLC"],
        help="channels first (NCDHW/NCL, the default) or last (NDHWC/NLC); either name "
        "applies to both families",
    )
    parser.add_argument(
        "--family", default="", help="comma-separated: conv3d, conv1d (default: both)"
    )
    parser.add_argument("--cases", default="", help="layers whose name contains a substring")
    parser.add_argument("--quick", action="store_true", help="3 rounds of short blocks")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="report the peak memory of one cyconv call per layer instead of timing",
    )
    parser.add_argument("--json", default=None, help="write every sample to this file")
    args = parser.parse_args(argv)
    args.family = [f for f in args.family.split(",") if f]
    for f in args.family:
        if f not in LAYOUTS:
            parser.error(f"unknown --family {f!r}; expected conv3d or conv1d")
    if args.quick:
        args.rounds, args.block = 3, 0.1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(
        f"threads {args.threads}, batch {args.batch}, layout {args.layout}, "
        f"{args.rounds} rounds; load average before: {load:.2f} on {os.cpu_count()} CPUs\n"
    )
    if args.memory:
        data = run_memory(args)
    else:
        if importlib.util.find_spec("torch") is None:
            print("PyTorch is not installed: nothing to compare with", file=sys.stderr)
            return 2
        data = run_timing(args)
    data.update(
        command=" ".join([sys.executable, *sys.argv]),
        threads=args.threads,
        batch=args.batch,
        layout=args.layout,
        rounds=args.rounds,
        machine=platform.machine(),
        cpus=os.cpu_count(),
        load_average=os.getloadavg() if hasattr(os, "getloadavg") else None,
        cyconv=cyconv.__version__,
        simd=_dispatch.active(),
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
