"""What a released model takes: rows as they landed, and the transform to its input.

The transform the DataOps `transform` step applies (scaling and column order for tabular
data; landmark selection, resampling and padding for LSFB clips) is part of the model: it
is written into the model's metadata as a versioned *request contract*, and the model
server applies exactly these functions, in numpy and outside the model graph, to what a
client sends. Each kind's `contract` module holds its functions, and its DataOps steps
call the same ones, so training and serving cannot drift apart. The contract is data: its
`kind` only picks one of the registered kinds (`mlops_assets.datasets`), never a module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_assets.datasets import kind_for_contract
from mlops_assets.errors import MlopsError

CONTRACT_VERSION = 1


class ContractError(MlopsError, ValueError):
    """A request breaks the model's input contract; the message names the input or feature."""


def allows_missing(spec: dict[str, Any]) -> bool:
    return "missing" in spec


def input_specs(contract: dict[str, Any], given: list[str]) -> list[dict[str, Any]]:
    """The inputs a request must hold: the contract's own, or one of its `alternatives`
    (a table's `rows` tensor) when the request names exactly its inputs."""
    for alternative in contract.get("alternatives", []):
        if sorted(given) == sorted(spec["name"] for spec in alternative):
            return alternative
    return contract["inputs"]


def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """What the model takes, from what the contract's inputs hold (already shape-checked):
    the kind that wrote the contract transforms it."""
    if contract.get("version") != CONTRACT_VERSION:
        raise ContractError(f"request contract version {contract.get('version')} is not supported")

    try:
        kind = kind_for_contract(str(contract.get("kind")))
    except KeyError as error:
        raise ContractError(str(error.args[0])) from None
    return kind.to_model_input(contract, arrays)
