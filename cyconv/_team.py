"""Default thread counts that give way when the machine is busy.

The kernels count their parallel loops in which a thread started late, long
after the loop began (it had lost its core to another program; see
``late_teams`` in the kernel modules). After such a loop, calls with the
default thread count run on one thread for :data:`BACKOFF_MIN` seconds, then
try the full count again; each late try doubles the wait, up to
:data:`BACKOFF_MAX`, and a try without a late thread ends it. The first call
of a try is not judged: its threads had been asleep, and on a virtual
machine waking one can take longer than the lateness threshold (measured
here: without that rule a quiet loop of 0.2 ms calls ran on one thread in 4
calls of 5). Results do not depend on the thread count, so none of this
changes a result.
"""

from __future__ import annotations

import time
from typing import Callable

from . import _dispatch

#: Seconds of one-thread calls after the first late team, and at most.
BACKOFF_MIN = 0.05
BACKOFF_MAX = 1.0


class Backoff:
    """The state: when one-thread calls end, how long the last wait was, and
    how many default calls in a row have run on several threads (``tries``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.until = 0.0
        self.wait = 0.0
        self.tries = 0

    def threads(self, nt: int, late: int) -> int:
        """The count for a default call of up to ``nt`` threads, ``late`` teams
        having been counted since the last call."""
        now = self.clock()
        judged = self.tries >= 2  # the last call was not the first of a try
        if late and judged:
            self.wait = min(BACKOFF_MAX, max(BACKOFF_MIN, 2.0 * self.wait))
            self.until = now + self.wait
        elif judged:
            self.wait = 0.0
        if nt <= 1 or now < self.until:
            self.tries = 0
            return 1
        self.tries += 1
        return nt


_state = Backoff()


def default_threads(nt: int) -> int:
    """``nt``, or 1 while the machine has lately been too busy for a team."""
    return _state.threads(nt, _dispatch.kernels().late_teams())


def busy() -> bool:
    """Whether calls with the default thread count run on one thread now."""
    return _state.clock() < _state.until
