"""One line per use case that did not load: `file:line: key: what is wrong`.

Dagster reports a component that fails to load as a tree of the whole project and the
pydantic errors of every union branch it tried (about 80 lines); a user who misspelt one key
wants the file, the line and the key. The project loads each use case folder on its own, so
a broken one becomes one such line and stops no other use case.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

_AT = re.compile(r"^(?P<key>.*?) at (?P<file>[^\s]+?):(?P<line>\d+)$")
_TEMPLATE_BRANCH = {"string_type", "str_type"}
"""The error a Resolvable field's other union branch (a template string) adds to each."""


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions it was raised from, outermost first (a loop stops it)."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not e for e in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _validation_error(error: BaseException) -> ValidationError | None:
    return next((e for e in _chain(error) if isinstance(e, ValidationError)), None)


_SITE = re.compile(r"^(?P<file>\S+\.ya?ml):(?P<line>\d+) - (?P<key>\S+)")


def _resolution_site(error: BaseException) -> tuple[str, str] | None:
    """(`file:line`, key) of the block Dagster was resolving when a nested model failed."""
    for link in _chain(error):
        match = _SITE.match(str(link))
        if match:
            key = ".".join(p for p in match["key"].split(".") if p != "attributes")
            return f"{match['file']}:{match['line']}", key
    return None


def _key(loc: tuple) -> tuple[str, str | None]:
    """The dotted key a pydantic location names (model class names left out) and the
    `file:line` Dagster appends to its last part, if any."""
    parts, where = [], None
    for part in loc:
        text = str(part)
        match = _AT.match(text)
        if match:
            text, where = match["key"], f"{match['file']}:{match['line']}"
        for piece in text.split("."):
            if piece and not piece[0].isupper() and piece not in ("str", "attributes"):
                parts.append(piece)
    return ".".join(parts), where


def one_line(error: BaseException, folder: Path) -> str:
    """`error`, raised loading the use case in `folder`, as `file:line: key: message`."""
    found = _validation_error(error)
    yaml_file = folder / "defs.yaml"
    if found is not None:
        outer = _resolution_site(error)  # a nested block's: "<file>:<line> - attributes.gate"
        details = [e for e in found.errors() if e["type"] not in _TEMPLATE_BRANCH]
        for detail in details or found.errors():
            key, where = _key(detail["loc"])
            if outer is not None and where is None:
                where = outer[0]
                key = ".".join(k for k in (outer[1], key) if k)
            where = _line_of_key(where, key) if where else str(yaml_file)
            return f"{where}: {key or '(top level)'}: {detail['msg']}"
    root = _root(error)
    mark = getattr(root, "problem_mark", None)
    if mark is not None:  # a YAML syntax error (in whichever file Dagster was parsing)
        problem = getattr(root, "problem", "") or "not valid YAML"
        # an unclosed bracket or quote is found lines later: name where it was opened
        opened, context = getattr(root, "context_mark", None), getattr(root, "context", "")
        if opened is not None and context:
            mark, problem = opened, f"{context}: {problem}"
        return f"{getattr(mark, 'name', '') or yaml_file}:{mark.line + 1}: (syntax): {problem}"
    message = str(_root(error)).strip().splitlines()
    return f"{yaml_file}: {type(_root(error)).__name__}: {message[0] if message else ''}"


def _line_of_key(where: str, key: str) -> str:
    """Dagster names the line of the mapping that holds a bad key; the key's own line is
    the first at or after it that starts with the key's last part."""
    path, _, line = where.rpartition(":")
    last = key.rsplit(".", 1)[-1]
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return where
    pattern = re.compile(rf"\s*{re.escape(last)}\s*:")
    for number in range(int(line), len(lines) + 1):
        if pattern.match(lines[number - 1]):
            return f"{path}:{number}"
    return where


def _root(error: BaseException) -> BaseException:
    return _chain(error)[-1]
