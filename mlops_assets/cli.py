"""`mlops-assets`: seed demo data and run the demo pipeline on the local default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import yaml

from mlops_assets.errors import MlopsError, redact
from mlops_assets.settings import env

DEFS_DIR = Path(__file__).parent / "defs"


def landing_of(use_case: str) -> str:
    """The landing prefix a use case's defs.yaml declares."""
    path = DEFS_DIR / use_case / "defs.yaml"
    if not path.exists():
        raise click.UsageError(f"no use case {use_case!r}: {path} does not exist")
    attributes = yaml.safe_load(path.read_text())["attributes"]
    landing = (attributes.get("dataset") or {}).get("landing") or f"landing/{use_case}"
    return landing.strip("/")


def load_use_case(use_case: str):
    """The UseCase component a defs.yaml declares (its settings, resolved as Dagster does)."""
    from mlops_assets.components import UseCase

    path = DEFS_DIR / use_case / "defs.yaml"
    if not path.exists():
        raise click.UsageError(f"no use case {use_case!r}: {path} does not exist")
    return UseCase.from_attributes_dict(attributes=yaml.safe_load(path.read_text())["attributes"])


def _storage():
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings

    return build_storage(load_settings())


def _which(spec: str | None, count: int) -> list[int]:
    if not spec:
        return list(range(1, count + 1))
    picked: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        picked += range(int(first), int(last or first) + 1)
    if any(not 1 <= n <= count for n in picked):
        raise click.BadParameter(f"batches are numbered 1..{count}", param_hint="--which")
    return picked


class CommandError(click.ClickException):
    """A failure the user can act on: `Error: <one line>` on stderr, exit status 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(redact(message).split()))


class _Commands(click.Group):
    """The project's own errors (settings, storage, registry, GitOps, model loading) are
    printed as one line; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlopsError as error:
            raise CommandError(str(error)) from None


@click.group(cls=_Commands)
@click.version_option(package_name="mlops_assets", prog_name="mlops-assets")
def main() -> None:
    """mlops_assets: an asset-centric MLOps-GitOps workflow on Dagster."""
    import warnings

    import dagster as dg

    # Dagster's own beta/preview notices about its component APIs are not for our users.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)


@main.command()
@click.option("--batches", default=3, show_default=True, help="Split the digits into N batches.")
@click.option("--which", default=None, help="Write only these batches, e.g. '1-3' or '4'.")
@click.option(
    "--bad-fraction",
    default=0.0,
    show_default=True,
    help="Share of rows made to break the contract (for trying out quarantine).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
def seed(batches: int, which: str | None, bad_fraction: float, fmt: str) -> None:
    """Drop scikit-learn's digits into the landing zone, in batches."""
    for key in seed_digits(_storage(), batches, _which(which, batches), bad_fraction, fmt):
        click.echo(f"wrote {key}")


def seed_digits(
    storage, batches: int, which: list[int], bad_fraction: float = 0.0, fmt: str = "csv"
) -> list[str]:
    from mlops_assets.demo.digits_data import digits_batches, to_bytes, with_bad_rows

    landing = landing_of("digits")
    parts = digits_batches(batches)
    written = []
    for n in which:
        frame = parts[n - 1]
        if bad_fraction:
            frame = with_bad_rows(frame, bad_fraction, seed=n)
        key = f"{landing}/digits-{n:03d}-of-{batches:03d}.{fmt}"
        storage.write_bytes(key, to_bytes(frame, fmt))
        written.append(key)
    return written


@main.command()
@click.option("--rows", type=int, required=True, help="Number of rows.")
@click.option("--name", default=None, help="File name in the landing zone.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="parquet", show_default=True
)
@click.option("--seed", "rng_seed", default=0, show_default=True)
def synth(rows: int, name: str | None, fmt: str, rng_seed: int) -> None:
    """Write one synthetic digits batch of any size (for benchmarks)."""
    from mlops_assets.demo.digits_data import synthetic_batch, to_bytes

    key = f"{landing_of('digits')}/{name or f'synthetic-{rows}-{rng_seed}.{fmt}'}"
    _storage().write_bytes(key, to_bytes(synthetic_batch(rows, rng_seed), fmt))
    click.echo(f"wrote {key} ({rows} rows)")


@main.command("lsfb-sample")
@click.argument(
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".mlops/lsfb-mirror"),
)
@click.option("--signers", default=10, show_default=True)
@click.option("--signs", default=12, show_default=True)
@click.option("--clips-per-sign", default=3, show_default=True, help="per signer")
def lsfb_sample(folder: Path, signers: int, signs: int, clips_per_sign: int) -> None:
    """Write a small generated dataset in the exact LSFB-ISOL layout, to serve as a mirror
    (python -m http.server) when the real server is out of reach."""
    from mlops_assets.demo.lsfb_data import generate

    made = generate(folder, signers=signers, signs=signs, clips_per_sign=clips_per_sign)
    click.echo(
        f"wrote {len(made.instances)} clips of {len(made.signs)} signs to {folder}; serve it "
        f"with: python3 -m http.server -d {folder} 8000, and set "
        "MLOPS_LSFB_SOURCE=http://127.0.0.1:8000"
    )


