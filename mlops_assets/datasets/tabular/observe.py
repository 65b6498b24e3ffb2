"""observe: profile each new batch as it landed, and the dataset as a whole.

Runs before clean on purpose: it shows what arrived, bad rows included. The
per-batch profiles are stored, and the dataset profile and the drift reference
are kept merged beside observe's cursor, so a run reads the batches cataloged
since the last one and nothing older.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mlops_assets.datasets.tabular.catalog import (
    Batch,
    advance_cursor,
    load_catalog,
    new_segments,
    read_cursor,
)
from mlops_assets.datasets.tabular.config import ObserveConfig, TabularData
from mlops_assets.datasets.tabular.landed import chunks
from mlops_assets.datasets.tabular.profile import Profile, drift, merge_profiles, profile_frame
from mlops_assets.datasets.tabular.rows import BatchRejected
from mlops_assets.storage import Layout, ObjectStorage

STAGE = "observe"


@dataclass
class ObserveResult:
    new: list[Profile] = field(default_factory=list)
    """Per new batch: its profile, with batch_id, file, status and reason."""
    dataset: Profile | None = None
    reference: Profile | None = None
    current: Profile | None = None
    drift: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> list[Profile]:
        return [p for p in self.new if p["status"] == "rejected"]


def profile_batch(storage: ObjectStorage, batch: Batch, dataset: TabularData, bins: int) -> Profile:
    """One pass over the file, a chunk at a time: the chunks' profiles merged (a profile
    holds only mergeable statistics, so this is the profile of the whole file)."""
    head = {"batch_id": batch["batch_id"], "file": batch["source"]}
    parts: list[Profile] = []
    try:
        with storage.local_file(batch["raw_key"]) as path:
            for chunk in chunks(path, batch["source"], dataset):
                parts.append(profile_frame(chunk.frame, dataset, bins))
                if len(parts) > 1:
                    parts = [merge_profiles(parts)]
    except BatchRejected as error:
        return {**head, "status": "rejected", "reason": str(error), "rows": 0}
    return {**head, "status": "ok", "reason": "", **parts[0]}


def run_observe(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularData,
    config: ObserveConfig,
    full: bool = False,
) -> ObserveResult:
    """Profile the batches cataloged since observe's cursor; with `full`, the drift of
    every batch after the reference (reads every profile: an explicit, whole look)."""
    cursor = read_cursor(storage, layout, STAGE)
    whole, reference = cursor.get("dataset"), cursor.get("reference")
    in_reference = cursor.get("reference_batches", 0)
    result = ObserveResult()
    start = segment = cursor.get("segment", "")
    seen: set[str] = set()
    ok: list[Profile] = []
    for segment, batches in new_segments(storage, layout, start):  # noqa: B007 (kept: the last)
        for batch in batches:
            if batch["batch_id"] in seen:
                continue
            seen.add(batch["batch_id"])
            key = layout.staged(STAGE, batch["batch_id"], "json")
            found = storage.read_versioned(key)  # one call: absent, or profiled already
            profile = json.loads(found[0]) if found else None
            if profile is None:
                profile = profile_batch(storage, batch, dataset, config.drift_bins)
                profile["segment"] = segment
                storage.write_json(key, profile)
                result.new.append(profile)
            elif start and profile.get("segment", "") <= start:
                continue  # cataloged again after a repaired acquire: merged already
            if profile["status"] == "ok":  # new, or profiled by a run cut short
                ok.append(profile)
    if ok:
        # merging is associative: the running profiles plus the new ones are the profiles
        # of everything, the reference its first `reference_batches` good batches
        take = max(0, dataset.reference_batches - in_reference)
        whole = merge_profiles([p for p in (whole, *ok) if p])
        if take:
            reference = merge_profiles([p for p in (reference, *ok[:take]) if p])
            in_reference += len(ok[:take])
    if segment != cursor.get("segment", ""):
        advance_cursor(
            storage,
            layout,
            STAGE,
            {
                "segment": segment,
                "dataset": whole,
                "reference": reference,
                "reference_batches": in_reference,
            },
        )
    new_ok = [p for p in result.new if p["status"] == "ok"]
    result.dataset = whole
    result.reference = reference
    if full:
        every = [
            profile
            for batch in load_catalog(storage, layout)
            if (profile := storage.read_json(layout.staged(STAGE, batch["batch_id"], "json")))[
                "status"
            ]
            == "ok"
        ]
        result.current = merge_profiles(every[dataset.reference_batches :])
    else:
        result.current = merge_profiles(new_ok)
    if result.reference and result.current:
        result.drift = drift(result.reference, result.current, dataset.label.column)
    return result
