"""What a newcomer meets at the command line: one-line errors that name the setting, quiet
loads, commands that say what they did, files others can read, a clone that can move."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tomllib

import pytest

from tests.support.processes import BIN, REPO, clean_env
from tests.support.use_cases import plain_release


def cli(*args: str, cwd, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "mlops-assets"), *args],
        cwd=cwd,
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def test_wrong_settings_and_failures_are_one_line_naming_what_is_wrong(tmp_path):
    error = one_line_error(cli("registry", "list", cwd=tmp_path, MLOPS_STORAGE_ROOT="ftp://x/y"))
    assert "MLOPS_STORAGE_ROOT" in error and "ftp://" in error
    assert not (tmp_path / "ftp:").exists()  # no local folder made of a URL

    error = one_line_error(
        cli(
            "gitops",
            "status",
            cwd=tmp_path,
            MLOPS_GITOPS_REMOTE="https://someone:hunter2@git.example.com/gitops.git",
        )
    )
    assert "MLOPS_GITOPS_REMOTE" in error and "hunter2" not in error and "someone" not in error

    missing = (tmp_path / "nowhere.git").as_uri()
    error = one_line_error(cli("gitops", "status", cwd=tmp_path, MLOPS_GITOPS_REMOTE=missing))
    assert error.startswith("Error: cannot fetch") and "nowhere.git" in error

    error = one_line_error(cli("serve", "--version", "3", cwd=tmp_path))
    assert "digits has no champion" in error or "no released model version 3" in error

    error = one_line_error(cli("serve", "--use-case", "nosuch", cwd=tmp_path))
    assert error.startswith("Error: no use case 'nosuch'") and "deployed" not in error


def test_commands_say_what_they_did(local_env):
    env = {"MLOPS_STORAGE_ROOT": str(local_env / ".mlops")}
    empty = cli("registry", "list", "--use-case", "lsfb", cwd=local_env, **env)
    assert empty.returncode == 0 and "lsfb: no versions in the registry" in empty.stdout
    unknown = cli("registry", "list", "--use-case", "nope", cwd=local_env, **env)
    assert unknown.returncode == 2 and "no use case 'nope'" in unknown.stderr

    plain_release(local_env)
    listed = cli("registry", "list", cwd=local_env, **env)
    assert listed.stdout.startswith("v1  accuracy ") and "champion" in listed.stdout

    promoted = cli(
        "gitops", "promote", "--from", "dev", "--to", "prod", "--approval", cwd=local_env, **env
    )
    assert promoted.returncode == 0, promoted.stderr
    status = cli("gitops", "status", cwd=local_env, **env).stdout.splitlines()
    assert status[0] == "digits, per environment of the GitOps repository:"  # names it
    assert status[1].split()[:2] == ["dev", "v1"]
    assert status[2].split()[:3] == ["prod", "nothing", "deployed"]  # not "v0"
    assert (
        status[-1].strip().startswith("pending approval: deploy/prod/digits/1  Promote digits v1")
    )

    rolled = cli(
        "gitops",
        "rollback",
        "--environment",
        "dev",
        "--version",
        "1",
        "--reason",
        "test",
        cwd=local_env,
        **env,
    )
    assert (
        rolled.returncode == 0
        and "pinned v1" in rolled.stdout
        and "registry unpin" in rolled.stdout
    )


def test_version_and_a_busy_port(local_env):
    assert cli("--version", cwd=local_env).stdout.strip() == "mlops-assets, version 0.1.0"
    plain_release(local_env)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = cli(
            "serve", "--port", port, cwd=local_env, MLOPS_STORAGE_ROOT=str(local_env / ".mlops")
        )
    error = one_line_error(done)
    assert f"cannot listen on 127.0.0.1:{port}" in error
    assert "serving" not in done.stdout  # nothing claimed before the port was bound


def test_a_moved_clone_still_serves_what_its_values_file_deploys(local_env, tmp_path, monkeypatch):
    """The local default writes artifact URIs as keys under the storage root."""
    from mlops_assets.serving.loader import load_from_uri

    _, gitops = plain_release(local_env)
    model, _ = gitops.repo().deployed("dev", "digits")
    assert model["uri"] == "models/digits/1/model.skops"
    moved = tmp_path / "elsewhere"
    shutil.copytree(local_env / ".mlops", moved / ".mlops")
    shutil.rmtree(local_env / ".mlops")
    monkeypatch.setenv("MLOPS_STORAGE_ROOT", str(moved / ".mlops"))
    loaded = load_from_uri(
        model["uri"],
        model["sha256"],
        adapter=model["adapter"],
        metadata_sha256=model["metadataSha256"],
    )
    assert loaded.version == "1"


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_stored_files_respect_the_umask(tmp_path, umask):
    code = (
        f"import os; os.umask({umask})\n"
        "from mlops_assets.storage.local import LocalStorage\n"
        f"s = LocalStorage(root={str(tmp_path)!r})\n"
        "s.write_bytes('a/b.bin', b'x'); s.write_bytes('a/c.bin', b'y', if_absent=True)\n"
        "s.update_json('a/d.json', lambda v: {**v, 'k': 1}, {})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    for name in ("b.bin", "c.bin", "d.json"):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_loading_the_definitions_is_quiet_and_the_location_name_is_fixed(tmp_path):
    """No Dagster beta, preview or supersession notice comes out of building the code
    location, and its name does not depend on the clone's folder."""
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from mlops_assets.definitions import build_definitions\n"
        "    build_definitions()\n"
        "print('\\n'.join(f'{w.category.__name__}: {w.message}' for w in caught))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    notices = [
        line
        for line in done.stdout.splitlines()
        if line.startswith(("BetaWarning", "PreviewWarning", "SupersessionWarning"))
    ]
    assert notices == []
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    assert project["code_location_name"] == "mlops_assets"


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="a GPU machine probes CUDA for real")
def test_tensorflow_says_nothing_about_cuda_on_a_machine_without_a_gpu():
    code = (
        "from mlops_assets.models.keras_backend import accelerators, keras\n"
        "keras()\n"
        "print(accelerators('tensorflow'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    assert "cuInit" not in done.stderr and "E0000" not in done.stderr, done.stderr
