"""The kubeflow backend of `<use_case>/train`: run the pipeline, follow it, hand on its candidate.

`cluster` compiles the pipeline, submits it with `kfp.Client` (host from the YAML or
MLOPS_KFP_HOST, credentials from `credentials()`) and polls the run, logging each
state change; `local` runs the same pipeline with `kfp.local`'s SubprocessRunner.
Either way the candidate ends up where the Dagster backend puts it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_assets.errors import MlopsError
from mlops_assets.mlops.train import CANDIDATE
from mlops_assets.runtime.native_stderr import verbose
from mlops_assets.settings import env
from mlops_assets.storage import Layout, ObjectStorage

DONE = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED", "CANCELING"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class KubeflowRunError(MlopsError, RuntimeError):
    """The KFP run failed, timed out, or could not be submitted; the message says where."""


@dataclass
class KubeflowRun:
    runner: str
    run_id: str = ""
    url: str = ""
    state: str = ""
    states: list[str] = field(default_factory=list)


def host(config) -> str:
    return (env("MLOPS_KFP_HOST") or config.host).rstrip("/")


def pipeline_arguments(
    storage: ObjectStorage, use_case, candidate_id: str, override: dict[str, Any] | None
) -> dict[str, str]:
    return {
        "storage_root": storage.uri(""),
        "candidate_id": candidate_id,
        "dataset_json": use_case.dataset.model_dump_json(),
        "model_json": use_case.training.model_dump_json(),
        "params_json": json.dumps(override or {}, sort_keys=True),
    }


def run_on_kubeflow(
    storage: ObjectStorage,
    use_case,
    candidate_id: str,
    override: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], KubeflowRun]:
    """Train through Kubeflow; returns the candidate (as `run_train` does) and the KFP run."""
    from mlops_assets.kubeflow.pipeline import build_pipeline

    config = use_case.training.kubeflow
    pipeline = build_pipeline(
        use_case.name, use_case.dataset.kind, config, use_case.kubernetes.mlops
    )
    arguments = pipeline_arguments(storage, use_case, candidate_id, override)
    if config.runner == "local":
        run = _run_local(pipeline, arguments, log)
    else:
        run = _run_on_cluster(pipeline, arguments, config, use_case.name, candidate_id, log)
    candidate = storage.read_json(Layout(use_case.name).candidate(candidate_id, CANDIDATE))
    return candidate, run


def _run_local(pipeline, arguments: dict[str, str], log) -> KubeflowRun:
    from kfp import local

    with tempfile.TemporaryDirectory(prefix="kfp-local-") as root:
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=root,
            raise_on_error=True,
        )
        log("running the training pipeline with kfp.local (SubprocessRunner)")
        output = _Tail(OUTPUT_TAIL_BYTES)
        try:
            # kfp.local prints each task's executor input (about 120 lines of JSON) and its
            # output: kept back (unless MLOPS_VERBOSE), its end said only when it fails
            with contextlib.nullcontext() if verbose() else contextlib.redirect_stdout(output):
                pipeline(**arguments)
        except RuntimeError as error:
            message = _ANSI.sub("", str(error))
            said = _ANSI.sub("", output.text()).strip()
            raise KubeflowRunError(
                f"kfp.local: {message}" + (f"\n--- the tasks' last output:\n{said}" if said else "")
            ) from None
    return KubeflowRun(runner="local", state="SUCCEEDED", states=["SUCCEEDED"])


OUTPUT_TAIL_BYTES = 8192
"""What of kfp.local's printed output a failure quotes: its end, bounded."""


class _Tail(io.TextIOBase):
    """A stdout that keeps only the last `limit` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit, self.kept = limit, b""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.kept = (self.kept + text.encode(errors="replace"))[-self.limit :]
        return len(text)

    def text(self) -> str:
        return self.kept.decode(errors="replace")


def credentials() -> dict[str, Any]:
    """How the run authenticates to the KFP API, as `kfp.Client` keyword arguments.

    MLOPS_KFP_TOKEN when set (a token for an API outside the cluster); else the pod's
    projected service-account token for the `pipelines.kubeflow.org` audience, which the
    run pod mounts where KFP looks for it (`KF_PIPELINES_SA_TOKEN_PATH`), as multi-user
    Kubeflow expects of in-cluster clients; else none (a standalone KFP, a port-forward).
    `kfp.Client` only falls back to that token when no host is given, and a host is.
    """
    token = env("MLOPS_KFP_TOKEN")
    if token:
        return {"existing_token": token}
    from kfp.client import (
        KF_PIPELINES_SA_TOKEN_ENV,
        KF_PIPELINES_SA_TOKEN_PATH,
        ServiceAccountTokenVolumeCredentials,
    )

    path = env(KF_PIPELINES_SA_TOKEN_ENV) or KF_PIPELINES_SA_TOKEN_PATH
    if Path(path).is_file():
        return {"credentials": ServiceAccountTokenVolumeCredentials(path)}
    return {}


def _client(config):
    import kfp

    url = host(config)
    if not url:
        raise KubeflowRunError(
            "no KFP API host: set training.kubeflow.host in the YAML or MLOPS_KFP_HOST"
        )
    try:
        return kfp.Client(host=url, namespace=config.namespace or None, **credentials()), url
    except Exception as error:  # the client checks /healthz at once
        raise KubeflowRunError(
            f"cannot reach the KFP API at {url}: {type(error).__name__}: {error}"
        ) from None


def _run_on_cluster(pipeline, arguments, config, name: str, candidate_id: str, log) -> KubeflowRun:
    from kfp import compiler

    client, url = _client(config)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline, str(package))
        try:
            submitted = client.create_run_from_pipeline_package(
                str(package),
                arguments=arguments,
                run_name=f"{name}-{candidate_id[:8]}",
                experiment_name=config.experiment,
                namespace=config.namespace or None,
                enable_caching=False,
            )
        except Exception as error:
            raise KubeflowRunError(f"KFP API at {url} refused the run: {error}") from None
    run = KubeflowRun(
        runner="cluster", run_id=submitted.run_id, url=f"{url}/#/runs/details/{submitted.run_id}"
    )
    log(f"submitted KFP run {run.run_id}: {run.url}")
    deadline = time.monotonic() + config.timeout_seconds
    while True:
        details = client.get_run(run.run_id)
        state = str(details.state or "PENDING")
        if not run.states or run.states[-1] != state:
            run.states.append(state)
            log(f"KFP run {run.run_id}: {state}")
        if state in DONE:
            break
        if time.monotonic() > deadline:
            client.terminate_run(run.run_id)
            raise KubeflowRunError(
                f"KFP run {run.run_id} still {state} after {config.timeout_seconds} s: "
                f"terminated ({run.url})"
            )
        time.sleep(config.poll_seconds)
    run.state = state
    if state != "SUCCEEDED":
        raise KubeflowRunError(
            f"KFP run {run.run_id} ended {state}; failed task(s): "
            f"{', '.join(_failed_tasks(details)) or 'unknown'} ({run.url})"
        )
    return run


def _failed_tasks(details) -> list[str]:
    tasks = getattr(getattr(details, "run_details", None), "task_details", None) or []
    return [
        str(t.display_name or t.task_id) for t in tasks if str(t.state) in ("FAILED", "CANCELED")
    ]
