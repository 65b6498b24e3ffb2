"""The KFP v2 training pipeline of a use case: train, then evaluate, on the project image.

The components are lightweight Python components whose bodies only call
`mlops_assets.kubeflow.steps` (the Dagster backend's own code), with
`install_kfp_package=False`: the project image already holds kfp and this package.
That makes them runnable by `kfp.local`'s SubprocessRunner too. No `from __future__
import annotations` here: KFP reads the annotations to type the component's I/O.
"""

from pathlib import Path
from typing import Any

from kfp import compiler, dsl, kubernetes
from kfp.dsl import Metrics, Output

from mlops_assets import __version__
from mlops_assets.core.config import KubeflowConfig, PodPlacement
from mlops_assets.settings import env

DEFAULT_IMAGE = "ghcr.io/mlops-assets/mlops-assets"
TASK_ENV = ("MLOPS_S3_ENDPOINT_URL", "MLOPS_S3_REGION", "MLOPS_CODE_VERSION")


def train(
    storage_root: str,
    use_case: str,
    candidate_id: str,
    dataset_kind: str,
    dataset_json: str,
    model_json: str,
    params_json: str,
    metrics: Output[Metrics],
) -> str:
    """Fit the candidate on the training split; its metadata, as JSON."""
    import json

    from mlops_assets.kubeflow.steps import train_step

    candidate = train_step(
        storage_root, use_case, candidate_id, dataset_kind, dataset_json, model_json, params_json
    )
    metrics.log_metric("training_seconds", candidate["training_seconds"])
    if candidate.get("val_accuracy") is not None:
        metrics.log_metric("val_accuracy", candidate["val_accuracy"])
    return json.dumps(candidate, default=str)


def evaluate(
    storage_root: str,
    use_case: str,
    candidate_id: str,
    dataset_kind: str,
    dataset_json: str,
    model_json: str,
    metrics: Output[Metrics],
) -> str:
    """The candidate's metrics on the test split, as JSON."""
    import json

    from mlops_assets.kubeflow.steps import evaluate_step

    result = evaluate_step(
        storage_root, use_case, candidate_id, dataset_kind, dataset_json, model_json
    )
    for name in ("accuracy", "top5", "macro_accuracy", "macro_f1"):
        if result.get(name) is not None:
            metrics.log_metric(f"test_{name}", result[name])
    return json.dumps({k: result[k] for k in ("accuracy", "macro_f1", "rows")})


def image(config: KubeflowConfig) -> str:
    return (
        env("MLOPS_KFP_IMAGE")
        or config.image
        # the release's own tag, never a moving one: the image must be the code that compiled
        or f"{DEFAULT_IMAGE}:{env('MLOPS_IMAGE_TAG') or __version__}"
    )


def _place(task: dsl.PipelineTask, placement: PodPlacement) -> None:
    """The same requests, limits, GPU, node selector and tolerations as the MLOps run pod."""
    requests, limits = placement.requests, placement.limits
    if "cpu" in requests:
        task.set_cpu_request(requests["cpu"])
    if "memory" in requests:
        task.set_memory_request(requests["memory"])
    if "cpu" in limits:
        task.set_cpu_limit(limits["cpu"])
    if "memory" in limits:
        task.set_memory_limit(limits["memory"])
    for resource, count in limits.items():
        if resource.endswith("/gpu"):
            task.set_accelerator_type(resource).set_accelerator_limit(int(count))
    for key, value in placement.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in placement.tolerations:
        kubernetes.add_toleration(
            task,
            key=toleration.get("key"),
            operator=toleration.get("operator"),
            value=toleration.get("value"),
            effect=toleration.get("effect"),
        )


def build_pipeline(
    use_case: str, dataset_kind: str, config: KubeflowConfig, placement: PodPlacement
) -> Any:
    """The pipeline function (compile it, or call it under `kfp.local`); the use case and
    its dataset kind are compiled in, the kind's settings are an argument."""
    base = image(config)
    train_op = dsl.component(base_image=base, install_kfp_package=False)(train)
    evaluate_op = dsl.component(base_image=base, install_kfp_package=False)(evaluate)

    @dsl.pipeline(
        name=f"{use_case.replace('_', '-')}-train",
        description=f"Trains and evaluates a candidate of the {use_case} use case "
        "(mlops_assets); Dagster validates, releases and deploys it.",
    )
    def pipeline(
        storage_root: str,
        candidate_id: str,
        dataset_json: str,
        model_json: str,
        params_json: str = "{}",
    ) -> str:
        trained = train_op(
            storage_root=storage_root,
            use_case=use_case,
            candidate_id=candidate_id,
            dataset_kind=dataset_kind,
            dataset_json=dataset_json,
            model_json=model_json,
            params_json=params_json,
        )
        _place(trained, placement)
        scored = evaluate_op(
            storage_root=storage_root,
            use_case=use_case,
            candidate_id=candidate_id,
            dataset_kind=dataset_kind,
            dataset_json=dataset_json,
            model_json=model_json,
        ).after(trained)
        for task in (trained, scored):
            task.set_caching_options(False)  # a run is asked for because something changed
            for secret, keys in config.secrets.items():
                kubernetes.use_secret_as_env(
                    task, secret_name=secret, secret_key_to_env={k: k for k in keys}
                )
            for name in TASK_ENV:
                if value := env(name):
                    task.set_env_variable(name, value)
        return trained.outputs["Output"]

    return pipeline


def compile_pipeline(
    use_case: str, dataset_kind: str, config: KubeflowConfig, placement: PodPlacement, path: Path
) -> Path:
    """The KFP IR YAML, for `kfp.Client` or for uploading by hand."""
    pipeline = build_pipeline(use_case, dataset_kind, config, placement)
    compiler.Compiler().compile(pipeline, str(path))
    return path
