"""Keep CPython's garbage collector off objects that live as long as the process.

Once Dagster, SQLAlchemy and the definitions are loaded, every run, step and code-server
process holds about 140,000 container objects that live until it exits. Each full
collection walks all of them again (60-90 ms a pass on a 2-core VM), several times
during a run, and at exit Python walks everything once more, including the pandas,
scikit-learn and matplotlib modules the asset bodies imported, only to find it all
still reachable. That was the largest share of the orchestration overhead this project
could change (bench/pipeline_overhead.py; docs/performance.md).

`gc.freeze()` after loading moves the long-lived objects to the permanent generation, so
passes during a run look only at what the run allocates; freezing again at exit (an
`atexit` hook, so nothing that keeps running is affected) skips the final pass, whose
garbage dies with the process anyway. No collection is forced before the first freeze:
it would cost one of the passes this saves, and the garbage it would find then is about
a hundred objects, kept for the life of the process. `MLOPS_GC_FREEZE=off` leaves the
collector as Python sets it.
"""

from __future__ import annotations

import atexit
import gc

_frozen = False


def freeze_long_lived_objects() -> int:
    """Freeze what the process holds now and again at exit, once per process; returns the
    permanent generation's size."""
    global _frozen
    if not _frozen:
        gc.freeze()
        atexit.register(gc.freeze)
        _frozen = True
    return gc.get_freeze_count()
