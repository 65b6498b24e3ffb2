"""Your own table and model by YAML alone: the docs' examples, on data nobody here wrote
(the palmerpenguins package's CSV as it ships, scikit-learn's diabetes and breast cancer
sets), through the nine assets to a GitOps commit and a served answer."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml

from mlops_assets.components.tabular import TabularUseCase
from mlops_assets.registry import ModelRegistry
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings
from tests.support.examples import (
    EXAMPLES,
    breast_cancer_csv,
    columns_of,
    deploy_commit,
    diabetes_csv,
    example,
    infer,
    loop,
    penguins_csv,
    served,
)
from tests.support.markdown_blocks import PRELUDE, bash_blocks, run_bash
from tests.support.processes import (
    REPO,
    clean_env,
    free_port,
    project_copy,
    stop,
    wait_for_http,
)


@pytest.mark.slow
def test_penguins_as_they_ship_are_trained_released_deployed_and_served_raw(local_env):
    """Strings, a string label and `NA` as the palmerpenguins package ships them: no
    encoding by the user, in the landing file or in the request."""

    uc = example("penguins")
    storage = build_storage(load_settings())
    storage.write_bytes(f"{uc.landing}/penguins.csv", penguins_csv().read_bytes())
    with dg.instance_for_test() as instance:
        validated = loop(uc, instance)
    assert validated["gate_decision"] == "PASS", validated["decision"]
    assert validated["candidate_balanced_accuracy"] >= 0.9
    registry = ModelRegistry(storage, "penguins")
    assert registry.champion()["version"] == 1
    assert registry.metadata(1)["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert deploy_commit(uc).startswith("Deploy penguins v1 to dev")

    rows = list(csv.DictReader(penguins_csv().open()))
    with served(uc) as (url, pins):
        assert pins["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
        assert pins["trustedTypes"] and pins["contractVersion"]
        contract = httpx.get(f"{url}/v2/models/penguins", timeout=10).json()
        types = {i["name"]: i["datatype"] for i in contract["inputs"]}
        assert types == {
            "island": "BYTES",
            "bill_length_mm": "FP64",
            "bill_depth_mm": "FP64",
            "flipper_length_mm": "INT64",
            "body_mass_g": "INT64",
            "sex": "BYTES",
        }
        # every row of the file, NA and all: the species back by name
        answer = infer(url, "penguins", columns_of(rows, contract["parameters"]["contract"]))
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["datatype"] == "BYTES" and output["shape"] == [len(rows)]
        right = sum(p == r["species"] for p, r in zip(output["data"], rows, strict=True))
        assert right / len(rows) >= 0.9
        assert any(r["sex"] == "NA" for r in rows)  # the nulls were in the request
        # class probabilities when asked for, as MLServer names them, columns by class
        body = {
            "inputs": columns_of(rows[:5], contract["parameters"]["contract"]),
            "outputs": [{"name": "output-0"}, {"name": "predict_proba"}],
        }
        both = httpx.post(f"{url}/v2/models/penguins/infer", json=body, timeout=30).json()
        names, proba = both["outputs"]
        assert proba["datatype"] == "FP64" and proba["shape"] == [5, 3]
        classes = proba["parameters"]["classes"]
        assert classes == ["Adelie", "Chinstrap", "Gentoo"]
        table = [proba["data"][i * 3 : i * 3 + 3] for i in range(5)]
        assert all(abs(sum(row) - 1) < 1e-9 for row in table)
        assert [classes[row.index(max(row))] for row in table] == names["data"]

        # an island the model never saw is refused, naming the column, the row and the value
        strange = [dict(rows[0]), {**rows[1], "island": "Atlantis"}]
        refused = infer(url, "penguins", columns_of(strange, contract["parameters"]["contract"]))
        assert refused.status_code == 400
        assert "island" in refused.text and "row 1" in refused.text and "Atlantis" in refused.text
        # a request shaped for another contract version is refused before it is read
        other = infer(
            url,
            "penguins",
            columns_of(rows[:2], contract["parameters"]["contract"]),
            contract_version="0",
        )
        assert other.status_code == 400 and "contract" in other.text


def gate_agrees_with_its_test(validated: dict, lower_is_better: bool) -> None:
    """The decision is the one rule applied to the paired test it shows: significant and
    worse is REJECT, significant and better PASS, else HOLD; the interval excludes 0
    exactly when the test is significant."""
    low, high = (
        float(v)
        for v in re.search(r"95% CI ([-+][\d.]+) to ([-+][\d.]+)", validated["decision"]).groups()
    )
    better = -validated["difference"] if lower_is_better else validated["difference"]
    significant = validated["p_value"] < 0.05
    expected = "HOLD" if not significant else ("PASS" if better > 0 else "REJECT")
    assert validated["gate_decision"] == expected, validated["decision"]
    assert significant == (low > 0 or high < 0), validated["decision"]


@pytest.mark.slow
def test_diabetes_is_a_regression_gated_on_rmse_by_a_paired_bootstrap(local_env):
    """RMSE gates (lower is better, from the metric), the second candidate is compared with
    the champion by a seeded paired bootstrap, and the server answers FP64."""

    uc = example("diabetes")
    storage = build_storage(load_settings())
    table = diabetes_csv()
    storage.write_bytes(f"{uc.landing}/diabetes.csv", table)
    with dg.instance_for_test() as instance:
        first = loop(uc, instance)
        assert first["gate_decision"] == "PASS" and first["candidate_rmse"] < 70
        assert "rmse" in first["metrics"] and "confusion" not in first["metrics"]
        # another candidate on the same dataset version: a decision from the paired test
        second = loop(example("diabetes", training={"params": {"alpha": 30.0}}), instance)
    assert "paired bootstrap" in second["evaluations"]
    gate_agrees_with_its_test(second, lower_is_better=True)
    registry = ModelRegistry(storage, "diabetes")
    assert registry.versions() == ([1, 2] if second["gate_decision"] == "PASS" else [1])
    assert deploy_commit(uc).startswith("Deploy diabetes v1 to dev")

    rows = list(csv.DictReader(io.StringIO(table.decode())))[:8]
    with served(uc) as (url, pins):
        assert pins["estimator"] == "sklearn.linear_model._ridge.Ridge" or pins[
            "estimator"
        ].endswith("Ridge")
        contract = httpx.get(f"{url}/v2/models/diabetes", timeout=10).json()
        answer = infer(url, "diabetes", columns_of(rows, contract["parameters"]["contract"]))
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["datatype"] == "FP64" and len(output["data"]) == len(rows)
        asked = {
            "inputs": columns_of(rows, contract["parameters"]["contract"]),
            "outputs": [{"name": "predict_proba"}],
        }
        no = httpx.post(f"{url}/v2/models/diabetes/infer", json=asked, timeout=30)
        assert no.status_code == 400 and "no class probabilities" in no.text
        errors = [abs(p - float(r["target"])) for p, r in zip(output["data"], rows, strict=True)]
        assert sum(errors) / len(errors) < 3 * first["candidate_rmse"]
        # a value outside its declared range is a 400 naming the column and the row
        bad = [rows[0], {**rows[1], "bmi": "500"}]
        refused = infer(url, "diabetes", columns_of(bad, contract["parameters"]["contract"]))
        assert refused.status_code == 400 and "bmi" in refused.text and "row 1" in refused.text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("training", "env"),
    [
        (
            {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {}},
            "local",
        ),
        (None, "s3"),  # the example as shipped: LightGBM, on S3 (moto)
        ({"adapter": "xgboost", "params": {"n_estimators": 100, "max_depth": 3}}, "local"),
    ],
    ids=["hist_gradient_boosting-local", "lightgbm-s3", "xgboost-local"],
)
def test_breast_cancer_with_either_estimator_serves_the_diagnosis_by_name(training, env, request):

    request.getfixturevalue(f"{env}_env")
    attributes = yaml.safe_load((EXAMPLES / "breast_cancer/defs.yaml").read_text())["attributes"]
    if training is not None:  # the same YAML with the estimator named instead of the adapter
        attributes["training"] = training
    uc = TabularUseCase.from_attributes_dict(attributes=attributes)
    storage = build_storage(load_settings())
    table = breast_cancer_csv()
    storage.write_bytes(f"{uc.landing}/breast_cancer.csv", table)
    with dg.instance_for_test() as instance:
        validated = loop(uc, instance)
    assert validated["gate_decision"] == "PASS" and validated["candidate_roc_auc"] >= 0.95
    meta = ModelRegistry(storage, "breast_cancer").metadata(1)
    assert meta["adapter"] == (
        (training or {}).get("adapter") or ("sklearn" if training else "lightgbm")
    )
    assert deploy_commit(uc).startswith("Deploy breast_cancer v1 to dev")
    rows = list(csv.DictReader(io.StringIO(table.decode())))[-40:]
    with served(uc) as (url, pins):
        assert pins["adapter"] == meta["adapter"]
        contract = httpx.get(f"{url}/v2/models/breast_cancer", timeout=10).json()
        answer = infer(url, "breast_cancer", columns_of(rows, contract["parameters"]["contract"]))
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["datatype"] == "BYTES"
        right = sum(p == r["diagnosis"] for p, r in zip(output["data"], rows, strict=True))
        assert right / len(rows) >= 0.85


@pytest.mark.slow
def test_a_worse_candidate_of_another_family_is_rejected_against_the_champion(local_env):
    """The champion (gradient boosting) and a candidate of another family (a one-split
    decision tree) are scored on the same test rows: REJECT, nothing released, the GitOps
    repository as it was."""
    uc = example("penguins")
    storage = build_storage(load_settings())
    storage.write_bytes(f"{uc.landing}/penguins.csv", penguins_csv().read_bytes())
    with dg.instance_for_test() as instance:
        assert loop(uc, instance)["gate_decision"] == "PASS"
        before = deploy_commit(uc)
        stump = example(
            "penguins",
            training={
                "estimator": "sklearn.tree.DecisionTreeClassifier",
                "params": {"max_depth": 1},
            },
            gate={"threshold": 0.3},
        )
        validated = loop(stump, instance)
    assert validated["gate_decision"] == "REJECT", validated["decision"]
    assert (
        "vs champion v1" in validated["decision"] and "significantly worse" in validated["decision"]
    )
    assert "not comparable" not in validated["decision"]
    assert ModelRegistry(storage, "penguins").versions() == [1]
    assert deploy_commit(uc) == before


GUIDE = REPO / "docs/guides/your-own-data.md"


def clone(tmp_path: Path) -> Path:
    """A copy of the repository's package, docs and project file, as a user's clone."""
    return project_copy(tmp_path / "clone", "docs")


@pytest.mark.slow
def test_the_guide_runs_as_written_to_the_answer_it_shows(tmp_path):
    """docs/guides/your-own-data.md as a newcomer follows it, in a copy of the repository:
    its commands in order (the CLI, `dg check`, `dg launch`), then the
    server it starts, sent the request it shows, answering what it shows."""

    text = GUIDE.read_text()
    copy = clone(tmp_path)
    env = {**clean_env(), "PYTHONPATH": str(copy)}
    blocks = bash_blocks(text)
    serve = next(b for b in blocks if "mlops-assets serve" in b.text)
    for block in (b for b in blocks if not b.skip):
        done = subprocess.run(
            ["bash", "-c", PRELUDE + block.text],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=420,
        )
        assert done.returncode == 0, (
            f"guide line {block.line}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    assert (
        "Deploy penguins v1 to dev"
        in subprocess.run(
            ["git", "--git-dir", str(copy / ".mlops/gitops.git"), "log", "--format=%s", "main"],
            capture_output=True,
            text=True,
        ).stdout
    )

    request, answer = (json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S))
    port = str(free_port())
    server = subprocess.Popen(
        ["bash", "-c", PRELUDE + re.sub(r"\b8080\b", port, serve.text)],
        cwd=copy,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/v2/health/ready", timeout=120)
        got = httpx.post(f"{url}/v2/models/penguins/infer", json=request, timeout=30)
        assert got.status_code == 200, got.text
        assert got.json()["outputs"] == answer["outputs"]
    finally:
        stop(server)


@pytest.mark.slow
def test_your_own_training_function_is_trained_gated_released_and_served(tmp_path, monkeypatch):
    """docs/examples/penguins_ensemble/: `training.function` names fit() in the folder's
    train.py; the use case runs by the CLI in a clone and the model it returns is served."""

    copy = clone(tmp_path)
    shutil.copytree(EXAMPLES / "penguins_ensemble", copy / "mlops_assets/defs/penguins_ensemble")
    env = {**clean_env(), "PYTHONPATH": str(copy)}
    yaml_text = (EXAMPLES / "penguins_ensemble/defs.yaml").read_text()
    (land,) = [line[4:] for line in yaml_text.splitlines() if line.startswith("#   uv run")]
    run_bash(land, copy, env)
    run_bash(
        "uv run dg launch --assets 'key:\"penguins_ensemble/*\"'",
        copy,
        env,
    )
    monkeypatch.chdir(copy)
    monkeypatch.setenv("MLOPS_STORAGE_ROOT", str(copy / ".mlops"))
    storage = build_storage(load_settings())
    meta = ModelRegistry(storage, "penguins_ensemble").metadata(1)
    function = "mlops_assets.defs.penguins_ensemble.train:fit"
    assert meta["adapter"] == "function" and meta["estimator"] == function
    assert meta["metrics"]["balanced_accuracy"] >= 0.9
    rows = list(csv.DictReader(penguins_csv().open()))
    with served("penguins_ensemble") as (url, pins):
        assert pins["adapter"] == "function" and pins["estimator"] == function
        contract = httpx.get(f"{url}/v2/models/penguins_ensemble", timeout=10).json()
        answer = infer(
            url, "penguins_ensemble", columns_of(rows, contract["parameters"]["contract"])
        )
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        right = sum(p == r["species"] for p, r in zip(output["data"], rows, strict=True))
        assert right / len(rows) >= 0.9
