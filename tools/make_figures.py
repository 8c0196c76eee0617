"""Regenerate the figures of the guide.

Usage, from the repository root, with cyconv and Matplotlib installed::

    python tools/make_figures.py                      # every figure
    python tools/make_figures.py --bench-json results/cyconv_bench.json
                                                      # also the benchmark chart

The figures are written to ``docs/figures/``; the documentation site shows
them as they are (``python -m sphinx -b html docs docs/_build/html`` does not
redraw them).

The benchmark chart reads the JSON file written by
``python -m cyconv bench --output DIR`` (``DIR/cyconv_bench.json``); without
``--bench-json`` it is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"

# --------------------------------------------------------------------------- #
# Figures (Matplotlib imported here only)
# --------------------------------------------------------------------------- #

#: The numbers of the guide's first example (docs/guide.md, "The sliding window").
EXAMPLE_X = [[1, 2, 0, 3], [4, 1, 1, 0], [0, 2, 3, 1], [1, 0, 2, 4]]
EXAMPLE_W = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
#: The window the figure highlights: output row 0, column 1.
EXAMPLE_POS = (0, 1)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, name: str, outdir: Path, gray: bool = False) -> Path:
    """Save ``fig`` as ``outdir/name``: RGB without alpha, or 8-bit gray with ``gray=True``.

    Photographs make large PNG files; dropping the alpha channel, and the colour
    channels of a figure drawn in gray only, keeps each file well under 300 KB
    without losing anything visible.
    """
    import io

    from PIL import Image  # a dependency of Matplotlib

    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / name
    buf = io.BytesIO()
    fig.savefig(buf, dpi=fig.dpi, format="png")
    _pyplot().close(fig)
    buf.seek(0)
    with Image.open(buf) as img:
        # Pillow writes no time stamp or version: the files change only when the pixels do.
        img.convert("L" if gray else "RGB").save(path, optimize=True)
    return path


def _grid(ax, values, x0: float, title: str, highlight=None, color="#cfe2f3", y0: float = 0.0):
    """Draw a matrix as a grid of numbered cells with its top-left corner at ``(x0, y0)``.

    ``highlight = (row, col, rows, cols)`` fills those cells with ``color`` and frames them.
    """
    import numpy as np
    from matplotlib.patches import Rectangle

    values = np.asarray(values)
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            face = "white"
            if highlight is not None:
                r0, c0, hr, hc = highlight
                if r0 <= r < r0 + hr and c0 <= c < c0 + hc:
                    face = color
            ax.add_patch(
                Rectangle((x0 + c, y0 + r), 1, 1, facecolor=face, edgecolor="#888888", linewidth=1)
            )
            ax.text(
                x0 + c + 0.5,
                y0 + r + 0.5,
                f"{values[r, c]:g}",
                ha="center",
                va="center",
                fontsize=14,
            )
    for c in range(cols):
        ax.text(
            x0 + c + 0.5, y0 - 0.15, str(c), ha="center", va="bottom", fontsize=8, color="#777777"
        )
    for r in range(rows):
        ax.text(
            x0 - 0.12, y0 + r + 0.5, str(r), ha="right", va="center", fontsize=8, color="#777777"
        )
    if highlight is not None:
        r0, c0, hr, hc = highlight
        ax.add_patch(
            Rectangle((x0 + c0, y0 + r0), hc, hr, fill=False, edgecolor="#1f5fa8", linewidth=3)
        )
    ax.text(x0 + cols / 2, y0 - 0.6, title, ha="center", va="bottom", fontsize=11.5)


def figure_sliding_window(outdir: Path = FIGURES) -> Path:
    """The sliding window of the guide's example, one window and the output cell it makes."""
    import numpy as np

    import cyconv

    plt = _pyplot()
    x = np.array(EXAMPLE_X)
    w = np.array(EXAMPLE_W)
    out = cyconv.correlate2d(x, w, mode="valid")
    i, j = EXAMPLE_POS
    kH, kW = w.shape
    prod = x[i : i + kH, j : j + kW] * w

    fig, ax = plt.subplots(figsize=(11.6, 4.8), dpi=90)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    # One axes in cell units, every grid at its own x offset, so all cells have the same size.
    _grid(ax, x, 0.0, "input x (4 x 4)", highlight=(i, j, kH, kW))
    _grid(ax, w, 5.6, "kernel w (3 x 3)", highlight=(0, 0, kH, kW), color="#fde9c9")
    _grid(
        ax,
        prod,
        10.2,
        f"x[{i}:{i + kH}, {j}:{j + kW}] * w, elementwise",
        highlight=(0, 0, kH, kW),
        color="#e2f0d9",
    )
    _grid(ax, out, 15.4, "output (2 x 2)", highlight=(i, j, 1, 1), color="#f4cccc", y0=0.5)
    ax.text(4.8, 1.5, "\u00d7", ha="center", va="center", fontsize=26)
    ax.text(9.4, 1.5, "=", ha="center", va="center", fontsize=26)
    ax.text(14.5, 1.5, "\u03a3 \u2192", ha="center", va="center", fontsize=22)
    terms = " + ".join(f"({v})" if v < 0 else str(v) for v in prod.ravel())
    ax.text(
        8.7,
        4.55,
        f"output[{i}, {j}] = {terms} = {int(prod.sum())}",
        ha="center",
        va="center",
        fontsize=12,
    )
    ax.text(
        8.7,
        5.25,
        "Each output element is one position of the window; the window of "
        "output[i, j] starts at row i, column j (stride 1).",
        ha="center",
        va="center",
        fontsize=10.5,
        color="#333333",
    )
    ax.text(
        8.7,
        -1.55,
        "Sliding window: a 3 x 3 submatrix of the input times the kernel, "
        "elementwise, summed into one output element",
        ha="center",
        va="center",
        fontsize=13,
    )
    ax.set_xlim(-0.6, 17.8)
    ax.set_ylim(5.6, -2.0)
    ax.set_aspect("equal")
    ax.axis("off")
    return _save(fig, "sliding_window.png", outdir)


