"""Outputs one step hands the next, kept as JSON in the run's own storage.

Under the multiprocess executor steps are processes, under the per-step executor pods:
what a step returns has to be where the next one can read it, whichever machine it is on.
Dagster's own IO managers pickle, and unpickling what is read from a bucket would let
anyone who can write it run code in the step; these outputs are small records (a plan,
a slice's manifest), so they are JSON, bounded in bytes, at
`steps/<run_id>/<step_key>/<output>.json`.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from mlops_assets.errors import MlopsError
from mlops_assets.storage.base import ObjectStorage
from mlops_assets.storage.keys import safe_key

MAX_BYTES = 64 * 1024 * 1024
"""The most a step's output may hold, written or read (a plan of about 200,000 batches)."""


class StepOutputError(MlopsError, RuntimeError):
    """A step's output is too large, or not what a step of this run could have written."""


class StepOutputs(dg.IOManager):
    """JSON step outputs in `storage`, keyed by run, step and output."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage

    @staticmethod
    def key(identifier: list[str]) -> str:
        """`steps/<run_id>/<step_key>/<output>[/<mapping key>].json`."""
        *parts, last = identifier
        return safe_key("steps", *parts, f"{last}.json")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        data = json.dumps(obj, sort_keys=True).encode()
        key = self.key(context.get_identifier())
        if len(data) > MAX_BYTES:
            raise StepOutputError(
                f"output {context.name!r} of {context.step_key} is {len(data)} bytes, over "
                f"{MAX_BYTES}: split the work into more, smaller steps"
            )
        self.storage.write_bytes(key, data)

    def load_input(self, context: dg.InputContext) -> Any:
        key = self.key(context.upstream_output.get_identifier())
        try:
            return json.loads(self.storage.read_bytes(key, limit=MAX_BYTES))
        except ValueError as error:  # too large, or not JSON
            raise StepOutputError(f"step output {self.storage.uri(key)}: {error}") from None


@dg.io_manager(required_resource_keys={"storage"})
def step_outputs(init_context: dg.InitResourceContext) -> StepOutputs:
    """The IO manager of steps that hand records on, over the environment's `storage`."""
    return StepOutputs(init_context.resources.storage)
