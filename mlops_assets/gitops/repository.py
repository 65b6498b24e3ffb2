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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlops_assets.errors import MlopsError, redact
from mlops_assets.gitops.environments import application_name, environment_path, values_template
from mlops_assets.gitops.git import READ_TOKEN_VAR, TOKEN_VAR, Git
from mlops_assets.gitops.values import read_model, read_section, set_keys, set_model


class GitOpsError(MlopsError, RuntimeError):
    """The deploy could not be written; the message says where and why."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def values_path(environment: str, use_case: str) -> str:
    """environments/<environment>/<use case>/values.yaml, each part a plain name."""
    for what, name in (("environment", environment), ("use case", use_case)):
        if not _NAME.fullmatch(name) or ".." in name:
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
    headline: str = ""
    """The commit's first line; by default 'Deploy <use case> v<N> to <env> (was v<M>)'."""

    @property
    def path(self) -> str:
        return values_path(self.environment, self.use_case)

    @property
    def approval_branch(self) -> str:
        return f"deploy/{self.environment}/{self.use_case}/{self.model['version']}"


_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class ImageRequest:
    """The model server's image tag for an environment (a release's, from CI)."""

    environment: str
    tag: str
    use_cases: tuple[str, ...] = ()
    """Empty: every use case with a values file in the environment."""
    summary: list[str] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    approval: bool = False

    def __post_init__(self) -> None:
        if not _IMAGE_TAG.fullmatch(self.tag):
            raise GitOpsError(f"image tag {self.tag!r} is not a Docker tag")
        values_path(self.environment, "x")  # a plain name

    @property
    def approval_branch(self) -> str:
        return f"image/{self.environment}/{self.tag}"


@dataclass(frozen=True)
class Edit:
    """A change made in a checkout, to commit; or, with `unchanged`, why there is none."""

    paths: list[str]
    message: str
    previous: str | None
    unchanged: str = ""

    @classmethod
    def none(cls, why: str, previous: str | None) -> Edit:
        return cls([], "", previous, why)


@dataclass(frozen=True)
class DeployResult:
    changed: bool
    reason: str
    commit: str | None
    branch: str
    previous_version: str | None
    attempts: int


