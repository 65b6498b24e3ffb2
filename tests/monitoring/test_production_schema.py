"""The production side speaks the table's schema: the model server under uvicorn logs raw
rows (text, numbers, nulls), feedback labels arrive in the label's own type (species
names, a regression target), the monitor's drift covers category columns (shares against
the training split's) and a regression's live RMSE has a bootstrap interval, and the
retraining batch is a landing file the row contract takes. Every figure is computed here
from the raw records."""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from datetime import UTC, datetime
from io import BytesIO

import dagster as dg
import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_assets.components.use_case import BuildOptions
from mlops_assets.datasets.tabular.rows import check_rows, parse_batch
from mlops_assets.datasets.tabular.split import read_split
from mlops_assets.monitoring.retrain import start_retraining
from mlops_assets.resources import build_gitops, build_storage
from mlops_assets.serving.app import create_app
from mlops_assets.serving.inference_log import InferenceLog, LogSettings
from mlops_assets.serving.limits import Limits
from mlops_assets.serving.loader import load_deployed
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from tests.support.examples import columns_of, diabetes_csv, example, loop, penguins_csv
from tests.support.http_servers import uvicorn_thread
from tests.support.use_cases import use_case_definitions

LOW = {"min_labelled": 40, "min_requests": 40}


@contextmanager
def logging_server(storage, name: str):
    """The deployed model, with its inference log on (full inputs)."""
    model, _ = build_gitops(load_settings()).repo((name,)).deployed("dev", name)
    log = InferenceLog(storage, name, "dev", LogSettings(enabled=True, flush_rows=20))
    with uvicorn_thread(create_app(load_deployed(model, name), Limits(), inference_log=log)) as url:
        yield url


def ask_in_tens(url: str, name: str, rows: list[dict]) -> list[tuple[str, int, object]]:
    """(request id, row, answer) for every row, sent ten rows a request."""
    contract = httpx.get(f"{url}/v2/models/{name}", timeout=10).json()["parameters"]["contract"]
    answers = []
    for start in range(0, len(rows), 10):
        part = rows[start : start + 10]
        body = {"inputs": columns_of(part, contract)}
        answer = httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30).json()
        request_id = answer["parameters"]["request_id"]
        answers += [(request_id, i, p) for i, p in enumerate(answer["outputs"][0]["data"])]
    return answers


def monitor_run(uc, instance) -> tuple[dict, dict, dict]:
    result = (
        use_case_definitions(uc)
        .resolve_job_def(f"{uc.name}_monitor")
        .execute_in_process(instance=instance, raise_on_error=False)
    )

    def metadata(step: str) -> dict:
        (event,) = [
            e
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey([uc.name, step])
        ]
        return {k: v.value for k, v in event.materialization.metadata.items()}

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return metadata("feedback"), metadata("monitor"), checks


