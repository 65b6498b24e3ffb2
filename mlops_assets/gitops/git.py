"""A GitOps repository driven through the `git` command line.

Credentials never touch the disk or the remote URL: an HTTPS token is handed
to git by an inline credential helper that reads it from the environment at
push time, an SSH key is passed with GIT_SSH_COMMAND, and anything git prints
is scrubbed of the token before it reaches an error message or a log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_VAR = "MLOPS_GITOPS_TOKEN"
SSH_KEY_VAR = "MLOPS_GITOPS_SSH_KEY_FILE"
# Reads the token when git asks for it; the helper text holds only the variable's name.
_CREDENTIAL_HELPER = (
    f'!f() {{ test "$1" = get || exit 0; echo username=x-access-token; '
    f'echo "password=${{{TOKEN_VAR}}}"; }}; f'
)


class GitError(RuntimeError):
    """A git command failed; the message holds git's own words, with secrets removed."""


def scrub(text: str) -> str:
    token = os.environ.get(TOKEN_VAR)
    return text.replace(token, "***") if token else text


@dataclass
class Git:
    """Runs git in one working tree with the project's author and credentials."""

    workdir: Path
    author_name: str
    author_email: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, input: str | None = None) -> str:
        code, out = self.try_run(*args, input=input)
        if code:
            raise GitError(f"git {args[0]} failed: {out.strip()}")
        return out

    def try_run(self, *args: str, input: str | None = None) -> tuple[int, str]:
        """(exit code, stdout on success or stderr on failure, secrets removed)."""
        config = [
            "-c",
            f"user.name={self.author_name}",
            "-c",
            f"user.email={self.author_email}",
            "-c",
            "credential.helper=",  # ignore helpers configured on the machine
        ]
        if os.environ.get(TOKEN_VAR):
            config += ["-c", f"credential.helper={_CREDENTIAL_HELPER}"]
        env = {
            **os.environ,
            **self.env,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": self.author_name,
            "GIT_AUTHOR_EMAIL": self.author_email,
            "GIT_COMMITTER_NAME": self.author_name,
            "GIT_COMMITTER_EMAIL": self.author_email,
        }
        if os.environ.get(SSH_KEY_VAR):
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {os.environ[SSH_KEY_VAR]} -o IdentitiesOnly=yes "
                "-o StrictHostKeyChecking=accept-new"
            )
        done = subprocess.run(
            ["git", *config, *args],
            cwd=self.workdir,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            return done.returncode, scrub(done.stderr.strip() or done.stdout.strip())
        return 0, done.stdout


def ensure_local_remote(path: Path, branch: str, seed: dict[str, str]) -> str:
    """The local default's remote: a bare repository, created and seeded on first use; a use
    case added later gets its values files in a commit of their own."""
    message = "Seed the GitOps repository with the model-api values"
    if (path / "HEAD").exists():
        listed = subprocess.run(
            ["git", "-C", str(path), "ls-tree", "-r", "--name-only", branch],
            capture_output=True,
            text=True,
        )
        present = set(listed.stdout.split())
        seed = {k: v for k, v in seed.items() if k not in present}
        if not seed or listed.returncode:
            return path.as_uri()
        names = sorted({k.split("/")[2] for k in seed})
        message = f"Add the model-api values of {', '.join(names)}"
    else:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--bare", "-q", "-b", branch, str(path)], check=True)
    seed_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.seed-", dir=path.parent))
    try:
        git = Git(seed_dir, "mlops-assets", "mlops-assets@localhost")
        git.run("init", "-q", "-b", branch)
        if message.startswith("Add"):
            git.run("fetch", "-q", path.as_uri(), branch)
            git.run("reset", "-q", "--hard", "FETCH_HEAD")
        for relative, text in seed.items():
            target = seed_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git.run("add", "-A")
        git.run("commit", "-q", "-m", message)
        git.run("push", "-q", path.as_uri(), f"HEAD:{branch}")
    finally:
        shutil.rmtree(seed_dir, ignore_errors=True)
    return path.as_uri()
