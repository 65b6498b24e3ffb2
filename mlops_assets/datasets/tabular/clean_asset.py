"""The clean asset: a graph of a plan, one mapped step per slice of batches, one commit.

A backlog of many batches is prepared by several workers at once, with the executor the
environment chose: the slices are Dagster mapped steps (a process each under the
multiprocess executor, a pod each under the per-step Kubernetes one), and one commit step
keeps their rows in catalog order and publishes them. It stays one asset with one
materialization and one check, so the lineage graph and the catalog's exactly-once
guarantee are those of a single step (docs/architecture.md, "Past one pod").
"""

from time import perf_counter
from typing import Any

import dagster as dg

from mlops_assets.core.report import md_table
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.core.step_failures import step_failures
from mlops_assets.core.steps import DATAOPS_STEPS, step_keys
from mlops_assets.datasets.tabular.catalog import advance_cursor
from mlops_assets.datasets.tabular.config import TabularBlocks
from mlops_assets.storage import Layout, ObjectStorage
from mlops_assets.storage.step_outputs import step_outputs

CHECK = "clean_rows_satisfy_contract"
OUTPUTS = "step_outputs"


def clean_asset(spec: UseCaseSpec, uc: TabularBlocks) -> dg.AssetsDefinition:
    """The rows that satisfy the contract; the rest quarantined with their reasons."""
    name = spec.name
    layout = Layout(name)
    dataset = uc.dataset
    key = step_keys(name, DATAOPS_STEPS)
    prefix = key["clean"].to_python_identifier()
    # under the per-step executor each step is a DataOps pod (no API token, no GitOps secret)
    placement = {"dagster-k8s/config": spec.kubernetes.dataops.k8s_config()}

    @dg.op(
        name=f"{prefix}_plan",
        description="The batches cataloged since clean's cursor, in slices of about "
        f"{dataset.slice_mb:g} MB of landed files.",
        ins={"observed": dg.In(dg.Nothing)},
        out={
            "plan": dg.Out(dict, io_manager_key=OUTPUTS),
            "slices": dg.DynamicOut(dict, io_manager_key=OUTPUTS),
        },
        tags=placement,
    )
    def plan(context: dg.OpExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.tabular.clean import plan_clean
            from mlops_assets.datasets.tabular.clean_commit import left_behind

            def finished(run_id: str) -> bool:  # Dagster's run storage says, not the folder
                run = context.instance.get_run_by_id(run_id)
                return run_id != context.run_id and run is not None and run.is_finished

            for run_id in left_behind(storage, layout, finished):
                context.log.info(f"removed the clean work area of finished run {run_id}")
            planned = plan_clean(storage, layout, dataset)
            sizes = [len(s) for s in planned.slices]
            context.log.info(f"{sum(sizes)} new batch(es) in {len(sizes)} slice(s): {sizes}")
            yield dg.Output({**planned.record(), "seconds": perf_counter() - started}, "plan")
            for number, batches in enumerate(planned.slices):
                yield dg.DynamicOutput(
                    {"slice": number, "batches": batches},
                    mapping_key=f"slice_{number:06d}",
                    output_name="slices",
                )

    @dg.op(
        name=f"{prefix}_slice",
        description="Check, hash and look up one slice's rows; leave them for the commit.",
        out=dg.Out(dict, io_manager_key=OUTPUTS),
        tags=placement,
    )
    def prepare(context: dg.OpExecutionContext, storage: ObjectStorage, planned: dict) -> dict:
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.tabular.clean_commit import slice_work
            from mlops_assets.datasets.tabular.clean_slice import clean_slice

            number = int(planned["slice"])
            work = slice_work(layout, context.run_id, number)
            manifest = clean_slice(storage, layout, dataset, work, planned["batches"])
            return {**manifest, "slice": number, "seconds": perf_counter() - started}

    @dg.op(
        name=f"{prefix}_commit",
        description="Keep the slices' rows in catalog order (row index, compare-and-swap), "
        "publish them, check them.",
        out={"result": dg.Out(dg.Nothing), "check": dg.Out(dg.Nothing, is_required=False)},
        tags=placement,
    )
    def commit(
        context: dg.OpExecutionContext, storage: ObjectStorage, record: dict, manifests: list
    ):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.tabular.clean import (
                STAGE,
                CleanResult,
                Plan,
                contract_violations,
            )
            from mlops_assets.datasets.tabular.clean_commit import commit_slices, ordered

            planned = Plan.of(record)
            slices = ordered(planned.slices, manifests)
            result = CleanResult(commit_slices(storage, layout, dataset, planned.slices, slices))
            if planned.segment != planned.start:
                advance_cursor(storage, layout, STAGE, {"segment": planned.segment})
            batch_ids = [b["batch_id"] for b in result.batches]
            problems = contract_violations(storage, layout, batch_ids, dataset)
            if nothing := result.kept_nothing():
                problems.insert(0, nothing)
            metadata = _metadata(storage, layout, result.batches)
            metadata["slices"] = len(planned.slices)
            # the bodies of every step of the asset: its plan's, its slices' and this one's
            steps = [record.get("seconds", 0.0), *(m.get("seconds", 0.0) for m in slices)]
            metadata["compute_seconds"] = perf_counter() - started + sum(map(float, steps))
            yield dg.MaterializeResult(metadata=metadata)
            yield dg.AssetCheckResult(
                check_name=CHECK,
                passed=not problems,
                description="; ".join(problems) or "every clean row satisfies the contract",
            )

    @dg.graph_asset(
        key=key["clean"],
        ins={"observed": dg.AssetIn(key=key["observe"], dagster_type=dg.Nothing)},
        description=f"Rows satisfying the contract; the rest in quarantine/{name}/ with reasons.",
        check_specs=[
            dg.AssetCheckSpec(
                CHECK,
                asset=key["clean"],
                description="New rows were kept, and every clean row is complete, in range, "
                "labelled and unique.",
                blocking=True,
            )
        ],
        resource_defs={OUTPUTS: step_outputs},
        kinds={"pandas"},
        **spec.common("dataops"),
    )
    def clean(observed):
        planned, slices = plan(observed)
        done = commit(planned, slices.map(prepare).collect())
        return {"result": done.result, f"{prefix}_{CHECK}": done.check}

    return clean


def _metadata(storage: ObjectStorage, layout: Layout, batches: list[dict]) -> dict[str, Any]:
    rows = [
        (b["file"], b["batch_id"], b["rows"], b["clean"], b["quarantined"], b["rejected"] or "-")
        for b in batches
    ]
    header = ["file", "batch", "rows", "clean", "quarantined", "rejected file"]
    reasons = _quarantine_examples(storage, layout, batches)
    return {
        "batches": dg.MetadataValue.md(md_table(header, rows) if rows else "no new batches"),
        "rows_clean": sum(b["clean"] for b in batches),
        "rows_quarantined": sum(b["quarantined"] for b in batches),
        "files_quarantined": sum(1 for b in batches if b["rejected"]),
        "quarantine_examples": dg.MetadataValue.md(reasons or "none"),
        "quarantine_location": dg.MetadataValue.path(storage.uri(f"quarantine/{layout.use_case}")),
    }


def _quarantine_examples(storage: ObjectStorage, layout: Layout, batches: list[dict]) -> str:
    rows = []
    for batch in batches:
        if batch["rejected"]:
            rows.append((batch["file"], "-", batch["rejected"]))
        elif batch["quarantined"]:
            frame = storage.read_parquet(
                layout.quarantine(batch["batch_id"], "rows.parquet"),
                columns=["row_number", "reason"],
            )
            rows += [(batch["file"], n, r) for n, r in frame.head(10).itertuples(index=False)]
    return md_table(["file", "row", "reason"], rows[:30]) if rows else ""
