"""Deploy: one readable, conflict-safe commit of the model keys per change.

On a rejected push (someone else pushed first) the edit is re-applied on the
new head and pushed again, with backoff, a bounded number of times; never
forced. A version older than the one already deployed is not written back
unless asked for (a rollback), so racing deploys end with the later version.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlops_assets.gitops.git import Git
from mlops_assets.gitops.values import read_model, set_keys, set_model


class GitOpsError(RuntimeError):
    """The deploy could not be written; the message says where and why."""


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    use_case: str
    model: dict[str, str]
    """name, version, uri, sha256"""
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
        return f"environments/{self.environment}/{self.use_case}/values.yaml"

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

    def read_values(self, environment: str, use_case: str) -> str:
        relative = f"environments/{environment}/{use_case}/values.yaml"
        with tempfile.TemporaryDirectory() as tmp:
            self._checkout(Path(tmp))
            path = Path(tmp) / relative
            if not path.exists():
                raise GitOpsError(self._missing(relative))
            return path.read_text()

    def deployed(self, environment: str, use_case: str) -> tuple[dict, str]:
        """The model keys of an environment and the last commit that touched them."""
        relative = f"environments/{environment}/{use_case}/values.yaml"
        with tempfile.TemporaryDirectory() as tmp:
            git = self._checkout(Path(tmp), depth=50)
            path = Path(tmp) / relative
            if not path.exists():
                raise GitOpsError(self._missing(relative))
            commit = git.run("log", "-1", "--format=%h %s", "--", relative).strip()
            return read_model(path.read_text(), relative), commit

    def deployed_everywhere(self, use_case: str) -> dict[str, tuple[dict, str]]:
        """`deployed` for every environment of the use case, from one fetch."""
        with tempfile.TemporaryDirectory() as tmp:
            git = self._checkout(Path(tmp), depth=50)
            found = {}
            for path in sorted((Path(tmp) / "environments").glob(f"*/{use_case}/values.yaml")):
                relative = path.relative_to(tmp).as_posix()
                commit = git.run("log", "-1", "--format=%h %s", "--", relative).strip()
                found[path.parent.parent.name] = (read_model(path.read_text(), relative), commit)
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
                target = workdir / request.path
                if not target.exists():
                    raise GitOpsError(self._missing(request.path))
                text = target.read_text()
                current = read_model(text, request.path)
                previous = str(current.get("version")) if current.get("version") else None
                wanted = request.model
                if previous == str(wanted["version"]) and current.get("sha256") == wanted["sha256"]:
                    return DeployResult(
                        False,
                        f"v{previous} is already deployed in "
                        f"{request.environment}; nothing to commit",
                        None,
                        self.branch,
                        previous,
                        attempt,
                    )
                if (
                    not request.allow_older
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
                git.run("commit", "-q", "-F", "-", input=self._message(request, previous))
                commit = git.run("rev-parse", "HEAD").strip()
                branch = request.approval_branch if request.approval else self.branch
                if request.approval and self._remote_branch_exists(git, branch):
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
        git = Git(workdir, self.author_name, self.author_email)
        if not (workdir / ".git").exists():
            git.run("init", "-q")
            git.run("remote", "add", "origin", self.remote)
        code, out = git.try_run("fetch", "-q", "--depth", str(depth), "origin", self.branch)
        if code:
            raise GitOpsError(f"cannot fetch {self._where()}: {out}")
        git.run("checkout", "-q", "-B", "deploy-work", "FETCH_HEAD")
        return git

    def _remote_branch_exists(self, git: Git, branch: str) -> bool:
        return bool(git.run("ls-remote", "--heads", "origin", branch).strip())

    def _where(self) -> str:
        return f"{self.remote} (branch {self.branch})"

    def _missing(self, path: str) -> str:
        return f"{self._where()} has no {path}: add the environment to the GitOps repository first"

    def _message(self, request: DeployRequest, previous: str | None) -> str:
        version = request.model["version"]
        was = f" (was v{previous})" if previous and previous != "0" else ""
        head = (
            request.headline or f"Deploy {request.use_case} v{version} to {request.environment}"
        ) + was
        keys = "model.version, model.uri, model.sha256" + (
            f" and image.tag ({request.image_tag})" if request.image_tag else ""
        )
        body = [
            f"Set {keys} in {request.path}.",
            *request.summary,
        ]
        trailers = [f"{k}: {v}" for k, v in request.trailers.items()]
        return "\n\n".join([head, "\n".join(body), "\n".join(trailers)]) + "\n"


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
