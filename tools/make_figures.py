"""Regenerate the figures of the guide and the API reference.

Usage, from the repository root, with cyconv installed::

    python tools/make_figures.py                      # every figure and docs/api.md
    python tools/make_figures.py --api                # docs/api.md only (no matplotlib needed)
    python tools/make_figures.py --check-api          # exit 1 if docs/api.md is stale
    python tools/make_figures.py --bench-json results/cyconv_bench.json
                                                      # also the benchmark chart

The figures are written to ``docs/figures/`` and the API reference to
``docs/api.md``. The API renderer needs only the standard library and cyconv;
Matplotlib is imported by the figure functions alone, so ``tests/test_docs.py``
can load this file to check that ``docs/api.md`` is up to date.

The benchmark chart reads the JSON file written by
``python -m cyconv bench --output DIR`` (``DIR/cyconv_bench.json``); without
``--bench-json`` it is skipped.
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
API_MD = DOCS / "api.md"

# --------------------------------------------------------------------------- #
# API reference: numpydoc docstrings -> Markdown
# --------------------------------------------------------------------------- #

#: numpydoc sections whose body is a list of ``name : type`` entries.
_LIST_SECTIONS = {
    "Parameters", "Other Parameters", "Returns", "Yields", "Raises", "Warns",
    "Attributes", "See Also",
}

_ROLE = re.compile(r":(?:func|mod|class|meth|attr|data|obj|exc):`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")


def _inline(text: str) -> str:
    """RST inline markup to Markdown: roles and double backticks become code."""
    text = _ROLE.sub(r"`\1`", text)
    return _LITERAL.sub(r"`\1`", text)


def _is_underline(line: str, title: str) -> bool:
    s = line.strip()
    return bool(title.strip()) and len(s) >= 3 and set(s) <= {"-", "="} and len(s) >= len(title.strip())


def _split_sections(doc: str) -> List[Tuple[Optional[str], List[str]]]:
    """``[(title or None, lines), ...]``: the text before the first heading, then each section."""
    lines = inspect.cleandoc(doc).splitlines()
    sections: List[Tuple[Optional[str], List[str]]] = [(None, [])]
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and not lines[i].startswith(" ") \
                and _is_underline(lines[i + 1], lines[i]):
            sections.append((lines[i].strip(), []))
            i += 2
            continue
        sections[-1][1].append(lines[i])
        i += 1
    return [(t, body) for t, body in sections if t is not None or any(s.strip() for s in body)]


def _prose(lines: Sequence[str]) -> List[str]:
    """Paragraphs, bullet lists, ``::`` literal blocks and doctest blocks to Markdown."""
    out: List[str] = []
    i, n = 0, len(lines)
    literal_next, literal_indent = False, 0
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            if out and out[-1] != "":
                out.append("")
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if literal_next and indent > literal_indent:
            # An indented block after "::": a literal block, until dedent.
            block = []
            while i < n and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) >= indent):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            pad = " " * literal_indent
            out += [pad + "```text", *(pad + x if x else x for x in
                                       textwrap.dedent("\n".join(block)).splitlines()),
                    pad + "```", ""]
            literal_next = False
            continue
        literal_next = False
        if stripped.startswith(">>>"):
            block = []
            while i < n and lines[i].strip():
                block.append(lines[i][indent:] if not lines[i][:indent].strip() else lines[i].strip())
                i += 1
            out += ["```pycon", *block, "```", ""]
            continue
        if stripped == "::":
            literal_next, literal_indent = True, min(indent, 3)
            i += 1
            continue
        if stripped.endswith("::"):
            # The literal block belongs to the list item this line starts or continues.
            marker = re.match(r"(\d+\.|[-*])\s+", stripped)
            literal_next = True
            literal_indent = indent + marker.end() if marker else min(indent, 3)
            stripped = stripped[:-1]
        # Up to 3 spaces keep a list item's continuation lines inside the item.
        out.append(" " * min(indent, 3) + _inline(stripped))
        i += 1
    while out and out[-1] == "":
        out.pop()
    return out


def _entries(lines: Sequence[str]) -> List[Tuple[str, List[str]]]:
    """``name : type`` heads (not indented) with their indented descriptions."""
    entries: List[Tuple[str, List[str]]] = []
    for line in lines:
        if not line.strip():
            if entries:
                entries[-1][1].append("")
            continue
        if not line.startswith(" "):
            entries.append((line.strip(), []))
        elif entries:
            entries[-1][1].append(line)
    return entries


def _list_section(title: str, lines: Sequence[str]) -> List[str]:
    out: List[str] = []
    for head, desc in _entries(lines):
        if " : " in head:
            name, typ = head.split(" : ", 1)
        elif head.endswith(" :"):
            name, typ = head[:-2], ""
        else:
            name, typ = head, ""
        if title == "See Also":
            names = ", ".join("`" + _ROLE.sub(r"\1", x.strip()) + "`" for x in name.split(","))
            item = f"- {names}" + (f": {_inline(typ)}" if typ else "")
        elif title in ("Returns", "Yields", "Raises", "Warns") and not typ:
            item = f"- `{name}`"
        else:
            names = ", ".join(f"`{x.strip()}`" for x in name.split(","))
            item = f"- {names}" + (f" : *{_inline(typ)}*" if typ else "")
        body = _prose(textwrap.dedent("\n".join(desc)).splitlines())
        if body:
            # First paragraph continues the bullet; the rest is indented under it.
            first, rest = [], list(body)
            while rest and rest[0] != "" and not rest[0].startswith("```"):
                first.append(rest.pop(0))
            item += (" — " if first else "") + " ".join(first)
            out.append(item)
            out += [("  " + x if x else "") for x in rest]
        else:
            out.append(item)
    return out


def docstring_markdown(doc: str, level: int) -> str:
    """Render a numpydoc docstring as Markdown; section headings at ``level``."""
    out: List[str] = []
    for title, body in _split_sections(doc):
        if title is not None:
            out += ["", "#" * level + " " + _inline(title), ""]
        if title in _LIST_SECTIONS:
            out += _list_section(title, body)
        else:
            out += _prose(body)
    text = "\n".join(out).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def signature_text(qualname: str, func: Callable[..., Any]) -> str:
    """``qualname(a, b=1, *, c='x')`` without annotations, one parameter a line if long.

    The annotations are left out: the numpydoc ``Parameters`` section gives the
    types in words, and the type aliases of the signature would need their own
    reference.
    """
    P = inspect.Parameter
    parts: List[str] = []
    prev = None
    for p in inspect.signature(func).parameters.values():
        if prev is P.POSITIONAL_ONLY and p.kind is not P.POSITIONAL_ONLY:
            parts.append("/")
        if p.kind is P.KEYWORD_ONLY and prev not in (P.KEYWORD_ONLY, P.VAR_POSITIONAL):
            parts.append("*")
        parts.append(str(p.replace(annotation=P.empty)))
        prev = p.kind
    if prev is P.POSITIONAL_ONLY:
        parts.append("/")
    one_line = f"{qualname}({', '.join(parts)})"
    if len(one_line) <= 88:
        return one_line
    return qualname + "(\n" + "".join(f"    {x},\n" for x in parts) + ")"


def _api_items() -> List[Tuple[str, Any]]:
    import cyconv
    from cyconv import reference

    items: List[Tuple[str, Any]] = [
        (f"cyconv.{name}", getattr(cyconv, name))
        for name in cyconv.__all__
        if callable(getattr(cyconv, name))
    ]
    items.append(("cyconv.reference", reference))
    items += [(f"cyconv.reference.{name}", getattr(reference, name)) for name in reference.__all__]
    return items


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def render_api() -> str:
    """The text of ``docs/api.md``, from the docstrings of the installed cyconv."""
    items = _api_items()
    out = [
        "# API reference",
        "",
        "<!-- Generated by `python tools/make_figures.py --api` from the docstrings; do not edit. -->",
        "",
        "Every public name is importable from `cyconv`; the plain-NumPy versions of the same",
        "functions live in `cyconv.reference` (import it with `from cyconv import reference`).",
        "The [guide](guide.md) explains what the functions compute.",
        "",
    ]
    for name, obj in items:
        out.append(f"- [`{name}`](#{_anchor(name)})")
    for name, obj in items:
        out += ["", f"## {name}", ""]
        if inspect.ismodule(obj):
            out.append(docstring_markdown(obj.__doc__ or "", level=3))
            continue
        out += ["```python", signature_text(name, obj), "```", ""]
        out.append(docstring_markdown(obj.__doc__ or "(no docstring)", level=3))
        if inspect.isclass(obj):
            out += _class_members(name, obj)
    return "\n".join(out).rstrip("\n") + "\n"


def _class_members(qualname: str, cls: type) -> List[str]:
    """Public methods (and ``__call__``) and properties of ``cls``, in definition order."""
    short = qualname.rsplit(".", 1)[-1]
    props, methods = [], []
    for name, member in vars(cls).items():
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(member, property):
            doc = inspect.getdoc(member)
            props.append(f"- `{short}.{name}`" + (f" — {_inline(doc.splitlines()[0])}" if doc else ""))
        elif callable(member):
            shown = "layer" if name == "__call__" else f"{short}.{name}"
            sig = signature_text(shown, member).replace("(self, ", "(").replace("(self)", "()")
            title = f"{short}.__call__" if name == "__call__" else f"{short}.{name}"
            methods += ["", f"### {title}", "", "```python", sig, "```", "",
                        docstring_markdown(member.__doc__ or "(no docstring)", level=4)]
    out: List[str] = []
    if props:
        out += ["", "### Properties", "", *props]
    return out + methods


def write_api(path: Path = API_MD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_api(), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- #
# Figures (Matplotlib imported here only)
# --------------------------------------------------------------------------- #

#: The numbers of the guide's first example (docs/guide.md, "The sliding window").
EXAMPLE_X = [[1, 2, 0, 3],
             [4, 1, 1, 0],
             [0, 2, 3, 1],
             [1, 0, 2, 4]]
EXAMPLE_W = [[1, 0, -1],
             [2, 0, -2],
             [1, 0, -1]]
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
    from matplotlib.patches import Rectangle

    import numpy as np

    values = np.asarray(values)
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            face = "white"
            if highlight is not None:
                r0, c0, hr, hc = highlight
                if r0 <= r < r0 + hr and c0 <= c < c0 + hc:
                    face = color
            ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, facecolor=face, edgecolor="#888888",
                                   linewidth=1))
            ax.text(x0 + c + 0.5, y0 + r + 0.5, f"{values[r, c]:g}", ha="center", va="center",
                    fontsize=14)
    for c in range(cols):
        ax.text(x0 + c + 0.5, y0 - 0.15, str(c), ha="center", va="bottom", fontsize=8,
                color="#777777")
    for r in range(rows):
        ax.text(x0 - 0.12, y0 + r + 0.5, str(r), ha="right", va="center", fontsize=8,
                color="#777777")
    if highlight is not None:
        r0, c0, hr, hc = highlight
        ax.add_patch(Rectangle((x0 + c0, y0 + r0), hc, hr, fill=False, edgecolor="#1f5fa8",
                               linewidth=3))
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
    prod = x[i:i + kH, j:j + kW] * w

    fig, ax = plt.subplots(figsize=(11.6, 4.8), dpi=90)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    # One axes in cell units, every grid at its own x offset, so all cells have the same size.
    _grid(ax, x, 0.0, "input x (4 x 4)", highlight=(i, j, kH, kW))
    _grid(ax, w, 5.6, "kernel w (3 x 3)", highlight=(0, 0, kH, kW), color="#fde9c9")
    _grid(ax, prod, 10.2, f"x[{i}:{i + kH}, {j}:{j + kW}] * w, elementwise",
          highlight=(0, 0, kH, kW), color="#e2f0d9")
    _grid(ax, out, 15.4, "output (2 x 2)", highlight=(i, j, 1, 1), color="#f4cccc", y0=0.5)
    ax.text(4.8, 1.5, "\u00d7", ha="center", va="center", fontsize=26)
    ax.text(9.4, 1.5, "=", ha="center", va="center", fontsize=26)
    ax.text(14.5, 1.5, "\u03a3 \u2192", ha="center", va="center", fontsize=22)
    terms = " + ".join(f"({v})" if v < 0 else str(v) for v in prod.ravel())
    ax.text(8.7, 4.55, f"output[{i}, {j}] = {terms} = {int(prod.sum())}", ha="center",
            va="center", fontsize=12)
    ax.text(8.7, 5.25, "Each output element is one position of the window; the window of "
            "output[i, j] starts at row i, column j (stride 1).", ha="center", va="center",
            fontsize=10.5, color="#333333")
    ax.text(8.7, -1.55, "Sliding window: a 3 x 3 submatrix of the input times the kernel, "
            "elementwise, summed into one output element", ha="center", va="center",
            fontsize=13)
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
    _show(fig, axes[0, 0], gray, "input: grayscale photograph\n(600 x 512, values in [0, 1])",
          vmin=0, vmax=1)
    _show(fig, axes[0, 1], gx, "Sobel x: [[1, 0, -1], [2, 0, -2], [1, 0, -1]]\n"
          "vertical edges; white: left side brighter", symmetric=True)
    _show(fig, axes[0, 2], gy, "Sobel y: the transposed kernel\nhorizontal edges; white: upper side brighter",
          symmetric=True)
    _show(fig, axes[1, 0], magnitude, "edge strength sqrt(gx\u00b2 + gy\u00b2)",
          vmin=0, vmax=float(np.percentile(magnitude, 99)))
    _show(fig, axes[1, 1], blur, "Gaussian blur, 13 x 13 kernel, \u03c3 = 3\n"
          "(weights sum to 1: a weighted average)", vmin=0, vmax=1)
    _show(fig, axes[1, 2], sharp, "sharpen: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]\n"
          "(clipped to [0, 1] for display)", vmin=0, vmax=1)
    fig.suptitle('cyconv.correlate2d(image, kernel, mode="same", boundary="symm")', fontsize=12)
    return _save(fig, "filters.png", outdir, gray=True)


#: Hand-made weights of the 3 -> 4 channel layer of the second photo figure.
_LUMA = (0.299, 0.587, 0.114)


def layer_weights():
    """Weights ``(4, 3, 3, 3)`` of a small RGB layer: brightness, two colour opponents, edges."""
    import numpy as np

    w = np.zeros((4, 3, 3, 3), dtype=np.float32)
    w[0, :, 1, 1] = _LUMA                      # brightness (a 1 x 1 filter in a 3 x 3 kernel)
    w[1, :, 1, 1] = (1.0, -1.0, 0.0)           # red minus green
    w[2, :, 1, 1] = (-0.5, -0.5, 1.0)          # blue minus yellow
    sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float32)
    for c in range(3):
        w[3, c] = _LUMA[c] * sobel_x           # vertical edges of the brightness
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
    x = np.ascontiguousarray(rgb.transpose(2, 0, 1))   # (3, H, W)
    w = layer_weights()
    y = cyconv.conv2d(x, w, padding=1, padding_mode="replicate")   # (4, H, W)

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
                ax.text(q, r, f"{v:.2g}" if v else "0", ha="center", va="center", fontsize=9,
                        color="white" if abs(v) > 0.6 * lim else "black")
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
        fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02,
                     aspect=25).ax.tick_params(labelsize=7)
    fig.suptitle('y = cyconv.conv2d(x, w, padding=1, padding_mode="replicate"), w of shape '
                 "(4, 3, 3, 3)\nrow c: input channel c and the kernels that read it; column o: "
                 "the kernels of output channel o and, at the bottom, their sum", fontsize=11)
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
    layers = [layer["name"] for layer in report["layers"]
              if any(r["layer"] == layer["name"] for r in results)]
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
    fig, ax = plt.subplots(figsize=(10, 2.2 + 0.17 * rows + 0.25 * len(layers)), dpi=80,
                           layout="constrained")
    y = 0.0
    ticks, ticklabels, seen = [], [], set()
    for name in layers:
        recs = {r["system"]: r for r in results if r["layer"] == name}
        present = [s for s in systems if s in recs]
        bar_h = 0.8 / len(present)
        for k, s in enumerate(present):
            pos = y + 0.4 - bar_h / 2 - k * bar_h
            rate = recs[s]["gflops"]
            ax.barh(pos, rate, height=0.9 * bar_h, color=cmap[s],
                    label=labels[s] if s not in seen else None)
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
        ax.axvline(ceiling, color="black", linestyle="--", linewidth=1,
                   label=f"float32 matmul ceiling ({ceiling:.3g})")
    top = max([r["gflops"] for r in results] + ([ceiling] if ceiling else []))
    ax.set_xlim(right=top * 1.8)  # room for the value labels
    ax.set_xlabel("GFLOP/s of the median call (log scale, higher is better)")
    machine = report.get("machine", {})
    ax.set_title(f"python -m cyconv bench, {threads} thread(s): {machine.get('cpu_model', '?')}, "
                 f"{report.get('date', '')[:10]}", fontsize=10)
    ax.grid(axis="x", which="both", alpha=0.3)
    try:  # below the axes; "outside" needs Matplotlib >= 3.7
        fig.legend(fontsize=8, loc="outside lower center", ncols=4)
    except (ValueError, TypeError):
        ax.legend(fontsize=8, loc="best")
    return _save(fig, "bench.png", outdir)


# --------------------------------------------------------------------------- #


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", action="store_true", help="write docs/api.md only")
    parser.add_argument("--check-api", action="store_true",
                        help="exit 1 if docs/api.md differs from the docstrings")
    parser.add_argument("--bench-json", type=Path, default=None, metavar="PATH",
                        help="cyconv_bench.json from `python -m cyconv bench --output DIR`")
    parser.add_argument("--outdir", type=Path, default=FIGURES, help="where the PNG files go")
    args = parser.parse_args(argv)

    if args.check_api:
        fresh = render_api() == (API_MD.read_text(encoding="utf-8") if API_MD.exists() else "")
        print(f"{API_MD}: {'up to date' if fresh else 'stale: run python tools/make_figures.py --api'}")
        return 0 if fresh else 1
    written: List[Path] = [write_api()]
    if not args.api:
        written += [figure_sliding_window(args.outdir), figure_filters(args.outdir),
                    figure_layer(args.outdir)]
        if args.bench_json is not None:
            path = figure_bench(args.bench_json, args.outdir)
            if path is not None:
                written.append(path)
        else:
            print("no --bench-json PATH given: skipping the benchmark chart "
                  "(make one with: python -m cyconv bench --output DIR)")
    for path in written:
        size = path.stat().st_size
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