@main.command()
def demo() -> None:
    """Seed the landing zone when empty and run the whole digits pipeline."""
    from mlops_assets.dataops.acquire import is_ignored

    ensure_dagster_home()
    storage = _storage()
    landing = landing_of("digits")
    if not [i for i in storage.list(landing) if not is_ignored(i.key)]:
        click.echo(
            f"Landing zone {storage.uri(landing)} is empty: seeding batches 1-3 of 5 of the "
            "digits (drop more with: uv run mlops-assets seed --batches 5 --which 4)."
        )
        seed_digits(storage, 5, [1, 2, 3])
    ok = run_job("digits_dataops", _dataops_steps(storage, "digits")) and run_job(
        "digits_mlops", _mlops_steps(storage, "digits")
    )
    click.echo(summary(storage, "digits"))
    sys.exit(0 if ok else 1)


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
    from mlops_assets.dataops.catalog import load_catalog
    from mlops_assets.dataops.landing import new_landing_files
    from mlops_assets.storage import Layout

    layout = Layout(use_case)
    ingested = storage.read_json(layout.landing_index, default={})
    if new_landing_files(storage, landing_of(use_case), None, ingested).files:
        return None
    in_dataset = set(storage.read_json(layout.dataset_latest, default={}).get("batches", []))
    if not in_dataset or any(
        b["batch_id"] not in in_dataset for b in load_catalog(storage, layout)
    ):
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


def run_job(name: str, steps: list[str] | None = None) -> bool:
    """Run a job (or some of its assets) on the persistent Dagster instance, so that
    `dagster dev` shows the run."""
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
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    click.echo(f"  run {result.run_id}: {'success' if result.success else 'FAILED'}")
    return result.success


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
    from mlops_assets.settings import load_settings

    gitops = build_gitops(load_settings())
    try:
        model, commit = gitops.repo((use_case,)).deployed("dev", use_case)
        lines.append(
            f"  gitops: dev deploys {use_case} v{model.get('version')}, last commit {commit}  "
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
        "uv run dagster dev  (then open http://localhost:3000)"
    )
    return "\n".join(lines)


@main.group()
def registry() -> None:
    """The model registry: versions, champion, history, rollback and pins."""


def _registry(use_case: str):
    from mlops_assets.registry import ModelRegistry

    landing_of(use_case)  # an unknown use case is a usage error, not an empty list

    return ModelRegistry(_storage(), use_case)


use_case_option = click.option("--use-case", default="digits", show_default=True)


@registry.command("list")
@use_case_option
def registry_list(use_case: str) -> None:
    """Released versions, with their test metric, and which one is champion."""
    reg = _registry(use_case)
    champion = reg.champion() or {}
    versions = reg.versions()
    if not versions:
        click.echo(
            f"{use_case}: no versions in the registry ({reg.storage.uri(reg.layout.model())})"
        )
        return
    for version in versions:
        meta = reg.metadata(version)
        marks = []
        if champion.get("version") == version:
            marks.append("champion" + (" (pinned)" if champion.get("pinned") else ""))
        metric = meta.get("gate", {}).get("metric", "accuracy")  # the one the gate decides on
        click.echo(
            f"v{version}  {metric} {meta['metrics'][metric]:.4f}  dataset "
            f"{meta['dataset_version']}  {meta['created_at']}  {' '.join(marks)}"
        )


@registry.command("history")
@use_case_option
def registry_history(use_case: str) -> None:
    """Every move of the champion alias, in order."""
    for entry in _registry(use_case).history():
        previous = f"v{entry['previous']}" if entry["previous"] else "none"
        at = entry.get("at", entry["promoted_at"])
        click.echo(
            f"#{entry['sequence']}  {at}  {entry['action']:<8} v{entry['version']}"
            f"{f' (was {previous})' if entry['action'] != 'unpin' else ''}"
            f"{'  pinned' if entry.get('pinned') else ''}  {entry['reason']}"
        )


