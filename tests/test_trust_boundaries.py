"""What an attacker who can write to one place (the bucket, a landing file, a remote, a
request) can make the project do: never choose code, a token's destination or a write path,
and never block the good inputs behind a bad one."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gitops import TEMPLATE, git_log
from tests.support.interleaving import schedule, scheduled_storage
from tests.support.processes import BIN, clean_env
from tests.support.use_cases import plain_release

EVIL_MODULE = """
from pathlib import Path
Path({marker!r}).write_text("imported")
class Evil:
    artifact_name = "model.pkl"
    default_params = {{}}
    def loads(self, data):
        import pickle
        return pickle.loads(data)
"""


class _Payload:
    """Unpickling this runs a shell command that leaves a file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _tamper(storage, version: int, artifact: bytes, adapter: str) -> None:
    """What write access to the bucket allows: new artifact bytes, metadata that matches
    them and names another adapter, and the champion alias pointing at the version."""
    import hashlib

    from mlops_assets.storage import Layout

    layout = Layout("digits")
    meta_key = layout.model(version, "metadata.json")
    meta = json.loads(storage.read_bytes(meta_key)) if storage.exists(meta_key) else None
    meta = meta or json.loads(storage.read_bytes(layout.model(1, "metadata.json")))
    meta.update(
        adapter=adapter,
        artifact="model.pkl",
        artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        model_version=version,
    )
    storage.write_bytes(layout.model(version, "model.pkl"), artifact)
    storage.write_json(meta_key, meta)
    alias = json.loads(storage.read_bytes(layout.champion_alias))
    alias.update(version=version, artifact_sha256=meta["artifact_sha256"])
    storage.write_json(layout.champion_alias, alias)


