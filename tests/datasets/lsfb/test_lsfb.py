"""LSFB-ISOL end to end: a generated dataset in the exact LSFB-ISOL layout, served over
loopback HTTP, fetched by the real `lsfb_dataset.Downloader` through the acquire asset,
through the nine assets to a GitOps commit, and served by the model server."""

from __future__ import annotations

import io
import json
import re

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlops_assets.cli import main
from mlops_assets.components.lsfb import LsfbUseCase
from mlops_assets.registry import ModelRegistry
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from tests.support.gitops import git_log
from tests.support.http_source import serve_folder
from tests.support.lsfb import (
    DEFS,
    OVERRIDES,
    clip_request,
    lsfb_definitions,
    merged,
    shards_of_test_split,
)
from tests.support.mlops_runs import run_mlops
from tests.support.processes import clean_env, model_server


@pytest.mark.slow
def test_whole_graph_from_the_server_to_a_gitops_commit_and_an_inference(
    dataset, source, local_env, storage
):
    defs = lsfb_definitions()
    with dg.instance_for_test() as instance:
        dataops = defs.resolve_job_def("lsfb_dataops").execute_in_process(instance=instance)
        assert dataops.success
        # the real Downloader fetched metadata and the pose sets of the YAML, nothing else
        assert source.requests["instances.csv"] == 1
        assert not any(p.startswith(("poses/", "poses_raw/face")) for p in source.requests)
        assert sum(p.startswith("poses_raw/") for p in source.requests) == 3 * len(
            dataset.instances
        )
        layout = Layout("lsfb")
        snapshot = storage.read_json("raw/lsfb/_latest.json")["snapshot"]
        quarantine = storage.read_parquet(layout.quarantine(snapshot, "clips.parquet"))
        reasons = dict(zip(quarantine["id"], quarantine["reason"], strict=True))
        assert set(reasons) == {*dataset.empty, *dataset.all_missing}
        assert all(
            "empty clip: 0 frames in raw/lsfb/poses_raw/" in reasons[i] for i in dataset.empty
        )
        assert all("entirely missing" in reasons[i] for i in dataset.all_missing)

        version = storage.read_json(layout.dataset_latest)["dataset_version"]
        manifest = storage.read_json(layout.dataset(version, "_dataset.json"))
        assert len(manifest["labels"]) == 12 and not set(manifest["labels"]) & set(
            dataset.signs[12:]
        )
        folds = {
            k: set(json.loads((dataset.root / f"metadata/splits/fold_{k}.json").read_text()))
            for k in range(5)
        }
        index = storage.read_parquet(layout.dataset(version, "index.parquet"))
        by_split = index.groupby("split")["id"].apply(set).to_dict()
        assert by_split["test"] <= folds[0] | folds[1]
        assert by_split["val"] <= folds[4]
        assert by_split["train"] <= folds[2] | folds[3]
        signers = {s: set(manifest["splits"][s]["signers"]) for s in ("train", "val", "test")}
        assert not signers["train"] & signers["test"] and not signers["val"] & signers["test"]
        assert manifest["item_shape"] == [32, (23 + 21 + 21) * 2]

        assert run_mlops(defs, instance, use_case="lsfb").success
    registry = ModelRegistry(storage, "lsfb")
    champion = registry.champion()
    assert champion["version"] == 1
    _, metadata = registry.artifact(1)
    assert metadata["metrics"]["top1"] >= 0.9
    assert metadata["metrics"]["top5"] >= metadata["metrics"]["top1"]
    assert metadata["input"]["shape"] == [-1, 32, 130]
    assert metadata["class_names"] == manifest["labels"]

    settings = load_settings()
    bare = settings.local_root / "gitops.git"
    log = git_log(bare, "-1", "--format=%s%n%b", "main")
    assert log.startswith("Deploy lsfb v1 to dev") and f"Dataset-Version: {version}" in log

    # the model server takes one clip as LSFB-ISOL stores it (each landmark set's frames,
    # NaN where nothing was detected) and answers as the model does on the transformed clip
    import tritonclient.http as httpclient

    from mlops_assets.serving.loader import load_from_registry

    test = next(iter(shards_of_test_split(storage, layout, manifest)))
    x, labels, ids = test["x"][:8].astype("float32"), test["label"][:8], test["id"][:8]
    local = load_from_registry(storage, "lsfb", adapter="keras_sequence")
    expected = local.adapter.predict(local.model, x)
    clips = storage.read_parquet(f"raw/lsfb/{snapshot}/clips.parquet").set_index("id")
    env = {
        **clean_env(),
        "MLOPS_STORAGE_ROOT": str(settings.local_root),
        "MLOPS_INFERENCE_LOG_ENABLED": "true",  # summary inputs: the YAML's default
        "MLOPS_INFERENCE_LOG_FLUSH_SECONDS": "0.2",
    }
    request_ids = []
    with model_server(
        settings.local_root.parent, env, "--use-case", "lsfb", "--environment", "dev"
    ) as address:
        client = httpclient.InferenceServerClient(url=address)
        meta = client.get_model_metadata("lsfb")
        assert [(i["name"], i["shape"]) for i in meta["inputs"]] == [
            ("pose", [-1, 33, 3]),
            ("left_hand", [-1, 21, 3]),
            ("right_hand", [-1, 21, 3]),
        ]
        predicted = []
        for clip_id in ids:
            answer = client.infer("lsfb", clip_request(storage, clips, clip_id))
            predicted.append(int(answer.as_numpy("output-0")[0]))
            request_ids.append(answer.get_response()["id"])
        assert any(
            np.isnan(np.load(io.BytesIO(storage.read_bytes(clips.loc[i, "key_left_hand"])))).any()
            for i in ids
        )  # raw poses: the server filled what was not detected
    np.testing.assert_array_equal(predicted, expected)
    assert np.mean(np.asarray(predicted) == labels) >= 0.75

    # the production side: the log holds row statistics of each clip, feedback joins, and
    # the monitor judges the live top-1 and drift on those statistics
    log = pd.concat(
        pd.read_parquet(p) for p in (settings.local_root / "inference/lsfb/dev").rglob("*.parquet")
    )
    assert sorted(log["request_id"]) == sorted(request_ids) and "inputs" not in log
    assert np.allclose(
        log.set_index("request_id").loc[request_ids, "input_mean"],
        x.reshape(8, -1).mean(axis=1),
        atol=1e-5,
    )
    labelled = ["feedback", "--use-case", "lsfb"]
    for rid, label in zip(request_ids, labels, strict=True):
        labelled += ["--label", rid, str(int(label))]
    assert CliRunner().invoke(main, labelled).exit_code == 0
    with dg.instance_for_test() as instance:
        monitored = defs.resolve_job_def("lsfb_monitor").execute_in_process(instance=instance)
    meta = {
        e.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in monitored.get_asset_materialization_events()
    }
    assert meta["feedback"]["accepted"] == 8
    assert meta["monitor"]["live_metric"] == pytest.approx(np.mean(np.asarray(predicted) == labels))
    assert set(meta["monitor"]["input_psi"]) == {
        "input_mean",
        "input_std",
        "input_min",
        "input_max",
    }
    assert meta["monitor"]["test_top1"] == metadata["metrics"]["top1"]
    # a kind whose data comes from a remote source retrains by running DataOps on it
    from datetime import UTC, datetime

    from mlops_assets.monitoring.retrain import start_retraining

    uc = LsfbUseCase.from_attributes_dict(
        attributes=merged(yaml.safe_load(DEFS.read_text())["attributes"], OVERRIDES)
    )
    from mlops_assets.components.use_case import BuildOptions

    spec = uc.spec(BuildOptions())  # what the builders are told of the use case
    (retrain,) = start_retraining(storage, spec, datetime.now(UTC), 7).run_requests
    assert retrain.tags["mlops/trigger"] == "monitor"

    # the YAML changes the data contract (24 frames): the champion cannot score the new
    # test split: the gate says so and HOLDs (on_hold: keep_champion), nothing released
    shorter = merged(OVERRIDES, {"dataset": {"frames": 24}})
    with dg.instance_for_test() as instance:
        defs = lsfb_definitions(shorter)
        assert defs.resolve_job_def("lsfb_dataops").execute_in_process(instance=instance).success
        assert run_mlops(defs, instance, use_case="lsfb").success
        gate = (
            instance.get_latest_materialization_event(dg.AssetKey(["lsfb", "validate"]))
            .asset_materialization.metadata["decision"]
            .value
        )
    assert gate.startswith("HOLD: ")
    assert "champion v1 is not comparable: it takes examples of shape [32, 130]" in gate
    assert (
        "this test split gives [24, 130]" in gate
        and "champion v1 stays (on_hold: keep_champion)" in gate
    )
    assert registry.versions() == [1] and registry.champion()["version"] == 1


