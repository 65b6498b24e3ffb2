"""The five DataOps assets of an LSFB-ISOL use case (same keys and jobs as any use case).

One function builds each asset; the bodies are thin: the work is in the stage modules
(`acquire`, `observe`, ...), imported inside them because they run numpy and lsfb_dataset.
"""

from itertools import combinations
from time import perf_counter
from typing import Any

import dagster as dg

from mlops_assets.core.report import md_table
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.core.step_failures import step_failures
from mlops_assets.core.steps import DATAOPS_STEPS, step_keys
from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.datasets.lsfb.download import source_url
from mlops_assets.datasets.lsfb.report import observe_metadata
from mlops_assets.storage import Layout, ObjectStorage


def build_lsfb_dataops_assets(spec: UseCaseSpec, config: LsfbData) -> list[dg.AssetsDefinition]:
    """`spec`'s DataOps assets, with its `dataset:` block."""
    return [
        acquire_asset(spec, config),
        observe_asset(spec, config),
        clean_asset(spec, config),
        transform_asset(spec, config),
        split_asset(spec, config),
    ]


def _common(spec: UseCaseSpec) -> dict[str, Any]:
    """What every LSFB DataOps asset shares: the stage's group, tags, owners; numpy."""
    return {**spec.common("dataops"), "kinds": {"numpy"}}