def psi(expected, actual) -> float:
    p = np.clip(np.asarray(expected, float) / sum(expected), 1e-4, None)
    q = np.clip(np.asarray(actual, float) / sum(actual), 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.mark.slow
def test_penguins_in_production_labels_by_name_category_drift_and_a_landing_batch(local_env):
    uc = example("penguins", monitor=LOW)
    storage = build_storage(load_settings())
    storage.write_bytes(f"{uc.landing}/penguins.csv", penguins_csv().read_bytes())
    rows = list(csv.DictReader(penguins_csv().open()))
    with dg.instance_for_test() as instance:
        assert loop(uc, instance)["gate_decision"] == "PASS"
        with logging_server(storage, "penguins") as url:
            answers = ask_in_tens(url, "penguins", rows[:120])
        truth = [r["species"] for r in rows[:120]]
        good = [
            {"request_id": rid, "row": i, "label": truth[n]}
            for n, (rid, i, _) in enumerate(answers[:100])
        ]
        bad = [{"request_id": answers[100][0], "row": answers[100][1], "label": "Emperor"}]
        storage.write_bytes(
            "feedback/penguins/labels.csv", pd.DataFrame(good + bad).to_csv(index=False).encode()
        )
        feedback, monitor, checks = monitor_run(uc, instance)
        # a second candidate is also scored on the labelled production rows it never saw
        shadowed = example(
            "penguins",
            monitor=LOW,
            training={"params": {"max_iter": 30}},
            gate={"shadow": {"enabled": True, "min_labelled": 5}},
        )
        validated = loop(shadowed, instance)

    (traffic,) = [r for r in validated["evaluations"].splitlines() if "production traffic" in r]
    cells = [c.strip() for c in traffic.strip("|").split("|")]
    assert int(cells[1]) > 0 and cells[-1].startswith("paired bootstrap"), traffic
    assert feedback["accepted"] == len(good) and feedback["quarantined_rows"] == 1
    (rows_csv,) = [i.key for i in storage.list("quarantine/penguins") if i.key.endswith("rows.csv")]
    reason = pd.read_csv(BytesIO(storage.read_bytes(rows_csv)))["reason"][0]
    assert reason == "label 'Emperor' is not a class of model v1 (Adelie, Chinstrap, Gentoo)"

    # the live accuracy, from the log's answers and the labels, by name
    correct = sum(answers[n][2] == truth[n] for n in range(100))
    assert monitor["labelled"] == 100 and monitor["live_metric"] == pytest.approx(correct / 100)
    assert checks["live_metric_holds"].passed

    # drift per column; a category column's is the PSI of its shares against training's
    assert set(monitor["input_psi"]) == {
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
    }
    version = storage.read_json("datasets/penguins/latest.json")["dataset_version"]
    train = read_split(storage, Layout("penguins"), version, "train")
    islands = sorted(train["island"].dropna().unique())
    expected = [int((train["island"] == i).sum()) for i in islands] + [0]
    sent = [r["island"] for r in rows[:120]]
    actual = [sent.count(i) for i in islands] + [0]
    assert monitor["input_psi"]["island"] == pytest.approx(psi(expected, actual), abs=1e-9)
    assert monitor["input_psi"]["island"] > 0.2  # the first 120 rows are Torgersen and Biscoe

    # retraining lands the labelled rows as the landing zone takes them
    spec = uc.spec(BuildOptions())
    started = start_retraining(storage, spec, datetime.now(UTC), 7)
    assert not started.run_requests  # the landing sensor takes it from there
    landed = [i.key for i in storage.list(uc.landing) if "feedback-" in i.key]
    (key,) = landed
    text = parse_batch(storage.read_bytes(key), key, uc.dataset)
    assert len(text) == len(good) and not check_rows(text, uc.dataset).reasons.any()
    assert sorted(text["species"]) == sorted(g["label"] for g in good)
    assert set(text["year"]) == {""}  # an ignored column lands missing


@pytest.mark.slow
def test_a_regression_in_production_has_a_live_rmse_with_a_bootstrap_interval(local_env):
    uc = example("diabetes", monitor=LOW)
    storage = build_storage(load_settings())
    table = diabetes_csv()
    storage.write_bytes(f"{uc.landing}/diabetes.csv", table)
    rows = list(csv.DictReader(io.StringIO(table.decode())))[:80]
    with dg.instance_for_test() as instance:
        assert loop(uc, instance)["gate_decision"] == "PASS"
        with logging_server(storage, "diabetes") as url:
            answers = ask_in_tens(url, "diabetes", rows)
        good = [
            {"request_id": rid, "row": i, "label": rows[n]["target"]}
            for n, (rid, i, _) in enumerate(answers)
        ]
        bad = [{"request_id": answers[0][0], "row": 0, "label": "unknown"}]
        storage.write_bytes(
            "feedback/diabetes/labels.csv", pd.DataFrame(good + bad).to_csv(index=False).encode()
        )
        feedback, monitor, checks = monitor_run(uc, instance)
    assert feedback["accepted"] == len(good) and feedback["quarantined_rows"] == 1
    errors = np.array([p - float(r["target"]) for (_, _, p), r in zip(answers, rows, strict=True)])
    rmse = float(np.sqrt(np.mean(errors**2)))
    assert monitor["labelled"] == len(good) and monitor["live_metric"] == pytest.approx(rmse)
    low, high = monitor["live_ci_low"], monitor["live_ci_high"]
    assert low < rmse < high and high - low < rmse  # a bootstrap interval around it
    assert "live rmse" in checks["live_metric_holds"].description
    assert json.dumps(monitor["input_psi"])  # every column's drift, numbers and the category
    assert "sex" in monitor["input_psi"]