def _photo():
    """Grace Hopper from Matplotlib's sample data, as float RGB in [0, 1], (H, W, 3)."""
    import numpy as np
    from matplotlib import cbook

    plt = _pyplot()
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    rgb = plt.imread(path)
    return np.asarray(rgb, dtype=np.float32) / 255.0


def _gaussian(size: int, sigma: float):
    import numpy as np

    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def _show(fig, ax, img, title, cmap="gray", symmetric=False, colorbar=True, vmin=None, vmax=None):
    import numpy as np

    if symmetric:
        lim = float(np.percentile(np.abs(img), 99))
        vmin, vmax = -lim, lim
    im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="antialiased")
    ax.set_title(title, fontsize=9.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    return im


def figure_filters(outdir: Path = FIGURES) -> Path:
    """A photograph filtered with classic kernels by ``cyconv.correlate2d``."""
    import numpy as np

    import cyconv

    plt = _pyplot()
    rgb = _photo()
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float32)
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32)
    gauss = _gaussian(13, 3.0).astype(np.float32)

    kernels = np.stack([sobel_x, sobel_x.T, sharpen])
    # One call filters the image with three 3x3 kernels: in2 (3, 3, 3) broadcasts against in1.
    gx, gy, sharp = cyconv.correlate2d(gray, kernels, mode="same", boundary="symm")
    blur = cyconv.correlate2d(gray, gauss, mode="same", boundary="symm")
    magnitude = np.hypot(gx, gy)

    fig, axes = plt.subplots(2, 3, figsize=(11, 8.6), dpi=72, layout="constrained")
    _show(
        fig,
        axes[0, 0],
        gray,
        "input: grayscale photograph\n(600 x 512, values in [0, 1])",
        vmin=0,
        vmax=1,
    )
    _show(
        fig,
        axes[0, 1],
        gx,
        "Sobel x: [[1, 0, -1], [2, 0, -2], [1, 0, -1]]\nvertical edges; white: left side brighter",
        symmetric=True,
    )
    _show(
        fig,
        axes[0, 2],
        gy,
        "Sobel y: the transposed kernel\nhorizontal edges; white: upper side brighter",
        symmetric=True,
    )
    _show(
        fig,
        axes[1, 0],
        magnitude,
        "edge strength sqrt(gx\u00b2 + gy\u00b2)",
        vmin=0,
        vmax=float(np.percentile(magnitude, 99)),
    )
    _show(
        fig,
        axes[1, 1],
        blur,
        "Gaussian blur, 13 x 13 kernel, \u03c3 = 3\n(weights sum to 1: a weighted average)",
        vmin=0,
        vmax=1,
    )
    _show(
        fig,
        axes[1, 2],
        sharp,
        "sharpen: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]\n(clipped to [0, 1] for display)",
        vmin=0,
        vmax=1,
    )
    fig.suptitle('cyconv.correlate2d(image, kernel, mode="same", boundary="symm")', fontsize=12)
    return _save(fig, "filters.png", outdir, gray=True)


