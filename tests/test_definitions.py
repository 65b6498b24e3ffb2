"""The code location: what it defines, that Dagster's own tools accept it, and what it imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.definitions import build_definitions
from mlops_assets.settings import SettingsError, load_settings
from tests.support.processes import REPO, after_definitions_load

BIN = Path(sys.executable).parent
DATAOPS = ("acquire", "observe", "clean", "transform", "split")
MLOPS = ("train", "validate", "release", "deploy")
STEPS = DATAOPS + MLOPS
PRODUCTION = ("inference_log", "feedback", "monitor")


def test_definitions_list_exactly_the_expected_objects(local_env):
    definitions = build_definitions()
    graph = definitions.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        f"{uc}/{s}" for uc in ("digits", "lsfb") for s in STEPS + PRODUCTION
    }
    assert {k.to_user_string() for k in graph.asset_check_keys} == {
        "digits/acquire:landing_names_safe",
        "digits/observe:schema_matches_contract",
        "digits/observe:labels_in_range",
        "digits/observe:drift_below_threshold",
        "digits/clean:clean_rows_satisfy_contract",
        "digits/split:no_row_in_two_splits",
        "digits/split:test_set_keeps_earlier_rows",
        "digits/validate:gate",
        "digits/deploy:deployed_is_champion",
        "lsfb/observe:pose_files_valid",
        "lsfb/observe:no_empty_clips",
        "lsfb/clean:every_clip_accounted_for",
        "lsfb/split:signers_in_one_split",
        "lsfb/split:train_and_test_not_empty",
        "lsfb/validate:gate",
        "lsfb/deploy:deployed_is_champion",
        *(
            f"{uc}/monitor:{check}"
            for uc in ("digits", "lsfb")
            for check in ("live_metric_holds", "inputs_not_drifting", "enough_feedback")
        ),
    }
    assert {s.name for s in definitions.sensors} == {
        "digits_landing_sensor",
        "digits_new_dataset_sensor",
        "digits_gate_sensor",
        "lsfb_source_sensor",
        "lsfb_new_dataset_sensor",
        "lsfb_gate_sensor",
        "digits_retrain_trigger",
        "lsfb_retrain_trigger",
        "digits_rollback_trigger",
        "lsfb_rollback_trigger",
    }
    # a 10 GB download: the LSFB source sensor waits until someone turns it on
    lsfb_sensor = definitions.resolve_sensor_def("lsfb_source_sensor")
    assert lsfb_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert {j.name for j in definitions.jobs} == {
        "digits_dataops",
        "digits_mlops",
        "digits_release",
        "digits_reobserve",
        "lsfb_dataops",
        "lsfb_mlops",
        "lsfb_release",
        "digits_monitor",
        "lsfb_monitor",
        "digits_rollback",
        "lsfb_rollback",
    }
    assert {s.name for s in definitions.schedules} == {
        "digits_retrain_schedule",
        "digits_reobserve_schedule",
        "lsfb_retrain_schedule",
        "digits_monitor_schedule",
        "lsfb_monitor_schedule",
    }
    retrain = definitions.resolve_schedule_def("digits_retrain_schedule")
    assert retrain.job_name == "digits_mlops"
    assert retrain.default_status == dg.DefaultScheduleStatus.STOPPED  # off by default
    for uc in ("digits", "lsfb"):
        for job_name, steps in (
            (f"{uc}_dataops", DATAOPS),
            (f"{uc}_mlops", MLOPS[:2]),  # the gate's run: a REJECT plans no release
            (f"{uc}_release", MLOPS[2:]),  # what the gate sensor starts
        ):
            job = definitions.resolve_job_def(job_name)
            release = job_name.endswith("release")
            extra = {f"{uc}__deploy_deployed_is_champion"} if release else set()
            assert {n.name for n in job.nodes} == {f"{uc}__{s}" for s in steps} | extra
        # the chain of the nine assets, in order
        for upstream, downstream in zip(STEPS[:-1], STEPS[1:], strict=True):
            parents = graph.get(dg.AssetKey([uc, downstream])).parent_keys
            assert parents == {dg.AssetKey([uc, upstream])}
        # the production side hangs off deploy; the monitor job runs feedback and monitor
        key = {s: dg.AssetKey([uc, s]) for s in STEPS + PRODUCTION}
        assert graph.get(key["inference_log"]).parent_keys == {key["deploy"]}
        assert graph.get(key["feedback"]).parent_keys == {key["inference_log"]}
        assert graph.get(key["monitor"]).parent_keys == {
            key["deploy"],
            key["inference_log"],
            key["feedback"],
        }
        monitor_job = definitions.resolve_job_def(f"{uc}_monitor")
        assert {n.name for n in monitor_job.nodes} == {
            f"{uc}__{s}" for s in ("inference_log", "feedback", "monitor")
        }
        trigger = definitions.resolve_sensor_def(f"{uc}_retrain_trigger")
        assert trigger.job_name == f"{uc}_dataops"
        rollback = definitions.resolve_job_def(f"{uc}_rollback")
        assert {n.name for n in rollback.nodes} == {
            f"{uc}__deploy",
            f"{uc}__deploy_deployed_is_champion",
        } or {n.name for n in rollback.nodes} == {f"{uc}__deploy"}


def test_blocking_checks_are_the_contract_split_and_gate_checks(local_env):
    graph = build_definitions().resolve_asset_graph()
    blocking = {k.name for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert blocking == {
        "clean_rows_satisfy_contract",
        "no_row_in_two_splits",
        "test_set_keeps_earlier_rows",
        "gate",
        "every_clip_accounted_for",
        "signers_in_one_split",
        "train_and_test_not_empty",
    }


def test_dagster_definitions_validate_accepts_the_workspace(local_env):
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_dg_check_yaml_accepts_the_use_case(local_env):
    result = subprocess.run(
        [str(BIN / "dg"), "check", "yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VIRTUAL_ENV": str(BIN.parent)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_loading_definitions_freezes_the_long_lived_heap_unless_switched_off(local_env):
    count = "import gc\nprint(gc.get_freeze_count())\n"
    # Dagster, SQLAlchemy and the definitions: far more than a bare interpreter's objects.
    assert int(after_definitions_load(count)) > 50_000
    assert int(after_definitions_load(count, MLOPS_GC_FREEZE="off")) == 0
    with pytest.raises(SettingsError, match="MLOPS_GC_FREEZE"):
        load_settings({"MLOPS_GC_FREEZE": "sometimes"})


def test_exit_skips_the_collectors_last_pass_unless_switched_off(local_env):
    # A reference cycle left for the collector: only the pass at exit would find it.
    cycle = (
        "class Node:\n"
        "    def __del__(self):\n"
        "        print('collected', flush=True)\n"
        "node = Node()\n"
        "node.itself = node\n"
        "del node\n"
    )
    assert "collected" not in after_definitions_load(cycle)
    assert "collected" in after_definitions_load(cycle, MLOPS_GC_FREEZE="off")


def test_k8s_without_s3_storage_fails_naming_the_variable():
    with pytest.raises(SettingsError, match="MLOPS_STORAGE_ROOT"):
        load_settings({"MLOPS_ENV": "k8s"})
    with pytest.raises(SettingsError, match="MLOPS_ENV"):
        load_settings({"MLOPS_ENV": "prod"})
    with pytest.raises(SettingsError, match="MLOPS_GITOPS_REMOTE"):
        load_settings({"MLOPS_ENV": "k8s", "MLOPS_STORAGE_ROOT": "s3://b/p/q"})
    settings = load_settings(
        {
            "MLOPS_ENV": "k8s",
            "MLOPS_STORAGE_ROOT": "s3://b/p/q",
            "MLOPS_GITOPS_REMOTE": "https://git.example.com/gitops.git",
        }
    )
    assert (settings.s3.bucket, settings.s3.prefix) == ("b", "p/q")


def test_local_default_is_a_folder_in_the_working_directory(local_env, monkeypatch):
    monkeypatch.delenv("MLOPS_STORAGE_ROOT")
    settings = load_settings()
    assert settings.env == "local"
    assert settings.local_root == (local_env / ".mlops").resolve()


K8S_ENV = {
    "MLOPS_ENV": "k8s",
    "MLOPS_STORAGE_ROOT": "s3://mlops-assets/prod",
    # a stub remote: nothing reaches it while the definitions load
    "MLOPS_GITOPS_REMOTE": "https://git.example.invalid/org/gitops.git",
    "MLOPS_EXECUTOR": "k8s_job",
}

CODE_SERVER_KEYS = """
import json
from mlops_assets.definitions import defs
built = defs()  # what the code server's loader calls
repo = built.get_repository_def()
graph = built.resolve_asset_graph()
print(json.dumps({
    "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
    "asset_checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
    "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
    "sensors": sorted(s.name for s in repo.sensor_defs),
    "schedules": sorted(s.name for s in repo.schedule_defs),
    "executors": sorted({j.executor_def.name for j in repo.get_all_jobs()}),
}))
"""


def test_dg_list_defs_under_k8s_lists_what_the_code_server_builds(tmp_path):
    """`dg list defs` goes through the same loader as the code server, with the environment's
    settings: under MLOPS_ENV=k8s it lists production's graph, not the local default's."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "DAGSTER_"))},
        **K8S_ENV,
        "DAGSTER_HOME": str(tmp_path),
        "VIRTUAL_ENV": str(BIN.parent),
    }
    listed = subprocess.run(
        [str(BIN / "dg"), "list", "defs", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    dg_json = json.loads(listed.stdout)
    built = subprocess.run(
        [sys.executable, "-c", CODE_SERVER_KEYS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    server = json.loads(built.stdout.strip().splitlines()[-1])
    assert "k8s" in server["executors"]  # the environment reached the build
    assert sorted(a["asset_key"] for a in dg_json["assets"]) == server["assets"]
    assert sorted(c["key"] for c in dg_json["asset_checks"]) == server["asset_checks"]
    assert sorted(j["name"] for j in dg_json["jobs"]) == server["jobs"]
    assert sorted(s["name"] for s in dg_json["sensors"]) == server["sensors"]
    assert sorted(s["name"] for s in dg_json["schedules"]) == server["schedules"]
    assert {"digits/deploy", "lsfb/monitor"} <= set(server["assets"])
