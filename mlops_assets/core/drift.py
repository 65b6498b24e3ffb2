"""Population stability index: observe compares batches with it, the monitor compares
production inputs with the training split."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def psi(expected: Sequence[float], actual: Sequence[float], eps: float = 1e-4) -> float:
    """PSI of `actual` against `expected` (counts over the same bins); shares are clipped at
    `eps` so an empty bin costs a bounded amount instead of infinity."""
    p = np.asarray(expected, dtype=float)
    q = np.asarray(actual, dtype=float)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    p = np.clip(p / p.sum(), eps, None)
    q = np.clip(q / q.sum(), eps, None)
    value = float(np.sum((q - p) * np.log(q / p)))
    return 0.0 if math.isnan(value) else value
