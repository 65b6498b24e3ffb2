"""transform: stateless, per-row formatting; nothing here is fitted on data.

Features become float32 divided by a fixed constant, and each row gets an id
derived from its batch and its content, so the same row always has the same id.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_assets.datasets.tabular.catalog import advance_cursor, new_segments, read_cursor
from mlops_assets.datasets.tabular.clean_outputs import output_schemas
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.contract import scale_rows
from mlops_assets.datasets.tabular.landed import parquet_file
from mlops_assets.storage import Layout, ObjectStorage

STAGE = "transform"


def row_id(batch_id: str, content_hash: str) -> str:
    return hashlib.blake2b(f"{batch_id}:{content_hash}".encode(), digest_size=8).hexdigest()


def transform_frame(clean: pd.DataFrame, batch_id: str, dataset: TabularData) -> pd.DataFrame:
    """An all-numeric table: features / scale as float32. A table declared column by column
    keeps its typed values: its preprocessing is fitted, so it is the model's pipeline's."""
    columns = dataset.features.columns
    if dataset.typed:
        out = clean[columns].reset_index(drop=True).copy()
    else:
        # the function the model server applies to a request's rows (model_input.py)
        out = pd.DataFrame(scale_rows(clean[columns].to_numpy(), dataset.scale), columns=columns)
    out.insert(0, "row_id", [row_id(batch_id, h) for h in clean["content_hash"]])
    out[dataset.label.column] = clean[dataset.label.column].to_numpy()
    return out


def transformed_schema(dataset: TabularData) -> pa.Schema:
    """The transformed rows' columns and types (fixed, so every chunk writes the same)."""
    clean = output_schemas(dataset)["clean"]
    fields = [pa.field("row_id", pa.string())]
    for name in dataset.features.columns:
        kind = clean.field(name).type
        fields.append(pa.field(name, kind if dataset.typed else pa.float32()))
    return pa.schema([*fields, clean.field(dataset.label.column)])


def transform_file(
    storage: ObjectStorage, source: str, output: str, batch_id: str, dataset: TabularData
) -> int:
    """A batch's clean rows transformed a row group at a time into a local file, stored
    whole at `output` once written; returns the rows."""
    schema = transformed_schema(dataset)
    rows = 0
    with tempfile.TemporaryDirectory(prefix="mlops-transform-") as folder:
        path = Path(folder) / "out.parquet"
        with storage.local_file(source) as clean, pq.ParquetWriter(path, schema) as writer:
            for batch in parquet_file(clean).iter_batches(batch_size=dataset.chunk_rows):
                frame = transform_frame(batch.to_pandas(), batch_id, dataset)
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
                rows += len(frame)
        storage.put_file(output, path)
    return rows


def run_transform(storage: ObjectStorage, layout: Layout, dataset: TabularData) -> list[dict]:
    """Transform each batch cataloged since transform's cursor and cleaned; returns batch_id
    and rows per batch. The cursor stops before the first batch not cleaned yet."""
    start = read_cursor(storage, layout, STAGE).get("segment", "")
    processed = []
    done_through = start
    waiting = False
    for segment, batches in new_segments(storage, layout, start):
        for batch in batches:
            batch_id = batch["batch_id"]
            output = layout.staged(STAGE, batch_id, "parquet")
            if storage.exists(output):
                continue
            cleaned = layout.staged("clean", batch_id, "parquet")
            if not storage.exists(cleaned):
                waiting = True
                continue
            rows = transform_file(storage, cleaned, output, batch_id, dataset)
            processed.append({"batch_id": batch_id, "file": batch["source"], "rows": rows})
        if not waiting:
            done_through = segment
    if done_through != start:
        advance_cursor(storage, layout, STAGE, {"segment": done_through})
    return processed
