"""The demo pipeline with the Dagster instance on PostgreSQL (the production storage path),
against a real PostgreSQL server the test starts and stops."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from tests.support.mlops_runs import run_mlops
from tests.support.postgres_server import postgres_server


# the instance is the point; the pipeline on S3 is run by the other end-to-end tests
@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
@pytest.mark.slow
def test_demo_pipeline_on_a_postgres_instance(local_env, storage, tmp_path, monkeypatch):
    with postgres_server() as pg:
        home = tmp_path / "dagster_home"
        home.mkdir()
        # the same storage block as charts/dagster/values.yaml renders for the instance
        (home / "dagster.yaml").write_text(
            "storage:\n  postgres:\n    postgres_db:\n"
            + "".join(f"      {k}: {v}\n" for k, v in pg.items())
            + "      password: ''\n"
            + "telemetry:\n  enabled: false\n"
        )
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        seed_digits(storage, 5, [1, 2, 3])
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            definitions = build_definitions()
            run_ids = []
            dataops = definitions.resolve_job_def("digits_dataops")
            result = dataops.execute_in_process(instance=instance)
            mlops = run_mlops(definitions, instance)
            assert result.success and mlops.success
            run_ids = [result.run_id, *(r.run_id for r in mlops.runs)]
        # a fresh instance reads the runs, events and asset state back from PostgreSQL
        with dg.DagsterInstance.get() as instance:
            runs = {r.run_id: r for r in instance.get_runs()}
            assert set(run_ids) <= set(runs)
            assert all(runs[r].status == dg.DagsterRunStatus.SUCCESS for r in run_ids)
            event = instance.get_latest_materialization_event(dg.AssetKey(["digits", "deploy"]))
            assert event.asset_materialization.metadata["changed"].value is True
            assert os.environ["DAGSTER_HOME"] == str(home)
