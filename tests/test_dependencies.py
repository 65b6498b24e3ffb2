"""The dependency floors and the lock agree: an install without the lock cannot pick a
version with a known advisory that the lock avoids, and the lock holds what the floors ask."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.processes import REPO

# Parse untrusted input (artifacts, landing files, requests) or run the server.
GUARDED = {
    "skops": "0.12",
    "keras": "3.12",
    "tensorflow": "2.18",
    "fastapi": "0.115",
    "starlette": "0.49.1",
    "uvicorn": "0.30",
    "h11": "0.16",
    "requests": "2.32.4",
    "urllib3": "2.6",
    "jinja2": "3.1.6",
    "pyyaml": "6.0.1",
    "protobuf": "6.31.1",
}


def _project() -> tuple[list[Requirement], dict[str, list[Version]]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [Requirement(r) for r in project["project"]["dependencies"]]
    requirements += [
        Requirement(r) for group in project["dependency-groups"].values() for r in group
    ]
    locked: dict[str, list[Version]] = {}
    for package in tomllib.loads((REPO / "uv.lock").read_text())["package"]:
        name = canonicalize_name(package["name"])
        locked.setdefault(name, []).append(Version(package["version"]))
    return requirements, locked


def test_every_guarded_package_has_its_floor():
    requirements, _ = _project()
    by_name = {canonicalize_name(r.name): r for r in requirements}
    for name, floor in GUARDED.items():
        assert name in by_name, f"{name} needs a floor in pyproject.toml"
        specifier = by_name[name].specifier
        assert not specifier.contains(_below(floor)), f"{name}{specifier} allows < {floor}"


def test_the_lock_satisfies_every_requirement_of_pyproject():
    requirements, locked = _project()
    for requirement in requirements:
        versions = locked.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is not in uv.lock: run `uv lock`"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"uv.lock has {requirement.name} {version}, pyproject.toml asks {requirement}"
            )


def _below(floor: str) -> Version:
    """The highest version just under `floor` that a specifier could still allow."""
    release = list(Version(floor).release)
    for i in reversed(range(len(release))):
        if release[i]:
            release[i] -= 1
            release[i + 1 :] = [999] * (len(release) - i - 1)
            break
    return Version(".".join(map(str, release)))
