"""Edit the model keys of a Helm values file without touching anything else.

ruamel.yaml finds where each key's value sits; only that scalar's text is
replaced, in the quoting style it had, so comments, order, quoting, indentation
and unrelated keys survive byte for byte and a diff shows only the changed lines.
"""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


class ValuesFileError(ValueError):
    """The values file cannot be read or edited as expected; the message says where."""


def _load(text: str, path: str):
    from ruamel.yaml import YAML

    try:
        return YAML(typ="rt").load(StringIO(text))
    except Exception as error:
        raise ValuesFileError(f"{path}: not valid YAML: {error}") from error


def read_model(text: str, path: str = "values.yaml") -> dict[str, Any]:
    """The `model:` mapping of a values file (empty when absent)."""
    document = _load(text, path) or {}
    model = document.get("model") or {}
    return {k: v for k, v in model.items()}


def _render(value: str, old_token: str) -> str:
    if old_token.startswith('"'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if old_token.startswith("'"):
        return "'" + value.replace("'", "''") + "'"
    return value if _PLAIN_SAFE.match(value) and not value.isdigit() else f'"{value}"'


def _token_end(line: str, start: int) -> int:
    """End of the scalar that starts at `start`: a closing quote, or before ` #` / EOL."""
    if line[start : start + 1] in ("'", '"'):
        quote = line[start]
        i = start + 1
        while i < len(line):
            if line[i] == "\\" and quote == '"':
                i += 2
                continue
            if line[i] == quote:
                if quote == "'" and line[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        raise ValuesFileError(f"unterminated quoted value: {line.strip()}")
    comment = line.find(" #", start)
    end = len(line) if comment < 0 else comment
    return len(line[:end].rstrip()) if line[:end].rstrip() else start


def set_model(text: str, updates: dict[str, str], path: str = "values.yaml") -> str:
    """`text` with `model.<key>` set to each value (as strings); the rest unchanged."""
    return set_keys(text, "model", updates, path)


def set_keys(text: str, section: str, updates: dict[str, str], path: str = "values.yaml") -> str:
    """`text` with `<section>.<key>` set to each value (as strings); the rest unchanged."""
    document = _load(text, path)
    if document is None or section not in document or document[section] is None:
        raise ValuesFileError(f"{path}: no `{section}:` mapping to update")
    model = document[section]
    lines = text.splitlines(keepends=True)
    missing = []
    for key, value in updates.items():
        if key not in model:
            missing.append((key, value))
            continue
        if isinstance(model[key], dict | list):
            raise ValuesFileError(f"{path}: {section}.{key} is not a scalar")
        line_no, col = model.lc.value(key)
        line = lines[line_no]
        body = line.rstrip("\r\n")
        newline = line[len(body) :]
        end = _token_end(body, col)
        old_token = body[col:end]
        lines[line_no] = body[:col] + _render(str(value), old_token) + body[end:] + newline
    if missing:
        # New keys go right after the last existing key of `model:`, at its indentation.
        keys = list(model.keys())
        last_line, _ = model.lc.key(keys[-1]) if keys else (model.lc.line, 0)
        indent = " " * model.lc.key(keys[-1])[1] if keys else "  "
        inserted = [f"{indent}{k}: {_render(str(v), '')}\n" for k, v in missing]
        if last_line + 1 <= len(lines) and not lines[last_line].endswith("\n"):
            lines[last_line] += "\n"
        lines[last_line + 1 : last_line + 1] = inserted
    return "".join(lines)
