"""The environment's resources: where the local GitOps repository is for each storage root."""

from __future__ import annotations

from pathlib import Path

from mlops_assets.resources import build_gitops, local_gitops_path
from mlops_assets.settings import load_settings


def test_a_bucket_without_a_remote_gets_a_local_gitops_repository_of_its_own(tmp_path):
    local = local_gitops_path(str(tmp_path / "root"))
    assert local == (tmp_path / "root" / "gitops.git").resolve()
    on_s3 = local_gitops_path("s3://My-Bucket/mlops/Demo")
    assert on_s3 == Path(".mlops").resolve() / "gitops-s3-my-bucket-mlops-demo.git"
    assert on_s3 != local_gitops_path(".mlops")  # the local default's dev is left alone
    assert local_gitops_path("s3://other/mlops") != on_s3
    settings = load_settings(
        {
            "MLOPS_STORAGE_ROOT": "s3://my-bucket/mlops",
            "MLOPS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        }
    )
    assert build_gitops(settings).local_path.endswith("/.mlops/gitops-s3-my-bucket-mlops.git")
    with_remote = load_settings(
        {
            "MLOPS_STORAGE_ROOT": "s3://my-bucket/mlops",
            "MLOPS_GITOPS_REMOTE": "https://g.example/x.git",
        }
    )
    assert build_gitops(with_remote).local_path == ""
