#!/usr/bin/env bash
# Run cyconv's test suite against a sanitizer build.
#
#   1. copy the source tree (git-tracked and untracked, non-ignored files of the
#      working tree: no in-place build products) into a temporary directory;
#   2. create a fresh venv there and install that copy into it with
#      CYCONV_DEBUG=1: Cython's boundscheck/wraparound/initializedcheck on, C
#      compiled with -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
#      (setup.py's debug switch);
#   3. check that the build really is a debug build (every kernel module links
#      libasan and libubsan and has Cython's bounds checks);
#   4. run the whole test suite (tests/) with the ASan runtime preloaded into
#      the (uninstrumented) Python interpreter, from outside the source tree so
#      that the installed debug build is what gets imported;
#   5. fail if pytest fails or if AddressSanitizer/UBSan reported anything -
#      ASan reports go to files (log_path), so that a report from a child
#      process (the tests run dangerous inputs in subprocesses) is not lost;
#      UBSan, which ignores log_path in GCC's combined runtime, reports on
#      stderr, which goes to stderr.log (pytest --capture=sys leaves file
#      descriptor 2 alone) and is searched; the tests pass their
#      subprocesses' UBSan reports on to it.
#
# Cost on a 2-core machine: the debug build takes 1.5-4 minutes, the suite
# (about 7,700 tests, fuzz tests at their CI size, the opt-in bigmem tests
# skipped) 1.5-2 minutes under the sanitizers.
#
# Usage: tools/sanitize.sh [PYTEST ARGS...]
#   e.g. tools/sanitize.sh -x            stop at the first failure
#        tools/sanitize.sh -k "not fuzz"  skip the property tests
#        tools/sanitize.sh -k "not unaligned"
#                                         leave out the unaligned-array tests
#                                         (misaligned accesses, which UBSan reports)
#   With no arguments the whole suite runs, fuzz tests at their default
#   (CI-sized) number of examples ($CYCONV_FUZZ_EXAMPLES, unset: the default).
#
# Environment:
#   PYTHON                  interpreter the venv is made from (default: python3)
#   CYCONV_SANITIZE_DEPS    a Python whose environment already has numpy, scipy,
#                           pytest, hypothesis, Cython>=3 and setuptools>=77
#                           (e.g. a dev venv): the fresh venv reuses its packages
#                           through a .pth file instead of downloading them.
#                           Default: $PYTHON if it has them, else pip installs
#                           them into the venv from the package index.
#   CYCONV_SANITIZE_DIR     work directory (default: a new /tmp/cyconv-sanitize.*)
#   CYCONV_KEEP_WORK=1      keep the work directory after a clean run (it is
#                           always kept after a failure, for the reports)
#   CYCONV_BUILD_JOBS       parallel extension builds (setup.py; default: CPUs)
#
# The sanitizer options used:
#   ASAN_OPTIONS  detect_leaks=0 (CPython itself leaks at exit),
#                 abort_on_error=1, allocator_may_return_null=1 (a huge
#                 request must reach numpy as NULL -> MemoryError, which is what
#                 the tests check, instead of ASan's "allocation size too big"
#                 abort), max_allocation_size_mb=8192 (no test legitimately
#                 allocates more; a runaway request fails instead of
#                 exhausting the machine), log_path (reports to files)
#   UBSAN_OPTIONS halt_on_error=1, print_stacktrace=1, log_path
# ASan cannot run under an address-space limit (ulimit -v / RLIMIT_AS): the
# tests that use one for their subprocesses drop it when ASan is preloaded and
# rely on max_allocation_size_mb instead.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
t_start=$SECONDS
section() { printf '\n=== sanitize: %s [%ds]\n' "$*" "$((SECONDS - t_start))"; }

if [[ -n "${CYCONV_SANITIZE_DIR:-}" ]]; then
    work="$CYCONV_SANITIZE_DIR"
    rm -rf "$work"
    mkdir -p "$work"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/cyconv-sanitize.XXXXXX")"
fi
work="$(cd "$work" && pwd)"
status=1
finish() {
    if [[ $status -eq 0 && "${CYCONV_KEEP_WORK:-0}" != 1 ]]; then
        rm -rf "$work"
    else
        echo "sanitize: work directory kept: $work"
    fi
}
trap finish EXIT

libasan="$(gcc -print-file-name=libasan.so)"
if [[ ! -e "$libasan" ]]; then
    echo "sanitize: gcc has no libasan.so ($libasan): install the compiler's ASan runtime" >&2
    exit 2
fi
libasan="$(readlink -f "$libasan")"

section "copy of the source tree -> $work/src"
src="$work/src"
mkdir -p "$src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do
          if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi
      done \
    | tar --null -T - -cf -) | tar -xf - -C "$src"
echo "$(find "$src" -type f | wc -l) files"

section "fresh venv -> $work/venv"
venv="$work/venv"
deps="${CYCONV_SANITIZE_DEPS:-$python}"
need="import numpy, scipy, pytest, hypothesis, Cython, setuptools, pip
assert int(setuptools.__version__.split('.')[0]) >= 77, 'setuptools too old'"
if "$deps" -c "$need" 2>/dev/null; then
    "$python" -m venv --without-pip "$venv"
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # the venv's own site-packages (where the debug cyconv goes) come first
    "$deps" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' \
        | sort -u > "$site/zz_cyconv_sanitize_deps.pth"
    echo "dependencies reused from $deps:"
    sed 's/^/  /' "$site/zz_cyconv_sanitize_deps.pth"
else
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q numpy scipy pytest hypothesis "Cython>=3.0" \
        "setuptools>=77"
fi
"$venv/bin/python" -c "import sys, numpy, Cython, setuptools; print(sys.version.split()[0], \
'numpy', numpy.__version__, 'Cython', Cython.__version__, 'setuptools', setuptools.__version__)"

