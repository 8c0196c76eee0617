"""Sphinx configuration of the cyconv documentation.

Build the site and run its examples from the repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
    python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

The API reference is generated from the docstrings of the installed cyconv
(autodoc, autosummary and numpydoc); the guide and the limits page are
Markdown read by MyST.
"""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path

from sphinx.ext.doctest import DoctestDirective

ROOT = Path(__file__).resolve().parent.parent

try:
    import cyconv
except ImportError:
    # `python -m sphinx` in the repository root puts the source tree first on
    # sys.path; where its kernels are not built, document the installed cyconv.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    for name in [m for m in sys.modules if m == "cyconv" or m.startswith("cyconv.")]:
        del sys.modules[name]
    import cyconv

project = "cyconv"
author = "cyconv developers"
copyright = "cyconv developers"
release = cyconv.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# -- MyST ---------------------------------------------------------------------
# GitHub-style anchors for the headings, so that the guide's links to its own
# sections work on GitHub and in the site alike.
myst_heading_anchors = 3
# A ```pycon fence is a doctest: highlighted on GitHub, run by `-b doctest`.
myst_fence_as_directive = ["pycon"]

# -- API reference ------------------------------------------------------------
autosummary_generate = False
autodoc_typehints = "none"  # the numpydoc sections give the types in words
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- doctest ------------------------------------------------------------------
# The docstring examples (doctest blocks) are run too, one namespace per page.
doctest_test_doctest_blocks = "default"
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"cyconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False


#: Pages whose examples need an optional extra: skipped when it is not installed.
NEEDS = {"dask": "dask.array"}
#: Optional modules that single examples import: a block with ``>>> import NAME``
#: is skipped when NAME is not installed (the rest of its page still runs).
NEEDS_IMPORT = ["torch"]


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is None


class PyconDirective(DoctestDirective):
    """A ```pycon fence read as ``.. doctest::``."""

    def run(self):
        self.name = "doctest"
        needed = NEEDS.get(self.env.docname)
        imports = [
            name
            for name in NEEDS_IMPORT
            if any(line.strip() == f">>> import {name}" for line in self.content)
        ]
        if (needed and _missing(needed)) or any(_missing(name) for name in imports):
            self.options["skipif"] = "True"
        return super().run()


def setup(app):
    app.add_directive("pycon", PyconDirective)


# cyconv.torch and cyconv.dask need optional extras: without them, their pages are
# built from stand-in modules (the docstrings' doctests need the real ones).
autodoc_mock_imports = [
    name for name in ("torch", "dask", "distributed") if importlib.util.find_spec(name) is None
]
