#!/usr/bin/env bash
# CI for cyconv's distributions (run at the end of .ci/run; about 6 minutes on
# 2 cores). From this checkout:
#
#   1. tools/build_wheels.sh: sdist, wheel built from the sdist, auditwheel
#      repair (bundles libgomp), auditwheel show, sdist file list checked;
#   2. CYCONV_NO_OPENMP=1 pip install <sdist> into a venv of its own: the serial
#      build, in the background while 3-5 run;
#   3. the repaired wheel installed into a fresh venv, binary packages only (no
#      compiler involved), and used from a directory outside the source tree;
#   4. the test suite against the installed wheel, once per SIMD variant the CPU
#      runs (CYCONV_SIMD=<v>): the whole suite for the default (best) variant -
#      its variant-parametrised tests run every variant anyway - and, for each
#      other variant, the tests that are not parametrised over variants (they
#      run on the forced default): -k "not baseline and not avx2 and not avx512"
#      (the variants: the targets' table, cyconv/_targets.py);
#   5. python -m cyconv check; every variant the CPU lacks fails cleanly with the
#      "lacks" error and is never imported; the baseline module's compile flags
#      hold no -march but x86-64; no -march=native in any module; objdump: the
#      baseline kernels and the CPU-detection module hold no AVX instruction;
#   6. the serial build: show_config()["openmp"] is False, and
#      tests/test_conv2d.py + tests/test_threads.py pass.
#
# Environment: PYTHON (default python3) makes the venvs; CYCONV_KEEP_WORK=1
# keeps the work directory; CYCONV_CI_PYTEST_ARGS adds pytest arguments.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
t_start=$SECONDS
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
read -r -a extra_pytest <<<"${CYCONV_CI_PYTEST_ARGS:-}"

