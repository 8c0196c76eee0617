"""Test the AVX-512 kernel code on a CPU without AVX-512.

The ``avx512`` variant differs from the others in its template parameters
(register tile of 7 pixels, 64-byte vectors), so a CPU without AVX-512 would
otherwise never run that code. This script renders the kernel templates with
the ``avx512`` parameters from ``setup.py``, compiles it for x86-64-v3 (GCC
and Clang split each 64-byte vector operation into two AVX2 operations, so
the arithmetic is the same), and runs the test suite with that module
standing in for the ``avx2`` variant.

Usage (from the repository root, with cyconv installed)::

    python tools/emulate_avx512.py [pytest arguments...]

Exits with pytest's status.
"""
import ast
import os
import runpy
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KDIR = os.path.join(ROOT, "cyconv", "_kernels")


def avx512_params():
    """The ``avx512`` template parameters, read from setup.py's TARGETS."""
    with open(os.path.join(ROOT, "setup.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "TARGETS" for t in node.targets):
            targets = eval(compile(ast.Expression(node.value), "setup.py", "eval"), {"dict": dict})
            return targets["avx512"][0]
    raise SystemExit("TARGETS not found in setup.py")


def build(workdir):
    from Cython.Build import cythonize
    from setuptools import Extension
    from setuptools.dist import Distribution

    render = runpy.run_path(os.path.join(KDIR, "_render.py"))["render"]
    # the .pyx and the .pxi files it includes, in a directory of their own
    pyx = render("_k_emu512", "avx512-emulated", avx512_params(),
                 os.path.join(workdir, "src"))
    ext = Extension(
        "_k_emu512", [pyx], include_dirs=[KDIR],
        extra_compile_args=["-O2", "-march=x86-64-v3", "-Wno-psabi", "-fopenmp"],
        extra_link_args=["-fopenmp"],
        define_macros=[("CY_VBYTES", "64"),
                       ("CY_COMPILE_FLAGS", '"-march=x86-64-v3 (avx512 emulated)"')],
    )
    exts = cythonize([ext], quiet=True,  # the .c goes beside the .pyx, in workdir
                     compiler_directives=dict(language_level=3, boundscheck=False,
                                              wraparound=False, initializedcheck=False,
                                              cdivision=True))
    dist = Distribution({"ext_modules": exts})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = workdir
    cmd.build_temp = os.path.join(workdir, "tmp")
    dist.run_command("build_ext")


PLUGIN = textwrap.dedent('''
    import _k_emu512
    from cyconv import _dispatch
    assert _k_emu512.info()["tile_float32"][0] == 7
    _dispatch._loaded["avx2"] = _k_emu512
    _dispatch.use("avx2")
''')


def main(argv):
    with tempfile.TemporaryDirectory(prefix="cyconv-emu512-") as workdir:
        build(workdir)
        with open(os.path.join(workdir, "cyconv_emu512_plugin.py"), "w") as f:
            f.write(PLUGIN)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [workdir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        env.pop("CYCONV_SIMD", None)
        cmd = [sys.executable, "-m", "pytest", "-p", "cyconv_emu512_plugin",
               os.path.join(ROOT, "tests"), "-q", "-k", "not baseline and not avx512",
               "-p", "no:cacheprovider"] + list(argv)
        print("running:", " ".join(cmd), flush=True)
        return subprocess.call(cmd, env=env, cwd=workdir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
