"""A GitOps repository driven through the `git` command line.

Credentials never touch the disk or the remote URL: an HTTPS token is handed
to git by an inline credential helper that reads it from the environment at
push time and answers only for the remote's own host (redirects are not
followed), an SSH key is passed with GIT_SSH_COMMAND (host keys checked against
a known_hosts file when one is given), and anything git prints is scrubbed of
the token before it reaches an error message or a log.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mlops_assets.errors import MlopsError, redact
from mlops_assets.settings import env

TOKEN_VAR = "MLOPS_GITOPS_TOKEN"
READ_TOKEN_VAR = "MLOPS_GITOPS_READ_TOKEN"
"""A token that can only read the GitOps repository: what the monitor and feedback pods hold
to learn which versions git deployed (docs/architecture.md, the trust model)."""
SSH_KEY_VAR = "MLOPS_GITOPS_SSH_KEY_FILE"
KNOWN_HOSTS_VAR = "MLOPS_GITOPS_KNOWN_HOSTS_FILE"


def credential_helper(host: str, token_var: str = TOKEN_VAR) -> str:
    """An inline helper that answers `get` with the token only when git asks on behalf of
    https://`host` (git passes protocol= and host= on stdin); the helper text holds only the
    variable's name, never the token."""
    return (
        '!f() { test "$1" = get || exit 0; p=; h=; while read -r l; do case "$l" in '
        'protocol=*) p="${l#protocol=}";; host=*) h="${l#host=}";; esac; done; '
        f'test "$p" = https && test "$h" = {shlex.quote(host)} || exit 0; '
        f'echo username=x-access-token; echo "password=${{{token_var}}}"; }}; f'
    )


def token_host(remote: str) -> str | None:
    """host[:port] of an https remote (what git sends as host=), else None."""
    parts = urlsplit(remote)
    if parts.scheme != "https" or not parts.hostname:
        return None
    return parts.netloc.rpartition("@")[2]


def ssh_command(key_file: str, known_hosts: str | None) -> str:
    """GIT_SSH_COMMAND: paths quoted; host keys checked strictly when known_hosts is given
    (accept-new otherwise, which trusts the first key a throwaway pod sees)."""
    command = f"ssh -i {shlex.quote(key_file)} -o IdentitiesOnly=yes"
    if known_hosts:
        return (
            f"{command} -o UserKnownHostsFile={shlex.quote(known_hosts)} "
            "-o StrictHostKeyChecking=yes"
        )
    return f"{command} -o StrictHostKeyChecking=accept-new"


class GitError(MlopsError, RuntimeError):
    """A git command failed; the message holds git's own words, with secrets removed."""


def scrub(text: str) -> str:
    """`text` without either token, nor a user and password in any URL."""
    for name in (TOKEN_VAR, READ_TOKEN_VAR):
        token = env(name)
        text = text.replace(token, "***") if token else text
    return redact(text)


@dataclass
class Git:
    """Runs git in one working tree with the project's author and credentials."""

    workdir: Path
    author_name: str
    author_email: str
    env: dict[str, str] = field(default_factory=dict)
    remote: str = ""
    """The remote the token is for: the credential helper answers only for its host."""
    token_var: str = TOKEN_VAR
    """READ_TOKEN_VAR for a reader: it never sees the token that can push."""

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
        if env(self.token_var):
            # An authenticated remote must not send git (and the token) somewhere else.
            config += ["-c", "http.followRedirects=false"]
            host = token_host(self.remote)
            if host:
                config += ["-c", f"credential.helper={credential_helper(host, self.token_var)}"]
        environment = {
            **os.environ,  # env: git runs with the process environment (PATH, HOME, ...)
            **self.env,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": self.author_name,
            "GIT_AUTHOR_EMAIL": self.author_email,
            "GIT_COMMITTER_NAME": self.author_name,
            "GIT_COMMITTER_EMAIL": self.author_email,
        }
        if key_file := env(SSH_KEY_VAR):
            environment["GIT_SSH_COMMAND"] = ssh_command(key_file, env(KNOWN_HOSTS_VAR))
        done = subprocess.run(
            ["git", *config, *args],
            cwd=self.workdir,
            env=environment,
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
            ["git", "-C", str(path), "ls-tree", "-r", "--name-only", f"refs/heads/{branch}"],
            capture_output=True,
            text=True,
        )
        present = set(listed.stdout.split())
        seed = {k: v for k, v in seed.items() if k not in present}
        if not seed or listed.returncode:
            return path.as_uri()
        names = sorted({k.split("/")[2] for k in seed if k.count("/") == 3})
        parts = [f"the model-api values of {', '.join(names)}"] if names else []
        if any(k.endswith("/environment.yaml") for k in seed):
            parts.append("the environments' Argo CD policy (environment.yaml)")
        message = f"Add {' and '.join(parts)}"
    else:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--bare", "-q", "-b", branch, str(path)], check=True)
    seed_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.seed-", dir=path.parent))
    try:
        git = Git(seed_dir, "mlops-assets", "mlops-assets@localhost")
        git.run("init", "-q", "-b", branch)
        if message.startswith("Add"):
            git.run("fetch", "-q", path.as_uri(), f"refs/heads/{branch}")
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
