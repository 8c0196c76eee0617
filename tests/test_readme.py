"""The README's Python examples run as written.

Each ```` ```python ```` block runs as a script, in a namespace of its own.
```` ```pycon ```` blocks (``>>>`` sessions) run as doctests with the standard
:mod:`doctest` module, one namespace for all of them in order, and their
output must match.
"""

import doctest
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _blocks(language):
    """``(line number, text)`` of every fenced block of ``language`` in the README."""
    if not os.path.exists(README):
        return []
    with open(README, encoding="utf-8") as f:
        text = f.read()
    return [
        (text.count("\n", 0, m.start(1)), m.group(1))
        for m in re.finditer(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)
    ]


pytestmark = pytest.mark.skipif(
    not os.path.exists(README), reason="README.md not next to the tests"
)


def test_readme_has_examples():
    assert _blocks("python") or _blocks("pycon"), "README.md has no Python example"


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_example_runs(index):
    line, code = _blocks("python")[index]
    exec(compile("\n" * line + code, README, "exec"), {})


@pytest.mark.skipif(not _blocks("pycon"), reason="README.md has no pycon example")
def test_readme_sessions():
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    globs = {"__name__": "README"}
    for line, text in _blocks("pycon"):
        test = parser.get_doctest(text, globs, f"README.md:{line + 1}", README, line)
        runner.run(test, clear_globs=False)
        globs = test.globs
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} README examples failed"
