"""Helm's conventions for every chart of charts/: a values schema, a `.helmignore`, a
NOTES.txt that says what was installed and how to reach and check it, and a README whose
values table is generated from the schema and values.yaml (never stale); and the `helm`
the docs' blocks call renders what the Helm SDK renders."""

from __future__ import annotations

import shutil
import subprocess
import sys

import helm_python as helm
import yaml

from tests.support.charts import ARGOCD, MODEL_API, SHA, manifests
from tests.support.helm_cli import main as helm_cli
from tests.support.processes import REPO

CHARTS = sorted(p.parent for p in (REPO / "charts").rglob("Chart.yaml"))
GENERATOR = REPO / "docs/_gen/chart_readmes.py"
SECRETS = REPO / "charts/dagster/external-secrets"


def test_every_chart_has_its_schema_helmignore_notes_and_readme():
    assert {c.name for c in CHARTS} == {"model-api", "argocd", "external-secrets"}
    for chart in CHARTS:
        for name in ("values.schema.json", ".helmignore", "templates/NOTES.txt", "README.md"):
            assert (chart / name).is_file(), (chart, name)
        assert "helm template" in (chart / "README.md").read_text()


def test_the_readmes_are_what_the_schemas_generate_and_a_stale_one_is_found(tmp_path):
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True)
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "charts", copy / "charts")
    (copy / "docs/_gen").mkdir(parents=True)
    shutil.copy(GENERATOR, copy / "docs/_gen")
    schema = copy / "charts/argocd/values.schema.json"
    schema.write_text(schema.read_text().replace("where Argo CD runs", "where Argo CD lives"))
    stale = subprocess.run(
        [sys.executable, str(copy / "docs/_gen/chart_readmes.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert stale.returncode == 1 and "charts/argocd" in stale.stderr
    assert "charts/model-api" not in stale.stderr
    readme = (MODEL_API / "README.md").read_text()
    assert "| `model.sha256` | string |" in readme and "| `serving.maxRows` |" in readme


def notes(chart, values=None, **release) -> str:
    rendered = helm.Chart.load(chart).render(values or {}, **release)
    (text,) = [t for name, t in rendered.items() if name.endswith("/NOTES.txt")]
    return text


def test_the_notes_say_what_was_installed_and_how_to_reach_and_check_it():
    deployed = {
        "model": {"version": "7", "uri": "s3://m/models/digits/7/model.joblib", "sha256": SHA},
        "service": {"port": 80},
    }
    text = notes(MODEL_API, deployed, name="prod", namespace="mlops-prod")
    assert "serves digits v7 in mlops-prod" in text
    assert "kubectl -n mlops-prod port-forward svc/prod-digits 8080:80" in text
    assert "curl -s localhost:8080/v2/models/digits" in text and 'must say "7"' in text
    assert "Nothing to serve yet" not in text
    empty = notes(MODEL_API, name="dev", namespace="mlops-dev")
    assert "Nothing to serve yet: model.uri is empty" in empty

    platform = notes(ARGOCD, name="mlops", namespace="argocd")
    assert "mlops-dev, mlops-staging, mlops-prod" in platform
    assert "kubectl -n argocd get applicationsets,applications" in platform

    secrets = notes(SECRETS, name="dagster-external-secrets", namespace="dagster")
    assert "mlops-s3-credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in secrets
    assert "mlops-gitops-ssh" not in secrets  # disabled by default: not made, not listed


def test_the_docs_helm_renders_what_the_sdk_renders(tmp_path, capsys):
    values = tmp_path / "dev.yaml"
    values.write_text(yaml.safe_dump({"model": {"version": "3", "uri": "s3://m/x", "sha256": SHA}}))
    assert helm_cli(["template", "dev", str(MODEL_API), "-n", "mlops-dev", "-f", str(values)]) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    expected = manifests(
        helm.Chart.load(MODEL_API).render(
            yaml.safe_load(values.read_text()), name="dev", namespace="mlops-dev"
        )
    )
    assert sorted(map(str, printed)) == sorted(map(str, expected))
    assert any(d["kind"] == "Deployment" for d in printed)
    assert helm_cli(["lint", "--strict", str(ARGOCD)]) == 0