def test_interrupted_download_resumes_without_refetching_or_keeping_truncated_files(
    dataset, source, local_env, storage, tmp_path
):
    from mlops_assets.datasets.lsfb.dataset import LsfbDataset
    from mlops_assets.datasets.lsfb.download import DownloadError, download

    config = LsfbDataset(poses="raw", retries=1, max_parallel_connections=4)
    victim = f"poses_raw/left_hand/{dataset.instances[5]}.npy"
    source.truncate[victim] = 2  # cut short twice: the first try and its one retry
    target = tmp_path / "download"
    with pytest.raises(DownloadError, match=victim.replace("/", ".")):
        download(config, target)
    assert not (target / victim).exists()
    assert not list(target.rglob("*.part"))
    complete = [p for p in (target / "poses_raw").rglob("*.npy")]
    assert complete  # the other files of the first pass are kept
    for path in complete:  # and each one whole
        served = (dataset.root / path.relative_to(target)).read_bytes()
        assert path.read_bytes() == served
    before = dict(source.requests)

    result = download(config, target)
    assert (target / victim).read_bytes() == (dataset.root / victim).read_bytes()
    refetched = [p for p, n in source.requests.items() if n > before.get(p, 0)]
    missing_before = {
        f"poses_raw/{s}/{i}.npy"
        for i in dataset.instances
        for s in ("pose", "left_hand", "right_hand")
    } - {p.relative_to(target).as_posix() for p in complete}
    poses_refetched = {p for p in refetched if p.startswith("poses_raw/")}
    assert poses_refetched == missing_before  # only what was not complete
    assert result.skipped == len(complete)


