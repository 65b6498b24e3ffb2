"""split: train / validation / test by a stable hash of the row id.

A row's split depends on its id alone, so it never changes as data grows and
the test set stays comparable across model versions. Each batch is cut into
its parts once (`staged/<uc>/split/<fractions>/<batch_id>.parquet`); a dataset
version is a manifest naming the parts it adds to the version before it (its
`base`), so writing one costs what is new; its id is a content hash, and the
Dagster data version of the asset. `latest.json` holds the newest version and
the last catalog segment it holds whole (split's cursor).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_assets.core.classes import class_order
from mlops_assets.datasets.tabular.catalog import new_segments
from mlops_assets.datasets.tabular.config import SplitConfig, TabularData
from mlops_assets.datasets.tabular.landed import parquet_file
from mlops_assets.errors import MlopsError
from mlops_assets.storage import Layout, ObjectStorage, safe_key

SPLITS = ("train", "val", "test")


class EmptyDatasetError(MlopsError, RuntimeError):
    """No clean row exists yet, so there is nothing to split."""


@dataclass
class SplitResult:
    version: str
    manifest: dict[str, Any]
    previous: dict[str, Any] | None
    created: bool
    new_rows: dict[str, int] = field(default_factory=dict)
    """Rows of the parts this run cut, per split."""
    in_two_splits: int = 0
    """Row ids the parts this run cut hold under two splits (each part checked as it is cut;
    a row id names its batch, so no two batches share one)."""


def id_keys(row_ids) -> np.ndarray:
    """A uniform 64-bit number per row id, the same on every machine and version."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(r.encode(), digest_size=8).digest(), "big")
            for r in row_ids
        ],
        dtype=np.uint64,
    )


def hash_fraction(row_ids: pd.Series) -> np.ndarray:
    """A uniform number in [0, 1) per row id, the same on every machine and version."""
    return id_keys(row_ids).astype("float64") / 2.0**64


def assign(row_ids: pd.Series, config: SplitConfig, labels: np.ndarray | None = None) -> np.ndarray:
    """Each row's split from its id's hash; with `labels`, stratified within the batch: each
    class's rows, ranked by that hash, take the fractions in turn, so every split holds each
    class in proportion however small the batch (a part is cut once, so this never moves a
    row later)."""
    codes = split_codes(hash_fraction(row_ids), config, labels)
    return np.asarray(SPLITS, dtype=object)[codes]


def split_codes(u: np.ndarray, config: SplitConfig, labels: np.ndarray | None = None) -> np.ndarray:
    """`assign` as an index into SPLITS per row, from the ids' fractions `u`."""
    if labels is not None:
        ranked = np.empty(len(u))
        for value in pd.unique(labels):
            members = np.flatnonzero(labels == value)
            order = members[np.argsort(u[members], kind="stable")]
            ranked[order] = (np.arange(len(order)) + 0.5) / len(order)
        u = ranked
    return np.where(u < config.train, 0, np.where(u < config.train + config.val, 1, 2)).astype(
        np.int8
    )


def _which(file, config: SplitConfig, label: str, stratified: bool, chunk_rows: int):
    """Each row's split code, and how many row ids the file holds under two splits (a row id
    twice: never, unless the transformed file is not what transform wrote)."""
    keys, classes = [], []
    names: dict[Any, int] = {}
    columns = ["row_id", label] if stratified else ["row_id"]
    for batch in file.iter_batches(batch_size=chunk_rows, columns=columns):
        frame = batch.to_pandas()
        keys.append(id_keys(frame["row_id"]))
        if stratified:  # a class code per row, not its text
            classes.append(
                np.array([names.setdefault(v, len(names)) for v in frame[label]], np.int32)
            )
    key = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    labels = (np.concatenate(classes) if classes else np.empty(0, np.int32)) if stratified else None
    codes = split_codes(key.astype("float64") / 2.0**64, config, labels)
    order = np.lexsort((codes, key))
    key, code = key[order], codes[order]
    in_two = int(np.count_nonzero((key[1:] == key[:-1]) & (code[1:] != code[:-1])))
    return codes, in_two


def _hash(name: str, columns: list[str], ids, values) -> str:
    """The content of one split of a batch's rows: columns, and digests of its ids and of
    its values, in file order (each fed a chunk at a time)."""
    digest = hashlib.sha256()
    digest.update(name.encode())
    digest.update("\0".join(columns).encode())
    digest.update(ids.digest())
    digest.update(values.digest())
    return digest.hexdigest()


