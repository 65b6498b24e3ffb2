"""TensorFlow's C++ and absl lines at import (the CUDA probe of a machine without a GPU,
the CPU-feature notice, "All log messages before absl::InitializeLog()"), which
`TF_CPP_MIN_LOG_LEVEL` no longer silences (tensorflow/tensorflow#100442): kept back unless
MLOPS_VERBOSE is set. They are written by C++ straight to file descriptor 2, so for the
import only fd 2 goes to a temporary file; afterwards every line that is not of the native
logs' shape is written back, and all of it when the import fails."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import TypeAdapter

from mlops_assets.settings import env

VERBOSE_VAR = "MLOPS_VERBOSE"
KEPT_BYTES = 64 * 1024
"""What is read back of the import's stderr: its last 64 KiB (TensorFlow writes about 1 KiB)."""
NATIVE_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]"  # absl: I0000 00:00:17.9 31678 file.cc:31]
    rb"|\d{4}-\d\d-\d\d [\d:.]+: [IWEF] \S+:\d+\]"  # TSL: 2026-12-08 01:02:03.4: I file.cc:32]
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate)"
)


def verbose() -> bool:
    """MLOPS_VERBOSE, read as the settings read their booleans (pydantic's parser)."""
    return TypeAdapter(bool).validate_python(env(VERBOSE_VAR) or False)


def _passed_on(captured: bytes, failed: bool) -> bytes:
    if failed:
        return captured
    return b"".join(
        line for line in captured.splitlines(keepends=True) if not NATIVE_LINE.match(line)
    )


@contextmanager
def native_lines_kept_back() -> Iterator[None]:
    """Around an import that starts TensorFlow's C++ runtime."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    failed = True
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            size = captured.seek(0, os.SEEK_END)
            captured.seek(max(0, size - KEPT_BYTES))
            kept = _passed_on(captured.read(), failed)
            if kept:
                os.write(2, kept)
