"""The LSFB tests' fixtures: the generated dataset in the LSFB-ISOL layout, served over
loopback HTTP as the LSFB team's server serves it, and storage on the local default."""

from __future__ import annotations

import pytest

from mlops_assets.demo.lsfb_data import generate
from mlops_assets.settings import load_settings
from tests.support.http_source import serve_folder


@pytest.fixture
def storage(local_env):
    """The local default (the S3 code path is the digits tests' business)."""
    from mlops_assets.resources import build_storage

    return build_storage(load_settings())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("lsfb-source"))


@pytest.fixture
def source(dataset, local_env, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    with serve_folder(dataset.root) as server:
        monkeypatch.setenv("MLOPS_LSFB_SOURCE", server.url)
        yield server