section "debug build (CYCONV_DEBUG=1), installed into the venv"
(cd "$work" && CYCONV_DEBUG=1 "$venv/bin/python" -m pip install --no-build-isolation \
    --no-deps --no-index --no-cache-dir "$src" > "$work/build.log" 2>&1) || {
    tail -n 60 "$work/build.log"
    echo "sanitize: the debug build failed (log: $work/build.log)" >&2
    exit 1
}
grep -E -- '-fsanitize' "$work/build.log" | head -n 2 || true

section "is it a debug build?"
export LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=8192:log_path=$work/reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/reports/ubsan"
mkdir -p "$work/reports"
(cd "$work" && "$venv/bin/python" - <<'PY')
import glob, os, subprocess, sys
import numpy as np
import cyconv
from cyconv import _dispatch

pkg = os.path.dirname(cyconv.__file__)
assert pkg.startswith(sys.prefix), f"imported {pkg}, not the venv's debug build"
print("cyconv from", pkg)
bad = []
for so in sorted(glob.glob(os.path.join(pkg, "_kernels", "*.so"))):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # ldd would list it
    libs = subprocess.run(["ldd", so], capture_output=True, text=True, env=env).stdout
    has = [lib for lib in ("libasan", "libubsan") if lib in libs]
    print(f"  {os.path.basename(so)}: links {' '.join(has) or 'no sanitizer runtime'}")
    if len(has) != 2:
        bad.append(so)
for name in _dispatch.variants():
    _dispatch.use(name)
    k = _dispatch.kernels()
    flags = k.info()["compile_flags"]
    print(f"  {name}: {flags}")
    if "-fsanitize=address" not in flags:
        bad.append(name)
    # Cython's boundscheck: the kernel takes &x[0] of its input; on an empty
    # buffer a checked build raises IndexError, an unchecked one does not look
    e = np.empty(0, np.float32)
    i = np.zeros(0, np.intp)
    try:
        geom = dict(H=1, W=1, ish=1, isw=1, osh=1, osw=1, kH=1, kW=1, sh=1, sw=1, dh=1,
                    dw=1, pl=0, Ho=1, Wo=1, fill=0.0, R=1, xa=1, xb=1)
        k.conv_planes_f32(e, e, e, e, i, i, i, i, i, geom, 1)
        print(f"  {name}: NO Cython bounds checks")
        bad.append(name + " boundscheck")
    except IndexError as exc:
        print(f"  {name}: Cython bounds checks on ({exc})")
if bad:
    sys.exit(f"not a debug build: {bad}")
PY

section "test suite under ASan + UBSan"
echo "LD_PRELOAD=$LD_PRELOAD"
echo "ASAN_OPTIONS=$ASAN_OPTIONS"
echo "UBSAN_OPTIONS=$UBSAN_OPTIONS"
# --capture=sys: pytest captures Python-level output only, so that what the
# sanitizer runtimes write to file descriptor 2 reaches the log even when the
# process dies in the middle of a test (UBSan ignores log_path in this
# combined runtime and reports on stderr).
# The test process's stderr (sanitizer reports, the tests' passing-on of their
# subprocesses' reports) goes to stderr.log, its stdout (pytest's report) to
# pytest.log and the terminal.
(cd "$work" && {
    rc=0
    "$venv/bin/python" -m pytest "$src/tests" -p no:cacheprovider -q --capture=sys \
        -o addopts="" --rootdir "$src" "$@" 2> "$work/stderr.log" || rc=$?
    echo "$rc" > "$work/pytest.rc"
}) | tee "$work/pytest.log"
rc=$(cat "$work/pytest.rc" 2>/dev/null || echo 1)

section "result"
# ASan reports (from this process and from the tests' subprocesses) are files
# in reports/; UBSan's are in the output. A report file holding only warnings
# ("failed to allocate ...": the tests' deliberately huge requests, answered
# with NULL -> MemoryError) is not a finding.
found=0
for f in "$work"/reports/*; do
    [[ -e "$f" ]] || continue
    if grep -q "ERROR: AddressSanitizer" "$f"; then
        printf -- '----- %s\n' "$f"
        cat "$f"
        found=$((found + 1))
    else
        echo "(note: $(grep -c . "$f") sanitizer warning(s) in $f, e.g.: $(head -n 1 "$f"))"
    fi
done
ubsan='[^ ]+:[0-9]+:[0-9]+: runtime error: .*'
if grep -E -q "$ubsan" "$work/stderr.log"; then
    echo "----- UBSan reports on stderr ($work/stderr.log): count, distinct report"
    grep -E -o "$ubsan" "$work/stderr.log" | sed -E 's/0x[0-9a-f]+/0x.../g' | sort | uniq -c
    found=$((found + $(grep -E -o "$ubsan" "$work/stderr.log" \
        | sed -E 's/0x[0-9a-f]+/0x.../g' | sort -u | wc -l)))
fi
if grep -q "ERROR: AddressSanitizer" "$work/stderr.log"; then  # in case log_path failed
    echo "----- ASan reports on stderr ($work/stderr.log)"
    grep -A 20 "ERROR: AddressSanitizer" "$work/stderr.log" | head -n 100
    found=$((found + $(grep -c "ERROR: AddressSanitizer" "$work/stderr.log")))
fi
if [[ $found -ne 0 ]]; then
    echo "sanitize: FAILED: $found sanitizer report(s) above (pytest exit status $rc)"
    exit 1
fi
if [[ $rc -ne 0 ]]; then
    echo "sanitize: FAILED: pytest exit status $rc, no sanitizer report"
    exit "$rc"
fi
echo "sanitize: clean: the test suite passed with no ASan/UBSan report ($((SECONDS - t_start))s)"
status=0