def test_stored_metadata_never_chooses_the_code_that_loads_a_model(local_env, tmp_path):
    from mlops_assets.core.config import DeployConfig, GateConfig, ModelConfig
    from mlops_assets.datasets.tabular.dataset import TabularDataset
    from mlops_assets.mlops.deploy import run_deploy
    from mlops_assets.mlops.train import run_train
    from mlops_assets.mlops.validate import run_validate
    from mlops_assets.models import AdapterMismatchError
    from mlops_assets.registry import ModelRegistry
    from mlops_assets.serving.loader import ModelLoadError, load_from_registry
    from mlops_assets.storage import Layout

    storage, gitops = plain_release(local_env)
    evil = tmp_path / "attacker"
    evil.mkdir()
    imported, shell = tmp_path / "evil-module-imported", tmp_path / "shell-command-ran"
    (evil / "evil_adapter.py").write_text(EVIL_MODULE.format(marker=str(imported)))
    sys.path.insert(0, str(evil))  # the module is importable: only the choice protects
    try:
        payload = pickle.dumps(_Payload(shell))
        # v1 as deployed, then rewritten in the bucket (metadata, artifact and alias)
        _tamper(storage, 1, payload, "evil_adapter:Evil")

        # The model server reads the values file from the GitOps repository: the adapter and
        # both sha256 there are what was reviewed, so the rewritten version does not load.
        env = {**clean_env(), "MLOPS_STORAGE_ROOT": str(local_env / ".mlops")}
        env["PYTHONPATH"] = str(evil)
        served = subprocess.run(
            [str(BIN / "mlops-assets"), "serve", "--environment", "dev", "--port", "1"],
            cwd=local_env,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert served.returncode == 2, served.stdout + served.stderr
        assert "refusing to serve it" in served.stderr and "model.pkl" not in served.stdout

        # Whatever reads the registry directly takes the adapter from the YAML.
        with pytest.raises(ModelLoadError, match="evil_adapter:Evil.*sklearn_svc"):
            load_from_registry(storage, "digits", adapter="sklearn_svc")

        # A new candidate is validated against the rewritten champion with the YAML's
        # adapter only: the champion is reported as made by another adapter.
        layout, dataset, model = Layout("digits"), TabularDataset(), ModelConfig()
        run_train(storage, layout, dataset, model, "c2")
        validation = run_validate(storage, layout, dataset, GateConfig(), "c2", model.adapter)
        assert "evil_adapter:Evil" in validation["summary"]
        assert validation["champion_metrics"] is None

        # Deploy refuses to write a champion whose metadata names another adapter to git.
        head = git_log(Path(gitops.local_path), "-1", "--format=%H")
        with pytest.raises(AdapterMismatchError, match="evil_adapter:Evil"):
            run_deploy(storage, gitops, "digits", DeployConfig(), "", model.adapter)
        assert git_log(Path(gitops.local_path), "-1", "--format=%H") == head
        assert ModelRegistry(storage, "digits").champion()["version"] == 1
    finally:
        sys.path.remove(str(evil))
    assert "evil_adapter" not in sys.modules
    assert not imported.exists() and not shell.exists()


def test_metadata_rewritten_alone_is_refused_by_its_hash_in_the_values_file(local_env):
    """Only metadata.json changes (say, the input contract): the artifact still matches."""
    from mlops_assets.serving.loader import ModelLoadError, load_from_uri
    from mlops_assets.storage import Layout

    storage, gitops = plain_release(local_env)
    model, _ = gitops.repo().deployed("dev", "digits")
    assert model["adapter"] == "sklearn_svc" and len(model["metadataSha256"]) == 64
    trusted = {"adapter": model["adapter"], "metadata_sha256": model["metadataSha256"]}
    assert load_from_uri(model["uri"], model["sha256"], **trusted).version == "1"

    key = Layout("digits").model(1, "metadata.json")
    meta = json.loads(storage.read_bytes(key))
    meta["input"]["shape"] = [-1, 3]
    storage.write_json(key, meta)
    with pytest.raises(ModelLoadError, match="metadata.json has sha256 .* refusing"):
        load_from_uri(model["uri"], model["sha256"], **trusted)
    # the pipeline does not launder it into git either, and the check says what happened
    from mlops_assets.core.config import DeployConfig
    from mlops_assets.gitops.repository import GitOpsError
    from mlops_assets.mlops.consistency import compare
    from mlops_assets.mlops.deploy import run_deploy

    with pytest.raises(GitOpsError, match="metadataSha256 .* must not change"):
        run_deploy(storage, gitops, "digits", DeployConfig(), "", "sklearn_svc")
    assert gitops.repo().deployed("dev", "digits")[0] == model
    ok, summary, _ = compare(storage, gitops, "digits", "dev")
    assert not ok and "changed in the registry since it was deployed" in summary
    with pytest.raises(ModelLoadError, match="no model adapter given"):
        load_from_uri(model["uri"], model["sha256"], adapter="", metadata_sha256="x")


def test_the_yaml_names_only_registered_adapters():
    from mlops_assets.core.config import ModelConfig

    assert ModelConfig(adapter="mlops_assets.models.sklearn_svc:SklearnSVC").adapter == (
        "sklearn_svc"
    )
    with pytest.raises(ValueError, match="'os:system' is not installed here .*keras_sequence"):
        ModelConfig(adapter="os:system")


# -- tokens go only where they belong ---------------------------------------------------------


def test_a_redirect_never_carries_the_token_to_another_host(tmp_path, monkeypatch):
    """An HTTPS remote that answers 302 to another port (a server that asks for credentials)
    gets nothing from us: the push fails there, naming no token, and the other port sees no
    Authorization header. The right host does get the token (the push authenticates)."""
    from mlops_assets.gitops.git import ensure_local_remote
    from mlops_assets.gitops.repository import GitOpsError, GitOpsRepo
    from tests.support.https_git import https_git, self_signed

    root = tmp_path / "repos"
    ensure_local_remote(
        root / "gitops.git", "main", {"environments/dev/digits/values.yaml": TEMPLATE}
    )
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
    token = "ghp_redirectCanary0123456789"
    monkeypatch.setenv("MLOPS_GITOPS_TOKEN", token)
    with https_git(root, cert, key, token=token) as (elsewhere, stolen):
        with https_git(root, cert, key, redirect_to=elsewhere) as (remote, _):
            repo = GitOpsRepo(f"{remote}/gitops.git", backoff_seconds=0)
            with pytest.raises(GitOpsError) as failed:
                repo.environments("digits")
            assert token not in str(failed.value)
        assert stolen == []
        # the same server, addressed directly, is given the token
        assert GitOpsRepo(f"{elsewhere}/gitops.git").environments("digits") == ["dev"]
        assert stolen


def test_a_token_with_a_remote_that_is_not_https_is_refused_at_load():
    from mlops_assets.settings import SettingsError, load_settings

    for remote in ("http://git.example.com/gitops.git", "git://127.0.0.1/gitops.git"):
        environ = {"MLOPS_GITOPS_REMOTE": remote, "MLOPS_GITOPS_TOKEN": "secret-value"}
        with pytest.raises(SettingsError, match="MLOPS_GITOPS_TOKEN.*MLOPS_GITOPS_REMOTE") as e:
            load_settings(environ)
        assert "secret-value" not in str(e.value)
    assert load_settings({"MLOPS_GITOPS_REMOTE": "https://h/g.git", "MLOPS_GITOPS_TOKEN": "t"})


@pytest.mark.parametrize("branch", ["--upload-pack=touch /tmp/x", "-x", "a..b", "@{-1}", "a b"])
def test_a_branch_git_could_read_as_an_option_is_refused_at_load(branch):
    from mlops_assets.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="MLOPS_GITOPS_BRANCH.*not a valid branch name"):
        load_settings({"MLOPS_GITOPS_BRANCH": branch})
    assert load_settings({"MLOPS_GITOPS_BRANCH": "release/2026"}).gitops_branch == "release/2026"


