"""`helm template` and `helm lint` for the docs' bash blocks, through the Helm SDK the chart
tests render with (Helm's own Go code, bound for Python): this machine has no helm binary,
so the docs test puts this where `helm` is called. Output as helm prints it: each rendered
template after `# Source:`, NOTES.txt left out."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import helm_python as helm
import yaml


def _set(values: dict[str, Any], assignment: str) -> None:
    """`--set a.b=c` as helm reads it (true/false and integers typed, the rest strings)."""
    path, _, raw = assignment.partition("=")
    value: Any = {"true": True, "false": False}.get(raw, int(raw) if raw.isdigit() else raw)
    *parents, last = path.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[last] = value


def _merged(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """A later values file over an earlier one, maps merged key by key, as helm does."""
    out = dict(base)
    for key, value in more.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="helm")
    commands = parser.add_subparsers(dest="command", required=True)
    template = commands.add_parser("template")
    template.add_argument("name")
    template.add_argument("chart")
    template.add_argument("-n", "--namespace", default="default")
    template.add_argument("-f", "--values", action="append", default=[])
    template.add_argument("--set", action="append", default=[])
    template.add_argument("--show-only", action="append", default=[])
    lint = commands.add_parser("lint")
    lint.add_argument("--strict", action="store_true")
    lint.add_argument("chart")
    args = parser.parse_args(argv)
    if args.command == "lint":
        report = helm.lint(args.chart, strict=args.strict)
        for message in report["messages"]:
            print(f"[{message['severity']}] {message['path']}: {message['error']}")
        print(f"1 chart(s) linted, {len(report['errors'])} chart(s) failed")
        return 1 if report["errors"] else 0
    values: dict[str, Any] = {}
    for path in args.values:
        with open(path) as file:
            values = _merged(values, yaml.safe_load(file) or {})
    for assignment in args.set:
        _set(values, assignment)
    rendered = helm.Chart.load(args.chart).render(values, name=args.name, namespace=args.namespace)
    for source, text in sorted(rendered.items()):
        relative = source.split("/", 1)[1]
        if source.endswith("/NOTES.txt") or not text.strip():
            continue
        if args.show_only and relative not in args.show_only:
            continue
        print(f"---\n# Source: {source}\n{text.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
