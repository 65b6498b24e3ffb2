"""What one request may cost the server, and how it batches: the use case's `serving:`
block, each setting overridable by an environment variable (the chart sets them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from pydantic import ValidationError

from mlops_assets.components.config import ServingConfig
from mlops_assets.settings import SettingsError, env

PREFIX = "MLOPS_SERVING_"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_rows: int = 1024
    max_depth: int = 8
    read_timeout_seconds: float = 10.0
    batching: bool = True
    max_batch_rows: int = 256
    max_batch_wait_ms: float = 0.0
    grace_seconds: float = 20.0
    drain_seconds: float = 0.0

    @property
    def max_batch_wait_seconds(self) -> float:
        return self.max_batch_wait_ms / 1000


def variable(name: str) -> str:
    """The environment variable of a setting of the `serving:` block."""
    return PREFIX + name.upper()


SETTINGS = tuple(ServingConfig.model_fields)


def limits_of(config: ServingConfig, environ: Mapping[str, str] | None = None) -> Limits:
    """The YAML's settings with the environment's overrides, checked as the YAML's are."""
    values = config.model_dump()
    for name in SETTINGS:
        raw = env(variable(name), environ)
        if raw is not None:
            values[name] = raw
    try:
        checked = ServingConfig.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "serving"
        raise SettingsError(
            f"{variable(name)} (or serving.{name} of the use case): {values.get(name)!r}: "
            f"{first['msg']}"
        ) from None
    resolved = checked.model_dump()
    resolved["max_body_bytes"] = int(resolved.pop("max_body_mb") * 1024 * 1024)
    known = {f.name for f in fields(Limits)}
    return Limits(**{k: v for k, v in resolved.items() if k in known})