def _content(frame: pd.DataFrame) -> np.ndarray:
    """A split's values as bytes to hash: the numbers as they are; a table with text, each
    row's values hashed by pandas' stable per-row hash (numbers by their bits, text by its
    characters: no number is printed as text)."""
    if all(dtype.kind in "biuf" for dtype in frame.dtypes):
        return np.ascontiguousarray(frame.to_numpy())
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def fractions(config: SplitConfig, stratified: bool = False) -> dict[str, Any]:
    """What the parts are cut by (a stratified cut says so; one that is not keeps the key
    it always had, so existing parts stay valid)."""
    return {**config.model_dump(), **({"stratified": True} if stratified else {})}


def fractions_key(config: SplitConfig, stratified: bool = False) -> str:
    """Parts are cut for one set of fractions; other fractions cut their own."""
    data = json.dumps(fractions(config, stratified), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def part_key(layout: Layout, fractions: str, batch_id: str, ext: str) -> str:
    """A batch's part (`parquet`) and its record (`json`), side by side in one folder per
    set of fractions (no folder per batch: one fewer directory to create per batch)."""
    return safe_key("staged", layout.use_case, "split", fractions, f"{batch_id}.{ext}")


def split_part(
    storage: ObjectStorage,
    layout: Layout,
    config: SplitConfig,
    batch_id: str,
    label: str,
    segment: str = "",
    counted: bool = True,
    stratified: bool = False,
    chunk_rows: int = 100_000,
) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """One transformed batch cut into its train/val/test parts, once and for all: a row's
    split depends on its id alone, so a part never changes as data grows. Returns the
    part's record (rows, content hash, class balance per split, the catalog segment it was
    cut for) and, when this call cut it, its rows per split and how many row ids it found
    in two splits (nothing when it was cut before); no record while the batch is not
    transformed yet. `counted`: the label has classes to count. Read `chunk_rows` at a
    time; what is held whole is a number per row (its hash, and for a stratified cut its
    class), to rank it."""
    cut = fractions_key(config, stratified)
    record_key = part_key(layout, cut, batch_id, "json")
    found = storage.read_versioned(record_key)
    if found:
        return json.loads(found[0]), {}
    source = layout.staged("transform", batch_id, "parquet")
    if not storage.exists(source):
        return None, {}
    with (
        tempfile.TemporaryDirectory(prefix="mlops-split-") as folder,
        storage.local_file(source) as path,
    ):
        file = parquet_file(path)
        which, in_two = _which(file, config, label, stratified, chunk_rows)
        columns = [c for c in file.schema_arrow.names if c != "row_id"]
        ids_digest = {name: hashlib.sha256() for name in SPLITS}
        values_digest = {name: hashlib.sha256() for name in SPLITS}
        balance: dict[str, dict[str, int]] = {name: {} for name in SPLITS}
        rows = dict.fromkeys(SPLITS, 0)
        temp = {name: Path(folder) / f"{name}.parquet" for name in SPLITS}
        schema = file.schema_arrow.remove_metadata().append(pa.field("split", pa.string()))
        writers = {name: pq.ParquetWriter(temp[name], schema) for name in SPLITS}
        offset = 0
        for batch in file.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            here = which[offset : offset + len(frame)]
            offset += len(frame)
            values = _content(frame[columns])
            ids = frame["row_id"].to_numpy()
            labels = frame[label].to_numpy() if counted else None
            for code, name in enumerate(SPLITS):
                at = here == code
                if not at.any():
                    continue
                ids_digest[name].update("".join(f"{i}\0" for i in ids[at]).encode())
                values_digest[name].update(np.ascontiguousarray(values[at]).tobytes())
                rows[name] += int(at.sum())
                if labels is not None:
                    kinds, counts = np.unique(labels[at].astype(str), return_counts=True)
                    for kind, count in zip(kinds.tolist(), counts.tolist(), strict=True):
                        balance[name][str(kind)] = balance[name].get(str(kind), 0) + int(count)
                part = frame[at].assign(split=name)
                writers[name].write_table(
                    pa.Table.from_pandas(part, schema=schema, preserve_index=False)
                )
        for writer in writers.values():
            writer.close()
        record: dict[str, Any] = {
            "batch_id": batch_id,
            "segment": segment,
            "rows": rows,
            "hash": {
                name: _hash(name, columns, ids_digest[name], values_digest[name]) for name in SPLITS
            },
            "class_balance": {
                name: dict(sorted(balance[name].items(), key=lambda kv: class_order(kv[0])))
                for name in SPLITS
            },
        }
        # one file per batch, the split a column, the splits one after the other
        whole = Path(folder) / "part.parquet"
        with pq.ParquetWriter(whole, schema) as writer:
            for name in SPLITS:
                for piece in parquet_file(temp[name]).iter_batches(batch_size=chunk_rows):
                    writer.write_batch(piece)
        storage.put_file(part_key(layout, cut, batch_id, "parquet"), whole)
    storage.write_json(record_key, record)  # last: a part is whole once its record is there
    return record, {**rows, "in_two_splits": in_two}


def run_split(
    storage: ObjectStorage, layout: Layout, dataset: TabularData, config: SplitConfig
) -> SplitResult:
    """A new dataset version is a manifest over the parts of the batches cataloged since
    split's cursor, chained to the version before it, so adding batches writes their rows
    once and a manifest of what they add (never all rows, nor a list of every batch). The
    version id is a hash of the parts' content hashes, chained batch by batch: the same data
    in the same order gives the same id. A version holds whole catalog segments, in order:
    a segment with a batch not transformed yet waits, with everything after it."""
    # a table declared column by column with class labels: stratified by the label (the
    # numeric shorthand keeps the cut it always had, and its dataset versions)
    stratified = dataset.typed and not dataset.continuous_label
    previous = storage.read_json(layout.dataset_latest, default={}) or None
    base = None
    if previous:
        key = layout.dataset(previous["dataset_version"], "manifest.json")
        base = storage.read_json(key, default={}) or None
        if base and base.get("fractions") != fractions(config, stratified):
            base = None  # other fractions: every batch is cut anew
    start = (previous or {}).get("segment", "") if base else ""
    # a version from before cursors names all its batches: read once, to add the others
    members = set(base["batches"]) if base and "batches" in base else set()
    label = dataset.label.column
    records: list[dict] = []
    added: list[str] = []
    new_rows = dict.fromkeys(SPLITS, 0)
    in_two = 0
    seen: set[str] = set()
    through = start
    for segment, batches in new_segments(storage, layout, start):
        taken, ids_here = [], []
        for batch in batches:
            batch_id = batch["batch_id"]
            if batch_id in seen or batch_id in members:
                continue
            seen.add(batch_id)
            record, ids = split_part(
                storage,
                layout,
                config,
                batch_id,
                label,
                segment,
                not dataset.continuous_label,
                stratified,
                dataset.chunk_rows,
            )
            if record is None:
                break  # not transformed yet: this segment and the rest wait
            if not ids and start and record.get("segment", "") <= start:
                continue  # cataloged again after a repaired acquire: in the version already
            taken.append(record)
            ids_here.append(ids)
        else:
            records += taken
            added += [r["batch_id"] for r in taken]
            for cut in ids_here:
                for name in SPLITS:
                    new_rows[name] += cut.get(name, 0)
                in_two += cut.get("in_two_splits", 0)
            through = segment
            continue
        break
    with_rows = [r for r in records if sum(r["rows"].values())]  # a batch of no usable row
    if not base and not with_rows:
        raise EmptyDatasetError(
            f"no clean rows for {layout.use_case} yet: none of the batches ingested has a "
            "usable row (see quarantine/)"
        )
    if base and not with_rows:
        version, manifest = base["dataset_version"], base  # the same rows: the same version
    else:
        version, manifest = _manifest(layout, config, base, with_rows, added, stratified)
    created = not storage.exists(layout.dataset(version, "manifest.json"))
    if created:
        storage.write_json(layout.dataset(version, "manifest.json"), manifest)
    else:
        manifest = storage.read_json(layout.dataset(version, "manifest.json"))
    latest = {"dataset_version": version, "segment": through, "catalog": through}
    if not previous or previous.get("dataset_version") != version:
        latest["previous"] = previous.get("dataset_version") if previous else None
    else:
        latest["previous"] = previous.get("previous")
    if latest != {k: (previous or {}).get(k) for k in latest}:
        storage.write_json(layout.dataset_latest, latest)
    return SplitResult(
        version=version,
        manifest=manifest,
        previous=previous,
        created=created,
        new_rows=new_rows,
        in_two_splits=in_two,
    )


def _manifest(
    layout: Layout,
    config: SplitConfig,
    base: dict[str, Any] | None,
    records: list[dict],
    added: list[str],
    stratified: bool = False,
) -> tuple[str, dict[str, Any]]:
    cut = fractions_key(config, stratified)
    # a hash chain over the batches' part hashes, in order: the same batches give the same
    # id however many versions they arrived in, and a new version hashes only what it adds
    if base and base.get("content"):
        content = base["content"]
    else:
        seed = json.dumps(
            {
                "fractions": fractions(config, stratified),
                "base": base["dataset_version"] if base else None,
            },
            sort_keys=True,
        )
        content = hashlib.sha256(seed.encode()).hexdigest()
    for record in records:
        link = json.dumps([content, record["batch_id"], record["hash"]], sort_keys=True)
        content = hashlib.sha256(link.encode()).hexdigest()
    version = content[:16]
    parts: dict[str, list[str]] = {name: [] for name in SPLITS}
    rows = {name: (base["rows"][name] if base else 0) for name in SPLITS}
    balance = {name: dict(base["class_balance"][name]) if base else {} for name in SPLITS}
    for record in records:
        for name in SPLITS:
            if record["rows"][name]:
                parts[name].append(part_key(layout, cut, record["batch_id"], "parquet"))
            rows[name] += record["rows"][name]
            for label, count in record["class_balance"][name].items():
                balance[name][label] = balance[name].get(label, 0) + count
    count = (base.get("batch_count", len(base.get("batches", []))) if base else 0) + len(added)
    manifest = {
        "use_case": layout.use_case,
        "dataset_version": version,
        "base": base["dataset_version"] if base else None,
        "content": content,
        "parts": parts,
        "added": added,
        "batch_count": count,
        "rows": rows,
        "class_balance": {
            name: dict(sorted(balance[name].items(), key=lambda kv: class_order(kv[0])))
            for name in SPLITS
        },
        "fractions": fractions(config, stratified),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return version, manifest


class ManifestError(MlopsError, ValueError):
    """A dataset manifest that names what no split wrote (a loop of bases, another use
    case's files): refused, naming the manifest."""


def _chain(storage: ObjectStorage, layout: Layout, version: str) -> list[dict[str, Any]]:
    """A version's manifest and its bases', newest first, down to one that names its files
    whole (a version from before chained manifests) or the first."""
    chain, seen = [], {version}
    key = layout.dataset(version, "manifest.json")
    manifest = storage.read_json(key)
    while True:
        chain.append(manifest)
        if "parts" not in manifest or not manifest.get("base"):
            return chain
        base = str(manifest["base"])
        if base in seen or "/" in base:
            raise ManifestError(f"{key}: its base {base!r} loops back or is no version id")
        seen.add(base)
        key = layout.dataset(base, "manifest.json")
        manifest = storage.read_json(key)


def is_base_of(storage: ObjectStorage, layout: Layout, earlier: str, version: str) -> bool:
    """Whether `version` was built on `earlier`: then it holds every part of it. Usually one
    read (the version before)."""
    manifest = storage.read_json(layout.dataset(version, "manifest.json"))
    while "parts" in manifest and manifest.get("base"):
        if manifest["base"] == earlier:
            return True
        manifest = storage.read_json(layout.dataset(manifest["base"], "manifest.json"))
    return False


def version_batches(storage: ObjectStorage, layout: Layout, version: str) -> list[str]:
    """Every batch in a version, oldest first (walks the whole chain: for reports and
    tests, not for building a version)."""
    batches: list[str] = []
    for manifest in _chain(storage, layout, version):
        batches = list(manifest.get("added", manifest.get("batches", []))) + batches
    return batches


def _files_of(manifest: dict[str, Any], layout: Layout, name: str) -> list[str]:
    """The files one manifest adds to split `name`: its parts; or, for a manifest from before
    chaining, every file of the split (its `files`, or its one whole file). Only this use
    case's split output can be named: a manifest is data, not a pointer to anything."""
    if "parts" in manifest:
        files = list(manifest["parts"][name])
    elif "files" in manifest:
        files = list(manifest["files"][name])
    else:
        return [layout.dataset(manifest["dataset_version"], f"{name}.parquet")]
    own = (f"staged/{layout.use_case}/split/", f"datasets/{layout.use_case}/")
    for key in files:
        if not isinstance(key, str) or not safe_key(key).startswith(own):
            raise ManifestError(
                f"the manifest of dataset {manifest.get('dataset_version')} names {key!r} in "
                f"its {name} split, which is not {layout.use_case}'s split output: refused"
            )
    return files


def split_files(storage: ObjectStorage, layout: Layout, version: str, name: str) -> list[str]:
    """The Parquet files of one split of a version, oldest first."""
    files: list[str] = []
    for manifest in _chain(storage, layout, version):
        files = _files_of(manifest, layout, name) + files
    return files


def read_split_file(
    storage: ObjectStorage, key: str, name: str, columns: list[str] | None = None
) -> pd.DataFrame:
    """The rows of split `name` in one of its files: a part holds a batch's three splits
    (its `split` column says which); a file from before parts holds one split whole."""
    if not key.startswith("staged/"):
        return storage.read_parquet(key, columns)
    frame = storage.read_parquet(key, [*columns, "split"] if columns else None)
    return frame[frame["split"] == name].drop(columns="split").reset_index(drop=True)


def read_split(storage: ObjectStorage, layout: Layout, version: str, name: str) -> pd.DataFrame:
    """One split of a version as one frame (its parts read as one, in order)."""
    frames = [
        read_split_file(storage, key, name) for key in split_files(storage, layout, version, name)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_split_ids(storage: ObjectStorage, layout: Layout, version: str, name: str) -> set[str]:
    ids: set[str] = set()
    for key in split_files(storage, layout, version, name):
        ids |= set(read_split_file(storage, key, name, ["row_id"])["row_id"])
    return ids
