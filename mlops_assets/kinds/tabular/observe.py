"""observe: profile each new batch as it landed, and the dataset as a whole.

Runs before clean on purpose: it shows what arrived, bad rows included. The
per-batch profiles are stored, so the dataset profile and the drift reference
are merges, not rescans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_assets.kinds.tabular.catalog import Batch, load_catalog, staged_ids
from mlops_assets.kinds.tabular.dataset import ObserveConfig, TabularDataset
from mlops_assets.kinds.tabular.profile import Profile, drift, merge_profiles, profile_frame
from mlops_assets.kinds.tabular.rows import BatchRejected, parse_batch, to_numeric
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


def profile_batch(
    storage: ObjectStorage, batch: Batch, dataset: TabularDataset, bins: int
) -> Profile:
    head = {"batch_id": batch["batch_id"], "file": batch["source"]}
    try:
        text = parse_batch(storage.read_bytes(batch["raw_key"]), batch["source"], dataset)
    except BatchRejected as error:
        return {**head, "status": "rejected", "reason": str(error), "rows": 0}
    profile = profile_frame(text, to_numeric(text), dataset, bins)
    return {**head, "status": "ok", "reason": "", **profile}


def run_observe(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularDataset,
    config: ObserveConfig,
    full: bool = False,
) -> ObserveResult:
    catalog = load_catalog(storage, layout)
    done = staged_ids(storage, layout, STAGE)
    result = ObserveResult()
    profiles: dict[str, Profile] = {}
    for batch in catalog:
        key = layout.staged(STAGE, batch["batch_id"], "json")
        if batch["batch_id"] in done:
            profiles[batch["batch_id"]] = storage.read_json(key)
            continue
        profile = profile_batch(storage, batch, dataset, config.drift_bins)
        storage.write_json(key, profile)
        profiles[batch["batch_id"]] = profile
        result.new.append(profile)
    ok = [profiles[b["batch_id"]] for b in catalog if profiles[b["batch_id"]]["status"] == "ok"]
    new_ok = [p for p in result.new if p["status"] == "ok"]
    result.dataset = merge_profiles(ok)
    result.reference = merge_profiles(ok[: dataset.reference_batches])
    result.current = merge_profiles(ok[dataset.reference_batches :] if full else new_ok)
    if result.reference and result.current:
        result.drift = drift(result.reference, result.current, dataset.label.column)
    return result