@registry.command("rollback")
@use_case_option
@click.option("--version", "version", type=int, required=True, help="An existing version.")
@click.option("--reason", required=True, help="Why; recorded in the history.")
def registry_rollback(use_case: str, version: int, reason: str) -> None:
    """Make an existing version champion and pin it, so releases do not replace it."""
    try:
        alias = _registry(use_case).promote(version, reason, pin=True)
    except (LookupError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    click.echo(
        f"{use_case}: v{alias['version']} is champion and pinned ({reason}); automatic "
        "releases will not replace it until `mlops-assets registry unpin`"
    )


@registry.command("unpin")
@use_case_option
@click.option("--reason", required=True, help="Why; recorded in the history.")
def registry_unpin(use_case: str, reason: str) -> None:
    """Let the next release that passes the gate replace the champion again."""
    try:
        alias = _registry(use_case).unpin(reason)
    except RuntimeError as error:
        raise CommandError(str(error)) from None
    click.echo(f"{use_case}: v{alias['version']} is champion, not pinned")


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

    import uvicorn

    from mlops_assets.serving.app import create_app
    from mlops_assets.serving.loader import ModelLoadError, load_from_registry, load_from_uri

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
            loaded = load_from_registry(_storage(), use_case, version, adapter=adapter)
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
    click.echo(f"serving {loaded.name} v{loaded.version} on http://{host}:{port}/v2")
    config = uvicorn.Config(create_app(loaded), host=host, port=port, log_level="info")
    uvicorn.Server(config).run(sockets=[listening])


@main.group()
def gitops() -> None:
    """The GitOps repository: what is deployed where, promotion and rollback."""


def _gitops():
    from mlops_assets.resources import build_gitops
    from mlops_assets.settings import load_settings

    return build_gitops(load_settings())


@gitops.command("status")
@use_case_option
def gitops_status(use_case: str) -> None:
    """The model version each environment deploys, and the last commit that changed it."""
    repo = _gitops().repo((use_case,))
    deployed = repo.deployed_everywhere(use_case)
    if not deployed:
        click.echo(f"{use_case}: no environment in the GitOps repository")
    for environment, (model, commit) in deployed.items():
        version = str(model.get("version") or "0")
        what = "nothing deployed" if version == "0" or not model.get("uri") else f"v{version}"
        click.echo(f"{environment:<10} {what:<18} {commit}")
    for branch, subject in repo.approval_branches(use_case):
        click.echo(f"pending approval: {branch}  {subject}")


@gitops.command("promote")
@use_case_option
@click.option("--from", "source", required=True, help="Environment to promote from (dev).")
@click.option("--to", "target", required=True, help="Environment to promote to (staging).")
@click.option("--approval", is_flag=True, help="Push a deploy/... branch for a pull request.")
def gitops_promote(use_case: str, source: str, target: str, approval: bool) -> None:
    """Deploy to the next environment what the previous one deploys."""
    from mlops_assets.mlops.deploy import promote

    try:
        adapter = load_use_case(use_case).training.adapter
        result = promote(_storage(), _gitops(), use_case, source, target, adapter, approval)
    except (LookupError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    click.echo(result.reason)


@gitops.command("rollback")
@use_case_option
@click.option("--environment", required=True)
@click.option("--version", "version", type=int, required=True, help="An earlier version.")
@click.option("--reason", required=True, help="Why; in the commit and the registry history.")
def gitops_rollback(use_case: str, environment: str, version: int, reason: str) -> None:
    """Deploy an earlier registry version to an environment, pinned in the registry."""
    from mlops_assets.mlops.deploy import rollback

    try:
        adapter = load_use_case(use_case).training.adapter
        result = rollback(_storage(), _gitops(), use_case, environment, version, reason, adapter)
    except (LookupError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    click.echo(result.reason)
    click.echo(
        f"pinned v{version} as {use_case}'s champion: automatic releases will not replace it "
        "until `mlops-assets registry unpin`"
    )


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
    compile_pipeline(uc.name, uc.training.kubeflow, uc.kubernetes.mlops, out)
    click.echo(
        f"wrote {out}: train -> evaluate on {image(uc.training.kubeflow)}; parameters "
        "storage_root, candidate_id, dataset_json, model_json, params_json"
    )
