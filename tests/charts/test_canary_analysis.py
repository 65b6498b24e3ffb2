"""The canary analysis of charts/model-api: its PromQL, as rendered, run by a real Prometheus
scraping the real model server on loopback under a short load with failing and refused
requests; the numbers must be what the requests make them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import helm_python as helm
import yaml

from mlops_assets.gitops.resource import TEMPLATE
from mlops_assets.serving.app import create_app
from tests.support.charts import MODEL_API, SHA, manifests
from tests.support.crd_schemas import crd_errors
from tests.support.http_servers import uvicorn_thread
from tests.support.model_servers import POISON, CountingAdapter, counting_model, infer_body, row
from tests.support.prometheus_server import prometheus, query

NAMESPACE, CANARY, STABLE = "mlops-dev", "6d4cf9c7b8", "5f7d8c9b4a"


def rendered(**values) -> list[dict]:
    chart_values = yaml.safe_load(TEMPLATE.read_text())
    chart_values["model"].update(uri="s3://models/models/digits/2/model.skops", sha256=SHA)
    chart_values["model"]["version"] = "2"
    chart_values.update(values)
    chart = helm.Chart.load(MODEL_API)
    chart.validate_schema(chart_values)
    return manifests(chart.render(chart_values, name="dev", namespace=NAMESPACE))


def _post(url: str, rows: list[list[float]]) -> int:
    request = urllib.request.Request(
        f"{url}/v2/models/digits/infer",
        data=json.dumps(infer_body(rows)).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _traffic(url: str, good: int, failing: int, refused: int, seed: int) -> dict[str, int]:
    poison = [POISON, *row(seed)[1:]]
    statuses = [_post(url, [row(seed + i)]) for i in range(good)]
    statuses += [_post(url, [poison]) for _ in range(failing)]
    statuses += [_post(url, [row(seed)[:3]]) for _ in range(refused)]  # 3 features, not 64
    return {
        "total": len(statuses),
        "5xx": sum(s >= 500 for s in statuses),
        "4xx": sum(400 <= s < 500 for s in statuses),
    }


def test_the_analysis_template_measures_the_canary_from_its_own_metrics(tmp_path):
    docs = rendered(rollout={"enabled": True}, metrics={"serviceMonitor": True})
    (template,) = [d for d in docs if d["kind"] == "AnalysisTemplate"]
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert crd_errors([template, rollout, monitor]) == [None, None, None]
    analysis = rollout["spec"]["strategy"]["canary"]["analysis"]
    assert analysis["templates"] == [{"templateName": template["metadata"]["name"]}]
    assert {a["name"] for a in analysis["args"]} == {a["name"] for a in template["spec"]["args"]}
    assert monitor["spec"]["podTargetLabels"] == ["rollouts-pod-template-hash"]
    args = {"namespace": NAMESPACE, "canary-hash": CANARY, "stable-hash": STABLE}
    metrics = {}
    for metric in template["spec"]["metrics"]:
        promql = metric["provider"]["prometheus"]["query"]
        for name, value in args.items():  # what Argo Rollouts does with {{args.*}}
            promql = promql.replace(f"{{{{args.{name}}}}}", value)
        assert "{{" not in promql
        metrics[metric["name"]] = (promql, metric["successCondition"])

    adapter = CountingAdapter(seconds=0.1)
    with uvicorn_thread(create_app(counting_model(adapter))) as url:
        # every series exists, with some history, before Prometheus first scrapes it
        _traffic(url, good=20, failing=5, refused=5, seed=1)
        target = url.removeprefix("http://")
        labels = {"namespace": NAMESPACE, "rollouts_pod_template_hash": CANARY}
        with prometheus([(target, labels)], tmp_path) as prom:
            total = f'sum(model_requests_total{{rollouts_pod_template_hash="{CANARY}"}})'
            deadline = time.monotonic() + 60
            while query(prom, total) != [30.0] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert query(prom, total) == [30.0]
            load = _traffic(url, good=30, failing=6, refused=3, seed=100)
            assert load == {"total": 39, "5xx": 6, "4xx": 3}
            deadline = time.monotonic() + 60
            while query(prom, total) != [69.0] and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.5)  # two more scrapes at the same values
            error_ratio = query(prom, metrics["error-ratio"][0])
            p99 = query(prom, metrics["p99-seconds"][0])
            fourxx = query(prom, metrics["fourxx-increase"][0])
            # another pod's hash sees none of it
            other = metrics["error-ratio"][0].replace(CANARY, "0000000000")
            assert query(prom, other) == [0.0]
    assert abs(error_ratio[0] - 6 / 39) < 0.01, error_ratio
    assert abs(fourxx[0] - 3 / 39) < 0.01, fourxx  # the stable pods answered no 4xx
    assert 0.1 < p99[0] <= 0.25, p99  # each predict sleeps 0.1 s: its histogram bucket
    # the default thresholds: this canary fails on errors, not on latency or refusals
    assert metrics["error-ratio"][1] == "result[0] <= 0.01" and error_ratio[0] > 0.01
    assert metrics["p99-seconds"][1] == "isNaN(result[0]) || result[0] <= 0.5"
    assert metrics["fourxx-increase"][1] == "result[0] <= 0.1" and fourxx[0] <= 0.1
