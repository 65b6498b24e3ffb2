"""The docs' examples as tests use them: their data (nobody here wrote it), their YAML as
copied, their jobs as the sensors start them, and the model their values file deploys,
served by its pins and asked in raw rows."""

from __future__ import annotations

import copy
import subprocess
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import httpx
import yaml

from mlops_assets.components.tabular import TabularUseCase
from mlops_assets.resources import build_gitops
from mlops_assets.serving.app import create_app
from mlops_assets.serving.limits import Limits
from mlops_assets.serving.loader import load_deployed
from mlops_assets.settings import load_settings
from tests.support.http_servers import uvicorn_thread
from tests.support.mlops_runs import run_mlops
from tests.support.processes import REPO
from tests.support.use_cases import use_case_definitions

EXAMPLES = REPO / "docs/examples"


def penguins_csv() -> Path:
    import palmerpenguins

    return Path(palmerpenguins.__file__).parent / "data/penguins.csv"


def diabetes_csv() -> bytes:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    return frame.astype({"sex": int}).to_csv(index=False).encode()


def breast_cancer_csv() -> bytes:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.data.assign(diagnosis=data.target_names[data.target])
    return frame.to_csv(index=False).encode()


def example(name: str, **changes: dict) -> TabularUseCase:
    """The example's YAML as copied, with `changes` merged into its blocks."""
    attributes = yaml.safe_load((EXAMPLES / name / "defs.yaml").read_text())["attributes"]
    attributes = copy.deepcopy(attributes)
    for block, values in changes.items():
        attributes[block] = values if values is None else {**attributes.get(block, {}), **values}
    return TabularUseCase.from_attributes_dict(attributes=attributes)


def loop(uc: TabularUseCase, instance: dg.DagsterInstance) -> dict:
    """Both jobs of the use case, as its sensors start them; the validate asset's metadata."""
    defs = use_case_definitions(uc)
    result = defs.resolve_job_def(f"{uc.name}_dataops").execute_in_process(
        instance=instance, raise_on_error=False
    )
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    run_mlops(defs, instance, use_case=uc.name)
    event = instance.get_latest_materialization_event(dg.AssetKey([uc.name, "validate"]))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def deploy_commit(uc: TabularUseCase) -> str:
    repo = build_gitops(load_settings()).repo((uc.name,))
    return subprocess.run(
        [
            "git",
            "--git-dir",
            repo.remote.removeprefix("file://"),
            "log",
            "-1",
            "--format=%B",
            repo.branch,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@contextmanager
def served(uc: TabularUseCase | str):
    """The model the dev values file deploys, loaded by its pins as `serve` loads it."""
    name = uc if isinstance(uc, str) else uc.name
    repo = build_gitops(load_settings()).repo((name,))
    model, _ = repo.deployed("dev", name)
    loaded = load_deployed(model, name)
    with uvicorn_thread(create_app(loaded, Limits())) as url:
        yield url, model


def infer(url: str, name: str, inputs: list[dict], **parameters) -> httpx.Response:
    body: dict = {"inputs": inputs}
    if parameters:
        body["parameters"] = parameters
    return httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)


def columns_of(rows: list[dict], contract: dict) -> list[dict]:
    """Raw rows as one OIP input per column, as MLServer's pandas codec sends a table: the
    CSV's text, a number where the column is numeric, null where it is missing."""
    inputs = []
    for column in contract["columns"]:
        values = []
        for row in rows:
            text = row[column["name"]]
            if text in ("", "NA"):
                values.append(None)
            elif column["datatype"] == "INT64":
                values.append(int(float(text)))
            elif column["datatype"] == "FP64":
                values.append(float(text))
            else:
                values.append(text)
        inputs.append(
            {
                "name": column["name"],
                "datatype": column["datatype"],
                "shape": [len(rows)],
                "data": values,
            }
        )
    return inputs