HISTORY_DEPTH = 500
"""How many commits back `deployed_versions` reads (a version deployed before that and not
named now is no longer deployed)."""


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
    read_only: bool = False
    """A reader's (the monitor, feedback): git gets MLOPS_GITOPS_READ_TOKEN, never the token
    that can push."""

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

    def deployed_versions(
        self, use_case: str, depth: int = HISTORY_DEPTH
    ) -> dict[str, frozenset[str]]:
        """Per environment, every model version its values file of `use_case` has named in
        the last `depth` commits (the `Model-Version` trailer of each commit that touched it,
        and the file as it is now): what git, which only deploy pods may push to, deployed."""
        found: dict[str, frozenset[str]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            git = self._checkout(Path(tmp), depth=depth)
            for values in sorted((Path(tmp) / "environments").glob(f"*/{use_case}/values.yaml")):
                environment = values.parent.parent.name
                if not _NAME.fullmatch(environment):
                    continue
                relative = values_path(environment, use_case)
                named = {
                    str(
                        read_model(inside(Path(tmp), relative).read_text(), relative).get(
                            "version", ""
                        )
                    )
                }
                trailers = git.run(
                    "log",
                    "--format=%(trailers:key=Model-Version,valueonly,separator=%x20)",
                    "--",
                    relative,
                )
                named |= set(trailers.split())
                found[environment] = frozenset(v for v in named if v.isdigit() and v != "0")
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
        """The model keys of one values file (never image.tag: set_image's)."""
        approval = request.approval_branch if request.approval else ""
        return self._commit(lambda workdir: self._model_edit(workdir, request), approval)

    def _model_edit(self, workdir: Path, request: DeployRequest) -> Edit:
        target = inside(workdir, request.path)
        first = not target.exists()
        if first:  # a use case's first deploy to an environment people set up
            if not inside(workdir, environment_path(request.environment)).exists():
                raise GitOpsError(self._missing(request.path))
            _refuse_collision(workdir, [(request.environment, request.use_case)])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(values_template(request.use_case))
        text = target.read_text()
        current = read_model(text, request.path)
        previous = str(current.get("version")) if current.get("version") else None
        wanted = request.model
        if all(str(current.get(k, "")) == str(v) for k, v in wanted.items()):
            return Edit.none(
                f"v{previous} is already deployed in {request.environment}; nothing to commit",
                previous,
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
            return Edit.none(
                f"a newer version v{previous} is deployed in {request.environment}; not going "
                f"back to v{wanted['version']}",
                previous,
            )
        target.write_text(set_model(text, wanted, request.path))
        # another registry's version (production's, on a preview branch) is named so
        was = previous if same_registry or not previous else f"{previous} of {_registry(current)}"
        return Edit([request.path], self._message(request, was, first), previous)

    def set_image(self, request: ImageRequest) -> DeployResult:
        """image.tag of the environment's values files (every use case there, or the ones
        named), in one commit; the model keys stay as they are."""
        approval = request.approval_branch if request.approval else ""
        return self._commit(lambda workdir: self._image_edit(workdir, request), approval)

    def _image_edit(self, workdir: Path, request: ImageRequest) -> Edit:
        folder = inside(workdir, f"environments/{request.environment}")
        # folders that are no plain name are not a use case deploy wrote: left alone
        found = sorted(
            p.parent.name for p in folder.glob("*/values.yaml") if _NAME.fullmatch(p.parent.name)
        )
        names = list(request.use_cases) or found
        unknown = sorted(set(names) - set(found))
        if unknown or not names:
            raise GitOpsError(
                f"{self._where()} has no values file of {', '.join(unknown) or 'any use case'} "
                f"in environments/{request.environment}"
            )
        changed, previous = [], set()
        for name in names:
            relative = values_path(request.environment, name)
            target = inside(workdir, relative)
            text = target.read_text()
            image = read_section(text, "image", relative)
            had = str(image.get("tag") or "")
            previous.add(had)
            if had == request.tag:
                continue
            if image:
                text = set_keys(text, "image", {"tag": request.tag}, relative)
            elif re.search(r"(?m)^image\s*:", text):
                raise GitOpsError(f"{relative}: `image:` holds no mapping to set the tag in")
            else:  # a hand-written file on the chart's image: the tag alone (a Docker tag)
                text = text.rstrip("\n") + f'\n\nimage:\n  tag: "{request.tag}"\n'
            target.write_text(text)
            changed.append(relative)
        was = ", ".join(sorted(p or "unset" for p in previous))
        if not changed:
            return Edit.none(f"image.tag is {request.tag} already in {request.environment}", was)
        head = f"Set the model-api image of {request.environment} to {request.tag} (was {was})"
        body = [f"Set image.tag in {', '.join(changed)}.", *request.summary]
        trailers = [f"{k}: {v}" for k, v in {"Image-Tag": request.tag, **request.trailers}.items()]
        message = "\n\n".join([head, "\n".join(body), "\n".join(trailers)]) + "\n"
        return Edit(changed, message, was)

    def init_environment(self, environment: str, text: str) -> DeployResult:
        """Commit environments/<env>/environment.yaml; one that exists is left as it is
        (changed by pull request, not by a command)."""
        values_path(environment, "x")  # a plain name
        relative = environment_path(environment)

        def edit(workdir: Path) -> Edit:
            target = inside(workdir, relative)
            if target.exists():
                if target.read_text() != text:
                    raise GitOpsError(
                        f"{relative} exists in {self._where()} with another policy; "
                        "change it by pull request"
                    )
                return Edit.none(f"{relative} is as asked", None)
            use_cases = {p.parent.name for p in (workdir / "environments").glob("*/*/values.yaml")}
            _refuse_collision(workdir, [(environment, name) for name in sorted(use_cases)])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            message = (
                f"Add the {environment} environment\n\nIts Argo CD policy ({relative}); "
                "each use case deployed to it gets an Application from the ApplicationSet.\n"
            )
            return Edit([relative], message, None)

        return self._commit(edit)

    def _commit(self, change: Callable[[Path], Edit], approval_branch: str = "") -> DeployResult:
        """Make `change` on a fresh checkout, commit it and push it (to `approval_branch`
        when given, outside a branch deployment); a rejected push is fetched, the change
        made again on the new head and pushed again with backoff; never forced."""
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for attempt in range(1, self.attempts + 1):
                git = self._checkout(workdir)
                edit = change(workdir)
                if edit.unchanged:
                    return DeployResult(
                        False, edit.unchanged, None, self.branch, edit.previous, attempt
                    )
                git.run("add", "--", *edit.paths)
                git.run("commit", "-q", "-F", "-", input=edit.message)
                commit = git.run("rev-parse", "HEAD").strip()
                approval = bool(approval_branch) and not self.base_branch
                branch = approval_branch if approval else self.branch
                if approval and self._remote_branch_exists(git, branch):
                    return DeployResult(
                        False,
                        f"approval branch {branch} exists already",
                        None,
                        branch,
                        edit.previous,
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
                        edit.previous,
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
        git = Git(
            workdir,
            self.author_name,
            self.author_email,
            remote=self.remote,
            token_var=READ_TOKEN_VAR if self.read_only else TOKEN_VAR,
        )
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

    def _message(self, request: DeployRequest, previous: str | None, first: bool = False) -> str:
        version = request.model["version"]
        was = f" (was v{previous})" if previous and previous != "0" else ""
        head = (
            request.headline or f"Deploy {request.use_case} v{version} to {request.environment}"
        ) + was
        keys = ", ".join(f"model.{k}" for k in request.model if k != "name")
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


def _refuse_collision(workdir: Path, new: list[tuple[str, str]]) -> None:
    """GitOpsError when a new (environment, use case) pair would get the Application name
    of another pair of the repository (names both)."""
    taken = {
        application_name(p.parent.name, p.parent.parent.name): (p.parent.parent.name, p.parent.name)
        for p in (workdir / "environments").glob("*/*/values.yaml")
    }
    for environment, use_case in new:
        name = application_name(use_case, environment)
        other = taken.get(name)
        if other is not None and other != (environment, use_case):
            raise GitOpsError(
                f"{use_case} in {environment} would be the Argo CD Application {name!r}, the "
                f"name of {other[1]} in {other[0]} already; rename the use case or the "
                "environment"
            )


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
