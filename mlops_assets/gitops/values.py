"""Edit the model keys of a Helm values file without touching anything else.

ruamel.yaml finds where each key's value sits; only that scalar's text is
replaced, in the quoting style it had, so comments, order, quoting, indentation
and unrelated keys survive byte for byte and a diff shows only the changed lines.
"""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

from ruamel.yaml import YAML

from mlops_assets.errors import MlopsError

_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_./:@+-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


class ValuesFileError(MlopsError, ValueError):
    """The values file cannot be read or edited as expected; the message says where."""


def _load(text: str, path: str):

    try:
        return YAML(typ="rt").load(StringIO(text))
    except Exception as error:
        raise ValuesFileError(f"{path}: not valid YAML: {error}") from error


def read_model(text: str, path: str = "values.yaml") -> dict[str, Any]:
    """The `model:` mapping of a values file (empty when absent)."""
    return read_section(text, "model", path)


def read_section(text: str, section: str, path: str = "values.yaml") -> dict[str, Any]:
    """A top-level mapping of a values file (empty when absent or not a mapping)."""
    document = _load(text, path) or {}
    found = document.get(section) if isinstance(document, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _double_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render(value: str, old_token: str, where: str) -> str:
    """`value` as a YAML scalar that reads back as exactly that string."""
    if _CONTROL.search(value):
        raise ValuesFileError(f"{where}: refusing a value with a line break or control character")
    if old_token.startswith("'"):
        return "'" + value.replace("'", "''") + "'"
    if old_token.startswith('"') or not _PLAIN_SAFE.fullmatch(value) or not _reads_as(value, value):
        return _double_quoted(value)
    return value


def _reads_as(token: str, value: str) -> bool:
    """A plain scalar can still read as a number, a boolean or null (`0`, `true`, `~`)."""
    return YAML(typ="safe").load(f"k: {token}\n") == {"k": value}


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
        where = f"{path}: {section}.{key}"
        lines[line_no] = body[:col] + _render(str(value), old_token, where) + body[end:] + newline
    if missing:
        # New keys go right after the last existing key of `model:`, at its indentation.
        keys = list(model.keys())
        last_line, _ = model.lc.key(keys[-1]) if keys else (model.lc.line, 0)
        indent = " " * model.lc.key(keys[-1])[1] if keys else "  "
        inserted = [
            f"{indent}{k}: {_render(str(v), '', f'{path}: {section}.{k}')}\n" for k, v in missing
        ]
        if last_line + 1 <= len(lines) and not lines[last_line].endswith("\n"):
            lines[last_line] += "\n"
        lines[last_line + 1 : last_line + 1] = inserted
    edited = "".join(lines)
    _check_edit(document, _load(edited, path), section, updates, path)
    return edited


def _check_edit(before, after, section: str, updates: dict[str, str], path: str) -> None:
    """The edit changed exactly the keys asked for, to exactly the values asked for: a
    value can never add or change any other key of the file."""
    after = after or {}
    wanted = {k: str(v) for k, v in {**before[section], **updates}.items()}
    got = {k: str(v) for k, v in (after.get(section) or {}).items()}
    others_before = {k: v for k, v in before.items() if k != section}
    others_after = {k: v for k, v in after.items() if k != section}
    if got != wanted or others_after != others_before:
        raise ValuesFileError(f"{path}: the edit of {section}.* would change other keys; refused")
