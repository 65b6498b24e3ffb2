"""`serve`: a model over the Open Inference Protocol v2."""

from __future__ import annotations

import socket

import click

from mlops_assets.cli.base import (
    CommandError,
    load_use_case,
    main,
    storage_of_settings,
    use_case_option,
)
from mlops_assets.settings import load_settings


@main.command()
@use_case_option
@click.option(
    "--environment",
    envvar="MODEL_ENVIRONMENT",
    default=None,
    help="Serve what the GitOps repository deploys there (default: dev); with --uri, the "
    "environment the inference log records.",
)
@click.option(
    "--version", "version", type=int, default=None, help="Serve this registry version instead."
)
@click.option(
    "--uri",
    envvar="MODEL_URI",
    default=None,
    help="Artifact URI: s3://..., a path, or a key under the storage root; its metadata.json "
    "beside it.",
)
@click.option("--sha256", envvar="MODEL_SHA256", default=None, help="Its expected sha256.")
@click.option(
    "--metadata-sha256",
    envvar="MODEL_METADATA_SHA256",
    default=None,
    help="With --uri: the expected sha256 of the metadata.json beside it.",
)
@click.option(
    "--adapter",
    envvar="MODEL_ADAPTER",
    default=None,
    help="With --uri: the registered model adapter (default: the use case's).",
)
@click.option(
    "--estimator",
    envvar="MODEL_ESTIMATOR",
    default=None,
    help="With --uri: the estimator class the values file pins (sklearn adapter).",
)
@click.option(
    "--trusted-types",
    envvar="MODEL_TRUSTED_TYPES",
    default=None,
    help="With --uri: the hash of the trusted-types rule the values file pins.",
)
@click.option(
    "--contract-version",
    envvar="MODEL_CONTRACT_VERSION",
    default=None,
    help="With --uri: the request contract version the values file pins.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(
    use_case,
    environment,
    version,
    uri,
    sha256,
    metadata_sha256,
    adapter,
    estimator,
    trusted_types,
    contract_version,
    host,
    port,
) -> None:
    """Serve a model over the Open Inference Protocol v2 (uvicorn); refuses a bad sha256."""
    from mlops_assets.serving.app import ServerState, create_app
    from mlops_assets.serving.loader import (
        ModelLoadError,
        load_deployed,
        load_from_registry,
        load_from_uri,
    )
    from mlops_assets.serving.server import serve as run_server

    try:
        if uri:
            training = None if adapter else load_use_case(use_case).training
            loaded = load_from_uri(
                uri,
                sha256 or "",
                adapter=adapter or training.adapter,
                metadata_sha256=metadata_sha256 or "",
                name=use_case,
                estimator=estimator
                if estimator is not None
                else (training.estimator if training else ""),
                trusted_types=trusted_types or "",
                contract_version=contract_version or "",
            )
        elif version is not None:
            training = load_use_case(use_case).training
            loaded = load_from_registry(
                storage_of_settings(),
                use_case,
                version,
                adapter=training.adapter,
                estimator=training.estimator,
            )
        else:
            from mlops_assets.resources import build_gitops

            environment = environment or "dev"
            load_use_case(use_case)  # an unknown name is said as that, not "nothing deployed"
            gitops = build_gitops(load_settings()).repo((use_case,))
            model, _ = gitops.deployed(environment, use_case)
            if not model.get("uri"):
                raise ModelLoadError(f"nothing is deployed in {environment} yet")
            click.echo(f"{environment} deploys {use_case} v{model['version']} ({model['uri']})")
            loaded = load_deployed(model, use_case)
    except ModelLoadError as error:
        raise CommandError(str(error)) from None
    try:  # bound before anything is printed: a busy port is one clear error
        listening = socket.create_server((host, port))
    except OSError as error:
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    limits = serving_limits(use_case)
    inference_log = _inference_log(use_case, environment or "dev")
    state = ServerState()
    click.echo(f"serving {loaded.name} v{loaded.version} on http://{host}:{port}/v2")
    if inference_log is not None:
        click.echo(
            f"inference log: {inference_log.settings.inputs} inputs of "
            f"{inference_log.settings.sample:.0%} of requests to "
            f"{inference_log.storage.uri(inference_log.prefix)}/"
        )
    run_server(create_app(loaded, limits, state, inference_log), state, limits, listening)


def _use_case_block(use_case: str, block: str):
    """A settings block of the use case, or its defaults when the image has no YAML for it
    (a model served by --uri and --adapter alone)."""
    from mlops_assets.components.tree import UnknownUseCaseError
    from mlops_assets.components.use_case import UseCase

    try:
        return getattr(load_use_case(use_case), block)
    except UnknownUseCaseError:
        return UseCase.model_fields[block].default


def _inference_log(use_case: str, environment: str):
    from mlops_assets.serving.inference_log import InferenceLog, log_settings_of

    settings = log_settings_of(_use_case_block(use_case, "inference_log"))
    if not settings.enabled:
        return None
    return InferenceLog(storage_of_settings(), use_case, environment, settings)


def serving_limits(use_case: str):
    """The use case's `serving:` block with the environment's overrides."""
    from mlops_assets.serving.limits import limits_of

    return limits_of(_use_case_block(use_case, "serving"))
