"""The documentation is tested: its examples run, and docs/api.md matches the docstrings.

* every ``>>>`` example of ``docs/*.md`` runs as a doctest (``docs/api.md``
  excepted: its examples are those of the docstrings, run below in their own
  modules, where the names they use are defined);
* the examples in the docstrings of the public modules run as doctests;
* ``docs/api.md`` equals what ``python tools/make_figures.py --api`` renders
  from the installed package now.

Only the standard library, NumPy, SciPy (the guide compares with
``scipy.signal``) and cyconv are needed; Matplotlib is not: the API renderer in
``tools/make_figures.py`` imports it only to draw figures.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

GUIDE_PAGES = sorted(p for p in DOCS.glob("*.md") if p.name != "api.md")
MODULES = ["cyconv", "cyconv._conv", "cyconv._shapes", "cyconv._config", "cyconv.reference"]


class MarkdownParser(doctest.DocTestParser):
    """Doctest parser for Markdown: a code fence line ends an example's expected output.

    Plain doctest would read the closing fence as part of the expected output
    of the last example in a block. Fence lines are blanked (not removed, so
    the line numbers of failures stay right).
    """

    _FENCE = re.compile(r"^[ \t]*```.*$", re.MULTILINE)

    def parse(self, string, name="<string>"):
        return super().parse(self._FENCE.sub("", string), name)


def _report(results: doctest.TestResults, what: str) -> None:
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {what}"


def test_guide_pages_exist():
    assert (DOCS / "guide.md").is_file()
    assert GUIDE_PAGES


@pytest.mark.parametrize("page", GUIDE_PAGES, ids=lambda p: p.name)
def test_markdown_examples(page: Path):
    pytest.importorskip("scipy")
    if page.name == "dask.md":  # cyconv.dask's guide: the optional `dask` extra
        pytest.importorskip("dask.array")
    results = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=FLAGS,
        encoding="utf-8",
        parser=MarkdownParser(),
        verbose=False,
        report=True,
    )
    _report(results, str(page.relative_to(ROOT)))
    if page.name == "guide.md":
        assert results.attempted > 50, "the guide lost its examples"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str):
    module = importlib.import_module(name)
    results = doctest.testmod(module, optionflags=FLAGS, verbose=False, report=True)
    _report(results, name)


def _make_figures():
    spec = importlib.util.spec_from_file_location(
        "make_figures", ROOT / "tools" / "make_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_up_to_date():
    rendered = _make_figures().render_api()
    committed = (DOCS / "api.md").read_text(encoding="utf-8")
    assert committed == rendered, (
        "docs/api.md differs from the docstrings: run `python tools/make_figures.py --api`"
    )


def test_api_reference_covers_the_public_api():
    import cyconv

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    for name in cyconv.__all__:
        if callable(getattr(cyconv, name)):
            assert f"## cyconv.{name}\n" in text


def test_guide_figures_exist():
    guide = (DOCS / "guide.md").read_text(encoding="utf-8")
    for png in (DOCS / "figures").glob("*.png"):
        assert png.stat().st_size < 300 * 1024, f"{png.name} is over 300 KB"
    for ref in re.findall(r"\]\((figures/[^)]+\.png)\)", guide):
        assert (DOCS / ref).is_file(), f"guide.md shows {ref}, which does not exist"
