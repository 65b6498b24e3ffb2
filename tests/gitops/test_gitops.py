"""GitOps deploy against a real remote: `git daemon` on loopback."""

from __future__ import annotations

import difflib
import subprocess
import threading
from pathlib import Path

import pytest

from mlops_assets.gitops.repository import DeployRequest, GitOpsError, GitOpsRepo, ImageRequest
from mlops_assets.gitops.values import read_model, read_section, set_model
from tests.support.gitops import HAND_WRITTEN, TEMPLATE, git_log
from tests.support.mlops_runs import run_mlops


def request(version: int, env: str = "dev", **kw) -> DeployRequest:
    return DeployRequest(
        environment=env,
        use_case="digits",
        model={
            "name": "digits",
            "version": str(version),
            "uri": f"s3://models/digits/{version}/model.skops",
            "sha256": f"sha{version}",
        },
        summary=[f"Gate: PASS v{version}"],
        trailers={
            "Model-Version": str(version),
            "Model-Sha256": f"sha{version}",
            "Dataset-Version": "d1",
            "Dagster-Run-Id": f"run-{version}",
        },
        **kw,
    )


def log(bare: Path, *args: str) -> str:
    return git_log(bare, *args)


def show(bare: Path, ref: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(bare), "show", f"{ref}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_deploy_commits_only_the_model_lines_with_trailers(git_server):
    url, bare = git_server
    repo = GitOpsRepo(url, author_name="Deploy Bot", author_email="bot@example.com")
    result = repo.deploy(request(2))
    assert result.changed and result.previous_version == "0"
    message = log(bare, "-1", "--format=%an <%ae>%n%B", "main")
    assert message.startswith("Deploy Bot <bot@example.com>\nDeploy digits v2 to dev")
    for trailer in (
        "Model-Version: 2",
        "Model-Sha256: sha2",
        "Dataset-Version: d1",
        "Dagster-Run-Id: run-2",
    ):
        assert trailer in message
    trailers = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True
    ).stdout
    assert "Model-Version: 2" in trailers
    after = show(bare, "main", "environments/dev/digits/values.yaml")
    changed = [
        line
        for line in difflib.ndiff(TEMPLATE.splitlines(), after.splitlines())
        if line.startswith(("+ ", "- "))
    ]
    assert len(changed) == 6  # version, uri, sha256: one line out, one line in each
    assert read_model(after)["version"] == "2"


def test_same_version_twice_makes_no_second_commit(git_server):
    url, bare = git_server
    repo = GitOpsRepo(url)
    assert repo.deploy(request(2)).changed
    before = log(bare, "--format=%H", "main")
    again = repo.deploy(request(2))
    assert not again.changed and "already deployed" in again.reason
    assert log(bare, "--format=%H", "main") == before


def test_round_trip_keeps_a_hand_written_file_except_the_changed_lines():
    out = set_model(
        HAND_WRITTEN, {"version": "7", "uri": "s3://models/digits/7/model.skops", "sha256": "bbbb"}
    )
    diff = [
        line
        for line in difflib.unified_diff(
            HAND_WRITTEN.splitlines(), out.splitlines(), lineterm="", n=0
        )
        if line[:1] in "+-"
    ]
    assert diff == [
        "--- ",
        "+++ ",
        "-  version: '1'   # quoted on purpose",
        '-  uri: "s3://models/digits/1/model.skops"',
        "-  sha256: aaaa",
        "+  version: '7'   # quoted on purpose",
        '+  uri: "s3://models/digits/7/model.skops"',
        "+  sha256: bbbb",
    ]


def test_rejected_push_is_fetched_reapplied_and_retried(git_server, tmp_path):
    url, bare = git_server
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", url, str(other)], check=True)

    class SomeoneElsePushesFirst(GitOpsRepo):
        pushed = False

        def _checkout(self, workdir):
            git = super()._checkout(workdir)
            if not self.pushed:  # between our fetch and our push, a teammate pushes
                self.pushed = True
                (other / "README.md").write_text("platform notes\n")
                for cmd in (
                    ["add", "README.md"],
                    [
                        "-c",
                        "user.name=t",
                        "-c",
                        "user.email=t@x",
                        "commit",
                        "-qm",
                        "Unrelated change",
                    ],
                    ["push", "-q"],
                ):
                    subprocess.run(["git", *cmd], cwd=other, check=True)
            return git

    result = SomeoneElsePushesFirst(url, backoff_seconds=0.01).deploy(request(3))
    assert result.changed and result.attempts == 2
    subjects = log(bare, "--format=%s", "main").splitlines()
    assert subjects[:2] == ["Deploy digits v3 to dev", "Unrelated change"]
    assert show(bare, "main", "README.md") == "platform notes\n"