def test_a_truncated_file_is_retried_and_lands_whole(dataset, source, tmp_path):
    from mlops_assets.datasets.lsfb.dataset import LsfbDataset
    from mlops_assets.datasets.lsfb.download import download

    victim = f"poses_raw/pose/{dataset.instances[0]}.npy"
    source.truncate[victim] = 1
    logged: list[str] = []
    download(LsfbDataset(poses="raw", retries=2), tmp_path / "download", logged.append)
    assert (tmp_path / "download" / victim).read_bytes() == (dataset.root / victim).read_bytes()
    assert source.requests[victim] == 2
    # progress in the run's log, ending with every file of each group accounted for
    progress = [re.match(r"Raw poses for (\d+) .*: (\d+)/(\d+) files", line) for line in logged]
    instances, done, total = map(int, [m for m in progress if m][-1].groups())
    assert instances > 0 and done == total == 3 * instances  # pose, left and right hand
    assert any(line.startswith("Metadata: ") for line in logged)


def test_malformed_metadata_and_pose_files_are_named(
    dataset, tmp_path, monkeypatch, local_env, storage
):
    import shutil

    from mlops_assets.datasets.lsfb.acquire import run_acquire
    from mlops_assets.datasets.lsfb.clean import run_clean
    from mlops_assets.datasets.lsfb.dataset import LsfbDataset
    from mlops_assets.datasets.lsfb.download import MetadataError, read_metadata

    broken = tmp_path / "broken"
    shutil.copytree(dataset.root, broken)
    (broken / "metadata/sign_to_index.csv").write_text("sign,class,extra\nA,0,1\n")
    with pytest.raises(MetadataError, match=r"metadata/sign_to_index.csv: columns"):
        read_metadata(broken)
    (broken / "metadata/sign_to_index.csv").write_text(
        (dataset.root / "metadata/sign_to_index.csv").read_text()
    )
    (broken / "metadata/splits/fold_3.json").write_text("{not json")
    with pytest.raises(MetadataError, match=r"metadata/splits/fold_3.json: not JSON"):
        read_metadata(broken)
    shutil.copy(
        dataset.root / "metadata/splits/fold_3.json", broken / "metadata/splits/fold_3.json"
    )

    wrong_shape, wrong_dtype = dataset.instances[10], dataset.instances[11]
    np.save(broken / f"poses_raw/right_hand/{wrong_shape}.npy", np.zeros((20, 20, 3), "float16"))
    np.save(broken / f"poses_raw/pose/{wrong_dtype}.npy", np.zeros((20, 33, 3), "int32"))
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    config = LsfbDataset(poses="raw")
    with serve_folder(broken) as server:
        monkeypatch.setenv("MLOPS_LSFB_SOURCE", server.url)
        run_acquire(storage, Layout("lsfb"), config, lambda *_: None)
    result = run_clean(storage, Layout("lsfb"), config)
    reasons = dict(zip(result.quarantined["id"], result.quarantined["reason"], strict=True))
    assert f"right_hand/{wrong_shape}-" in reasons[wrong_shape]
    assert "shape (20, 20, 3), expected (frames, 21, 3)" in reasons[wrong_shape]
    assert f"pose/{wrong_dtype}-" in reasons[wrong_dtype] and "dtype int32" in reasons[wrong_dtype]
    # nothing silently dropped: every acquired clip is kept, quarantined or of an excluded sign
    assert result.kept + len(result.quarantined) + result.excluded_clips == len(dataset.instances)


