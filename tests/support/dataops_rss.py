"""Peak memory of the DataOps steps over one large landing file, in a process of its own
(`python -m tests.support.dataops_rss ROOT MEMORY_MB`): the table's use case is declared
column by column, the steps run in order, and the process's RSS before (after its imports
and a warm-up on a small file) and at its peak are printed in kB, as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_assets.components.tabular import TabularUseCase
from mlops_assets.datasets.tabular.acquire import run_acquire
from mlops_assets.datasets.tabular.clean import run_clean
from mlops_assets.datasets.tabular.observe import run_observe
from mlops_assets.datasets.tabular.split import run_split
from mlops_assets.datasets.tabular.transform import run_transform
from mlops_assets.storage import Layout
from mlops_assets.storage.local import LocalStorage

NAME = "wide"
COLUMNS = 30


def use_case(memory_mb: float) -> TabularUseCase:
    columns = [{"name": f"x{i}", "type": "number", "min": -100, "max": 100} for i in range(COLUMNS)]
    columns.append({"name": "label", "role": "label", "type": "category"})
    return TabularUseCase.from_attributes_dict(
        attributes={
            "name": NAME,
            "task": "classification",
            "dataset": {
                "landing": f"landing/{NAME}",
                "columns": columns,
                "memory_mb": memory_mb,
                "max_file_mb": 100_000,
            },
        }
    )


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, COLUMNS)), columns=[f"x{i}" for i in range(COLUMNS)])
    data["label"] = np.asarray(["a", "b", "c"], dtype=object)[rng.integers(0, 3, rows)]
    return data


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def stages(storage: LocalStorage, uc: TabularUseCase) -> None:
    blocks, layout = uc.blocks, Layout(NAME)
    run_acquire(storage, layout, f"landing/{NAME}", max_file_bytes=blocks.dataset.max_file_bytes)
    run_observe(storage, layout, blocks.dataset, blocks.observe)
    run_clean(storage, layout, blocks.dataset)
    run_transform(storage, layout, blocks.dataset)
    run_split(storage, layout, blocks.dataset, blocks.split)


def main(root: str, memory_mb: float) -> dict:
    uc = use_case(memory_mb)
    storage = LocalStorage(root=root)
    big = sorted((Path(root) / "landing" / NAME).iterdir())
    aside = Path(root) / "aside"
    aside.mkdir()
    for path in big:  # the large file waits while a small one warms every step up
        path.rename(aside / path.name)
    frame(20_000, 1).to_parquet(Path(root) / "landing" / NAME / "warm-up.parquet")
    stages(storage, uc)
    before = rss_kb("VmRSS")
    for path in big:
        (aside / path.name).rename(path)
        path.touch()  # landed now, after the warm-up's listing
    stages(storage, uc)
    rows = storage.read_json(f"datasets/{NAME}/latest.json")
    return {"before_kb": before, "peak_kb": rss_kb("VmHWM"), "latest": rows}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], float(sys.argv[2]))))
