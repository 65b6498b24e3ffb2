"""Deploy: one readable, conflict-safe commit of the model keys per change.

On a rejected push (someone else pushed first) the edit is re-applied on the
new head and pushed again, with backoff, a bounded number of times; never
forced. A version older than the one already deployed is not written back
unless asked for (a rollback), so racing deploys end with the later version.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlops_assets.errors import MlopsError, redact
from mlops_assets.gitops.environments import environment_path, values_template
from mlops_assets.gitops.git import Git
from mlops_assets.gitops.values import read_model, set_keys, set_model


class GitOpsError(MlopsError, RuntimeError):
    """The deploy could not be written; the message says where and why."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def values_path(environment: str, use_case: str) -> str:
    """environments/<environment>/<use case>/values.yaml, each part a plain name."""
    for what, name in (("environment", environment), ("use case", use_case)):
        if not _NAME.match(name) or ".." in name:
            raise GitOpsError(f"{what} {name!r} is not a plain name (letters, digits, _ . -)")
    return f"environments/{environment}/{use_case}/values.yaml"


def inside(workdir: Path, relative: str) -> Path:
    """`workdir/relative`, refused when it or a folder on the way is a symbolic link (or
    otherwise resolves outside the checkout): a GitOps repository must not make deploy
    read or rewrite a file elsewhere."""
    path, root = workdir / relative, workdir.resolve()
    for part in [path, *path.parents]:
        if part == workdir:
            break
        if part.is_symlink():
            link = part.relative_to(workdir)
            raise GitOpsError(f"{relative}: {link} is a symbolic link; refused")
    if not path.resolve().is_relative_to(root):
        raise GitOpsError(f"{relative} resolves outside the checkout; refused")
    return path


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    use_case: str
    model: dict[str, str]
    """name, version, uri, sha256, adapter, metadataSha256"""
    summary: list[str] = field(default_factory=list)
    """Lines for the commit body (the gate's numbers, ...)."""
    trailers: dict[str, str] = field(default_factory=dict)
    approval: bool = False
    allow_older: bool = False
    image_tag: str = ""
    """Also set `image.tag` (the server image that can load this model), when given."""
    headline: str = ""
    """The commit's first line; by default 'Deploy <use case> v<N> to <env> (was v<M>)'."""

    @property
    def path(self) -> str:
        return values_path(self.environment, self.use_case)

    @property
    def approval_branch(self) -> str:
        return f"deploy/{self.environment}/{self.use_case}/{self.model['version']}"


@dataclass(frozen=True)
class DeployResult:
    changed: bool
    reason: str
    commit: str | None
    branch: str
    previous_version: str | None
    attempts: int


