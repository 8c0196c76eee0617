"""``python -m cyconv.bench``: the same as ``python -m cyconv bench``."""

import sys

from .cli import main

sys.exit(main())
