"""Test the AVX-512 kernel code on a CPU without AVX-512.

The ``avx512`` variant differs from the others in its template parameters
(register tile of 7 pixels, 64-byte vectors), so a CPU without AVX-512 would
otherwise never run that code. This script renders the kernel templates with
the ``avx512`` tiles and vector width from the targets' table
(``cyconv/_targets.py``), compiles them with the ``avx2`` flags (x86-64-v3:
GCC and Clang split each 64-byte vector operation into two AVX2 operations,
so the arithmetic is the same), and runs the test suite with that module
standing in for the ``avx2`` variant.

Usage (from the repository root, with cyconv installed)::

    python tools/emulate_avx512.py [pytest arguments...]

Exits with pytest's status.
"""

import os
import runpy
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KDIR = os.path.join(ROOT, "cyconv", "_kernels")


# the targets' table, read as a plain file (the templates and the table of this tree)
TABLE = runpy.run_path(os.path.join(ROOT, "cyconv", "_targets.py"))
EMULATED = TABLE["BY_NAME"]["avx512"]  # the code compiled ...
HOST = TABLE["BY_NAME"]["avx2"]  # ... with these flags, and run as this variant


def build(workdir):
    from Cython.Build import cythonize
    from setuptools import Extension
    from setuptools.dist import Distribution

    render = runpy.run_path(os.path.join(KDIR, "_render.py"))["render"]
    # the .pyx and the .pxi files it includes, in a directory of their own
    pyx = render(
        "_k_emu512", EMULATED.name + "-emulated", EMULATED.tiles, os.path.join(workdir, "src")
    )
    flags = " ".join(HOST.flags)
    ext = Extension(
        "_k_emu512",
        [pyx],
        include_dirs=[KDIR],
        extra_compile_args=["-O2", *HOST.flags, "-Wno-psabi", "-fopenmp"],
        extra_link_args=["-fopenmp"],
        define_macros=[
            ("CY_VBYTES", str(EMULATED.vector_bytes)),
            ("CY_COMPILE_FLAGS", f'"{flags} ({EMULATED.name} emulated)"'),
        ],
    )
    exts = cythonize(
        [ext],
        quiet=True,  # the .c goes beside the .pyx, in workdir
        compiler_directives=dict(
            language_level=3,
            boundscheck=False,
            wraparound=False,
            initializedcheck=False,
            cdivision=True,
        ),
    )
    dist = Distribution({"ext_modules": exts})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = workdir
    cmd.build_temp = os.path.join(workdir, "tmp")
    dist.run_command("build_ext")


PLUGIN = textwrap.dedent(f'''
    import _k_emu512
    from cyconv import _dispatch
    assert _k_emu512.info()["tile_float32"][0] == {EMULATED.tiles["RW"]}
    _dispatch._loaded["{HOST.name}"] = _k_emu512
    _dispatch.use("{HOST.name}")
''')


def main(argv):
    with tempfile.TemporaryDirectory(prefix="cyconv-emu512-") as workdir:
        build(workdir)
        with open(os.path.join(workdir, "cyconv_emu512_plugin.py"), "w") as f:
            f.write(PLUGIN)
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [workdir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ),
        )
        env.pop("CYCONV_SIMD", None)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "cyconv_emu512_plugin",
            os.path.join(ROOT, "tests"),
            "-q",
            "-k",
            # the tests of no variant, and those of the variant emulated on
            " and ".join(f"not {n}" for n in TABLE["NAMES"] if n != HOST.name),
            "-p",
            "no:cacheprovider",
        ] + list(argv)
        print("running:", " ".join(cmd), flush=True)
        return subprocess.call(cmd, env=env, cwd=workdir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
