"""The figure of docs/backward.md: a stride-2 input gradient as four sub-kernels.

Run ``python tools/figure_backward.py`` (needs Matplotlib) to write
``docs/figures/backward.png``. The figure shows, for a 3x3 layer with stride
2 and padding 1:

* left: the zero-stuffed output gradient under the flipped 3x3 kernel, where
  most taps multiply a stuffed zero;
* middle: the kernel's taps coloured by the phase (output row and column
  parity) they contribute to, i.e. the four sub-kernels 1x1, 1x2, 2x1, 2x2;
* right: the input gradient, each pixel coloured by its phase, with the
  sub-kernel that computes it from the (not stuffed) output gradient.

The phases are computed by cyconv itself (:func:`cyconv._backward.axis_phases`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cyconv import _backward  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
#: One colour per phase (row parity, column parity).
COLOURS = {(0, 0): "#f4cccc", (0, 1): "#d9ead3", (1, 0): "#cfe2f3", (1, 1): "#fff2cc"}
EDGES = {(0, 0): "#cc0000", (0, 1): "#38761d", (1, 0): "#1155cc", (1, 1): "#bf9000"}


def _cell(ax, x, y, face, text="", edge="#999999", lw=1.0, size=10, colour="black"):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor=edge, linewidth=lw))
    if text:
        ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=size, color=colour)


def figure_backward(outdir: Path = FIGURES) -> Path:
    """Draw the figure and save it as ``outdir/backward.png``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, s, p, size = 3, 2, 1, 8
    phases = _backward.axis_phases(size, k, s, 1, p, dy_size=size // s)
    tap_phase = {t: ph.start for ph in phases for t in ph.taps}

    fig, axes = plt.subplots(
        1, 3, figsize=(13.5, 5.2), dpi=80, gridspec_kw={"width_ratios": [1.15, 0.75, 1.15]}
    )
    for ax in axes:
        ax.set_aspect("equal")
        ax.axis("off")
        ax.invert_yaxis()

    # left: the zero-stuffed gradient, padded, with the flipped kernel over one window
    ax = axes[0]
    n = size + 2  # stuffed (8) plus one row/column of padding on each side
    for r in range(n):
        for c in range(n):
            inside = 1 <= r <= size and 1 <= c <= size
            value = inside and (r - 1) % s == 0 and (c - 1) % s == 0
            if value:
                _cell(ax, c, r, "#c9daf8", f"dy{(r - 1) // s}{(c - 1) // s}", size=7.5)
            else:
                _cell(
                    ax,
                    c,
                    r,
                    "#f3f3f3" if inside else "white",
                    "0",
                    edge="#cccccc",
                    size=8,
                    colour="#aaaaaa",
                )
    r0, c0 = 3, 4  # the window of output pixel (3, 4): an odd row, an even column
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((c0, r0), k, k, fill=False, edgecolor=EDGES[(1, 0)], linewidth=3))
    hits = sum(
        1
        for a in range(k)
        for b in range(k)
        if 1 <= r0 + a <= size
        and 1 <= c0 + b <= size
        and (r0 + a - 1) % s == 0
        and (c0 + b - 1) % s == 0
    )
    ax.set_xlim(-0.2, n + 0.2)
    ax.set_ylim(n + 1.6, -1.2)
    ax.text(
        n / 2,
        -0.5,
        "zero-stuffed dy (stride 2), padded, under the flipped kernel",
        ha="center",
        fontsize=11,
    )
    ax.text(
        n / 2,
        n + 0.8,
        f"window of dx[3, 4]: {hits} of 9 taps meet a value, {9 - hits} multiply a stuffed zero",
        ha="center",
        fontsize=10.5,
    )

    # middle: the kernel taps by phase
    ax = axes[1]
    for kh in range(k):
        for kw in range(k):
            ph = (tap_phase[kh], tap_phase[kw])
            _cell(ax, kw + 1, kh + 1.5, COLOURS[ph], f"w[{kh},{kw}]", edge=EDGES[ph], lw=2, size=10)
    ax.set_xlim(0, k + 2)
    ax.set_ylim(k + 5.2, -0.5)
    ax.text((k + 2) / 2, 0.7, "kernel taps by the phase they reach", ha="center", fontsize=11)
    lines = []
    for ph in phases:
        for pw in phases:
            lines.append(
                (
                    (ph.start, pw.start),
                    f"rows {'odd' if ph.start else 'even'}, "
                    f"columns {'odd' if pw.start else 'even'}: "
                    f"{len(ph.taps)}x{len(pw.taps)} sub-kernel",
                )
            )
    for i, (ph, text) in enumerate(lines):
        y = k + 2.3 + 0.7 * i
        _cell(ax, 0.1, y - 0.3, COLOURS[ph], edge=EDGES[ph], lw=2)
        ax.text(1.3, y + 0.2, text, va="center", fontsize=9.5)

    # right: the input gradient by phase
    ax = axes[2]
    for r in range(size):
        for c in range(size):
            ph = (r % s, c % s)
            _cell(
                ax,
                c,
                r,
                COLOURS[ph],
                f"{len(phases[ph[0]].taps)}x{len(phases[ph[1]].taps)}",
                edge=EDGES[ph],
                size=9,
            )
    ax.add_patch(Rectangle((c0, r0), 1, 1, fill=False, edgecolor=EDGES[(1, 0)], linewidth=3))
    ax.set_xlim(-0.2, size + 0.2)
    ax.set_ylim(size + 1.6, -1.2)
    ax.text(size / 2, -0.5, "dx (8 x 8): the sub-kernel of each pixel", ha="center", fontsize=11)
    ax.text(
        size / 2,
        size + 0.8,
        "each phase: one stride-1 conv2d of dy (4 x 4),\n"
        "written to dx[r::2, c::2]; every tap used once",
        ha="center",
        fontsize=10.5,
        va="top",
    )

    fig.suptitle(
        "Input gradient of a 3 x 3 convolution with stride 2 and padding 1: "
        "four phases instead of a zero-stuffed gradient",
        fontsize=12.5,
    )
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "backward.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outdir", type=Path, default=FIGURES, help="where the PNG goes")
    args = parser.parse_args(argv)
    path = figure_backward(args.outdir)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