def test_a_branch_is_passed_to_git_as_a_ref_not_an_argument(tmp_path):
    """Even a GitOpsRepo built by hand (no settings) cannot be turned into `--upload-pack`."""
    from mlops_assets.gitops.git import ensure_local_remote
    from mlops_assets.gitops.repository import GitOpsError, GitOpsRepo

    url = ensure_local_remote(tmp_path / "r.git", "main", {"environments/dev/digits/v": "x"})
    ran = tmp_path / "ran"
    repo = GitOpsRepo(url, branch=f"--upload-pack=touch {ran};false")
    with pytest.raises(GitOpsError, match="cannot fetch"):
        repo.environments("digits")
    assert not ran.exists()


def test_ssh_key_path_is_quoted_and_host_keys_are_checked_when_known_hosts_is_given():
    import shlex

    from mlops_assets.gitops.git import ssh_command

    strict = ssh_command("/keys/my key;touch x", "/etc/known hosts")
    assert shlex.split(strict) == [
        "ssh",
        "-i",
        "/keys/my key;touch x",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "UserKnownHostsFile=/etc/known hosts",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
    assert shlex.split(ssh_command("/k", None))[-1] == "StrictHostKeyChecking=accept-new"


# -- GitOps writes stay in the checkout ---------------------------------------------------------


def test_a_values_file_that_is_a_symlink_is_refused_and_nothing_outside_changes(tmp_path):
    from mlops_assets.gitops.git import Git, ensure_local_remote
    from mlops_assets.gitops.repository import GitOpsError, GitOpsRepo

    outside = tmp_path / "outside.yaml"
    outside.write_text(TEMPLATE)
    url = ensure_local_remote(
        tmp_path / "gitops.git", "main", {"environments/prod/digits/values.yaml": TEMPLATE}
    )
    work = tmp_path / "work"
    git = Git(work, "someone", "someone@example.com")
    work.mkdir()
    git.run("clone", "-q", url, ".")
    (work / "environments/dev/digits").mkdir(parents=True)
    (work / "environments/dev/digits/values.yaml").symlink_to(outside)
    (work / "environments/staging").symlink_to(tmp_path)  # a folder link on the way
    git.run("add", "-A")
    git.run("commit", "-q", "-m", "links")
    git.run("push", "-q", "origin", "HEAD:main")
    head = git_log(tmp_path / "gitops.git", "-1", "--format=%H")

    repo = GitOpsRepo(url, backoff_seconds=0)
    with pytest.raises(GitOpsError, match="symbolic link; refused"):
        repo.deploy(_request("dev"))
    with pytest.raises(GitOpsError, match="symbolic link; refused"):
        repo.deployed("dev", "digits")
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits/values.yaml").write_text(TEMPLATE)
    with pytest.raises(GitOpsError, match="symbolic link; refused"):
        repo.deploy(_request("staging"))
    with pytest.raises(GitOpsError, match="not a plain name"):
        repo.deploy(_request("../../x"))
    assert outside.read_text() == TEMPLATE
    assert (tmp_path / "digits/values.yaml").read_text() == TEMPLATE
    assert git_log(tmp_path / "gitops.git", "-1", "--format=%H") == head
    assert repo.deploy(_request("prod")).changed  # a plain file still deploys


def _request(environment: str, **model: str):
    from mlops_assets.gitops.repository import DeployRequest

    return DeployRequest(
        environment=environment,
        use_case="digits",
        model={"name": "digits", "version": "1", "uri": "s3://b/m", "sha256": "a" * 64, **model},
    )


HOSTILE = [
    'x"\nimage:\n  repository: evil.example.com/x',
    "x'\nimage: {repository: evil}",
    'x\\" # comment',
    "s3://b/it's here",
    'with "quotes" and \\backslash\\',
    "x: y",
    "#not-a-comment",
    "*alias",
    "&anchor",
    "- item",
    "{a: b}",
    "true",
    "null",
    "~",
    "0123",
    "1e3",
    " leading space",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("quoting", ["plain", "double", "single", "new"])
def test_hostile_values_are_written_as_exactly_that_string_or_refused(value, quoting):
    from ruamel.yaml import YAML

    from mlops_assets.gitops.values import ValuesFileError, set_model

    uri = {"plain": "old", "double": '"old"', "single": "'old'", "new": None}[quoting]
    text = "# hand-written\nmodel:\n  name: digits\n" + (f"  uri: {uri}\n" if uri else "")
    text += "image:\n  repository: ghcr.io/mlops-assets/mlops-assets\n"
    try:
        edited = set_model(text, {"uri": value})
    except ValuesFileError as error:
        assert "\n" in value and "line break" in str(error)
        return
    document = YAML(typ="safe").load(edited)
    assert document["model"] == {"name": "digits", "uri": value}
    assert document["image"] == {"repository": "ghcr.io/mlops-assets/mlops-assets"}
    assert edited.startswith("# hand-written\n")


# -- the server never answers 500 for bad input -----------------------------------------------


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _metric(url: str, outcome: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("model_requests_total{") and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_malformed_length_headers_are_400s_and_every_5xx_is_counted(local_env):
    from mlops_assets.serving.app import create_app
    from mlops_assets.serving.loader import load_from_registry
    from tests.support.http_servers import uvicorn_thread

    storage, _ = plain_release(local_env)
    loaded = load_from_registry(storage, "digits", adapter="sklearn_svc")
    body = json.dumps(
        {"inputs": [{"name": "rows", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}
    ).encode()
    infer = "/v2/models/digits/infer"
    with uvicorn_thread(create_app(loaded)) as url:
        for length in ("²", "0" * 5000, "-1", "1_0", "0x10"):
            status, answer = _post(url + infer, body, {"Inference-Header-Content-Length": length})
            assert status == 400, (length, answer)
            assert "Inference-Header-Content-Length" in answer["error"]
        assert _post(url + infer, body, {})[0] == 200
        assert _metric(url, "400") == 5 and _metric(url, "500") == 0

        # a failure inside the model is a 500, counted, with no traceback in the answer
        loaded.model = None
        status, answer = _post(url + infer, body, {})
        assert status == 500 and answer == {"error": "internal server error"}
        assert _metric(url, "500") == 1


# -- no lost batch, no poison file ----------------------------------------------------------------


def test_two_acquires_at_once_both_land_their_batches(local_env):
    """The interleaving that lost a batch for good with a shared catalog and index: B writes
    its catalog segment, then A; A writes its cursor, then B. Each run must still catalog
    what it found, and a third run finds none missing."""
    import threading

    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.catalog import load_catalog
    from mlops_assets.datasets.tabular.landing_index import read_markers
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.storage import Layout

    storage, layout = scheduled_storage(local_env / ".mlops"), Layout("digits")
    schedule(
        {
            "A": ("_catalog/", "B wrote _catalog/"),
            "B": ("_landing_cursor.json", "A wrote _landing_cursor.json"),
        }
    )
    seed_digits(storage, 5, [1])
    results = {}
    a = threading.Thread(
        name="A", target=lambda: results.setdefault("A", run_acquire(storage, layout, "landing"))
    )
    a.start()
    while not storage.list("raw/digits"):  # A has ingested batch 1 and waits for B
        a.join(0.05)
    seed_digits(storage, 5, [2])  # lands while A runs: only B sees it
    b = threading.Thread(
        name="B", target=lambda: results.setdefault("B", run_acquire(storage, layout, "landing"))
    )
    b.start()
    a.join(30)
    b.join(30)
    assert not a.is_alive() and not b.is_alive()
    assert len(results["A"].new) == 1 and len(results["B"].new) == 2
    schedule({})
    sources = [b["source"] for b in load_catalog(storage, layout)]
    assert sorted(sources) == ["digits/digits-001-of-005.csv", "digits/digits-002-of-005.csv"]
    assert sorted(read_markers(storage, layout, sources)) == sources and len(set(sources)) == 2
    again = run_acquire(storage, layout, "landing")
    assert again.new == [] and len(again.catalog) == 2


def test_a_landing_file_that_cannot_be_ingested_never_blocks_the_others(local_env):
    """A 250-byte name, a named pipe and an oversized file, each sorted before a good file:
    each is quarantined with its reason, the good one is ingested, and the next run neither
    retries them nor reports them again until they change."""
    import os

    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.landing_index import read_markers
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    storage, layout = LocalStorage(root=str(local_env / ".mlops")), Layout("digits")
    landing = local_env / ".mlops/landing/digits"
    (good,) = seed_digits(storage, 5, [1])
    long_name = "a" * 246 + ".csv"
    data = (local_env / ".mlops" / good).read_bytes()
    limit = len(data)
    (landing / long_name).write_bytes(data)
    os.mkfifo(landing / "a-pipe.csv")
    (landing / "a-big.csv").write_bytes(b"x" * (limit + 1))

    first = run_acquire(storage, layout, "landing/digits", max_file_bytes=limit)
    refused = dict(first.refused)
    assert set(refused) == {"a-pipe.csv", "a-big.csv"}
    assert "not a regular file" in refused["a-pipe.csv"]
    assert f"{limit + 1} bytes" in refused["a-big.csv"] and "max_file_mb" in refused["a-big.csv"]
    # the long name is ingested (same bytes as the good file: one batch, both indexed)
    assert [b["source"] for b in first.catalog] == [long_name]
    names = [long_name, good.split("/")[-1]]
    assert set(read_markers(storage, layout, names)) == set(names)
    reasons = [
        storage.read_json(i.key)
        for i in storage.list("quarantine/digits")
        if i.key.endswith("reason.json")
    ]
    assert sorted(r["source"] for r in reasons) == ["a-big.csv", "a-pipe.csv"]

    second = run_acquire(storage, layout, "landing/digits", max_file_bytes=limit)
    assert second.refused == [] and second.new == []
    (landing / "a-big.csv").write_bytes(b"pixel_0\n1\n")  # changed: tried again
    third = run_acquire(storage, layout, "landing/digits", max_file_bytes=limit)
    assert [b["source"] for b in third.new] == ["a-big.csv"]


def test_a_forged_dataset_manifest_reads_nothing_outside_its_use_case(tmp_path):
    """A manifest is data: one naming another use case's files, or bases that loop, is
    refused with the manifest named, and a well-formed chain still reads."""
    from mlops_assets.datasets.tabular.split import ManifestError, split_files
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    storage, layout = LocalStorage(root=str(tmp_path)), Layout("digits")

    def manifest(version: str, parts: list[str], base: str | None) -> None:
        storage.write_json(
            layout.dataset(version, "manifest.json"),
            {
                "dataset_version": version,
                "parts": {s: parts for s in ("train", "val", "test")},
                "base": base,
            },
        )

    own = "staged/digits/split/70-15-15/b1.parquet"
    manifest("aaaa", [own], None)
    manifest("bbbb", ["staged/digits/split/70-15-15/b2.parquet"], "aaaa")
    assert split_files(storage, layout, "bbbb", "train") == [
        own,
        "staged/digits/split/70-15-15/b2.parquet",
    ]
    manifest("cccc", ["staged/lsfb/split/70-15-15/b9.parquet"], "aaaa")
    with pytest.raises(ManifestError, match="staged/lsfb/split"):
        split_files(storage, layout, "cccc", "train")
    manifest("dddd", [own], "eeee")
    manifest("eeee", [own], "dddd")
    with pytest.raises(ManifestError, match="loops back"):
        split_files(storage, layout, "dddd", "train")
