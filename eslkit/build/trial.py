"""Rehearse the build's steps that can fail, in a temporary folder (for `eslkit doctor`).

Looking at files is not enough to say a build will work: FreeSWITCH's ESL.i
looks fine and still stops swig when nobody passes -module ESL, and a
Python.h can be there while pyconfig.h is not.  So doctor runs, with the
plan's own swig, flags and interpreter: swig on the tree's ESL.i, and a
one-line extension compiled and linked the way the wrapper is, then imported
by the target Python.  Failures come from the same ``run_step`` as the build's,
with the same diagnosis and fix.  Nothing is written into the tree.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from eslkit.build.interpreter import Target
from eslkit.build.plan import Step, link_argv, python_includes, swig_step, wrapper_flags
from eslkit.build.tools import Swig
from eslkit.build.tree import Tree
from eslkit.build.run import Log, run_step
from eslkit.errors import VerifyFailed

PROBE = "_eslkit_probe"
# The smallest extension module there is: enough to need Python.h, pyconfig.h and the ABI.
SOURCE = ('#include <Python.h>\n'
          f'static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{PROBE}", NULL, -1, NULL}};\n'
          f'PyMODINIT_FUNC PyInit_{PROBE}(void) {{ return PyModule_Create(&def); }}\n')


def rehearse_swig(tree: Tree, swig: Swig) -> str:
    """swig on the tree's ESL.i with the build's flags; returns what it made."""
    with tempfile.TemporaryDirectory(prefix="eslkit-doctor-") as tmp:
        run_step(swig_step(tree, swig, Path(tmp)), Log(None), timeout=120)
        return ", ".join(sorted(p.name for p in Path(tmp).iterdir()))


def rehearse_extension(target: Target, abi3: bool = False, stands_for: str = "g++ esl_wrap.cpp") -> str:
    """Compile, link and import a one-line extension for the target Python; returns its file name.

    ``stands_for``: the build step whose compile this rehearses (named in a failure).
    """
    module = PROBE + (".abi3.so" if abi3 else target.ext_suffix)
    with tempfile.TemporaryDirectory(prefix="eslkit-doctor-") as tmp:
        out = Path(tmp)
        (out / "probe.cpp").write_text(SOURCE)
        run_step(Step(f"{stands_for}, rehearsed with a test extension for Python {target.version}",
                      ("g++", *wrapper_flags(abi3), *python_includes(target), "-c", "probe.cpp",
                       "-o", "probe.o"), out), Log(None), timeout=120)
        run_step(Step(f"link {module}, rehearsed", link_argv(out / module, ["probe.o"]), out), Log(None),
                 timeout=120)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        code = f"import sys; sys.path.insert(0, {str(out)!r}); import {PROBE}"
        proc = subprocess.run([target.executable, "-I", "-c", code], cwd=out, env=env,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-1:])
            raise VerifyFailed(f"Python {target.version} cannot import an extension built with its own headers: {tail}",
                               fix="Its headers and its binary do not match: reinstall python3.X-dev, or choose "
                                   "another --python.")
        return module