work="$(mktemp -d "${TMPDIR:-/tmp}/cyconv-ci-wheels.XXXXXX")"
bg_pids=()
cleanup() {
    local pid
    for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [[ "${CYCONV_KEEP_WORK:-0}" != 1 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

timings=()
t_section=$SECONDS
section_name=""
section() {
    if [[ -n "$section_name" ]]; then
        timings+=("$(printf '%4ds  %s' "$((SECONDS - t_section))" "$section_name")")
    fi
    section_name="$*"
    t_section=$SECONDS
    printf '\n==================== %s  [t=%ds]\n' "$*" "$((SECONDS - t_start))"
}
fail() { echo "ci_wheels: FAIL: $*" >&2; exit 1; }
# wait for a background job; show its log if it failed
wait_job() {
    local pid="$1" log="$2" what="$3"
    if ! wait "$pid"; then
        echo "---- log of $what ($log):" >&2
        tail -n 80 "$log" >&2
        fail "$what"
    fi
}

# The runtime and test requirements, read from pyproject.toml, installed into the
# test venvs in the background while the wheel builds (binary packages only).
reqs="$("$python" - "$repo/pyproject.toml" <<'PY'
import sys
try:
    import tomllib
except ImportError:  # Python < 3.11
    try:
        import tomli as tomllib
    except ImportError:
        sys.exit(0)
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
print(" ".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
)"
prep_venv() {
    "$python" -m venv "$1"
    if [[ -n "$reqs" ]]; then
        # shellcheck disable=SC2086
        "$1/bin/python" -m pip install -q --only-binary=:all: $reqs
    fi
}
prep_venv "$work/venv-wheel" >"$work/prep-wheel.log" 2>&1 & pid_prep_wheel=$!
prep_venv "$work/venv-serial" >"$work/prep-serial.log" 2>&1 & pid_prep_serial=$!
bg_pids+=("$pid_prep_wheel" "$pid_prep_serial")

# ---------------------------------------------------------------------------
section "1. build: sdist -> wheel from the sdist -> auditwheel repair -> show"
CYCONV_TOOLS_VENV="$work/tools" bash "$repo/tools/build_wheels.sh" "$work/dist"
sdist="$(ls "$work"/dist/cyconv-*.tar.gz)"
wheel="$(ls "$work"/dist/cyconv-*manylinux*.whl)" || fail "no manylinux wheel was made"
wheel_size="$(stat -c %s "$wheel")"
t_build=$((SECONDS - t_section))

# ---------------------------------------------------------------------------
section "2. serial build from the sdist (CYCONV_NO_OPENMP=1), in the background"
wait_job "$pid_prep_serial" "$work/prep-serial.log" "preparing the serial venv"
(
    t0=$SECONDS
    CYCONV_NO_OPENMP=1 "$work/venv-serial/bin/python" -m pip install -v "$sdist"
    echo "serial build + install: $((SECONDS - t0))s"
) >"$work/serial-build.log" 2>&1 &
pid_serial=$!
bg_pids+=("$pid_serial")
echo "building in the background; log: $work/serial-build.log"

# ---------------------------------------------------------------------------
section "3. install the repaired wheel into a fresh venv (binary packages only)"
wait_job "$pid_prep_wheel" "$work/prep-wheel.log" "preparing the wheel venv"
vpy="$work/venv-wheel/bin/python"
"$vpy" -m pip install -q --only-binary=:all: "${wheel}[test]"
run="$work/run"   # outside the source tree: `import cyconv` must find the venv's
mkdir -p "$run"
cd "$run"
"$vpy" - "$repo" <<'PY'
import os, sys
import cyconv
repo = os.path.realpath(sys.argv[1])
where = os.path.realpath(cyconv.__file__)
print(f"cyconv {cyconv.__version__} imported from {where}")
assert where.startswith(os.path.realpath(sys.prefix)), "not the installed wheel"
assert not where.startswith(repo + os.sep), "imported from the source tree"
PY
"$vpy" -m cyconv info

# the targets' table: every variant (best first), the baseline, the others
read -r -a all_variants <<<"$("$vpy" -c 'from cyconv._targets import NAMES; print(*NAMES)')"
baseline="$("$vpy" -c 'from cyconv._targets import BASELINE; print(BASELINE)')"
no_variant="$("$vpy" -c 'from cyconv._targets import NAMES; print(" and ".join("not " + n for n in NAMES))')"
echo "variants of the targets' table: ${all_variants[*]} (baseline: $baseline)"

# ---------------------------------------------------------------------------
section "4. test suite against the installed wheel, per SIMD variant"
read -r -a variants <<<"$("$vpy" -c 'import cyconv._dispatch as d; print(*d.variants())')"
echo "variants this CPU runs (best first): ${variants[*]}"
echo "CPU flags: $(grep -m1 -o -w -E 'avx2|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)"
echo "CPU levels: $("$vpy" -c 'from cyconv._kernels import _cpu; print(_cpu.features(), "by", _cpu.DETECTION)')"
[[ "${variants[-1]}" == "$baseline" ]] || fail "$baseline is not among the variants"
for v in "${variants[@]}"; do
    t0=$SECONDS
    if [[ "$v" == "${variants[0]}" ]]; then
        echo "--- CYCONV_SIMD=$v: full suite"
        CYCONV_SIMD="$v" "$vpy" -m pytest "$repo/tests" -q -x -p no:cacheprovider \
            "${extra_pytest[@]}"
    else
        echo "--- CYCONV_SIMD=$v: the tests not parametrised over variants"
        CYCONV_SIMD="$v" "$vpy" -m pytest "$repo/tests" -q -x -p no:cacheprovider \
            -k "$no_variant" "${extra_pytest[@]}"
    fi
    timings+=("$(printf '%4ds    pytest CYCONV_SIMD=%s' "$((SECONDS - t0))" "$v")")
done

# ---------------------------------------------------------------------------
section "5. self-check, variant safety, compile flags, instructions"
"$vpy" -m cyconv check

echo "--- CYCONV_SIMD=<v> python -m cyconv info, for every variant"
cpu_has() {  # does the CPU (as cyconv detects it) run variant $1?
    "$vpy" -c "import sys; from cyconv._kernels import _cpu; from cyconv._targets import BY_NAME
sys.exit(0 if _cpu.supports(BY_NAME['$1'].cpu_level) else 1)"
}
for v in "${all_variants[@]}"; do
    set +e
    out="$(CYCONV_SIMD="$v" "$vpy" -m cyconv info 2>&1)"
    rc=$?
    set -e
    if cpu_has "$v"; then
        [[ $rc == 0 ]] || { echo "$out"; fail "CYCONV_SIMD=$v: exit $rc on a CPU that has it"; }
        grep -qE "^simd +$v\$" <<<"$out" || { echo "$out"; fail "CYCONV_SIMD=$v not reported"; }
        echo "$v: supported, active: $(grep -E '^compile_flags' <<<"$out")"
    else
        [[ $rc == 1 ]] || { echo "$out"; fail "CYCONV_SIMD=$v: exit $rc, not a clean error"; }
        grep -q "lacks" <<<"$out" || { echo "$out"; fail "CYCONV_SIMD=$v: no 'lacks' error"; }
        echo "$v: not supported by this CPU, refused cleanly: $(tail -n 1 <<<"$out")"
    fi
done
echo "--- which kernel modules get imported"
"$vpy" - <<'PY'
import subprocess, sys
from cyconv._kernels import _cpu
from cyconv._targets import TARGETS
runs = {t.name: _cpu.supports(t.cpu_level) for t in TARGETS}
listing = ("import sys; print(*sorted(m.rsplit('_k_', 1)[1] for m in sys.modules "
           "if m.startswith('cyconv._kernels._k_')))")
cases = {
    "import cyconv": "import cyconv; " + listing,
    "cyconv check (every variant)": "import contextlib, io, cyconv._check as c\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n    assert not c.run(None)\n" + listing,
}
for what, code in cases.items():
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.split()
    bad = [v for v in loaded if not runs[v]]
    print(f"{what}: imports {loaded}; the CPU runs {[v for v in runs if runs[v]]}")
    assert loaded and not bad, f"imported a variant the CPU cannot run: {bad}"
PY

echo "--- compile flags"
CYCONV_SIMD="$baseline" "$vpy" - <<'PY'
import re
import cyconv
from cyconv._targets import BASELINE, BY_NAME
flags = cyconv.show_config(print_=False)["compile_flags"]
print(f"{BASELINE} compile_flags: {flags}")
march = re.findall(r"-march=(\S+)", flags)
want = re.findall(r"-march=(\S+)", " ".join(BY_NAME[BASELINE].flags))
assert want == ["x86-64"], f"the table gives the baseline -march {want}"
assert march == want, f"{BASELINE} built with -march {march}, not only {want}"
assert "native" not in flags
PY
unpacked="$work/unpacked"
"$vpy" -m zipfile -e "$wheel" "$unpacked"
if grep -l -a -e '-march=native' "$unpacked"/cyconv/_kernels/*.so; then
    fail "a module was built with -march=native"
fi
echo "no -march=native in any extension module"

echo "--- instructions (objdump -d)"
if command -v objdump >/dev/null 2>&1; then
    avx_count() {  # AVX/AVX-512 registers, or VEX/EVEX (v-prefixed) instructions
        objdump -d --no-show-raw-insn "$1" \
            | grep -cE '%[yz]mm[0-9]|^ *[0-9a-f]+:[[:space:]]+v[a-z0-9]+[[:space:]]' || true
    }
    for mod in "_k_$baseline" _cpu; do
        so="$(ls "$unpacked"/cyconv/_kernels/"$mod".*.so)"
        n="$(avx_count "$so")"
        echo "$mod: $n AVX instructions"
        [[ "$n" == 0 ]] || fail "$mod holds AVX instructions"
    done
    for v in "${all_variants[@]}"; do  # the control: the same grep finds them here
        [[ "$v" == "$baseline" ]] && continue
        mod="_k_$v"
        so="$(ls "$unpacked"/cyconv/_kernels/"$mod".*.so 2>/dev/null || true)"
        if [[ -n "$so" ]]; then
            n="$(avx_count "$so")"
            echo "$mod: $n AVX instructions (control: must be > 0)"
            [[ "$n" -gt 0 ]] || fail "the AVX grep finds nothing in $mod either"
        fi
    done
else
    echo "objdump not found: skipping the instruction check"
fi

# ---------------------------------------------------------------------------
section "6. serial build (CYCONV_NO_OPENMP=1): wait, then tests"
wait_job "$pid_serial" "$work/serial-build.log" "the serial build from the sdist"
grep -E "CYCONV_NO_OPENMP set|serial build \+ install" "$work/serial-build.log" || true
spy="$work/venv-serial/bin/python"
"$spy" - <<'PY'
import cyconv
cfg = cyconv.show_config()
assert cfg["openmp"] is False, "the serial build has OpenMP"
assert cfg["default_threads"] == 1
PY
"$spy" -m pytest "$repo/tests/test_conv2d.py" "$repo/tests/test_threads.py" -q -x \
    -p no:cacheprovider "${extra_pytest[@]}"

section "done"
printf '\nwheel: %s (%s bytes)\nsdist: %s (%s bytes)\n' "$(basename "$wheel")" "$wheel_size" \
    "$(basename "$sdist")" "$(stat -c %s "$sdist")"
echo "build (sdist + wheel + repair): ${t_build}s"
echo "elapsed per section:"
printf '  %s\n' "${timings[@]}"
echo "ci_wheels: OK, total $((SECONDS - t_start))s"