def test_source_sensor_starts_a_run_when_instances_csv_changes(dataset, tmp_path):
    import shutil

    defs = None
    served = tmp_path / "served"
    shutil.copytree(dataset.root, served, ignore=shutil.ignore_patterns("poses*"))
    with serve_folder(served) as server:
        import os

        os.environ["MLOPS_LSFB_SOURCE"] = server.url
        try:
            defs = lsfb_definitions()
            sensor = defs.resolve_sensor_def("lsfb_source_sensor")
            with dg.instance_for_test() as instance:
                first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
                assert len(first.run_requests) == 1
                same = sensor.evaluate_tick(
                    dg.build_sensor_context(instance=instance, cursor=first.cursor)
                )
                assert not same.run_requests
                path = served / "instances.csv"
                path.write_text(path.read_text() + "CLSFBI9999A_S001_B_1_2,SIGN_0000,1,1,2\n")
                os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
                changed = sensor.evaluate_tick(
                    dg.build_sensor_context(instance=instance, cursor=first.cursor)
                )
                assert len(changed.run_requests) == 1
                assert changed.run_requests[0].run_key != first.run_requests[0].run_key
        finally:
            del os.environ["MLOPS_LSFB_SOURCE"]
    assert defs is not None


def test_keras_artifact_loads_in_safe_mode_only():
    pytest.importorskip("keras")
    from mlops_assets.models.keras_sequence import KerasSequenceClassifier

    adapter = KerasSequenceClassifier()
    model = adapter.build([4, 6], 3, adapter.default_params)
    data = adapter.dumps(model)
    loaded = adapter.loads(data)
    x = np.random.default_rng(0).random((2, 4, 6)).astype("float32")
    np.testing.assert_allclose(
        adapter.predict_scores(loaded, x), adapter.predict_scores(model, x), rtol=1e-5
    )

    import keras

    inputs = keras.Input((4, 6))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)  # code inside the archive
    unsafe = adapter.dumps(keras.Model(inputs, outputs))
    with pytest.raises(Exception, match="(?i)safe"):
        adapter.loads(unsafe)


