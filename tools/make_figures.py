"""Regenerate the figures of the guide.

Usage, from the repository root, with cyconv and Matplotlib installed::

    python tools/make_figures.py            # every figure, and the benchmark tables
    python tools/make_figures.py --merge-runs r1/cyconv_bench.json r2/cyconv_bench.json ...
                                            # first make docs/results/bench.json of new runs
    python tools/make_figures.py --check    # exit 1 if a benchmark table is stale

The figures are written to ``docs/figures/``; the documentation site shows
them as they are (``python -m sphinx -b html docs docs/_build/html`` does not
redraw them).

Every benchmark number of the documentation comes from one results file,
``docs/results/bench.json``: the JSON files of several runs of
``python -m cyconv bench --output DIR`` (``DIR/cyconv_bench.json``), kept whole,
with the machine, the settings and the date of each. From it this script draws
``docs/figures/bench.png`` and writes the tables of the README (section
Performance) and of the guide (section 7) between their ``<!-- bench:NAME -->``
and ``<!-- /bench:NAME -->`` comments; ``tests/test_docs.py`` checks that the
committed tables are what the file gives.
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
        f"x[{i}:{i + kH}, {j}:{j + kW}] * w, element by element",
        highlight=(0, 0, kH, kW),
        color="#e2f0d9",
    )
    _grid(ax, out, 15.4, "output (2 x 2)", highlight=(i, j, 1, 1), color="#f4cccc", y0=0.5)
    ax.text(4.8, 1.5, "and", ha="center", va="center", fontsize=14)
    ax.text(9.4, 1.5, "\u2192", ha="center", va="center", fontsize=26)
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


def _footprint(padded_shape, k: int, out_pos, out_shape, stride: int = 1, dilation: int = 1):
    """The input cells output element ``out_pos`` reads, from cyconv's input gradient.

    With all-ones weights, the gradient of ``y[out_pos]`` with respect to the
    (already padded) input is 1 on the taps of its window and 0 elsewhere.
    """
    import numpy as np

    from cyconv import grad

    dy = np.zeros((1, 1) + tuple(out_shape))
    dy[(0, 0) + tuple(out_pos)] = 1.0
    ones = np.ones((1, 1, k, k))
    g = grad.conv2d_input((1, 1) + tuple(padded_shape), ones, dy, stride=stride, dilation=dilation)
    return g[0, 0] > 0


def _geometry_panel(ax, title, size, k, pads, stride=1, dilation=1, picks=((0, 0),)):
    """One panel of the geometry figure: the padded input with the taps of the windows of
    ``picks``, and the output grid, its shape from ``cyconv.output_shape``."""
    import numpy as np
    from matplotlib.patches import Rectangle

    import cyconv

    (pt, pb), (pl, pr) = pads
    x = (np.arange(size * size).reshape(1, 1, size, size) % 5).astype(np.float64)
    w = np.ones((1, 1, k, k))
    shape = cyconv.output_shape(x.shape, w.shape, stride=stride, padding=pads, dilation=dilation)
    padded = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    # The geometry drawn is cyconv's: padding the input by hand gives the same output.
    y = cyconv.conv2d(x, w, stride=stride, padding=pads, dilation=dilation)
    assert np.array_equal(y, cyconv.conv2d(padded, w, stride=stride, dilation=dilation))
    Hp, Wp = padded.shape[2:]
    Ho, Wo = shape[2:]
    colors = ["#1f5fa8", "#c0392b"]
    fills = ["#cfe2f3", "#f4cccc"]
    taps = [_footprint((Hp, Wp), k, pos, (Ho, Wo), stride, dilation) for pos in picks]
    for r in range(Hp):
        for c in range(Wp):
            inside = pt <= r < pt + size and pl <= c < pl + size
            face = "white" if inside else "#e6e6e6"
            for t, fill in zip(taps, fills):
                if t[r, c]:
                    face = fill
            ax.add_patch(
                Rectangle(
                    (c, r),
                    1,
                    1,
                    facecolor=face,
                    edgecolor="#888888",
                    linewidth=1,
                    hatch=None if inside else "//",
                )
            )
            if any(t[r, c] for t in taps):
                ax.plot(c + 0.5, r + 0.5, "o", color="black", markersize=4)
    for (i, j), color in zip(picks, colors):
        r0, c0 = i * stride, j * stride
        span = dilation * (k - 1) + 1
        ax.add_patch(Rectangle((c0, r0), span, span, fill=False, edgecolor=color, linewidth=2.5))
    ax.add_patch(Rectangle((pl, pt), size, size, fill=False, edgecolor="black", linewidth=1.5))
    x0 = Wp + 1.5
    for r in range(Ho):
        for c in range(Wo):
            face = "white"
            for (i, j), fill in zip(picks, fills):
                if (r, c) == (i, j):
                    face = fill
            ax.add_patch(
                Rectangle((x0 + c, r), 1, 1, facecolor=face, edgecolor="#888888", linewidth=1)
            )
    ax.text(x0 + Wo / 2, -0.3, f"output {Ho} x {Wo}", ha="center", va="bottom", fontsize=10)
    ax.text(Wp / 2, -0.3, f"input {size} x {size}, padded", ha="center", va="bottom", fontsize=10)
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.3, x0 + max(Wo, 4) + 0.3)
    ax.set_ylim(max(Hp, Ho) + 0.3, -1.2)
    ax.set_aspect("equal")
    ax.axis("off")


def figure_geometry(outdir: Path = FIGURES) -> Path:
    """Stride, padding (symmetric and the asymmetric "same" of an even kernel) and dilation."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 9.4), dpi=72, layout="constrained")
    _geometry_panel(
        axes[0, 0],
        "stride 2: 3 x 3 kernel, no padding\nwindows of output (0, 0) and (0, 1), 2 apart",
        5,
        3,
        ((0, 0), (0, 0)),
        stride=2,
        picks=((0, 0), (0, 1)),
    )
    _geometry_panel(
        axes[0, 1],
        "padding=1: 3 x 3 kernel, one ring of zeros\nthe window of output (0, 0)",
        4,
        3,
        ((1, 1), (1, 1)),
        picks=((0, 0),),
    )
    _geometry_panel(
        axes[1, 0],
        'padding="same", 2 x 2 kernel: ((0, 1), (0, 1))\n'
        "the extra row and column after the image; output (3, 3)",
        4,
        2,
        ((0, 1), (0, 1)),
        picks=((3, 3),),
    )
    _geometry_panel(
        axes[1, 1],
        "dilation=2: 3 x 3 kernel spans 5 x 5\nthe taps of output (0, 0) and (0, 1)",
        6,
        3,
        ((0, 0), (0, 0)),
        dilation=2,
        picks=((0, 0), (0, 1)),
    )
    fig.suptitle(
        "Which input cells an output element reads (dots), drawn from cyconv.grad.conv2d_input; "
        "gray hatched: padding (zeros)\n"
        "out = floor((size + pad_before + pad_after - dilation * (k - 1) - 1) / stride) + 1",
        fontsize=11,
    )
    return _save(fig, "geometry.png", outdir)