#: Hand-made weights of the 3 -> 4 channel layer of the second photo figure.
_LUMA = (0.299, 0.587, 0.114)


def layer_weights():
    """Weights ``(4, 3, 3, 3)`` of a small RGB layer: brightness, two colour opponents, edges."""
    import numpy as np

    w = np.zeros((4, 3, 3, 3), dtype=np.float32)
    w[0, :, 1, 1] = _LUMA  # brightness (a 1 x 1 filter in a 3 x 3 kernel)
    w[1, :, 1, 1] = (1.0, -1.0, 0.0)  # red minus green
    w[2, :, 1, 1] = (-0.5, -0.5, 1.0)  # blue minus yellow
    sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float32)
    for c in range(3):
        w[3, c] = _LUMA[c] * sobel_x  # vertical edges of the brightness
    return w


def figure_layer(outdir: Path = FIGURES) -> Path:
    """A 3 -> 4 channel ``cyconv.conv2d`` layer on the RGB photograph.

    A table: row ``c`` holds input channel ``c`` and the kernels ``w[o, c]``
    that read it, column ``o`` the kernels of output channel ``o`` and, at the
    bottom, that output channel, the sum down its column.
    """
    import numpy as np

    import cyconv

    plt = _pyplot()
    rgb = _photo()
    x = np.ascontiguousarray(rgb.transpose(2, 0, 1))  # (3, H, W)
    w = layer_weights()
    y = cyconv.conv2d(x, w, padding=1, padding_mode="replicate")  # (4, H, W)

    names = ["brightness", "red \u2212 green", "blue \u2212 yellow", "vertical edges"]
    fig = plt.figure(figsize=(10.5, 10.2), dpi=68, layout="constrained")
    gs = fig.add_gridspec(4, 5, height_ratios=[1, 1, 1, 1.45])

    def bare(ax):
        ax.set_xticks([])
        ax.set_yticks([])

    for c, cname in enumerate(["red", "green", "blue"]):
        ax = fig.add_subplot(gs[c, 0])
        ax.imshow(x[c], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"input channel {c} ({cname})", fontsize=9.5)
        bare(ax)
    ax = fig.add_subplot(gs[3, 0])
    ax.imshow(rgb)
    ax.set_title("input x: (3, 600, 512)", fontsize=9.5)
    bare(ax)

    lim = float(np.abs(w).max())
    for o in range(4):
        for c in range(3):
            ax = fig.add_subplot(gs[c, o + 1])
            ax.imshow(w[o, c], cmap="RdBu_r", vmin=-lim, vmax=lim)
            for (r, q), v in np.ndenumerate(w[o, c]):
                ax.text(
                    q,
                    r,
                    f"{v:.2g}" if v else "0",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if abs(v) > 0.6 * lim else "black",
                )
            head = f"output channel {o}:\n{names[o]}\n\n" if c == 0 else ""
            ax.set_title(f"{head}w[{o}, {c}]", fontsize=9.5)
            bare(ax)
        ax = fig.add_subplot(gs[3, o + 1])
        if o == 0:
            im = ax.imshow(y[o], cmap="gray", vmin=0, vmax=1)
        else:
            v = float(np.percentile(np.abs(y[o]), 99))
            im = ax.imshow(y[o], cmap="RdBu_r", vmin=-v, vmax=v)
        ax.set_title(f"y[{o}] = \u03a3_c x[c] \u22c6 w[{o}, c]", fontsize=9.5)
        bare(ax)
        fig.colorbar(
            im, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02, aspect=25
        ).ax.tick_params(labelsize=7)
    fig.suptitle(
        'y = cyconv.conv2d(x, w, padding=1, padding_mode="replicate"), w of shape '
        "(4, 3, 3, 3)\nrow c: input channel c and the kernels that read it; column o: "
        "the kernels of output channel o and, at the bottom, their sum",
        fontsize=11,
    )
    return _save(fig, "layer_rgb.png", outdir)


