"""The MLOps jobs as the daemon runs them: the gate's run (train, validate), then the
release run (release, deploy) that the gate sensor would start for it, with the sensor's
own request (tests/mlops/test_gate_sensor.py ticks the sensor itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from mlops_assets.mlops.sensor import release_after


@dataclass
class MlopsRuns:
    """The two runs, read together where a test asks about the pipeline as a whole."""

    gate: dg.ExecuteInProcessResult
    release: dg.ExecuteInProcessResult | None
    no_release: str = ""
    """Why the sensor would start no release run ('' when it would)."""

    @property
    def runs(self) -> list[dg.ExecuteInProcessResult]:
        return [r for r in (self.gate, self.release) if r is not None]

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs)

    def asset_materializations_for_node(self, node: str) -> list[Any]:
        return [m for r in self.runs for m in r.asset_materializations_for_node(node)]

    def get_asset_check_evaluations(self) -> list[Any]:
        return [e for r in self.runs for e in r.get_asset_check_evaluations()]

    def get_step_success_events(self) -> list[Any]:
        return [e for r in self.runs for e in r.get_step_success_events()]

    def get_step_failure_events(self) -> list[Any]:
        return [e for r in self.runs for e in r.get_step_failure_events()]

    @property
    def all_events(self) -> list[Any]:
        return [e for r in self.runs for e in r.all_events]


def run_mlops(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run_config: dict | None = None,
    use_case: str = "digits",
    **kwargs: Any,
) -> MlopsRuns:
    """`<use_case>_mlops`, then `<use_case>_release` when the gate sensor would start it."""
    gate = defs.resolve_job_def(f"{use_case}_mlops").execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config or {}, **kwargs
    )
    request = release_after(instance, use_case, gate.run_id) if gate.success else "gate failed"
    if not isinstance(request, dg.RunRequest):
        return MlopsRuns(gate, None, request)
    release = defs.resolve_job_def(f"{use_case}_release").execute_in_process(
        instance=instance, raise_on_error=False, run_config=request.run_config, tags=request.tags
    )
    return MlopsRuns(gate, release)
