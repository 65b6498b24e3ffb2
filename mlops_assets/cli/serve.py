"""`serve`: a model over the Open Inference Protocol v2."""

from __future__ import annotations

import click

from mlops_assets.cli.base import (
    CommandError,
    load_use_case,
    main,
    storage_of_settings,
    use_case_option,
)


@main.command()
@use_case_option
@click.option(
    "--environment",
    default=None,
    help="Serve what the GitOps repository deploys there (default: dev).",
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
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(
    use_case, environment, version, uri, sha256, metadata_sha256, adapter, host, port
) -> None:
    """Serve a model over the Open Inference Protocol v2 (uvicorn); refuses a bad sha256."""
    import socket

    from mlops_assets.serving.app import ServerState, create_app
    from mlops_assets.serving.loader import ModelLoadError, load_from_registry, load_from_uri
    from mlops_assets.serving.server import serve as run_server

    try:
        if uri:
            loaded = load_from_uri(
                uri,
                sha256 or "",
                adapter=adapter or load_use_case(use_case).training.adapter,
                metadata_sha256=metadata_sha256 or "",
                name=use_case,
            )
        elif version is not None:
            adapter = load_use_case(use_case).training.adapter
            loaded = load_from_registry(storage_of_settings(), use_case, version, adapter=adapter)
        else:
            from mlops_assets.resources import build_gitops
            from mlops_assets.settings import load_settings

            environment = environment or "dev"
            gitops = build_gitops(load_settings()).repo((use_case,))
            model, _ = gitops.deployed(environment, use_case)
            if not model.get("uri"):
                raise ModelLoadError(f"nothing is deployed in {environment} yet")
            click.echo(f"{environment} deploys {use_case} v{model['version']} ({model['uri']})")
            loaded = load_from_uri(
                model["uri"],
                model.get("sha256", ""),
                adapter=str(model.get("adapter") or ""),
                metadata_sha256=str(model.get("metadataSha256") or ""),
                name=use_case,
                version=str(model["version"]),
            )
    except ModelLoadError as error:
        raise CommandError(str(error)) from None
    try:  # bound before anything is printed: a busy port is one clear error
        listening = socket.create_server((host, port))
    except OSError as error:
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    limits = serving_limits(use_case)
    state = ServerState()
    click.echo(f"serving {loaded.name} v{loaded.version} on http://{host}:{port}/v2")
    run_server(create_app(loaded, limits, state), state, limits, listening)


def serving_limits(use_case: str):
    """The use case's `serving:` block with the environment's overrides (the defaults when
    the image has no YAML for it: a model served by --uri and --adapter alone)."""
    from mlops_assets.components.config import ServingConfig
    from mlops_assets.components.tree import UnknownUseCaseError
    from mlops_assets.serving.limits import limits_of

    try:
        config = load_use_case(use_case).serving
    except UnknownUseCaseError:
        config = ServingConfig()
    return limits_of(config)
