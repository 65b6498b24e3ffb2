"""docs/performance.md's tables, generated from the JSON files under bench/results/.

Each table sits between `<!-- bench:NAME -->` and `<!-- /bench -->`, NAME being a file of
bench/results/ without `.json`; what lies between is rewritten from that file, the prose
around it is left as written. `python -m bench.report` rewrites the tables;
`--check` says which differ and exits 1 (tests/bench/test_report.py runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench.common import REPO, RESULTS

DOCS = REPO / "docs" / "performance.md"
BLOCK = re.compile(r"(<!-- bench:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /bench -->)", re.S)


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def provenance(report: dict, name: str) -> str:
    """Where a table's figures come from: the date, machine and commit of the run."""
    machine = report["machine"]
    commit = report["commit"]
    sha = commit["sha"][:10] + (" with local changes" if commit["dirty"] else "")
    return (
        f"\n*{report['date'][:10]}, {machine['cpus']} cores ({machine['cpu'] or 'CPU unknown'}), "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, commit `{sha}`; "
        f"`bench/results/{name}.json`.*\n"
    )


def _f(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def verdict(met: bool) -> str:
    return "**met**" if met else "**not met**"


def pipeline_overhead(report: dict) -> str:
    names = {
        "in_process": "in-process executor (local default)",
        "multiprocess": "Dagster's default multiprocess executor",
        "plain": "the same bodies as a plain script",
    }
    rows = [
        [names[mode], _f(m["wall_s"]), _f(m["body_s"]), _f(m["overhead_s"])]
        for mode, m in report["median"].items()
    ]
    ratio = report["ratios"]["overhead_multiprocess_over_in_process"]
    overhead = report["median"]["in_process"]["overhead_s"]
    goal = f" (goal: at least 5x, {verdict(ratio >= 5)})" if report["graph"] == "whole" else ""
    return table(["run", "wall s", "in bodies s", "overhead s"], rows) + (
        f"\nOverhead in process **{overhead:.2f} s** (goal: at most 3 s, "
        f"{verdict(overhead <= 3)}); the multiprocess executor's is **{ratio:.1f}x** that"
        f"{goal}. Medians of {report['repeat']}, {report['rows']['synthetic']:,} synthetic "
        "rows besides digits.\n"
    )


def train_validate(report: dict) -> str:
    median = report["median"]
    ratios = report["ratios"]
    rows = [
        [
            f"{report['dataset_rows']['train']:,}",
            _f(median["dagster"]["wall_s"]),
            _f(median["plain"]["wall_s"]),
            f"**{ratios['wall_dagster_over_plain']:.2f}**",
            _f(ratios["in_run_dagster_over_plain"]),
        ]
    ]
    header = [
        "train rows",
        "Dagster wall s",
        "plain wall s",
        "wall ratio",
        "inside-the-work ratio",
    ]
    goal = report.get("goal", {}).get("wall_dagster_over_plain", 1.1)
    met = ratios["wall_dagster_over_plain"] <= goal
    return table(header, rows) + (
        f"\nMedians of {report['repeat']}; goal: a wall ratio of at most {goal:g} "
        f"({verdict(met)}).\n"
    )


def inference_latency(report: dict) -> str:
    rows = [
        [
            label,
            _f(report[key]["p50_ms"]),
            _f(report[key]["p99_ms"]),
            _f(report[key]["throughput_rps"], 0),
        ]
        for key, label in (("http", "HTTP (OIP v2, JSON)"), ("in_process", "in-process `predict`"))
    ]
    return table(["", "p50 ms", "p99 ms", "rows/s"], rows) + (
        f"\n{report['requests']:,} single-row requests from {report['concurrency']} client "
        f"threads; in-process throughput is "
        f"{report['ratios']['throughput_in_process_over_http']:.1f}x HTTP's.\n"
    )


def monitor_history(report: dict) -> str:
    rows = [
        [
            f"{r['history_factor']}x",
            f"{r['history_requests']:,}",
            f"{r['median_seconds']:.3f} s",
            f"{r['ratio_to_1x']:.2f}",
            ", ".join(map(str, sorted(set(r["log_files_read"])))),
            ", ".join(map(str, r["log_keys_listed"])),
        ]
        for r in report["results"]
    ]
    header = ["history", "requests", "monitor run", "ratio", "log files read", "log keys listed"]
    first = report["results"][0]
    return table(header, rows) + (
        f"\n{first['new_requests']:,} new requests in {first['new_files']} files; "
        f"{len(first['monitor_seconds'])} runs each, medians.\n"
    )


def inference_log_overhead(report: dict) -> str:
    medians = report["medians"]
    off, on = medians["log off"], medians["log on (full inputs)"]

    def cell(m: dict) -> str:
        return f"{m['rps']:,.0f} req/s, p50 {m['p50_ms']:.2f}, p99 {m['p99_ms']:.2f} ms"

    rows = [
        [
            "concurrency " + name.removeprefix("c").split("-")[0],
            cell(off[name]),
            cell(on[name]),
            f"{ratio['throughput_on_over_off']:.2f}x req/s, {ratio['p50_on_over_off']:.2f}x p50",
        ]
        for name, ratio in report["ratios"].items()
    ]
    c8 = report["ratios"]["c8-rows1"]
    met = c8["p50_on_over_off"] <= 1.05 and c8["throughput_on_over_off"] >= 0.95
    return table(["one-row requests", "log off", "log on", "on / off"], rows) + (
        f"\nGoal at concurrency 8: p50 up and throughput down by at most 5% ({verdict(met)}). "
        f"{report['repeats']} alternated repeats of {report['seconds_per_run']:g} s per cell, "
        f"medians; {report['records_logged']:,} records logged.\n"
    )


def data_to_deploy(report: dict) -> str:
    rows = []
    for interval, r in report["results"].items():
        samples = r["samples"]
        met = verdict(r["goal_met"])
        rows.append(
            [
                f"{interval} s",
                f"{samples['first']['seconds']:.1f} s",
                f"{samples['batch_4']['seconds']:.1f} s",
                f"{samples['batch_5']['seconds']:.1f} s",
                f"<= {r['goal_s']} s: {met}",
            ]
        )
    header = ["landing sensor interval", "first (cold)", "batch 4", "batch 5", "goal"]
    return table(header, rows)


def landing_scale(report: dict) -> str:
    naming = {"flat": "one folder", "partitioned": "1,000 a folder"}

    def discovery(r: dict) -> str:
        return (
            r["discovery"]
            if r["discovery"] == "listing"
            else (f"{r['discovery']}, {naming[r['naming']]}")
        )

    order = list(dict.fromkeys(discovery(r) for r in report["results"]))  # as measured
    ticks = [
        [
            f"{r['ingested']:,}",
            discovery(r),
            f"{r['tick']['seconds']:.3f} s",
            f"{r['tick']['ratio_to_smallest']:.1f}",
            f"{r['acquire']['seconds']:.2f} s",
            f"{r['acquire']['ratio_to_smallest']:.1f}",
            f"{r['tick']['peak_mb']:.0f} / {r['acquire']['peak_mb']:.0f} MB",
        ]
        for r in sorted(report["results"], key=lambda r: (order.index(discovery(r)), r["ingested"]))
    ]
    smallest = f"{min(r['ingested'] for r in report['results']):,}"
    out = table(
        [
            "ingested",
            "discovery",
            "tick",
            f"ratio to {smallest}",
            f"acquire of {report['results'][0]['new']} new",
            f"ratio to {smallest}",
            "peak memory, tick / acquire",
        ],
        ticks,
    )
    if report.get("new_dataset_version"):
        versions = [
            [
                f"{v['ingested']:,}",
                f"{v['seconds']:.2f} s",
                f"{v['write_new_rows_seconds']:.2f} s",
                f"{v['ratio_to_writing']:.1f}x",
                f"{v['ratio_to_smallest']:.1f}",
                f"{v['dataops_stages']['seconds']:.1f} s",
                f"{v['dataops_stages']['ratio_to_smallest']:.1f}",
                f"{max(v['peak_mb'], v['dataops_stages']['peak_mb']):.0f} MB",
            ]
            for v in report["new_dataset_version"]
        ]
        out += "\nA new dataset version with 100 new batches on top of N (split alone, against "
        out += "writing only the new rows), and observe .. split of the same 100:\n\n"
        out += table(
            [
                "batches in the dataset",
                "new dataset version",
                "writing the new rows alone",
                "ratio",
                "ratio to the smallest",
                "observe .. split",
                "ratio to the smallest",
                "peak memory",
            ],
            versions,
        )
    if report.get("s3_requests_per_tick"):
        by_mode: dict[str, dict[int, dict]] = {}
        for r in report["s3_requests_per_tick"]:
            by_mode.setdefault(r["discovery"], {})[r["new"]] = r
        ingested = report["s3_requests_per_tick"][0]["ingested"]
        rows = [
            [
                mode,
                cells[0]["total"],
                f"{busy['total']} ({busy['list_requests']} LIST)",
            ]
            for mode, cells in by_mode.items()
            for busy in [next(c for n, c in cells.items() if n)]
        ]
        new = next(n for n in next(iter(by_mode.values())) if n)
        out += f"\nRequests per tick on S3 (moto server on loopback, {ingested:,} files "
        out += "ingested; counted by a botocore hook, not timed):\n\n"
        out += table(["discovery", "nothing new", f"{new} new"], rows)
    return out


def serving_vs_mlserver(report: dict) -> str:
    medians = report["medians"]
    names = list(medians)

    def cell(m: dict) -> str:
        return f"{m['rps']:,.0f} req/s, p50 {m['p50_ms']:.2f}, p99 {m['p99_ms']:.2f} ms"

    def label(cell_name: str) -> str:
        concurrency, rows = cell_name.removeprefix("c").split("-rows")
        return f"concurrency {concurrency}, {rows} row{'s' if rows != '1' else ''}"

    rows = [
        [label(c)]
        + [cell(medians[n][c]) for n in names]
        + [
            f"{ratio['rps_over_best_mlserver']:.2f}x req/s, "
            f"{ratio['p99_over_that_mlserver']:.2f}x p99"
        ]
        for c, ratio in report["ratios"].items()
    ]
    memory = report["memory"]
    words = {
        "c8_rows1_rps_at_least_2x_best_mlserver": "concurrency 8, one row: at least 2x the best "
        "MLServer's req/s",
        "c8_rows1_p99_at_most_that_mlservers": "with a p99 no higher than that MLServer's",
        "c1_rows1_p50_within_predict_plus_1ms": "concurrency 1: a p50 within predict + 1 ms",
        "memory_under_2x_idle_while_rejecting": "memory under 2x idle while refusing",
    }
    goals = "; ".join(
        f"{words.get(goal, goal)}: {verdict(met)}" for goal, met in report["goals_met"].items()
    )
    return table(["requests", *names, "ours / best MLServer"], rows) + (
        f"\nThe model's own predict in process: p50 "
        f"{report['in_process_predict_p50_ms']:.2f} ms. While refusing "
        f"{memory['requests_rejected']:,} over-limit bodies in {memory['seconds']:g} s the "
        f"server's resident memory peaked at {memory['ratio']:.2f}x its idle "
        f"{memory['idle_rss_mb']:.0f} MiB. {report['repeats']} alternated repeats of "
        f"{report['seconds_per_run']:g} s per cell. Goals: {goals}.\n"
    )


def lsfb_loader(report: dict) -> str:
    names = {
        "tfdata": "tf.data from a Python generator over the shards, unbatch, shuffle 4,096, "
        "batch (the baseline)",
        "memory": "`core/batches.py`, split in memory (the default up to 2 GB)",
        "streamed": "`core/batches.py`, streamed (shards read ahead, 4,096-clip window)",
    }
    runs = report["runs"]
    base = runs["tfdata"]["samples_per_second"][-1]
    rows = [
        [names.get(mode, mode)]
        + [f"{rate:,.0f} samples/s" for rate in run["samples_per_second"]]
        + [f"{run['samples_per_second'][-1] / base:.1f}x", f"{run['peak_mb']:,.0f} MB"]
        for mode, run in runs.items()
    ]
    epochs = len(runs["tfdata"]["samples_per_second"])
    memory, streamed = (runs[mode]["samples_per_second"][-1] for mode in ("memory", "streamed"))
    header = ["pipeline", *(f"epoch {n + 1}" for n in range(epochs))]
    header += [f"vs tf.data, epoch {epochs}", "peak memory"]
    return table(header, rows) + (
        f"\n{runs['tfdata']['samples']:,} training clips an epoch, batch {report['batch']}; "
        f"goal: at least 60,000 samples/s ({verdict(memory >= 60_000)} in memory"
        f"{'' if streamed >= 60_000 else ', not streamed'}).\n"
    )


def lsfb_pipeline(report: dict) -> str:
    runs = report["runs"]
    rate, ratios = report["clips_per_second"], report["ratios_to_load"]
    rows = [
        [
            "`np.load` of every pose file (baseline)",
            f"{rate['load']:,.0f}",
            "1.00",
            f"{runs['load']['peak_rss_mib']:,.0f}",
            "1.00",
        ],
        [
            "clean (read, check, fill, write shards)",
            f"{rate['clean']:,.0f}",
            f"**{ratios['clean_throughput']:.2f}**",
            f"{runs['clean']['peak_rss_mib']:,.0f}",
            f"**{ratios['clean_peak_rss']:.2f}**",
        ],
        [
            "transform (fixed length, mask, shards)",
            f"{rate['transform']:,.0f}",
            f"**{ratios['transform_throughput']:.2f}**",
            f"{runs['transform']['peak_rss_mib']:,.0f}",
            f"**{ratios['transform_peak_rss']:.2f}**",
        ],
    ]
    header = ["step", "clips/s", "vs loading the files", "peak RSS MiB", "vs loading the files"]
    train = runs["train"]
    device = "GPU" if report["train_on_gpu"] else "CPU, float32"
    return table(header, rows) + (
        f"\n{report['clips']:,} clips asked for. Training ({device}, batch 128, fed by "
        f"`core/batches.py`): "
        f"**{report['train_samples_per_second']:,.0f} samples/s**, peak RSS "
        f"{train['peak_rss_mib']:,.0f} MiB.\n"
    )


def lsfb_gpu(report: dict) -> str:
    main = report["main"]
    where = ", ".join(main["accelerators"]) or "CPU"
    rows = [
        [
            f"{run['batch_size']:,}",
            f"{run['learning_rate']:g}",
            f"**{run['top1_held_out']:.1%}**" if run["top1_held_out"] is not None else "-",
            f"{run['samples_per_second']:,.0f}",
            f"{run['input_wait_share']:.1%}",
        ]
        for run in main["train"].values()
    ]
    epochs = next(iter(main["train"].values()))["epochs"]
    header = [
        "batch",
        "learning rate",
        f"top-1 after {epochs} epochs",
        f"samples/s ({where}, {main['backend']})",
        "input wait",
    ]
    return table(header, rows) + (
        f"\n{report['clips']:,} generated clips of the transform's layout, "
        f"{report['model']['signs']} signs, the shipped model size; top-1 on "
        f"{report['held_out']:,} held-out clips.\n"
    )


def dataops_scale(report: dict) -> str:
    rows = []
    for case in report["cases"]:
        index = case["clean"].get("index_requests")
        rows.append(
            [
                case["backend"],
                f"{case['history_rows']:,}",
                _f(case["observe"]["rows_per_s"], 0),
                _f(case["clean"]["rows_per_s"], 0),
                _f(case["transform"]["rows_per_s"], 0),
                _f(case["split"]["rows_per_s"], 0),
                _f(case["bare_pass"]["rows_per_s"], 0),
                "-" if index is None else str(sum(index.values())),
                "-" if index is None else _f(case["clean"]["requests_per_batch"], 1),
            ]
        )
    text = table(
        [
            "storage",
            "history rows",
            "observe rows/s",
            "clean rows/s",
            "transform rows/s",
            "split rows/s",
            "bare pyarrow pass rows/s",
            "index requests (clean)",
            "clean requests per batch",
        ],
        rows,
    )
    goal, figures = report["goal"], report["figures"]
    lines = []
    for backend in ("local", "s3"):
        growth = figures.get(f"{backend}_clean_growth")
        if growth is not None:
            met = growth <= goal["clean_seconds_10m_over_100k_history"]
            lines.append(
                f"- {backend}: clean's time at the largest history over the smallest: "
                f"{_f(growth)}x (goal at most {goal['clean_seconds_10m_over_100k_history']}x: "
                f"{verdict(met)})"
            )
        ratio = figures.get(f"{backend}_bare_over_clean")
        if ratio is not None:
            met = ratio >= goal["bare_pass_over_clean"]
            lines.append(
                f"- {backend}: clean's throughput over the bare pass's: {_f(ratio)}x (goal at "
                f"least {goal['bare_pass_over_clean']}x: {verdict(met)})"
            )
    if report.get("user_run"):
        user = report["user_run"]
        met = user["wall_s"] < goal["user_run_seconds"]
        lines.append(
            f"- {user['rows']:,} rows x 30 columns in {user['files']} files through "
            f"`dagster asset materialize --select '*table/split'`: {_f(user['wall_s'], 1)} s "
            f"(goal under {goal['user_run_seconds']} s: {verdict(met)})"
        )
    if report.get("user_run_two_workers"):
        two = report["user_run_two_workers"]
        lines.append(
            f"- the same run under the multiprocess executor, clean's backlog in "
            f"{two['clean_slices']} slices (a worker process each, on this machine's 2 cores): "
            f"{_f(two['wall_s'], 1)} s (every step a process of its own: see below)"
        )
    if report.get("big_file"):
        big = report["big_file"]
        lines.append(
            f"- one landing Parquet file of {big['file_bytes'] / 2**30:.2f} GiB "
            f"({big['rows']:,} rows) through every DataOps step with `memory_mb` "
            f"{big['memory_mb_setting']}: peak RSS {_f(big['rss_peak_mb'], 0)} MB, "
            f"{_f(big['grown_mb'], 0)} MB over the process before it, in "
            f"{_f(big['seconds'], 0)} s"
        )
    return text + "\n" + "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[dict], str]] = {
    "pipeline_overhead_whole": pipeline_overhead,
    "pipeline_overhead_dataops": pipeline_overhead,
    "train_validate_digits": train_validate,
    "train_validate_60000": train_validate,
    "tabular_train_validate": train_validate,
    "inference_latency": inference_latency,
    "monitor_history": monitor_history,
    "inference_log_overhead": inference_log_overhead,
    "data_to_deploy": data_to_deploy,
    "landing_scale": landing_scale,
    "dataops_scale": dataops_scale,
    "serving_vs_mlserver": serving_vs_mlserver,
    "lsfb_loader": lsfb_loader,
    "lsfb_pipeline": lsfb_pipeline,
    "lsfb_gpu": lsfb_gpu,
}


def render(name: str, results: Path = RESULTS) -> str:
    path = results / f"{name}.json"
    if not path.exists():
        return f"*Not measured yet: no `bench/results/{name}.json`.*\n"
    report = json.loads(path.read_text())
    renderer = RENDERERS.get(name) or RENDERERS.get(report.get("benchmark", ""))
    if renderer is None:
        raise SystemExit(f"bench/report.py has no table for {name}")
    return renderer(report) + provenance(report, name)


def rewrite(text: str, results: Path = RESULTS) -> str:
    """`text` with every bench block's body rendered anew from `results`."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), results) + m.group(4), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the docs differ")
    args = parser.parse_args()
    text = DOCS.read_text()
    new = rewrite(text)
    if args.check:
        stale = [
            m.group("name")
            for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new), strict=True)
            if m.group("body") != n.group("body")
        ]
        if stale:
            print(f"docs/performance.md is stale for: {', '.join(stale)}", file=sys.stderr)
            sys.exit(1)
        return
    DOCS.write_text(new)
    print(f"rewrote {len(BLOCK.findall(text))} tables in {DOCS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
