"""A step's own errors as Dagster failures. An `MlopsError` raised in an asset or op body
(no clean rows yet, no dataset version, a refused file) already says what is wrong and where;
as any other exception Dagster would show it under its own DagsterExecutionStepExecutionError
and the whole chained traceback. As a `dg.Failure` the message is the failure's description,
what the run page and the console show first; a bug keeps its traceback. A context manager
in the body, not a decorator: Dagster reads an asset's code reference from its function."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from mlops_assets.errors import MlopsError


@contextmanager
def step_failures() -> Iterator[None]:
    try:
        yield
    except MlopsError as error:
        raise dg.Failure(description=str(error), metadata={"error": type(error).__name__}) from None
