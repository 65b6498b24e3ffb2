"""What one request may cost the server, and how it batches: the use case's `serving:`
block, each setting overridable by an environment variable (the chart sets them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from mlops_assets.core.config import ServingConfig
from mlops_assets.settings import overridden

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
    max_bisect_calls: int = 16
    grace_seconds: float = 20.0
    drain_seconds: float = 0.0

    @property
    def max_batch_wait_seconds(self) -> float:
        return self.max_batch_wait_ms / 1000


def limits_of(config: ServingConfig, environ: Mapping[str, str] | None = None) -> Limits:
    """The YAML's settings with the environment's overrides, checked as the YAML's are."""
    checked = overridden(config, PREFIX, "serving", environ)
    resolved = checked.model_dump()
    resolved["max_body_bytes"] = int(resolved.pop("max_body_mb") * 1024 * 1024)
    known = {f.name for f in fields(Limits)}
    return Limits(**{k: v for k, v in resolved.items() if k in known})
