"""Reading a landing file in chunks, so a step holds `dataset.memory_mb`, not the file.

Parquet is read a record batch at a time (pyarrow; at most a row group at once) with
its own types; CSV is streamed by pyarrow's reader with every column as text, as it
was written. Each chunk carries the file's row number of its first row, so a reason
names the file's own row. pyarrow over DuckDB or Polars: it is already what pandas
reads Parquet with, and its streaming readers are all a step needs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlops_assets.datasets.tabular.config import FORMATS, TabularData
from mlops_assets.datasets.tabular.rows import BatchRejected, column_problems


@dataclass
class Chunk:
    first_row: int
    """The file's row number of the chunk's first row (1-based, data rows)."""
    frame: pd.DataFrame
    """Contract columns in contract order: Parquet values with their types, CSV text."""


def chunks(path: Path, name: str, dataset: TabularData, rows: int | None = None) -> Iterator[Chunk]:
    """The file's rows, `rows` (default `dataset.chunk_rows`) at a time. Raises BatchRejected
    with the reason for a file that is not a table of the contract's columns, on the chunk
    where it finds out (a caller keeps nothing of a rejected file)."""
    rows = rows or dataset.chunk_rows
    fmt = FORMATS.get(PurePosixPath(name).suffix.lower())
    if fmt is None:
        raise BatchRejected(
            f"{name}: unsupported file type (expected one of {', '.join(sorted(FORMATS))})"
        )
    with open(path, "rb") as handle:
        if not handle.read(1 << 16).strip() and Path(path).stat().st_size <= 1 << 16:
            raise BatchRejected(f"{name}: empty file")
    reader = _parquet if fmt == "parquet" else _csv
    seen = 0
    try:
        for frame in reader(path, name, dataset, rows):
            if len(frame):
                yield Chunk(seen + 1, frame.reset_index(drop=True))
                seen += len(frame)
    except BatchRejected:
        raise
    except (pa.ArrowException, OSError, ValueError, csv.Error) as error:
        raise BatchRejected(f"{name}: cannot be parsed as {fmt}: {error}".strip()) from error
    if not seen:
        raise BatchRejected(f"{name}: no data rows")


def parquet_file(path: Path) -> pq.ParquetFile:
    """A Parquet file to read a record batch at a time: without pyarrow's pre-buffering,
    which reads ahead whole row groups of every column and holds them."""
    return pq.ParquetFile(path, pre_buffer=False)


def _parquet(path: Path, name: str, dataset: TabularData, rows: int) -> Iterator[pd.DataFrame]:
    file = parquet_file(path)
    _columns(name, dataset, file.schema_arrow.names)
    for batch in file.iter_batches(batch_size=rows, columns=dataset.column_names):
        yield batch.to_pandas()


def _csv(path: Path, name: str, dataset: TabularData, rows: int) -> Iterator[pd.DataFrame]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    text = {column: pa.string() for column in header}
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=max(1 << 20, rows * 16 * len(header))),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=text, strings_can_be_null=False, null_values=[]
        ),
    )
    if column_problems(dataset, header):
        for _ in reader:  # a file that does not parse says so first, as a whole read would
            pass
        _columns(name, dataset, header)
    for batch in reader:
        yield batch.to_pandas()[dataset.column_names]


def _columns(name: str, dataset: TabularData, found: list[str]) -> None:
    if problem := column_problems(dataset, [str(c) for c in found]):
        raise BatchRejected(f"{name}: wrong columns: {problem}")


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as the text they were written as (a Parquet value as pandas prints it, a missing
    one blank): what quarantine keeps and a reason quotes."""
    return frame.astype(object).where(frame.notna(), "").astype(str)
