"""A throwaway PostgreSQL server for the tests (initdb and pg_ctl from the machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextmanager
def postgres_server() -> Iterator[dict]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("initdb and pg_ctl are needed (PostgreSQL server binaries)")
    # its own folder, outside pytest's root-only tmp tree, so the postgres user can use it
    base = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    data = base / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "dagster", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres(
                ["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "dagster", "dagster"]
            ),
            check=True,
            capture_output=True,
        )
        yield {"hostname": "127.0.0.1", "port": port, "username": "dagster", "db_name": "dagster"}
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)
