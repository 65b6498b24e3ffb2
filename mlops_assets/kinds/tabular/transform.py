"""transform: stateless, per-row formatting; nothing here is fitted on data.

Features become float32 divided by a fixed constant, and each row gets an id
derived from its batch and its content, so the same row always has the same id.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from mlops_assets.kinds.tabular.catalog import load_catalog, staged_ids
from mlops_assets.kinds.tabular.contract import scale_rows
from mlops_assets.kinds.tabular.dataset import TabularDataset
from mlops_assets.storage import Layout, ObjectStorage

STAGE = "transform"


def row_id(batch_id: str, content_hash: str) -> str:
    return hashlib.blake2b(f"{batch_id}:{content_hash}".encode(), digest_size=8).hexdigest()


def transform_frame(clean: pd.DataFrame, batch_id: str, dataset: TabularDataset) -> pd.DataFrame:
    columns = dataset.features.columns
    # the function the model server applies to a request's rows (model_input.py)
    out = pd.DataFrame(scale_rows(clean[columns].to_numpy(), dataset.scale), columns=columns)
    out.insert(0, "row_id", [row_id(batch_id, h) for h in clean["content_hash"]])
    out[dataset.label.column] = clean[dataset.label.column].astype("int64").to_numpy()
    return out


def run_transform(storage: ObjectStorage, layout: Layout, dataset: TabularDataset) -> list[dict]:
    """Transform each cleaned batch not transformed yet; returns batch_id and rows per batch."""
    cleaned = staged_ids(storage, layout, "clean")
    done = staged_ids(storage, layout, STAGE)
    processed = []
    for batch in load_catalog(storage, layout):
        batch_id = batch["batch_id"]
        if batch_id in done or batch_id not in cleaned:
            continue
        clean = storage.read_parquet(layout.staged("clean", batch_id, "parquet"))
        out = transform_frame(clean, batch_id, dataset)
        storage.write_parquet(layout.staged(STAGE, batch_id, "parquet"), out)
        processed.append({"batch_id": batch_id, "file": batch["source"], "rows": len(out)})
    return processed
