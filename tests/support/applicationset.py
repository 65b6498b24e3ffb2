"""What Argo CD's ApplicationSet controller makes of charts/argocd's ApplicationSet, for a
checkout of a GitOps repository: its matrix of git `files` generators evaluated as the
Argo CD docs define them (params `path.path`, `path.basename`, `path.segments` and the
file's YAML, `pathParamPrefix` nesting the path under a key; a duplicate key between the two
children is an error), every string of the template rendered as a Go template with Sprig
functions (by the Helm SDK's engine: the same text/template and Sprig) and `templatePatch`
rendered and merged in."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

SEPARATOR = "\n@@mlops-assets-split@@\n"


def render_strings(strings: list[str], params: dict) -> list[str]:
    """Each string rendered as a Go template over `params` (one Helm render for all)."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp)
        (chart / "templates").mkdir()
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: appset\nversion: 0.1.0\n")
        body = SEPARATOR.join(f"{{{{ with .Values.p }}}}{s}{{{{ end }}}}" for s in strings)
        (chart / "templates" / "strings.txt").write_text(body)
        rendered = helm.Chart.load(chart).render({"p": params}, name="appset", namespace="x")
    return next(iter(rendered.values())).split(SEPARATOR)


def _git_files(generator: dict, params: dict, checkout: Path) -> list[dict]:
    (pattern,) = [f["path"] for f in generator["files"]]
    (pattern,) = render_strings([pattern], params) if "{{" in pattern else [pattern]
    found = []
    for path in sorted(checkout.glob(pattern)):  # `*` does not cross folders, as in Argo CD
        if not path.is_file():
            continue
        relative = path.relative_to(checkout).as_posix()
        folder = relative.rsplit("/", 1)[0]
        where = {
            "path": folder,
            "basename": folder.rsplit("/", 1)[-1],
            "filename": relative.rsplit("/", 1)[-1],
            "segments": folder.split("/"),
        }
        item = dict(yaml.safe_load(path.read_text()) or {})
        prefix = generator.get("pathParamPrefix")
        item[prefix or "path"] = {"path": where} if prefix else where
        found.append(item)
    return found


def _combine(a: dict, b: dict) -> dict:
    for key in a.keys() & b.keys():
        if a[key] != b[key]:
            raise ValueError(f"matrix: duplicate key {key!r} with different values")
    return {**a, **b}


def _merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _strings(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _strings(value, found)
    elif isinstance(node, list):
        for value in node:
            _strings(value, found)
    elif isinstance(node, str) and "{{" in node:
        found.append(node)


def _replace(node: Any, rendered: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _replace(v, rendered) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, rendered) for v in node]
    if isinstance(node, str) and node in rendered:
        return rendered[node]
    return node


def generate(appset: dict, checkout: Path) -> list[dict]:
    """The Applications `appset` makes from the GitOps repository checked out at `checkout`."""
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    (matrix,) = spec["generators"]
    first, second = (g["git"] for g in matrix["matrix"]["generators"])
    apps = []
    for outer in _git_files(first, {}, checkout):
        for inner in _git_files(second, outer, checkout):
            params = _combine(outer, inner)
            template = spec["template"]
            strings: list[str] = []
            _strings(template, strings)
            patch = spec.get("templatePatch", "")
            values = render_strings([*strings, patch], params)
            for text, value in zip(strings, values[:-1], strict=True):
                if not value:  # missingkey=error: a key the params lack
                    raise ValueError(f"{text!r} renders empty for {params}")
            app = _replace(template, dict(zip(strings, values[:-1], strict=True)))
            app = _merge(app, yaml.safe_load(values[-1]) or {})
            app["metadata"]["namespace"] = appset["metadata"]["namespace"]
            apps.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **app})
    return apps