def check(
    key: dict[str, dg.AssetKey], step: str, check_name: str, description: str, **kw: Any
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(check_name, asset=key[step], description=description, **kw)


def acquire_asset(spec: UseCaseSpec, config: LsfbData) -> dg.AssetsDefinition:
    """The LSFB-ISOL snapshot fetched into raw/, resumable."""
    name, layout = spec.name, Layout(spec.name)
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["acquire"],
        description=f"LSFB-ISOL ({', '.join(config.splits)}; {', '.join(config.landmarks)}) "
        "fetched with lsfb_dataset.Downloader, resumable, into raw/; the snapshot id is a "
        "content hash of the metadata.",
        **common,
    )
    def acquire(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.lsfb.acquire import run_acquire

            result = run_acquire(storage, layout, config, context.log.info)
            context.log.info(
                f"snapshot {result.snapshot}: "
                + ("new" if result.new else "already ingested")
                + f", {result.clips} clips"
            )
            return dg.MaterializeResult(
                data_version=dg.DataVersion(result.snapshot),
                metadata={
                    "snapshot": result.snapshot,
                    "new_snapshot": result.new,
                    "clips": result.clips,
                    "files_downloaded": result.fetched,
                    "files_already_complete": result.skipped,
                    "pose_files_stored": result.stored,
                    "source": source_url(config),
                    "raw_location": dg.MetadataValue.path(storage.uri(layout.raw(result.snapshot))),
                    "compute_seconds": perf_counter() - started,
                },
            )

    return acquire


def observe_asset(spec: UseCaseSpec, config: LsfbData) -> dg.AssetsDefinition:
    """Profile of the clips, per split."""
    name, layout = spec.name, Layout(spec.name)
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["observe"],
        deps=[key["acquire"]],
        description="Instances, signers, signs, frames per clip, missing landmarks, empty "
        "clips and class balance, per split.",
        check_specs=[
            check(
                key,
                "observe",
                "pose_files_valid",
                "Every pose file is a readable .npy of (frames, landmarks, 3) floats.",
            ),
            check(key, "observe", "no_empty_clips", "No clip has 0 frames or no landmark at all."),
        ],
        **common,
    )
    def observe(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.lsfb.observe import run_observe

            snapshot, clips, read = run_observe(storage, layout, config)
            metadata, checks = observe_metadata(snapshot, clips, config)
            metadata["clips_read"] = read  # the others were profiled in an earlier snapshot
            metadata["compute_seconds"] = perf_counter() - started
            return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return observe


def clean_asset(spec: UseCaseSpec, config: LsfbData) -> dg.AssetsDefinition:
    """Landmarks filled, unusable clips quarantined with their reasons, rare signs dropped."""
    name, layout = spec.name, Layout(spec.name)
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["clean"],
        deps=[key["observe"]],
        description=f"Missing landmarks filled (interpolated along time, then 0); empty and "
        f"entirely missing clips in quarantine/{name}/ with reasons; signs kept by "
        f"min_count {config.min_count}" + (f" and top {config.top_n}" if config.top_n else ""),
        check_specs=[
            check(
                key,
                "clean",
                "every_clip_accounted_for",
                "Kept + quarantined + excluded signs = every acquired clip.",
                blocking=True,
            )
        ],
        **common,
    )
    def clean(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.lsfb.clean import run_clean

            result = run_clean(storage, layout, config)
            for row in result.quarantined.head(20).itertuples():
                context.log.warning(f"quarantined {row.id}: {row.reason}")
            manifest = storage.read_json(layout.raw(result.snapshot, "_snapshot.json"))
            total = result.kept + len(result.quarantined) + result.excluded_clips
            return dg.MaterializeResult(
                metadata={
                    "clips_kept": result.kept,
                    "clips_quarantined": len(result.quarantined),
                    "clips_of_excluded_signs": result.excluded_clips,
                    "signs_kept": len(result.labels),
                    "signs_excluded": result.excluded_signs,
                    "quarantine": dg.MetadataValue.md(
                        md_table(
                            ["clip", "reason"],
                            [(r.id, r.reason) for r in result.quarantined.head(30).itertuples()],
                        )
                        if len(result.quarantined)
                        else "none"
                    ),
                    "quarantine_location": dg.MetadataValue.path(
                        storage.uri(layout.quarantine(result.snapshot))
                    ),
                    "shards": len(result.shards),
                    "compute_seconds": perf_counter() - started,
                },
                check_results=[
                    dg.AssetCheckResult(
                        check_name="every_clip_accounted_for",
                        passed=total == manifest["clips"],
                        description=f"{result.kept} kept + {len(result.quarantined)} quarantined + "
                        f"{result.excluded_clips} of excluded signs = {total} of "
                        f"{manifest['clips']} acquired",
                    )
                ],
            )

    return clean


def transform_asset(spec: UseCaseSpec, config: LsfbData) -> dg.AssetsDefinition:
    """Clips as fixed-length float32 landmark sequences in shards."""
    name, layout = spec.name, Layout(spec.name)
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["transform"],
        deps=[key["clean"]],
        description=f"{config.frames} frames x {config.features} features per clip "
        f"({', '.join(config.landmarks)}; {''.join(config.coordinates)}), float32 with a "
        f"padding mask, in shards of {config.shard_size} clips.",
        **common,
    )
    def transform(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.lsfb.transform import run_transform

            manifest = run_transform(storage, layout, config)
            return dg.MaterializeResult(
                metadata={
                    "clips": manifest["rows"],
                    "shards": len(manifest["shards"]),
                    "item_shape": str(manifest["item_shape"]),
                    "compute_seconds": perf_counter() - started,
                }
            )

    return transform


def split_asset(spec: UseCaseSpec, config: LsfbData) -> dg.AssetsDefinition:
    """The signer-independent folds: the dataset version."""
    name, layout = spec.name, Layout(spec.name)
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["split"],
        deps=[key["transform"]],
        description=f"The dataset's signer-independent folds: train {config.train_folds}, "
        f"val {config.val_folds}, test {config.test_folds}; never a random split.",
        check_specs=[
            check(
                key,
                "split",
                "signers_in_one_split",
                "No signer appears in two splits.",
                blocking=True,
            ),
            check(
                key,
                "split",
                "train_and_test_not_empty",
                "Train and test hold clips.",
                blocking=True,
            ),
        ],
        **common,
    )
    def split(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()

            from mlops_assets.datasets.lsfb.split import run_split
            from mlops_assets.datasets.lsfb.versions import SPLITS

            manifest = run_split(storage, layout, config)
            parts = manifest["splits"]
            shared = sorted(
                set().union(
                    *(
                        set(parts[a]["signers"]) & set(parts[b]["signers"])
                        for a, b in combinations(SPLITS, 2)
                    )
                )
            )
            version = manifest["dataset_version"]
            context.log.info(f"dataset version {version}")
            return dg.MaterializeResult(
                data_version=dg.DataVersion(version),
                metadata={
                    "dataset_version": version,
                    "dagster/row_count": sum(parts[s]["rows"] for s in SPLITS),
                    "splits": dg.MetadataValue.md(
                        md_table(
                            ["split", "folds", "clips", "signers"],
                            [
                                (
                                    s,
                                    manifest["folds"][s],
                                    parts[s]["rows"],
                                    len(parts[s]["signers"]),
                                )
                                for s in SPLITS
                            ],
                        )
                    ),
                    "classes": len(manifest["labels"]),
                    "unused_clips": manifest["unused_clips"],
                    "dataset_location": dg.MetadataValue.path(storage.uri(layout.dataset(version))),
                    "compute_seconds": perf_counter() - started,
                },
                check_results=[
                    dg.AssetCheckResult(
                        check_name="signers_in_one_split",
                        passed=not shared,
                        description=f"signers in two splits: {shared}"
                        if shared
                        else "every signer is in one split only",
                    ),
                    dg.AssetCheckResult(
                        check_name="train_and_test_not_empty",
                        passed=parts["train"]["rows"] > 0 and parts["test"]["rows"] > 0,
                        description=f"train {parts['train']['rows']}, test {parts['test']['rows']}",
                    ),
                ],
            )

    return split
