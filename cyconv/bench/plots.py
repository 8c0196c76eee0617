"""Charts of a benchmark run (Matplotlib, imported only when a chart is drawn).

:func:`plot_ratios`: cyconv's speed relative to each peer, per layer.
:func:`plot_scaling`: the speed-up of a thread-count sweep, per layer and system.
Both draw on a :class:`matplotlib.figure.Figure` (no pyplot, no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .machine import import_error
from .peers import SYSTEMS, SYSTEMS_BY_NAME
from .report import SCALING_SYSTEMS, fmt_rate, fmt_ratio, scaling_data, summarize
from .suite import Layer

__all__ = ["COLORS", "plot_ratios", "plot_scaling"]

#: Bar colour of each system.
COLORS = {
    "numpy_im2col": "#4c72b0",
    "scipy_loop": "#8c8c8c",
    "scipy_correlate2d": "#937860",
    "scipy_correlate": "#da8bc3",
    "scipy_ndimage": "#ccb974",
    "torch": "#dd8452",
    "torch_cl": "#c44e52",
    "opencv": "#55a868",
    "onnxruntime": "#8172b3",
    "cyconv": "#4c72b0",
    "cyconv_nhwc": "#2a4a7f",
    "cyconv_layer": "#7f9fd1",
    "cyconv_correlate2d": "#64b5cd",
}

_LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.8}


def _ordered_legend(ax: Any) -> None:
    """Legend to the right of ``ax``, systems in table order, reference lines last."""
    handles, labels = ax.get_legend_handles_labels()
    order = {s.label: i for i, s in enumerate(SYSTEMS)}
    pairs = sorted(zip(handles, labels), key=lambda hl: order.get(hl[1], len(order)))
    ax.legend(
        [h for h, _ in pairs],
        [lab for _, lab in pairs],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )


def _matplotlib_figure(**kwargs: Any) -> Any | None:
    if import_error("matplotlib"):
        return None
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_ratios(
    path: Path,
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    matmul: dict[str, Any],
    threads: int,
    subtitle: str,
) -> bool:
    """Bar chart of cyconv's speed relative to each peer, one bar group per layer.

    Parameters
    ----------
    path : Path
        The PNG file to write.
    layers, results, matmul, threads
        As in :func:`cyconv.bench.report.summarize`.
    subtitle : str
        Second line of the title.

    Returns
    -------
    bool
        False when there was nothing to plot or Matplotlib is missing.
    """
    rows = [r for r in summarize(layers, results, matmul, threads) if r["ratio_to_peer"]]
    if not rows:
        return False
    peer_order = [s.name for s in SYSTEMS if not s.is_cyconv]
    height = 0.8
    bar_rows = sum(len(r["ratio_to_peer"]) for r in rows)
    fig = _matplotlib_figure(
        figsize=(11, 1.2 + 0.28 * bar_rows + 0.25 * len(rows)), layout="constrained"
    )
    if fig is None:
        return False
    ax = fig.add_subplot()
    y = 0.0
    ticks, labels, seen = [], [], set()
    all_ratios = []
    for row in rows:
        names = [p for p in peer_order if p in row["ratio_to_peer"]]
        bar_h = height / max(len(names), 1)
        top = y + height / 2 - bar_h / 2
        for i, name in enumerate(names):
            ratio = row["ratio_to_peer"][name]
            all_ratios.append(ratio)
            label = SYSTEMS_BY_NAME[name].label if name not in seen else None
            seen.add(name)
            pos = top - i * bar_h
            ax.barh(pos, ratio, height=bar_h * 0.9, color=COLORS.get(name), label=label)
            ax.text(
                ratio * 1.04,
                pos,
                fmt_ratio(ratio),
                va="center",
                ha="left",
                fontsize=8,
                bbox=_LABEL_BOX,
            )
        ticks.append(y)
        best = SYSTEMS_BY_NAME[row["best_cyconv"]].label
        rate = fmt_rate(row["best_cyconv_gflops"])
        labels.append(f"{row['layer']}\n{row['gflop']:.3g} GFLOP, {best} {rate} GFLOP/s")
        y -= 1.0
    ax.set_xscale("log")
    lo, hi = min(all_ratios + [1.0]), max(all_ratios + [1.0])
    ax.set_xlim(lo / 2, hi * 3)
    ax.axvline(1.0, color="black", linewidth=1.2, linestyle="--", label="1.0: as fast as the peer")
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_ylim(y + 0.4, 0.6)
    ax.set_xlabel("cyconv speed / peer speed, in the peer's layout (log scale; > 1: cyconv faster)")
    ax.set_title(f"cyconv vs peers, {threads} thread(s)\n{subtitle}", fontsize=10)
    ax.grid(axis="x", which="both", alpha=0.3)
    _ordered_legend(ax)
    fig.savefig(path, dpi=120)
    return True


def plot_scaling(
    path: Path,
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    threads: Sequence[int],
    subtitle: str,
) -> bool:
    """Bar chart of the speed-up over the first thread count, per layer and system.

    Parameters
    ----------
    path : Path
        The PNG file to write.
    layers, results
        As in :func:`cyconv.bench.report.summarize`.
    threads : sequence of int
        The thread counts of the sweep, the base first.
    subtitle : str
        Second line of the title.

    Returns
    -------
    bool
        False when there was nothing to plot or Matplotlib is missing.
    """
    base = threads[0]
    data = [row for row in scaling_data(layers, results, threads) if base in row[2]]
    later = list(threads[1:])
    if not data or not later:
        return False
    names = [n for n in SCALING_SYSTEMS if any(d[1] == n for d in data)]
    by_layer: dict[str, dict[str, dict[int, float]]] = {}
    for layer, name, rates in data:
        by_layer.setdefault(layer.name, {})[name] = rates
    fig = _matplotlib_figure(
        figsize=(
            4.5 + 3.5 * len(later),
            1.2 + 0.22 * len(by_layer) * len(names) + 0.2 * len(by_layer),
        ),
        layout="constrained",
    )
    if fig is None:
        return False
    axes = fig.subplots(1, len(later), sharey=True, squeeze=False)[0]
    top_speedup = max(rates[t] / rates[base] for _, _, rates in data for t in later if t in rates)
    for ax, t in zip(axes, later):
        y = 0.0
        ticks, labels, seen = [], [], set()
        for lname, systems in by_layer.items():
            present = [n for n in names if n in systems and t in systems[n]]
            bar_h = 0.8 / max(len(present), 1)
            top = y + 0.4 - bar_h / 2
            for i, name in enumerate(present):
                speedup = systems[name][t] / systems[name][base]
                pos = top - i * bar_h
                label = SYSTEMS_BY_NAME[name].label if name not in seen else None
                seen.add(name)
                ax.barh(pos, speedup, height=bar_h * 0.9, color=COLORS.get(name), label=label)
                ax.text(
                    speedup + 0.02, pos, f"{speedup:.2f}", va="center", fontsize=7, bbox=_LABEL_BOX
                )
            ticks.append(y)
            labels.append(lname)
            y -= 1.0
        ideal = t / base
        ax.axvline(ideal, color="black", linestyle="--", linewidth=1.2, label=f"ideal ({ideal:g}x)")
        ax.axvline(1.0, color="gray", linewidth=0.8)
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.set_ylim(y + 0.4, 0.6)
        ax.set_xlim(0, max(t / base * 1.2, top_speedup * 1.15, 1.5))
        ax.set_xlabel(f"speed-up, {t} vs {base} thread(s)")
        ax.grid(axis="x", alpha=0.3)
    _ordered_legend(axes[-1])
    fig.suptitle(f"Thread scaling\n{subtitle}", fontsize=10)
    fig.savefig(path, dpi=120)
    return True
