"""The README's Python examples run as written."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _python_blocks():
    if not os.path.exists(README):
        return []
    with open(README) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


@pytest.mark.skipif(not os.path.exists(README), reason="README.md not next to the tests")
@pytest.mark.parametrize("index", range(len(_python_blocks()) or 1))
def test_readme_example_runs(index):
    blocks = _python_blocks()
    assert blocks, "README.md has no python example"
    exec(compile(blocks[index], f"README.md example {index}", "exec"), {})
