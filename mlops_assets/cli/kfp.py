"""`kfp`: the Kubeflow training pipeline of a use case."""

from __future__ import annotations

from pathlib import Path

import click

from mlops_assets.cli.base import load_use_case, main


@main.group()
def kfp() -> None:
    """Kubeflow Pipelines: the training pipeline of a use case."""


@kfp.command("compile")
@click.option("--use-case", default="digits", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="default: <use case>-train-pipeline.yaml",
)
def kfp_compile(use_case: str, out: Path | None) -> None:
    """Write the KFP IR YAML of the training pipeline (to upload by hand to the KFP UI)."""
    from mlops_assets.kubeflow.pipeline import compile_pipeline, image

    uc = load_use_case(use_case)
    out = out or Path(f"{use_case}-train-pipeline.yaml")
    compile_pipeline(uc.name, uc.dataset.kind, uc.training.kubeflow, uc.kubernetes.mlops, out)
    click.echo(
        f"wrote {out}: train -> evaluate on {image(uc.training.kubeflow)}; parameters "
        "storage_root, candidate_id, dataset_json, model_json, params_json"
    )