def figure_receptive_field(outdir: Path = FIGURES) -> Path:
    """The receptive field of one output element after stacked layers, from cyconv.grad."""
    import numpy as np

    import cyconv
    from cyconv import grad

    plt = _pyplot()
    stacks = [
        ("one 3 x 3 layer", 9, [1]),
        ("two 3 x 3 layers", 9, [1, 1]),
        ("three 3 x 3 layers", 9, [1, 1, 1]),
        ("3 x 3 stride 2, then two 3 x 3", 15, [2, 1, 1]),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(13, 4.2), dpi=72, layout="constrained")
    w = np.ones((1, 1, 3, 3))
    for ax, (title, size, strides) in zip(axes, stacks):
        shapes = [(1, 1, size, size)]
        for s in strides:
            shapes.append(cyconv.output_shape(shapes[-1], w.shape, stride=s))
        dy = np.zeros(shapes[-1])
        dy[0, 0, shapes[-1][2] // 2, shapes[-1][3] // 2] = 1.0
        for shape, s in zip(shapes[-2::-1], strides[::-1]):
            dy = grad.conv2d_input(shape, w, dy, stride=s)
        g = dy[0, 0]
        rows = np.flatnonzero(g.any(axis=1))
        r = rows[-1] - rows[0] + 1
        ax.imshow(np.where(g > 0, g, np.nan), cmap="Blues", vmin=0, vmax=1.8 * g.max())
        for (i, j), v in np.ndenumerate(g):
            if v:
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7)
        ax.set_xticks(np.arange(-0.5, size, 1), [])
        ax.set_yticks(np.arange(-0.5, size, 1), [])
        ax.grid(color="#cccccc", linewidth=0.5)
        ax.tick_params(length=0)
        ax.set_title(f"{title}\nreceptive field {r} x {r}", fontsize=10)
    fig.suptitle(
        "The input pixels that reach the centre output element (all-ones 3 x 3 kernels): "
        "the number in a cell is how many paths lead there,\n"
        "from cyconv.grad.conv2d_input applied layer by layer to a one-hot output gradient",
        fontsize=11,
    )
    return _save(fig, "receptive_field.png", outdir)


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
        ax.set_title(f"y[{o}] = sum over c of\nx[c] correlated with w[{o}, c]", fontsize=9.5)
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


