"""The backward pass against PyTorch: input gradient, weight gradient, transposed convolution.

Usage::

    python benchmarks/bench_grad.py                  # 2 threads, batch 8, 7 rounds
    python benchmarks/bench_grad.py --quick          # 3 rounds, fewer calls
    python benchmarks/bench_grad.py --threads 1 --batch 4 --json results/grad.json

For each ResNet layer of the table below it times ``cyconv.grad.conv2d_input``
against ``torch.nn.grad.conv2d_input``, ``cyconv.grad.conv2d_weight`` against
``torch.nn.grad.conv2d_weight`` and ``cyconv.conv_transpose2d`` against
``torch.nn.functional.conv_transpose2d`` (the transpose of the layer: input
shaped like its output, the layer's weight), float32, NCHW, and one SGD step
(forward, backward, update) of the small network of
``examples/train_tiny_cnn.py`` (NumPy + cyconv) against the same network in
PyTorch. Both run on ``--threads`` threads (``torch.set_num_threads``).

Every cyconv result is checked against PyTorch's (float32 tolerance of
:mod:`cyconv.testing`, relative to a float64 magnitude scale) before it is
timed. The timing runs in interleaved rounds: in each round every system
makes a block of calls (the order reversed every other round, so that a
burst of load from elsewhere does not land on one system only); the figure
is the median time per call over all rounds, the ratio is PyTorch's median
over cyconv's (above 1: cyconv is faster); the last column is the ratio of
the fastest calls, which a loaded machine disturbs less. The table ends with
the geometric mean and the lowest ratio per operation. Needs PyTorch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a source tree: use its cyconv
    sys.path.insert(0, str(ROOT))

import cyconv  # noqa: E402
from cyconv import _dispatch, grad, testing  # noqa: E402

#: (name, C, O, H, k, stride, padding): the layers, input (N, C, H, H), weight (O, C, k, k).
LAYERS = [
    ("layer1 3x3 64@56", 64, 64, 56, 3, 1, 1),
    ("layer2 3x3 128@28", 128, 128, 28, 3, 1, 1),
    ("layer3 3x3 256@14", 256, 256, 14, 3, 1, 1),
    ("layer4 3x3 512@7", 512, 512, 7, 3, 1, 1),
    ("3x3/2 64@56->128@28", 64, 128, 56, 3, 2, 1),
    ("1x1 256->64@56", 256, 64, 56, 1, 1, 0),
]
OPS = ("input", "weight", "transpose")


def _load_example():
    path = ROOT / "examples" / "train_tiny_cnn.py"
    spec = importlib.util.spec_from_file_location("train_tiny_cnn", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def interleaved(
    systems: Dict[str, Callable[[], object]], rounds: int, block_s: float
) -> Dict[str, List[float]]:
    """Seconds per call of each system, in ``rounds`` interleaved blocks of about ``block_s``."""
    reps = {}
    for name, fn in systems.items():
        fn()  # warm up (and fault in the memory)
        t = time.perf_counter()
        fn()
        reps[name] = max(1, int(block_s / max(time.perf_counter() - t, 1e-6)))
    samples: Dict[str, List[float]] = {name: [] for name in systems}
    names = list(systems)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = systems[name]
            for _ in range(reps[name]):
                t = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t)
    return samples


def _check(got: np.ndarray, want: np.ndarray, scale: np.ndarray, what: str) -> None:
    try:
        testing.assert_close(got, want, scale, np.float32)
    except AssertionError as exc:
        raise SystemExit(f"{what}: cyconv differs from PyTorch: {exc}") from None


def layer_cases(torch, name: str, C: int, O: int, H: int, k: int, s: int, p: int, N: int, nt: int):
    """``(op, cyconv_fn, torch_fn)`` for the three operations of one layer, checked."""
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((O, C, k, k)) / math.sqrt(C * k * k)).astype(np.float32)
    Ho = (H + 2 * p - k) // s + 1
    gy = rng.standard_normal((N, O, Ho, Ho)).astype(np.float32)
    op = H - ((Ho - 1) * s - 2 * p + k)  # output_padding that gives back H
    tx, tw, tg = (torch.from_numpy(a) for a in (x, w, gy))
    d = torch.float64
    cases = []

    def cy_input():
        return grad.conv2d_input(x.shape, w, gy, s, p, n_threads=nt)

    def th_input():
        return torch.nn.grad.conv2d_input(x.shape, tw, tg, s, p)

    scale = torch.nn.grad.conv2d_input(x.shape, tw.abs().to(d), tg.abs().to(d), s, p).numpy()
    _check(cy_input(), th_input().numpy(), scale, f"{name} input gradient")
    cases.append(("input", cy_input, th_input))

    def cy_weight():
        return grad.conv2d_weight(x, w.shape, gy, s, p, n_threads=nt)

    def th_weight():
        return torch.nn.grad.conv2d_weight(tx, w.shape, tg, s, p)

    scale = torch.nn.grad.conv2d_weight(tx.abs().to(d), w.shape, tg.abs().to(d), s, p).numpy()
    _check(cy_weight(), th_weight().numpy(), scale, f"{name} weight gradient")
    cases.append(("weight", cy_weight, th_weight))

    def cy_transpose():
        return cyconv.conv_transpose2d(gy, w, None, s, p, op, n_threads=nt)

    def th_transpose():
        return F.conv_transpose2d(tg, tw, None, s, p, op)

    scale = F.conv_transpose2d(tg.abs().to(d), tw.abs().to(d), None, s, p, op).numpy()
    _check(cy_transpose(), th_transpose().numpy(), scale, f"{name} conv_transpose2d")
    cases.append(("transpose", cy_transpose, th_transpose))

    def cy_forward():
        return cyconv.conv2d(x, w, None, s, p, n_threads=nt)

    def th_forward():
        return F.conv2d(tx, tw, None, s, p)

    scale = F.conv2d(tx.abs().to(d), tw.abs().to(d), None, s, p).numpy()
    _check(cy_forward(), th_forward().numpy(), scale, f"{name} conv2d")
    cases.append(("forward", cy_forward, th_forward))
    return cases


def training_case(torch, batch: int, nt: int):
    """One SGD step of the tiny CNN: NumPy + cyconv, and the same network in PyTorch."""
    tc = _load_example()
    rng = np.random.default_rng(0)
    x, labels = tc.make_dataset(batch, rng)
    params = tc.init_params(rng)
    velocity: Dict[str, np.ndarray] = {}

    def cy_step():
        _, g = tc.loss_and_grads(params, x, labels, nt)
        tc.sgd_step(params, g, velocity, 1e-4)

    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, len(tc.CLASSES)),
    )
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))
    loss_fn = nn.CrossEntropyLoss()

    def th_step():
        opt.zero_grad()
        loss = loss_fn(net(tx), ty)
        loss.backward()
        opt.step()

    return cy_step, th_step


def _gmean(values: List[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    todo: List[Tuple[str, str, Callable, Callable]] = []
    for name, C, O, H, k, s, p in LAYERS:
        if args.layers and not any(part in name for part in args.layers.split(",")):
            continue
        for op, cy, th in layer_cases(torch, name, C, O, H, k, s, p, args.batch, args.threads):
            if op in args.ops:
                todo.append((name, op, cy, th))
    if "train" in args.ops:
        cy, th = training_case(torch, args.train_batch, args.threads)
        todo.append((f"tiny CNN step, batch {args.train_batch}", "train", cy, th))
    print(
        f"| layer (batch {args.batch}) | op | PyTorch ms | cyconv ms | PyTorch / cyconv "
        "| ratio of the fastest calls |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name, op, cy, th in todo:
        samples = interleaved({"cyconv": cy, "torch": th}, args.rounds, args.block)
        t_cy, t_th = (statistics.median(samples[k]) for k in ("cyconv", "torch"))
        best = min(samples["torch"]) / min(samples["cyconv"])
        rows.append(
            dict(
                layer=name,
                op=op,
                cyconv_s=t_cy,
                torch_s=t_th,
                ratio=t_th / t_cy,
                ratio_of_minima=best,
                samples={k: v for k, v in samples.items()},
            )
        )
        print(
            f"| {name} | {op} | {1e3 * t_th:.2f} | {1e3 * t_cy:.2f} | {t_th / t_cy:.2f} "
            f"| {best:.2f} |",
            flush=True,
        )
    summary = {}
    for op in ("input", "weight", "transpose", "train", "forward"):
        ratios = [r["ratio"] for r in rows if r["op"] == op]
        if ratios:
            best = [r["ratio_of_minima"] for r in rows if r["op"] == op]
            summary[op] = dict(gmean=_gmean(ratios), min=min(ratios), gmean_of_minima=_gmean(best))
    layer_rows = [r for r in rows if r["op"] in OPS]
    if layer_rows:
        ratios = [r["ratio"] for r in layer_rows]
        summary["all layers (input, weight, transpose)"] = dict(
            gmean=_gmean(ratios),
            min=min(ratios),
            gmean_of_minima=_gmean([r["ratio_of_minima"] for r in layer_rows]),
        )
    print()
    for op, v in summary.items():
        print(
            f"{op}: geometric mean {v['gmean']:.2f}, lowest {v['min']:.2f} "
            f"(fastest calls: geometric mean {v['gmean_of_minima']:.2f})"
        )
    return dict(
        command=" ".join([sys.executable, *sys.argv]),
        threads=args.threads,
        batch=args.batch,
        rounds=args.rounds,
        machine=platform.machine(),
        cpus=os.cpu_count(),
        load_average=os.getloadavg() if hasattr(os, "getloadavg") else None,
        torch=torch.__version__,
        cyconv=cyconv.__version__,
        simd=_dispatch.active(),
        rows=rows,
        summary=summary,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="images per layer call")
    parser.add_argument("--train-batch", type=int, default=50, help="images per training step")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=float, default=0.15, help="seconds per block of calls")
    parser.add_argument(
        "--ops",
        default="input,weight,transpose,train",
        help="comma-separated: input, weight, transpose, train, and forward (conv2d "
        "itself, for comparison; not in the summary of the layers)",
    )
    parser.add_argument("--layers", default="", help="layers whose name contains a substring")
    parser.add_argument("--quick", action="store_true", help="3 rounds of short blocks")
    parser.add_argument("--json", default=None, help="write every sample to this file")
    args = parser.parse_args(argv)
    args.ops = args.ops.split(",")
    if args.quick:
        args.rounds, args.block = 3, 0.05
    if importlib.util.find_spec("torch") is None:
        print("PyTorch is not installed: nothing to compare with", file=sys.stderr)
        return 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(
        f"threads {args.threads}, batch {args.batch}, {args.rounds} rounds; "
        f"load average before: {load:.2f} on {os.cpu_count()} CPUs\n"
    )
    data = run(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
