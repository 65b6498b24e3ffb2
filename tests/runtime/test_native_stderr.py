"""TensorFlow's C++ lines at import kept back (MLOPS_VERBOSE shows them), nothing else lost:
each case runs in its own process, since the lines go to file descriptor 2 itself."""

from __future__ import annotations

import os
import subprocess
import sys

from mlops_assets.runtime.native_stderr import NATIVE_LINE
from tests.support.processes import REPO

ABSL = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
PROBE = "I0000 00:00:1796696210.625689   31678 cudart_stub.cc:31] Could not find cuda drivers"
TSL = "2026-12-08 01:02:03.456789: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] x"
WRITES = f"""
import os, sys
from mlops_assets.runtime.native_stderr import native_lines_kept_back
with native_lines_kept_back():
    for line in ({ABSL!r}, {PROBE!r}, {TSL!r}):
        os.write(2, line.encode() + b"\\n")
    print("a line of ours", file=sys.stderr)
    os.write(2, b"E: a C library's error of another shape\\n")
    if sys.argv[1:] == ["fail"]:
        raise ImportError("the import failed")
print("done")
"""


def run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MLOPS_VERBOSE"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def native(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NATIVE_LINE.match(line.encode())]


def test_native_lines_are_kept_back_and_every_other_line_comes_through():
    quiet = run(WRITES)
    assert quiet.returncode == 0 and quiet.stdout == "done\n"
    assert quiet.stderr.splitlines() == [
        "a line of ours",
        "E: a C library's error of another shape",
    ]

    shown = run(WRITES, MLOPS_VERBOSE="1")
    assert len(native(shown.stderr)) == 3 and "a line of ours" in shown.stderr

    failed = run(WRITES, "fail")  # the import failed: everything it wrote, to say why
    assert failed.returncode == 1 and len(native(failed.stderr)) == 3
    assert "ImportError: the import failed" in failed.stderr


def test_importing_keras_on_tensorflow_prints_no_native_line():
    code = "from mlops_assets.models.keras_backend import keras; print(keras().config.backend())"
    done = run(code, KERAS_BACKEND="tensorflow")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "tensorflow"
    assert native(done.stderr) == [], done.stderr[-2000:]
    # what the same import prints with MLOPS_VERBOSE (on this machine: the CUDA probe)
    verbose = run(code, KERAS_BACKEND="tensorflow", MLOPS_VERBOSE="1")
    assert verbose.returncode == 0 and verbose.stdout.strip() == "tensorflow"
    assert set(native(verbose.stderr)) >= set(native(done.stderr))