# --------------------------------------------------------------------------- #
# Benchmark numbers: one results file, every table and the chart drawn from it
# --------------------------------------------------------------------------- #

#: The committed results file: ``{"runs": [<cyconv_bench.json>, ...]}``, one entry per run.
BENCH_RESULTS = DOCS / "results" / "bench.json"
#: The files whose text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``
#: is written by :func:`bench_blocks`.
BENCH_TARGETS = {"readme": ROOT / "README.md", "guide": DOCS / "guide.md"}
#: The guide's comparison of the methods of its section 5: (layer, description).
GUIDE_LAYERS = [
    ("resnet.layer1 3x3", "64->64 3x3 @56"),
    ("resnet.layer4 3x3", "512->512 3x3 @7"),
    ("image 1024^2 11x11", "1 channel 1024^2, 11x11"),
]
GUIDE_SYSTEMS = [
    ("scipy_loop", "Python loop over SciPy calls (one per channel pair)"),
    ("numpy_im2col", "im2col + matmul (NumPy)"),
    ("scipy_correlate", "FFT (SciPy correlate)"),
    ("cyconv", "direct (cyconv)"),
    ("torch", "PyTorch NCHW"),
    ("torch_cl", "PyTorch channels_last"),
]
README_PEERS = ["torch", "torch_cl"]


def merge_bench_runs(paths: Sequence[Path], out: Path = BENCH_RESULTS) -> Path:
    """Write the JSON files of several ``python -m cyconv bench --output`` runs as one file."""
    runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs}, indent=1, default=str) + "\n", encoding="utf-8")
    return out


