"""The reference pages generated from the code at build time (mkdocs-gen-files): the
environment variables from their declaration, and the use case YAML from the component
models, so neither page can drift from what the code reads."""

import inspect
import types
import typing
from collections.abc import Iterator

import mkdocs_gen_files
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mlops_assets.components.lsfb import LsfbUseCase
from mlops_assets.components.tabular import TabularUseCase
from mlops_assets.settings import VARIABLES

KINDS = {
    "mlops_assets.components.tabular.TabularUseCase": TabularUseCase,
    "mlops_assets.components.lsfb.LsfbUseCase": LsfbUseCase,
}


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def variables_page() -> str:
    secret = " (a secret: from the environment or a Kubernetes secret, never logged)"
    rows = [
        f"| `{v.name}` | {f'`{v.default}`' if v.default else '–'} | {cell(v.meaning)}"
        f"{secret if v.secret else ''} |"
        for v in VARIABLES.values()
    ]
    return (
        "# Environment variables\n\n"
        "Generated from `EnvironmentVariables` in `mlops_assets/settings.py`, the one place the\n"
        "project declares and reads them; a wrong value fails at definitions load naming the\n"
        "variable. What they are for, grouped, is on [Configuration](configuration.md).\n\n"
        "| variable | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (a block, an optional block, a list of them)."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += models_in(arg)
    return found


def type_name(annotation: object) -> str:
    if inspect.isclass(annotation) and not typing.get_args(annotation):
        return "block" if issubclass(annotation, BaseModel) else annotation.__name__
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " or ".join(type_name(a) for a in typing.get_args(annotation))
    origin = typing.get_origin(annotation)
    args = ", ".join(type_name(a) for a in typing.get_args(annotation))
    return f"{getattr(origin, '__name__', origin)}[{args}]" if origin else str(annotation)


def default_of(field: typing.Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "required"
    if isinstance(field.default, BaseModel) or field.default in ("", None):
        return ""
    return f"`{field.default!r}`"


def first_sentence(model: type[BaseModel]) -> str:
    doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")  # its own, not dg.Model's
    return cell(doc.split("\n\n")[0])


def rows(model: type[BaseModel], prefix: str, seen: set[type]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = [m for m in models_in(field.annotation) if m not in seen]
        meaning = field.description or (first_sentence(nested[0]) if nested else "")
        yield f"| `{key}` | {type_name(field.annotation)} | {default_of(field)} | {cell(meaning)} |"
        for inner in nested:
            yield from rows(inner, f"{key}.", seen | {inner})


def use_case_page() -> str:
    parts = [
        "# The use case YAML\n\n"
        "Generated from the component models: what `defs.yaml` under `mlops_assets/defs/<name>/`\n"
        "may say, for each `type:`, under `attributes:`. Keys not listed are refused at load\n"
        "(`mlops-assets check` names the file, line and key). Values may use `{{ env('NAME') }}`.\n"
    ]
    for kind, model in KINDS.items():
        parts.append(
            f"\n## `{kind}`\n\n{first_sentence(model)}\n\n"
            "| key | type | default | meaning |\n|---|---|---|---|\n"
            + "\n".join(rows(model, "", {model}))
            + "\n"
        )
    return "".join(parts)


with mkdocs_gen_files.open("reference/environment-variables.md", "w") as page:
    page.write(variables_page())
with mkdocs_gen_files.open("reference/use-case-yaml.md", "w") as page:
    page.write(use_case_page())
