"""The documentation is tested: its pages and figures exist, the API reference
covers the public API, and its examples run.

* ``docs/api/index.rst`` lists and documents every name of ``cyconv.__all__``;
  the pages of ``cyconv.reference`` and ``cyconv.testing`` document their
  modules' ``__all__`` (``automodule`` with ``:members:``);
* the examples in the docstrings of the public modules run as doctests
  (standard :mod:`doctest`, no Sphinx needed);
* with the docs extra installed (``pip install ".[docs]"``) the site is built
  with warnings as errors, each public name must be in the built API pages,
  and Sphinx's doctest builder runs every example of the site: the guide's
  ```` ```pycon ```` blocks and the docstring examples of the API pages.
  These tests are skipped when Sphinx or the extensions are missing;
* every benchmark number of the README and the guide is generated from one
  results file, ``docs/results/bench.json``, by ``tools/make_figures.py``: the
  committed tables must be what that file gives (no test depends on the speed
  of the machine it runs on).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

PAGES = [
    "conf.py",
    "index.md",
    "guide.md",
    "results/bench.json",
    "dtypes.md",
    "limits.md",
    "api/index.rst",
    "api/reference.rst",
    "api/testing.rst",
]
SPHINX_DEPS = ["sphinx", "myst_parser", "numpydoc", "pydata_sphinx_theme"]


def _public_modules():
    """``cyconv``, ``cyconv.reference``, ``cyconv.testing`` and the modules that define
    the names of ``cyconv.__all__``."""
    import cyconv

    names = {"cyconv", "cyconv.reference", "cyconv.testing"}
    for name in cyconv.__all__:
        module = inspect.getmodule(getattr(cyconv, name))
        if module is not None and module.__name__.startswith("cyconv"):
            names.add(module.__name__)
    return sorted(names)


def _directive_blocks(text: str, name: str):
    """The entries (indented lines, options excluded) of every ``.. name::`` directive."""
    blocks = []
    for m in re.finditer(
        rf"^\.\. {re.escape(name)}::[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", text, flags=re.M
    ):
        blocks.append(
            [
                line.strip()
                for line in m.group(1).splitlines()
                if line.strip() and not line.strip().startswith(":")
            ]
        )
    return blocks


def _directive_args(text: str, name: str):
    return re.findall(rf"^\.\. {re.escape(name)}:: *(\S+)", text, flags=re.M)


@pytest.mark.parametrize("page", PAGES)
def test_pages_exist(page: str):
    assert (DOCS / page).is_file()


def test_api_reference_covers_the_public_api():
    import cyconv

    text = (API / "index.rst").read_text(encoding="utf-8")
    listed = [name for block in _directive_blocks(text, "autosummary") for name in block]
    data = _directive_args(text, "data")
    assert sorted(listed + data) == sorted(cyconv.__all__), (
        "the autosummary table of docs/api/index.rst (and its `.. data::` entries) must "
        "list exactly cyconv.__all__"
    )
    documented = set(_directive_args(text, "autofunction") + _directive_args(text, "autoclass"))
    for name in listed:
        obj = getattr(cyconv, name)
        if callable(obj):
            assert name in documented, f"cyconv.{name} is listed but not documented"
        else:
            assert (API / f"{name}.rst").is_file(), f"cyconv.{name} has no page of its own"


@pytest.mark.parametrize("module", ["reference", "testing"])
def test_module_pages_document_all_members(module: str):
    text = (API / f"{module}.rst").read_text(encoding="utf-8")
    assert re.search(rf"^\.\. automodule:: cyconv\.{module}\n   :members:$", text, flags=re.M)


@pytest.mark.parametrize("name", _public_modules())
def test_docstring_examples(name: str):
    module = importlib.import_module(name)
    results = doctest.testmod(module, optionflags=FLAGS, verbose=False, report=True)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {name}"


def test_guide_figures_exist():
    for png in (DOCS / "figures").glob("*.png"):
        assert png.stat().st_size < 300 * 1024, f"{png.name} is over 300 KB"
    for page in DOCS.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        for ref in re.findall(r"\]\((figures/[^)]+\.png)\)", text):
            assert (DOCS / ref).is_file(), f"{page.name} shows {ref}, which does not exist"


def _make_figures():
    """``tools/make_figures.py`` as a module (it imports Matplotlib only to draw)."""
    spec = importlib.util.spec_from_file_location(
        "make_figures", ROOT / "tools" / "make_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_results_file():
    mf = _make_figures()
    data = mf.load_bench(mf.BENCH_RESULTS)
    assert len(data["runs"]) >= 2, "the spread over runs needs at least two runs"
    for run in data["runs"]:
        assert run["machine"]["cpu_model"]
        assert run["machine"]["cyconv"]["show_config"]["simd"]
        assert run["date"]
        assert any(r.get("status") == "ok" for r in run["results"])


@pytest.mark.parametrize("name", ["readme", "guide"])
def test_bench_tables_are_generated_from_the_results_file(name: str):
    mf = _make_figures()
    expected = mf.bench_blocks(mf.load_bench(mf.BENCH_RESULTS))[name]
    path = mf.BENCH_TARGETS[name]
    assert mf.marked_block(path.read_text(encoding="utf-8"), name) == expected, (
        f"the benchmark table of {path.name} does not match docs/results/bench.json: "
        "run python tools/make_figures.py"
    )
    facts = mf.bench_facts(mf.load_bench(mf.BENCH_RESULTS))
    for fact in (facts["cpu"], f"`{facts['simd']}` variant", facts["date"]):
        assert fact in expected


def test_bench_tables_cannot_drift(tmp_path: Path):
    """Rewriting the tables from the results file is a no-op on the committed text,
    and replaces a hand-edited number."""
    mf = _make_figures()
    data = mf.load_bench(mf.BENCH_RESULTS)
    targets = {}
    for name, path in mf.BENCH_TARGETS.items():
        copy = tmp_path / path.name
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        targets[name] = copy
    assert mf.write_bench_blocks(data, targets) == []
    guide = targets["guide"]
    text = guide.read_text(encoding="utf-8")
    block = mf.marked_block(text, "guide")
    guide.write_text(text.replace(block, block.replace("|", "| 999 ", 1)), encoding="utf-8")
    assert mf.write_bench_blocks(data, targets) == [guide]
    assert mf.marked_block(guide.read_text(encoding="utf-8"), "guide") == block


def _sphinx(builder: str, out: Path) -> subprocess.CompletedProcess:
    for dep in SPHINX_DEPS:
        pytest.importorskip(dep, reason=f"{dep} is not installed (pip install '.[docs]')")
    # The commands of CI, run from the repository root.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            builder,
            "-d",
            str(out / "doctrees"),
            str(DOCS),
            str(out / builder),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_sphinx_html(tmp_path: Path):
    import cyconv
    from cyconv import grad, reference, testing

    proc = _sphinx("html", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = tmp_path / "html"
    expected = {
        "api/index.html": [
            "cyconv." + name for name in cyconv.__all__ if name not in ("grad", "reference")
        ],
        "api/grad.html": ["module-cyconv.grad"] + ["cyconv.grad." + name for name in grad.__all__],
        "api/reference.html": ["module-cyconv.reference"]
        + ["cyconv.reference." + name for name in reference.__all__],
        "api/testing.html": ["module-cyconv.testing"]
        + ["cyconv.testing." + name for name in testing.__all__],
    }
    for page, ids in expected.items():
        text = (html / page).read_text(encoding="utf-8")
        for anchor in ids:
            assert f'id="{anchor}"' in text, f"{page} does not document {anchor}"
    # The signature and the numpydoc sections of a function are rendered.
    text = (html / "api/index.html").read_text(encoding="utf-8")
    entry = text[text.index('id="cyconv.conv2d"') : text.index('id="cyconv.Conv2d"')]
    for part in ["padding_mode", "n_threads", "Parameters", "Returns", "Raises", "Examples"]:
        assert part in entry, f"the entry of cyconv.conv2d lacks {part!r}"
    for page in ["index.html", "guide.html", "limits.html"]:
        assert (html / page).is_file()
    for png in (DOCS / "figures").glob("*.png"):
        assert (html / "_images" / png.name).is_file(), f"{png.name} is not in the site"


def test_sphinx_doctest(tmp_path: Path):
    pytest.importorskip("scipy", reason="the guide's examples compare with scipy.signal")
    proc = _sphinx("doctest", tmp_path)
    report = tmp_path / "doctest" / "output.txt"
    assert proc.returncode == 0, (
        proc.stdout + proc.stderr + (report.read_text(encoding="utf-8") if report.is_file() else "")
    )
    text = report.read_text(encoding="utf-8")
    counts = dict(
        re.findall(r"^Document: (\S+)\n-+\n.*?(\d+) tests in \d+ items?\.", text, flags=re.M | re.S)
    )
    assert int(counts.get("guide", 0)) > 50, f"the guide lost its examples: {counts}"
    for page in ["api/index", "api/reference", "api/testing"]:
        assert int(counts.get(page, 0)) > 0, f"no docstring example ran on {page}: {counts}"
