"""The LSFB use case as a small CPU test runs it: the shipped YAML with overrides, its
definitions, and a clip as a request to the model server."""

from __future__ import annotations

import copy
import io

import dagster as dg
import numpy as np
import pandas as pd
import yaml

from mlops_assets.components.lsfb import LsfbUseCase
from mlops_assets.resources import environment_definitions
from mlops_assets.settings import load_settings
from tests.support.processes import REPO

DEFS = REPO / "mlops_assets/defs/lsfb/defs.yaml"
# The shipped YAML with what a small CPU test needs: raw poses (NaN to fill, a clip with
# nothing detected to quarantine), the 12 common signs of the generated data (the 2 rare
# ones fall outside top-n), a small model, and a gate the learnable signal must reach.
OVERRIDES = {
    "dataset": {"poses": "raw", "top_n": 12, "shard_size": 64},
    "training": {
        "params": {
            "units": 32,
            "dense": 64,
            "batch_size": 16,
            "learning_rate": 0.003,
            "epochs": 40,
            "patience": 8,
        }
    },
    "gate": {"threshold": 0.9},
    "monitor": {"min_labelled": 5, "min_requests": 5},
}


def merged(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def lsfb_definitions(overrides: dict = OVERRIDES) -> dg.Definitions:
    attributes = merged(yaml.safe_load(DEFS.read_text())["attributes"], overrides)
    use_case = LsfbUseCase.from_attributes_dict(attributes=attributes)
    return dg.Definitions.merge(use_case.build_defs(None), environment_definitions(load_settings()))


def clip_request(storage, clips: pd.DataFrame, clip_id: str) -> list:
    """One clip as LSFB-ISOL stores it (each landmark set's frames, NaN where nothing was
    detected), as the inputs of an OIP request."""
    import tritonclient.http as httpclient

    tensors = []
    for landmark_set in ("pose", "left_hand", "right_hand"):
        key = clips.loc[clip_id, f"key_{landmark_set}"]
        array = np.load(io.BytesIO(storage.read_bytes(key))).astype("float32")
        tensor = httpclient.InferInput(landmark_set, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=True)
        tensors.append(tensor)
    return tensors


def shards_of_test_split(storage, layout, manifest):
    from mlops_assets.datasets.lsfb.shards import read_shards

    return read_shards(storage, manifest["splits"]["test"]["shards"])