def figure_bench(json_path: Path, outdir: Path = FIGURES) -> Optional[Path]:
    """GFLOP/s of cyconv and its peers per layer, from ``python -m cyconv bench --output``."""
    plt = _pyplot()
    report = json.loads(Path(json_path).read_text(encoding="utf-8"))
    results = [r for r in report["results"] if r.get("status") == "ok" and "gflops" in r]
    if not results:
        print(f"{json_path}: no successful timing, no benchmark chart")
        return None
    threads = max(r["threads"] for r in results)
    results = [r for r in results if r["threads"] == threads]
    layers = [
        layer["name"]
        for layer in report["layers"]
        if any(r["layer"] == layer["name"] for r in results)
    ]
    dtypes = {layer["name"]: layer.get("dtype", "") for layer in report["layers"]}
    systems: List[str] = []
    labels = {}
    for r in results:
        if r["system"] not in labels:
            systems.append(r["system"])
            labels[r["system"]] = r.get("label", r["system"])
    systems = sorted(systems, key=lambda s: (not s.startswith("cyconv"), systems.index(s)))
    colors = plt.get_cmap("tab10").colors
    cmap = {s: colors[k % len(colors)] for k, s in enumerate(systems)}

    rows = sum(len({r["system"] for r in results if r["layer"] == name}) for name in layers)
    fig, ax = plt.subplots(
        figsize=(10, 2.2 + 0.17 * rows + 0.25 * len(layers)), dpi=80, layout="constrained"
    )
    y = 0.0
    ticks, ticklabels, seen = [], [], set()
    for name in layers:
        recs = {r["system"]: r for r in results if r["layer"] == name}
        present = [s for s in systems if s in recs]
        bar_h = 0.8 / len(present)
        for k, s in enumerate(present):
            pos = y + 0.4 - bar_h / 2 - k * bar_h
            rate = recs[s]["gflops"]
            ax.barh(
                pos,
                rate,
                height=0.9 * bar_h,
                color=cmap[s],
                label=labels[s] if s not in seen else None,
            )
            seen.add(s)
            ax.text(rate * 1.05, pos, f"{rate:.3g}", va="center", fontsize=7)
        ticks.append(y)
        ticklabels.append(f"{name}\n({dtypes.get(name, '')})")
        y -= 1.0
    ax.set_yticks(ticks, ticklabels, fontsize=8)
    ax.set_ylim(y + 0.45, 0.55)
    ax.set_xscale("log")
    ceiling = report.get("matmul", {}).get(str(threads), {}).get("float32", {}).get("gflops")
    if ceiling:
        ax.axvline(
            ceiling,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"float32 matmul ceiling ({ceiling:.3g})",
        )
    top = max([r["gflops"] for r in results] + ([ceiling] if ceiling else []))
    ax.set_xlim(right=top * 1.8)  # room for the value labels
    ax.set_xlabel("GFLOP/s of the median call (log scale, higher is better)")
    machine = report.get("machine", {})
    ax.set_title(
        f"python -m cyconv bench, {threads} thread(s): {machine.get('cpu_model', '?')}, "
        f"{report.get('date', '')[:10]}",
        fontsize=10,
    )
    ax.grid(axis="x", which="both", alpha=0.3)
    try:  # below the axes; "outside" needs Matplotlib >= 3.7
        fig.legend(fontsize=8, loc="outside lower center", ncols=4)
    except (ValueError, TypeError):
        ax.legend(fontsize=8, loc="best")
    return _save(fig, "bench.png", outdir)


# --------------------------------------------------------------------------- #


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="cyconv_bench.json from `python -m cyconv bench --output DIR`",
    )
    parser.add_argument("--outdir", type=Path, default=FIGURES, help="where the PNG files go")
    args = parser.parse_args(argv)

    written: List[Path] = [
        figure_sliding_window(args.outdir),
        figure_filters(args.outdir),
        figure_layer(args.outdir),
    ]
    if args.bench_json is not None:
        path = figure_bench(args.bench_json, args.outdir)
        if path is not None:
            written.append(path)
    else:
        print(
            "no --bench-json PATH given: skipping the benchmark chart "
            "(make one with: python -m cyconv bench --output DIR)"
        )
    for path in written:
        size = path.stat().st_size
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"wrote {shown} ({size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
