"""`demo`: the whole digits pipeline on the local default, on a persistent instance."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from mlops_assets.cli.base import landing_of, main, storage_of_settings
from mlops_assets.errors import redact
from mlops_assets.settings import env, load_settings


@main.command()
def demo() -> None:
    """Seed the landing zone when empty and run the whole digits pipeline."""
    from mlops_assets.datasets.tabular.landing import is_ignored
    from mlops_assets.demo.digits_data import seed_digits

    ensure_dagster_home()
    storage = storage_of_settings()
    landing = landing_of("digits")
    if not [i for i in storage.list(landing) if not is_ignored(i.key)]:
        click.echo(
            f"Landing zone {storage.uri(landing)} is empty: seeding batches 1-3 of 5 of the "
            "digits (drop more with: uv run mlops-assets seed --batches 5 --which 4)."
        )
        seed_digits(storage, 5, [1, 2, 3])
    ok = run_job("digits_dataops", _dataops_steps(storage, "digits")).success and run_mlops(
        storage, "digits"
    )
    click.echo(summary(storage, "digits"))
    sys.exit(0 if ok else 1)


def run_mlops(storage, use_case: str) -> bool:
    """The gate's run, then the release run as the gate sensor would start it (or deploy
    alone when the champion was trained on the current dataset already)."""
    import dagster as dg

    from mlops_assets.mlops.sensor import release_after

    if _mlops_steps(storage, use_case):
        return run_job(f"{use_case}_release", ["deploy"]).success
    gate = run_job(f"{use_case}_mlops")
    if not gate.success:
        return False
    request = release_after(dg.DagsterInstance.get(), use_case, gate.run_id)
    if not isinstance(request, dg.RunRequest):
        click.echo(f"  nothing to release: {request}")
        return True
    return run_job(f"{use_case}_release", run_config=request.run_config).success


LOCAL_INSTANCE_YAML = """\
# Dagster instance of the local default: SQLite storage in this folder.
# See https://docs.dagster.io/deployment/oss/dagster-yaml
run_queue:
  max_concurrent_runs: 4
  # a run the sensors start leaves the queue within a second, not up to five
  dequeue_interval_seconds: 1
  dequeue_use_threads: true
"""


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to `.dagster/` here, so runs outlive the command."""
    # env: Dagster reads DAGSTER_HOME itself, in this process and the ones it starts
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    return home


def _dataops_steps(storage, use_case: str) -> list[str] | None:
    """All DataOps steps, or only acquire (which reports that nothing is new) when every
    landing file is ingested and every batch is in the current dataset version: the other
    steps would be skipped, and Dagster would warn that their blocking check said nothing."""
    from mlops_assets.datasets.tabular.catalog import catalog_state
    from mlops_assets.datasets.tabular.landing import new_landing_files
    from mlops_assets.storage import Layout

    layout = Layout(use_case)
    if new_landing_files(storage, layout, landing_of(use_case), None).files:
        return None
    latest = storage.read_json(layout.dataset_latest, default={})
    if latest.get("catalog") != catalog_state(storage, layout):
        return None
    click.echo("Nothing new in the landing zone since the last run: only acquire runs.")
    return ["acquire"]


def _mlops_steps(storage, use_case: str) -> list[str] | None:
    """All MLOps steps, or only deploy when the champion was trained on the current dataset
    (running the demo twice must not release the same model twice)."""
    from mlops_assets.registry import ModelRegistry
    from mlops_assets.storage import Layout

    latest = storage.read_json(Layout(use_case).dataset_latest, default={})
    registry = ModelRegistry(storage, use_case)
    champion = registry.champion()
    if (
        champion
        and latest
        and (
            registry.metadata(champion["version"]).get("dataset_version")
            == latest["dataset_version"]
        )
    ):
        click.echo(
            f"Champion v{champion['version']} was trained on dataset {latest['dataset_version']}"
            " already: only deploying it."
        )
        return ["deploy"]
    return None


def run_job(name: str, steps: list[str] | None = None, run_config: dict | None = None) -> Any:
    """Run a job (or some of its assets) on the persistent Dagster instance, so that
    `dg dev` shows the run; its result."""
    import dagster as dg

    from mlops_assets.definitions import build_definitions

    job = build_definitions().resolve_job_def(name)
    selection = None
    if steps:
        use_case = name.split("_")[0]
        selection = [dg.AssetKey([use_case, step]) for step in steps]
    subset = f" ({', '.join(steps)})" if steps else ""
    click.echo(f"Running job {name}{subset} ...")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
        asset_selection=selection,
        run_config={
            **(run_config or {}),
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        },
    )
    click.echo(f"  run {result.run_id}: {'success' if result.success else 'FAILED'}")
    return result


def summary(storage, use_case: str) -> str:
    from mlops_assets.storage import Layout

    layout = Layout(use_case)
    latest = storage.read_json(layout.dataset_latest, default={})
    lines = ["", f"Results in {storage.uri('')}:"]
    if latest:
        version = latest["dataset_version"]
        manifest = storage.read_json(layout.dataset(version, "manifest.json"))
        rows = ", ".join(f"{k} {manifest['rows'][k]}" for k in ("train", "val", "test"))
        lines.append(
            f"  dataset version {version}: {rows}  ({storage.uri(layout.dataset(version))})"
        )
    from mlops_assets.registry import ModelRegistry

    registry = ModelRegistry(storage, use_case)
    champion = registry.champion()
    if champion:
        meta = registry.metadata(champion["version"])
        metric = meta.get("gate", {}).get("metric", "accuracy")
        lines.append(
            f"  model: {use_case} v{champion['version']} is champion, test {metric} "
            f"{meta['metrics'][metric]:.4f}  ({storage.uri(layout.model(champion['version']))})"
        )
    latest_version = max(registry.versions(), default=None)
    if latest_version and champion and latest_version != champion["version"]:
        lines.append(f"  (v{latest_version} was released but is not champion)")
    from mlops_assets.resources import build_gitops

    gitops = build_gitops(load_settings())
    try:
        model, commit = gitops.repo((use_case,)).deployed("dev", use_case)
        lines.append(
            f"  gitops: dev deploys {use_case} v{model.get('version')} on branch "
            f"{gitops.branch}, last commit {commit}  "
            f"({redact(gitops.remote) or gitops.local_path})"
        )
    except Exception as error:  # the summary must not hide the run's own result
        lines.append(f"  gitops: not readable ({error})")
    quarantined = {i.key.split("/")[2] for i in storage.list(f"quarantine/{use_case}")}
    lines.append(
        f"  quarantine: {len(quarantined)} batch(es) with rejected rows or files "
        f"({storage.uri(f'quarantine/{use_case}')})"
    )
    lines.append(
        f"  Dagster runs: DAGSTER_HOME={env('DAGSTER_HOME')} "
        "uv run dg dev  (then open http://localhost:3000)"
    )
    return "\n".join(lines)