def load_bench(path: Path = BENCH_RESULTS) -> dict:
    """The results file; a single run's ``cyconv_bench.json`` is read as one run."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data if "runs" in data else {"runs": [data]}


def _threads(data: dict) -> int:
    return max(
        r["threads"] for run in data["runs"] for r in run["results"] if r.get("status") == "ok"
    )


def bench_rates(data: dict) -> dict:
    """``{(layer, system): [GFLOP/s of the median call, one per run]}`` at the most threads."""
    threads = _threads(data)
    rates: dict = {}
    for run in data["runs"]:
        for r in run["results"]:
            if r.get("status") == "ok" and "gflops" in r and r["threads"] == threads:
                rates.setdefault((r["layer"], r["system"]), []).append(r["gflops"])
    return rates


def _median(values: Sequence[float]) -> float:
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.3g}"


def _cell(values: Optional[Sequence[float]]) -> str:
    """``median (min-max)`` over the runs, or ``-`` when not measured."""
    if not values:
        return "-"
    if len(values) == 1:
        return _num(values[0])
    return f"{_num(_median(values))} ({_num(min(values))}-{_num(max(values))})"


def _ratios(data: dict, layer: str, peers: Sequence[str]) -> List[float]:
    """Per run: cyconv / the fastest of ``peers`` on ``layer``."""
    threads = _threads(data)
    out = []
    for run in data["runs"]:
        recs = {
            r["system"]: r["gflops"]
            for r in run["results"]
            if r["layer"] == layer
            and r["threads"] == threads
            and r.get("status") == "ok"
            and "gflops" in r
        }
        best = max((recs[s] for s in peers if s in recs), default=None)
        if "cyconv" in recs and best:
            out.append(recs["cyconv"] / best)
    return out


def bench_facts(data: dict) -> dict:
    """The machine, variant, dates, settings and matmul ceiling, as the text states them."""
    runs = data["runs"]
    first = runs[0]
    machine = first["machine"]
    threads = _threads(data)
    config = machine.get("cyconv", {}).get("show_config", {})
    dates = sorted(run["date"][:10] for run in runs)
    ceiling = [
        run["matmul"][str(threads)]["float32"]["gflops"]
        for run in runs
        if run.get("matmul", {}).get(str(threads), {}).get("float32")
    ]
    loads = [
        r["other_load"]
        for run in runs
        for r in run["results"]
        if isinstance(r.get("other_load"), (int, float))
    ]
    return {
        "cpu": machine.get("cpu_model", "?"),
        "cores": machine.get("logical_cores", "?"),
        "simd": config.get("simd", "?"),
        "date": dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}",
        "runs": len(runs),
        "threads": threads,
        "command": first.get("command", "python -m cyconv bench"),
        "torch": machine.get("versions", {}).get("torch"),
        "ceiling": ceiling,
        "max_load": max(loads, default=0.0),
    }


def _intro(facts: dict) -> str:
    return (
        f"{facts['runs']} runs of `{facts['command'].split(' --output')[0]}` on "
        f"{facts['date']}, on a {facts['cores']}-core {facts['cpu']} machine "
        f"(cyconv's `{facts['simd']}` variant, PyTorch {facts['torch']}), "
        f"{facts['threads']} threads, float32 unless noted. Each cell: GFLOP/s of the "
        "median call, the median over the runs and, in brackets, the lowest and highest "
        "run. Every result was checked against a float64 reference before timing. The "
        f"matrix-multiply ceiling (NumPy `a @ b`) was {_cell(facts['ceiling'])} GFLOP/s "
        f"float32; other programs used up to {100 * facts['max_load']:.0f} % of the CPU "
        "during the runs, so compare the systems of one row rather than numbers from another "
        "machine or day."
    )


def bench_blocks(data: dict) -> dict:
    """The Markdown of every generated block: ``{"readme": ..., "guide": ...}``."""
    rates = bench_rates(data)
    facts = bench_facts(data)
    layers = [layer["name"] for layer in data["runs"][0]["layers"]]
    dtypes = {layer["name"]: layer.get("dtype", "") for layer in data["runs"][0]["layers"]}
    labels = {}
    for run in data["runs"]:
        for r in run["results"]:
            labels.setdefault(r["system"], r.get("label", r["system"]))

    readme = [
        _intro(facts),
        "",
        "| layer | cyconv | PyTorch NCHW | PyTorch channels_last | other best peer "
        "| cyconv / fastest peer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in layers:
        others = [
            s
            for (layer, s) in rates
            if layer == name and not s.startswith("cyconv") and s not in README_PEERS
        ]
        best = max(others, key=lambda s: _median(rates[(name, s)]), default=None)
        other = f"{labels[best]} {_cell(rates[(name, best)])}" if best else "-"
        peers = [s for (layer, s) in rates if layer == name and not s.startswith("cyconv")]
        ratios = _ratios(data, name, peers)
        ratio = _cell(ratios) if ratios else "-"
        title = name if dtypes[name] in ("float32", *name.split()) else f"{name} ({dtypes[name]})"
        readme.append(
            f"| {title} | {_cell(rates.get((name, 'cyconv')))} "
            f"| {_cell(rates.get((name, 'torch')))} | {_cell(rates.get((name, 'torch_cl')))} "
            f"| {other} | {ratio} |"
        )

    guide = [
        _intro(facts),
        "",
        "| layer | " + " | ".join(label for _, label in GUIDE_SYSTEMS) + " |",
        "|---|" + "---:|" * len(GUIDE_SYSTEMS),
    ]
    for name, title in GUIDE_LAYERS:
        cells = [_cell(rates.get((name, s))) for s, _ in GUIDE_SYSTEMS]
        guide.append(f"| {title} | " + " | ".join(cells) + " |")
    return {"readme": "\n".join(readme), "guide": "\n".join(guide)}


def marked_block(text: str, name: str) -> str:
    """The text between ``<!-- bench:name -->`` and ``<!-- /bench:name -->``, stripped."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if begin not in text or end not in text:
        raise ValueError(f"no {begin} ... {end} block")
    return text[text.index(begin) + len(begin) : text.index(end)].strip()