def test_racing_deploys_both_land_or_the_later_wins(git_server):
    url, bare = git_server
    results = {}

    def deploy(version):
        results[version] = GitOpsRepo(url, backoff_seconds=0.05, attempts=8).deploy(
            request(version)
        )

    threads = [threading.Thread(target=deploy, args=(v,)) for v in (4, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = read_model(show(bare, "main", "environments/dev/digits/values.yaml"))
    assert final["version"] == "5"
    subjects = log(bare, "--format=%s", "main").splitlines()
    assert (
        "Deploy digits v5 to dev (was v4)" in subjects
        or results[4].changed is False
        or subjects[0] == "Deploy digits v5 to dev"
    )
    # linear history, nothing lost: every commit that reported success is on main
    for result in results.values():
        if result.changed:
            assert result.commit in log(bare, "--format=%H", "main")


def test_approval_mode_pushes_a_branch_and_leaves_main(git_server):
    url, bare = git_server
    before = log(bare, "--format=%H", "main")
    result = GitOpsRepo(url).deploy(request(6, env="prod", approval=True))
    assert result.changed and result.branch == "deploy/prod/digits/6"
    assert log(bare, "--format=%H", "main") == before
    prod = show(bare, "deploy/prod/digits/6", "environments/prod/digits/values.yaml")
    assert "version: '6'   # quoted on purpose" in prod
    again = GitOpsRepo(url).deploy(request(6, env="prod", approval=True))
    assert not again.changed


def test_unknown_environment_and_unreachable_remote_are_clear_errors(git_server, monkeypatch):
    url, _ = git_server
    with pytest.raises(GitOpsError, match="no environments/qa/digits/values.yaml"):
        GitOpsRepo(url).deploy(request(2, env="qa"))
    monkeypatch.setenv("MLOPS_GITOPS_TOKEN", "s3cr3t-token-value")
    with pytest.raises(GitOpsError) as error:
        GitOpsRepo("http://127.0.0.1:9/gitops.git").deploy(request(2))
    assert "127.0.0.1:9" in str(error.value)
    assert "s3cr3t-token-value" not in str(error.value)


def test_promotion_and_rollback_of_environments(local_env):
    import dagster as dg

    from mlops_assets.definitions import build_definitions
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.mlops.deploy import promote, rollback
    from mlops_assets.registry import ModelRegistry
    from mlops_assets.resources import build_gitops, build_storage
    from mlops_assets.settings import load_settings

    settings = load_settings()
    storage, gitops = build_storage(settings), build_gitops(settings)
    definitions = build_definitions()
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        for round_ in (1, 2):
            dataops = definitions.resolve_job_def("digits_dataops")
            assert dataops.execute_in_process(instance=instance).success
            assert run_mlops(definitions, instance).success
            if round_ == 1:
                seed_digits(storage, 5, [4, 5])
    repo = gitops.repo(("digits",))
    assert repo.deployed("dev", "digits")[0]["version"] == "2"

    assert promote(storage, gitops, "digits", "dev", "staging", "sklearn_svc").changed
    assert repo.deployed("staging", "digits")[0]["version"] == "2"
    with pytest.raises(GitOpsError, match="nothing is deployed in prod"):
        promote(storage, gitops, "digits", "prod", "staging", "sklearn_svc")

    result = rollback(storage, gitops, "digits", "dev", 1, "v2 regressed", "sklearn_svc")
    assert result.changed
    model, commit = repo.deployed("dev", "digits")
    assert model["version"] == "1" and "Roll back digits in dev to v1" in commit
    registry = ModelRegistry(storage, "digits")
    assert registry.champion()["version"] == 1 and registry.champion()["pinned"]
    # the pipeline's next deploy keeps the pinned rollback instead of redeploying v2
    deploy = definitions.resolve_job_def("digits_release").execute_in_process(
        asset_selection=[dg.AssetKey(["digits", "deploy"])],
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert deploy.success
    assert repo.deployed("dev", "digits")[0]["version"] == "1"
    with pytest.raises(LookupError):
        rollback(storage, gitops, "digits", "dev", 9, "no such version", "sklearn_svc")


def test_set_image_moves_only_image_tag_and_a_model_deploy_never_does(git_server, monkeypatch):
    url, bare = git_server
    repo = GitOpsRepo(url, backoff_seconds=0.05)
    assert repo.deploy(request(8)).changed
    before = show(bare, "main", "environments/dev/digits/values.yaml")
    result = repo.set_image(ImageRequest("dev", "0.2.0", trailers={"Code-Version": "abc123"}))
    assert result.changed and result.previous_version == "unset"
    after = show(bare, "main", "environments/dev/digits/values.yaml")
    changed = [
        line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"
    ]
    comment = "# set by `mlops-assets gitops set-image` (CI, on a release)"
    assert changed == [
        f'-   tag: ""               {comment}',
        f'+   tag: "0.2.0"               {comment}',
    ]
    message = log(bare, "-1", "--format=%B", "main")
    assert message.startswith("Set the model-api image of dev to 0.2.0 (was unset)")
    assert "Image-Tag: 0.2.0" in message and "Code-Version: abc123" in message
    prod = show(bare, "main", "environments/prod/digits/values.yaml")
    assert "0.2.0" not in prod  # other environments move by promotion
    again = repo.set_image(ImageRequest("dev", "0.2.0"))
    assert not again.changed and "already" in again.reason
    # a model deploy leaves the image as it is
    assert repo.deploy(request(9)).changed
    assert (
        read_section(show(bare, "main", "environments/dev/digits/values.yaml"), "image")["tag"]
        == "0.2.0"
    )
    # under approval: a branch to review, main unchanged
    review = repo.set_image(ImageRequest("dev", "0.3.0", approval=True))
    assert review.changed and review.branch == "image/dev/0.3.0"
    assert '"0.2.0"' in show(bare, "main", "environments/dev/digits/values.yaml")
    # promotion moves the image on with the model
    from mlops_assets.gitops.resource import GitOpsResource
    from mlops_assets.mlops.deploy import promote_image

    moved = promote_image(GitOpsResource(remote=url), "digits", "dev", "prod")
    assert moved is not None and moved.changed
    assert read_section(show(bare, "main", "environments/prod/digits/values.yaml"), "image") == {
        "tag": "0.2.0"
    }
    assert "Promoted from dev." in log(bare, "-1", "--format=%B", "main")
    for bad in ("0.3.0;rm -rf /", "-x", ""):
        with pytest.raises(GitOpsError):
            ImageRequest("dev", bad)
    with pytest.raises(GitOpsError, match="wine"):
        repo.set_image(ImageRequest("dev", "0.3.1", use_cases=("wine",)))


def test_set_image_from_the_command_line(git_server, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from mlops_assets.cli import main

    url, bare = git_server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", url)
    monkeypatch.setenv("MLOPS_CODE_VERSION", "0123abcd")
    done = CliRunner().invoke(
        main, ["gitops", "set-image", "--environment", "prod", "--tag", "1.4.0", "--reason", "r"]
    )
    assert done.exit_code == 0, done.output
    assert "committed" in done.output
    prod = show(bare, "main", "environments/prod/digits/values.yaml")
    assert read_section(prod, "image") == {"tag": "1.4.0"}  # a file without image: gets it
    assert read_model(prod) == read_model(HAND_WRITTEN)
    message = log(bare, "-1", "--format=%B", "main")
    assert "Code-Version: 0123abcd" in message and "\nr\n" in message
    refused = CliRunner().invoke(
        main, ["gitops", "set-image", "--environment", "prod", "--tag", "$(id)"]
    )
    assert refused.exit_code != 0 and "not a Docker tag" in refused.output