@dataclass
class GitOpsRepo:
    remote: str
    branch: str = "main"
    author_name: str = "mlops-assets"
    author_email: str = "mlops-assets@localhost"
    attempts: int = 5
    backoff_seconds: float = 0.5
    base_branch: str | None = None
    """A branch deployment's: `branch` (preview/<deployment>) starts from it when it does
    not exist yet, and deploys go to `branch` only (no approval branches)."""

    def read_values(self, environment: str, use_case: str) -> str:
        relative = values_path(environment, use_case)
        with tempfile.TemporaryDirectory() as tmp:
            self._checkout(Path(tmp))
            path = inside(Path(tmp), relative)
            if not path.exists():
                raise GitOpsError(self._missing(relative))
            return path.read_text()

    def deployed(self, environment: str, use_case: str) -> tuple[dict, str]:
        """The model keys of an environment and the last commit that touched them."""
        relative = values_path(environment, use_case)
        with tempfile.TemporaryDirectory() as tmp:
            git = self._checkout(Path(tmp), depth=50)
            path = inside(Path(tmp), relative)
            if not path.exists():
                raise GitOpsError(self._missing(relative))
            commit = git.run("log", "-1", "--format=%h %s", "--", relative).strip()
            return read_model(path.read_text(), relative), commit

    def deployed_everywhere(self, use_case: str) -> dict[str, tuple[dict, str]]:
        """`deployed` for every environment of the use case, from one fetch."""
        with tempfile.TemporaryDirectory() as tmp:
            git = self._checkout(Path(tmp), depth=50)
            found = {}
            for found_path in sorted(
                (Path(tmp) / "environments").glob(f"*/{use_case}/values.yaml")
            ):
                relative = found_path.relative_to(tmp).as_posix()
                path = inside(Path(tmp), relative)
                commit = git.run("log", "-1", "--format=%h %s", "--", relative).strip()
                found[path.parent.parent.name] = (read_model(path.read_text(), relative), commit)
            return found

    def approval_branches(self, use_case: str) -> list[tuple[str, str]]:
        """deploy/<env>/<use case>/<version> branches waiting for review, with their
        commit's subject."""
        with tempfile.TemporaryDirectory() as tmp:
            git = Git(Path(tmp), self.author_name, self.author_email, remote=self.remote)
            git.run("init", "-q")
            code, out = git.try_run("ls-remote", "--heads", self.remote, "refs/heads/deploy/*")
            if code:
                raise GitOpsError(f"cannot list the branches of {self._where()}: {out}")
            found = []
            for line in out.splitlines():
                sha, _, ref = line.partition("\t")
                branch = ref.removeprefix("refs/heads/")
                if branch.split("/")[2:3] == [use_case]:
                    git.try_run("fetch", "-q", "--depth", "1", self.remote, ref)
                    _, subject = git.try_run("log", "-1", "--format=%s", sha)
                    found.append((branch, subject.strip()))
            return found

    def environments(self, use_case: str) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            self._checkout(Path(tmp))
            root = Path(tmp) / "environments"
            return sorted(p.parent.parent.name for p in root.glob(f"*/{use_case}/values.yaml"))

    def deploy(self, request: DeployRequest) -> DeployResult:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for attempt in range(1, self.attempts + 1):
                git = self._checkout(workdir)
                target = inside(workdir, request.path)
                first = not target.exists()
                if first:  # a use case's first deploy to an environment people set up
                    if not inside(workdir, environment_path(request.environment)).exists():
                        raise GitOpsError(self._missing(request.path))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(values_template(request.use_case))
                text = target.read_text()
                current = read_model(text, request.path)
                previous = str(current.get("version")) if current.get("version") else None
                wanted = request.model
                if all(str(current.get(k, "")) == str(v) for k, v in wanted.items()):
                    return DeployResult(
                        False,
                        f"v{previous} is already deployed in "
                        f"{request.environment}; nothing to commit",
                        None,
                        self.branch,
                        previous,
                        attempt,
                    )
                # version numbers compare within one registry only (a branch deployment's
                # starts at v1 beside production's, under its own prefix)
                same_registry = _registry(current) in ("", _registry(wanted))
                if same_registry and previous == str(wanted["version"]):
                    _same_version_same_bytes(current, wanted, request)
                if (
                    same_registry
                    and not request.allow_older
                    and previous
                    and previous.isdigit()
                    and int(previous) > int(wanted["version"])
                ):
                    return DeployResult(
                        False,
                        f"a newer version v{previous} is deployed in "
                        f"{request.environment}; not going back to "
                        f"v{wanted['version']}",
                        None,
                        self.branch,
                        previous,
                        attempt,
                    )
                text = set_model(text, wanted, request.path)
                if request.image_tag:
                    text = set_keys(text, "image", {"tag": request.image_tag}, request.path)
                target.write_text(text)
                git.run("add", request.path)
                # another registry's version (production's, on a preview branch) is named so
                was = (
                    previous
                    if same_registry or not previous
                    else f"{previous} of {_registry(current)}"
                )
                git.run("commit", "-q", "-F", "-", input=self._message(request, was, first))
                commit = git.run("rev-parse", "HEAD").strip()
                approval = request.approval and not self.base_branch
                branch = request.approval_branch if approval else self.branch
                if approval and self._remote_branch_exists(git, branch):
                    return DeployResult(
                        False,
                        f"approval branch {branch} exists already",
                        None,
                        branch,
                        previous,
                        attempt,
                    )
                code, out = git.try_run(
                    "push", "--porcelain", "origin", f"HEAD:refs/heads/{branch}"
                )
                if code == 0:
                    return DeployResult(
                        True,
                        f"committed {commit[:12]} to {branch}",
                        commit,
                        branch,
                        previous,
                        attempt,
                    )
                if not _rejected(out):
                    raise GitOpsError(f"push to {self._where()} failed: {out}")
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            raise GitOpsError(
                f"push to {self._where()} was rejected {self.attempts} times in a row "
                "(others keep pushing first); nothing was forced, try again"
            )

    def _checkout(self, workdir: Path, depth: int = 1) -> Git:
        git = Git(workdir, self.author_name, self.author_email, remote=self.remote)
        if not (workdir / ".git").exists():
            git.run("init", "-q")
            git.run("remote", "add", "origin", self.remote)
        # the branch as a full ref, never as a bare argument git could read as an option
        code, out = git.try_run(
            "fetch", "-q", "--depth", str(depth), "origin", f"refs/heads/{self.branch}"
        )
        if code and self.base_branch and not self._remote_branch_exists(git, self.branch):
            code, out = git.try_run(
                "fetch", "-q", "--depth", str(depth), "origin", f"refs/heads/{self.base_branch}"
            )
        if code:
            raise GitOpsError(f"cannot fetch {self._where()}: {out}")
        git.run("checkout", "-q", "-B", "deploy-work", "FETCH_HEAD")
        return git

    def _remote_branch_exists(self, git: Git, branch: str) -> bool:
        return bool(git.run("ls-remote", "--heads", "origin", f"refs/heads/{branch}").strip())

    def _where(self) -> str:
        return f"{redact(self.remote)} (branch {self.branch})"

    def _missing(self, path: str) -> str:
        environment = path.split("/")[1]
        return (
            f"{self._where()} has no {path}, and no {environment_path(environment)}: set the "
            f"environment up first (mlops-assets gitops init-environment --environment "
            f"{environment})"
        )

    def init_environment(self, environment: str, text: str) -> DeployResult:
        """Commit environments/<env>/environment.yaml; one that exists is left as it is
        (changed by pull request, not by a command)."""
        values_path(environment, "x")  # a plain name
        relative = environment_path(environment)
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for attempt in range(1, self.attempts + 1):
                git = self._checkout(workdir)
                target = inside(workdir, relative)
                if target.exists():
                    same = target.read_text() == text
                    if not same:
                        raise GitOpsError(
                            f"{relative} exists in {self._where()} with another policy; "
                            "change it by pull request"
                        )
                    return DeployResult(
                        False, f"{relative} is as asked", None, self.branch, None, attempt
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                git.run("add", relative)
                message = (
                    f"Add the {environment} environment\n\nIts Argo CD policy ({relative}); "
                    "each use case deployed to it gets an Application from the ApplicationSet.\n"
                )
                git.run("commit", "-q", "-F", "-", input=message)
                commit = git.run("rev-parse", "HEAD").strip()
                code, out = git.try_run(
                    "push", "--porcelain", "origin", f"HEAD:refs/heads/{self.branch}"
                )
                if code == 0:
                    return DeployResult(
                        True,
                        f"committed {commit[:12]} to {self.branch}",
                        commit,
                        self.branch,
                        None,
                        attempt,
                    )
                if not _rejected(out):
                    raise GitOpsError(f"push to {self._where()} failed: {out}")
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            raise GitOpsError(f"push to {self._where()} was rejected {self.attempts} times")

    def _message(self, request: DeployRequest, previous: str | None, first: bool = False) -> str:
        version = request.model["version"]
        was = f" (was v{previous})" if previous and previous != "0" else ""
        head = (
            request.headline or f"Deploy {request.use_case} v{version} to {request.environment}"
        ) + was
        keys = ", ".join(f"model.{k}" for k in request.model if k != "name") + (
            f" and image.tag ({request.image_tag})" if request.image_tag else ""
        )
        body = [
            f"Set {keys} in {request.path}"
            + (
                " (new: the use case's first deploy here, from the values template)."
                if first
                else "."
            ),
            *request.summary,
        ]
        trailers = [f"{k}: {v}" for k, v in request.trailers.items()]
        return "\n\n".join([head, "\n".join(body), "\n".join(trailers)]) + "\n"


def _registry(model: dict) -> str:
    """The registry a values file's model comes from: its URI without `<version>/<file>`."""
    uri = str(model.get("uri") or "")
    return uri.rsplit("/", 2)[0] if uri.count("/") >= 2 else ""


def _same_version_same_bytes(current: dict, wanted: dict, request: DeployRequest) -> None:
    """A released version never changes: redeploying it with other hashes means its artifact
    or metadata were rewritten in the bucket after the values file was written. Adding a
    hash the values file did not have yet is fine."""
    for key in ("sha256", "metadataSha256"):
        had, now = str(current.get(key) or ""), str(wanted.get(key) or "")
        if had and now and had != now:
            raise GitOpsError(
                f"{request.path} deploys v{wanted['version']} with {key} {had}, but the "
                f"registry's v{wanted['version']} now has {now}: a released version must not "
                "change; refusing to deploy it"
            )


def _rejected(output: str) -> bool:
    words = (
        "rejected",
        "non-fast-forward",
        "fetch first",
        "failed to update ref",
        "cannot lock ref",
        "stale info",
    )
    return any(w in output for w in words)