def write_bench_blocks(data: dict, targets: Optional[dict] = None) -> List[Path]:
    """Replace the generated blocks of the README and the guide; return the files changed."""
    changed = []
    for name, block in bench_blocks(data).items():
        path = (targets or BENCH_TARGETS)[name]
        text = path.read_text(encoding="utf-8")
        if marked_block(text, name) != block:
            begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
            head, tail = text[: text.index(begin)], text[text.index(end) :]
            path.write_text(f"{head}{begin}\n{block}\n{tail}", encoding="utf-8")
            changed.append(path)
    return changed


def figure_bench(data: dict, outdir: Path = FIGURES) -> Optional[Path]:
    """GFLOP/s per layer and system, linear scale: the median run and the range over the runs."""
    plt = _pyplot()
    rates = bench_rates(data)
    if not rates:
        print("no successful timing, no benchmark chart")
        return None
    facts = bench_facts(data)
    layers = [layer["name"] for layer in data["runs"][0]["layers"]]
    dtypes = {layer["name"]: layer.get("dtype", "") for layer in data["runs"][0]["layers"]}
    labels: dict = {}
    order: List[str] = []
    for run in data["runs"]:
        for r in run["results"]:
            if r["system"] not in labels:
                labels[r["system"]] = r.get("label", r["system"])
                order.append(r["system"])
    systems = sorted(order, key=lambda s: (not s.startswith("cyconv"), order.index(s)))
    colors = plt.get_cmap("tab10").colors
    cmap = {s: colors[k % len(colors)] for k, s in enumerate(systems)}
    rows = sum(1 for key in rates if key[0] in layers)
    fig, (ax, rax) = plt.subplots(
        1,
        2,
        figsize=(12, 2.4 + 0.19 * rows + 0.25 * len(layers)),
        # fewer dots per inch for a long suite: the page shows it scaled down anyway
        dpi=80 if rows <= 150 else 64,
        layout="constrained",
        sharey=True,
        gridspec_kw={"width_ratios": [2.3, 1]},
    )
    y = 0.0
    ticks, ticklabels, seen = [], [], set()
    top = max(max(v) for v in rates.values())
    for name in layers:
        present = [s for s in systems if (name, s) in rates]
        if not present:
            continue
        bar_h = 0.8 / len(present)
        for k, s in enumerate(present):
            v = rates[(name, s)]
            med = _median(v)
            pos = y + 0.4 - bar_h / 2 - k * bar_h
            ax.barh(
                pos,
                med,
                height=0.9 * bar_h,
                color=cmap[s],
                xerr=[[med - min(v)], [max(v) - med]],
                error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#333333"},
                label=labels[s] if s not in seen else None,
            )
            seen.add(s)
            ax.text(max(v) + 0.01 * top, pos, _num(med), va="center", fontsize=7)
        # Right: cyconv / the fastest peer, one dot per run (systems timed in the same run).
        ratios = _ratios(data, name, [s for s in present if not s.startswith("cyconv")])
        if ratios:
            rax.plot(ratios, [y] * len(ratios), "o", color=cmap["cyconv"], alpha=0.7, ms=5)
            rax.plot([_median(ratios)], [y], "|", color="black", ms=14, mew=2)
            rax.text(max(ratios) + 0.05, y, _num(_median(ratios)), va="center", fontsize=7)
        ticks.append(y)
        ticklabels.append(f"{name}\n({dtypes.get(name, '')})")
        y -= 1.0
    rax.axvline(1.0, color="black", linewidth=1)
    rax.set_xlim(0, 1.2 * max([1.0] + [x for line in rax.lines for x in line.get_xdata()]))
    rax.set_xlabel(
        "cyconv / fastest peer, same run\n(dot: one run, bar: median;\n> 1: cyconv faster)"
    )
    rax.grid(axis="x", alpha=0.3)
    ax.set_yticks(ticks, ticklabels, fontsize=8)
    ax.set_ylim(y + 0.45, 0.55)
    if facts["ceiling"]:
        ceiling = _median(facts["ceiling"])
        ax.axvline(
            ceiling,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"float32 matmul ceiling ({_num(ceiling)})",
        )
        top = max(top, ceiling)
    ax.set_xlim(0, top * 1.1)
    ax.set_xlabel(
        f"GFLOP/s of the median call (linear scale, higher is better)\nbar: median of "
        f"{facts['runs']} runs, whisker: lowest to highest run"
    )
    fig.suptitle(
        f"python -m cyconv bench, {facts['threads']} threads: {facts['cores']}-core "
        f"{facts['cpu']}, cyconv variant {facts['simd']}, {facts['date']}",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    try:  # below the axes; "outside" needs Matplotlib >= 3.7
        fig.legend(fontsize=8, loc="outside lower center", ncols=4)
    except (ValueError, TypeError):
        ax.legend(fontsize=8, loc="best")
    return _save(fig, "bench.png", outdir)


# --------------------------------------------------------------------------- #


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--merge-runs",
        type=Path,
        nargs="+",
        default=None,
        metavar="JSON",
        help="first write these cyconv_bench.json files (one per run) as docs/results/bench.json",
    )
    parser.add_argument(
        "--bench-json",
        type=Path,
        default=BENCH_RESULTS,
        metavar="PATH",
        help="the results file of the tables and the chart (default: docs/results/bench.json)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="draw nothing; exit 1 if the README's or the guide's benchmark tables are stale",
    )
    parser.add_argument("--outdir", type=Path, default=FIGURES, help="where the PNG files go")
    args = parser.parse_args(argv)

    if args.merge_runs:
        print(f"wrote {merge_bench_runs(args.merge_runs, args.bench_json)}")
    data = load_bench(args.bench_json) if args.bench_json.is_file() else None
    if args.check:
        if data is None:
            print(f"{args.bench_json} does not exist")
            return 1
        stale = [
            str(BENCH_TARGETS[name])
            for name, block in bench_blocks(data).items()
            if marked_block(BENCH_TARGETS[name].read_text(encoding="utf-8"), name) != block
        ]
        for path in stale:
            print(f"{path}: the benchmark table is stale (run python tools/make_figures.py)")
        return 1 if stale else 0

    written: List[Path] = [
        figure_sliding_window(args.outdir),
        figure_geometry(args.outdir),
        figure_receptive_field(args.outdir),
        figure_filters(args.outdir),
        figure_layer(args.outdir),
    ]
    if data is not None:
        for path in write_bench_blocks(data):
            print(f"updated the benchmark table of {path.relative_to(ROOT)}")
        path = figure_bench(data, args.outdir)
        if path is not None:
            written.append(path)
    else:
        print(f"{args.bench_json} does not exist: no benchmark chart or tables")
    for path in written:
        size = path.stat().st_size
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"wrote {shown} ({size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