def test_a_champion_trained_on_renumbered_classes_is_scored_by_sign_names():
    from mlops_assets.mlops.validate import aligned

    # the champion saw the signs in another order, and one sign the current data dropped
    champion_names = ["B", "GONE", "A", "C"]
    names = ["A", "B", "C"]
    predicted = np.array([0, 2, 3, 1])
    scores = np.eye(4, dtype="float32")[predicted]
    mapped, mapped_scores = aligned(predicted, scores, champion_names, names)
    np.testing.assert_array_equal(mapped, [1, 0, 2, -1])
    np.testing.assert_array_equal(mapped_scores.argmax(axis=1)[:3], [1, 0, 2])
    assert mapped_scores.shape == (4, 3) and mapped_scores[3].sum() == 0
    same, _ = aligned(predicted, scores, names, names)
    assert same is predicted


def test_dataops_on_s3_gives_the_dataset_version_of_the_local_default(
    dataset, tmp_path, monkeypatch, request
):
    """The same five stages on the moto S3 server and on a folder: same dataset version,
    same quarantine, and a second pass on S3 stores nothing again."""
    from mlops_assets.datasets.lsfb import acquire, clean, split, transform
    from mlops_assets.datasets.lsfb.dataset import LsfbDataset
    from mlops_assets.resources import build_storage

    config = LsfbDataset(poses="raw", top_n=12, shard_size=64)
    layout = Layout("lsfb")
    versions, quarantined = {}, {}
    with serve_folder(dataset.root) as server:
        monkeypatch.setenv("MLOPS_LSFB_SOURCE", server.url)
        for where in ("local", "s3"):
            request.getfixturevalue(f"{where}_env")
            monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / f"cache-{where}"))
            storage = build_storage(load_settings())
            first = acquire.run_acquire(storage, layout, config, lambda *_: None)
            assert first.new and first.stored == 3 * len(dataset.instances)
            again = acquire.run_acquire(storage, layout, config, lambda *_: None)
            assert not again.new and again.stored == 0
            quarantined[where] = set(clean.run_clean(storage, layout, config).quarantined["id"])
            transform.run_transform(storage, layout, config)
            versions[where] = split.run_split(storage, layout, config)["dataset_version"]
            assert storage.uri("").startswith("s3://" if where == "s3" else "/")
    assert versions["local"] == versions["s3"]
    assert quarantined["local"] == quarantined["s3"] == {*dataset.empty, *dataset.all_missing}


def test_a_new_release_reads_only_the_clips_it_adds(dataset, tmp_path, monkeypatch, storage):
    import json
    import shutil

    from mlops_assets.datasets.lsfb.acquire import run_acquire
    from mlops_assets.datasets.lsfb.dataset import LsfbDataset
    from mlops_assets.datasets.lsfb.observe import run_observe

    config = LsfbDataset(poses="raw")
    layout = Layout("lsfb")
    release = tmp_path / "release"
    shutil.copytree(dataset.root, release)
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    with serve_folder(release) as server:
        monkeypatch.setenv("MLOPS_LSFB_SOURCE", server.url)
        first = run_acquire(storage, layout, config, lambda *_: None)
        assert run_observe(storage, layout, config)[2] == len(dataset.instances)

        # the next release of the dataset: one more clip, in fold 2
        new = "CLSFBI0102A_S003_B_999001_999041"
        with open(release / "instances.csv", "a") as f:
            f.write(f"{new},{dataset.signs[0]},3,999001,999041\n")
        for split in ("all", "train", "fold_2"):
            path = release / f"metadata/splits/{split}.json"
            path.write_text(json.dumps([*json.loads(path.read_text()), new]))
        for landmark_set in ("pose", "left_hand", "right_hand"):
            source = release / f"poses_raw/{landmark_set}/{dataset.instances[7]}.npy"
            shutil.copy(source, release / f"poses_raw/{landmark_set}/{new}.npy")
        second = run_acquire(storage, layout, config, lambda *_: None)
    assert second.new and second.snapshot != first.snapshot
    assert second.stored == 3  # the new clip's three pose files; the others are there already
    snapshot, clips, read = run_observe(storage, layout, config)
    assert snapshot == second.snapshot and read == 1  # only the new clip was read
    assert len(clips) == len(dataset.instances) + 1
    row = clips.set_index("id").loc[new]
    assert row["frames"] == clips.set_index("id").loc[dataset.instances[7], "frames"]
