"""Default thread counts on a busy machine: work-sized teams, the back-off after
late threads, and the OpenMP spin count set at import. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import cyconv
from cyconv import _dispatch, _plan, _team


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_after_a_late_team_then_a_clean_try():
    clock = Clock()
    b = _team.Backoff(clock)
    assert b.threads(2, late=0) == 2  # the first call of a try: its threads were asleep
    assert b.threads(2, late=1) == 2  # ... so its late team is not held against it
    # a late team from a judged call: one thread for BACKOFF_MIN seconds
    assert b.threads(2, late=1) == 1
    assert b.wait == pytest.approx(_team.BACKOFF_MIN)
    clock.now += _team.BACKOFF_MIN / 2
    assert b.threads(2, late=0) == 1
    clock.now += _team.BACKOFF_MIN
    assert b.threads(2, late=0) == 2  # a try: its first call wakes the threads
    assert b.threads(2, late=1) == 2  # not judged
    # the try's second call was late too: the wait doubles
    assert b.threads(2, late=1) == 1
    assert b.wait == pytest.approx(2 * _team.BACKOFF_MIN)
    clock.now += 1.5 * _team.BACKOFF_MIN
    assert b.threads(2, late=0) == 1
    clock.now += _team.BACKOFF_MIN
    assert b.threads(2, late=0) == 2
    assert b.threads(2, late=0) == 2
    # a clean judged call ends the back-off: the next late team waits BACKOFF_MIN again
    assert b.threads(2, late=0) == 2
    assert b.wait == 0.0
    assert b.threads(2, late=3) == 1
    assert b.wait == pytest.approx(_team.BACKOFF_MIN)


def test_backoff_is_capped():
    clock = Clock()
    b = _team.Backoff(clock)
    for _ in range(20):
        b.threads(2, late=0)
        b.threads(2, late=0)
        b.threads(2, late=1)
        clock.now = b.until
    assert b.wait == _team.BACKOFF_MAX
    assert b.threads(4, late=0) == 4


def test_one_thread_asked_is_one_thread():
    b = _team.Backoff(Clock())
    assert b.threads(1, late=0) == 1
    assert b.threads(1, late=1) == 1


@pytest.fixture
def quiet(monkeypatch):
    """A machine on which no team has been late."""
    monkeypatch.setattr(_team, "_state", _team.Backoff(Clock()))
    monkeypatch.setattr(_team, "default_threads", lambda nt: _team._state.threads(nt, 0))


def test_default_threads_follow_the_work(quiet):
    full = _plan.threads(None)
    per = _plan.AUTO_MACS_PER_THREAD
    assert _plan.threads(None, 10) == 1
    assert _plan.threads(None, per - 1) == 1
    assert _plan.threads(None, 2 * per) == min(full, 2)
    assert _plan.threads(None, 10**12) == full
    # an explicit count is kept, however small the call
    assert _plan.threads(2, 10) == 2
    assert _plan.threads(1, 10**12) == 1


def test_busy_machine_runs_default_calls_on_one_thread(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(_team, "_state", _team.Backoff(clock))
    late = iter([0, 0, 1, 0])
    monkeypatch.setattr(_team, "default_threads", lambda nt: _team._state.threads(nt, next(late)))
    full = _plan.threads(None)
    if full < 2:
        pytest.skip("one thread by default here")
    assert _plan.threads(None, 10**12) == full
    assert _plan.threads(None, 10**12) == full
    assert _plan.threads(None, 10**12) == 1  # a late team from a judged call
    assert _team.busy()
    assert _plan.threads(3, 10**12) == 3  # explicit counts are not affected
    clock.now += 2 * _team.BACKOFF_MAX
    assert not _team.busy()
    assert _plan.threads(None, 10**12) == full


def test_late_teams_resets_and_results_do_not_depend_on_it(rng):
    k = _dispatch.kernels()
    x = rng.standard_normal((2, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    want = cyconv.conv2d(x, w, padding=1, n_threads=1)
    k.late_teams()
    for nt in (2, 3, 8):
        np.testing.assert_array_equal(cyconv.conv2d(x, w, padding=1, n_threads=nt), want)
    assert k.late_teams() >= 0
    assert k.late_teams() == 0  # nothing ran since the last call


def _child(env, code):
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc


_SHOW = (
    "import os, cyconv; print(cyconv.show_config(print_=False)['omp_wait']); "
    "print('GOMP_SPINCOUNT' in os.environ)"
)


def _env_without_wait(child_env):
    return {k: v for k, v in child_env.items() if k not in _dispatch.WAIT_VARIABLES}


def test_spin_count_set_while_the_kernels_load(child_env):
    if not cyconv.show_config(print_=False)["openmp"]:
        pytest.skip("built without OpenMP")
    env = dict(_env_without_wait(child_env), OMP_DISPLAY_ENV="verbose")
    proc = _child(env, _SHOW)
    report, kept = proc.stdout.split("\n")[:2]
    assert report == f"GOMP_SPINCOUNT={_dispatch.SPIN_COUNT} (cyconv's default)"
    assert kept == "False"  # the process's environment is left as it was
    if "GOMP_SPINCOUNT" not in proc.stderr:
        pytest.skip("the OpenMP runtime is not GNU OpenMP")
    assert f"GOMP_SPINCOUNT = '{_dispatch.SPIN_COUNT}'" in proc.stderr


@pytest.mark.parametrize("name,value", [("GOMP_SPINCOUNT", "77"), ("OMP_WAIT_POLICY", "passive")])
def test_the_users_wait_policy_wins(child_env, name, value):
    env = dict(_env_without_wait(child_env), OMP_DISPLAY_ENV="verbose", **{name: value})
    proc = _child(env, _SHOW)
    report, kept = proc.stdout.split("\n")[:2]
    assert report == f"{name}={value} (from the environment)"
    assert kept == str(name == "GOMP_SPINCOUNT")  # the user's own variable stays
    if name == "GOMP_SPINCOUNT" and "GOMP_SPINCOUNT" in proc.stderr:
        assert "GOMP_SPINCOUNT = '77'" in proc.stderr
