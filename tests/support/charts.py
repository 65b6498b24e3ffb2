"""The Helm charts the tests render, the Kubernetes release they validate against, and how
a rendered manifest is validated (core kinds against Kubernetes' schemas, custom ones
against their CRDs')."""

from __future__ import annotations

import kubernetes_validate
import yaml

from tests.support.crd_schemas import crd_errors, is_custom
from tests.support.processes import REPO

MODEL_API = REPO / "charts" / "model-api"
ARGOCD = REPO / "charts" / "argocd"
K8S = kubernetes_validate.latest_version()
SHA = "ab" * 32


def manifests(rendered: dict[str, str]) -> list[dict]:
    """The rendered Kubernetes objects; NOTES.txt is what `helm install` prints, not one."""
    return [
        doc
        for name, text in rendered.items()
        if not name.endswith("/NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def validate(doc: dict) -> None:
    """Core kinds against Kubernetes' schemas; custom ones against their CRDs' (and a
    Rollout's pod template as a Deployment's too)."""
    if is_custom(doc):
        assert crd_errors([doc]) == [None], (doc["kind"], crd_errors([doc]))
        if doc["kind"] != "Rollout":
            return
    if doc["kind"] == "Rollout":
        doc = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": doc["metadata"],
            "spec": {k: v for k, v in doc["spec"].items() if k != "strategy"},
        }
    kubernetes_validate.validate(doc, K8S, strict=True)
