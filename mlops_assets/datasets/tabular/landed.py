"""Reading a landing file in chunks, so a step holds `dataset.memory_mb`, not the file.

Parquet is read a record batch at a time (pyarrow; at most a row group at once) with
its own types; CSV by pandas' C parser in chunks, every column as text, as it was
written (the same parse as a whole read). Each chunk carries the file's row number of
its first row, so a reason names the file's own row. pyarrow and pandas over DuckDB or
Polars: they are what the steps already hold their rows in, and their streaming readers
are all a step needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd
import pyarrow as pa
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
    except (pa.ArrowException, OSError, ValueError, pd.errors.ParserError) as error:
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
    """pandas' C parser in chunks: every value as the text it was written as, exactly as a
    whole read parses it (a short row's missing fields blank, so only that row fails)."""
    reader = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, chunksize=rows)
    with reader:
        first = next(reader, None)
        if first is None:
            return
        if column_problems(dataset, [str(c) for c in first.columns]):
            for _ in reader:  # a file that does not parse says so first, as a whole read would
                pass
            _columns(name, dataset, [str(c) for c in first.columns])
        yield first[dataset.column_names]
        for frame in reader:
            yield frame[dataset.column_names]


def _columns(name: str, dataset: TabularData, found: list[str]) -> None:
    if problem := column_problems(dataset, [str(c) for c in found]):
        raise BatchRejected(f"{name}: wrong columns: {problem}")
