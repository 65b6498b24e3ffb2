"""Fetching LSFB-ISOL with the team's own `lsfb_dataset.Downloader`, made resumable.

The library's Downloader decides what to fetch (metadata first, then the pose
files of the chosen splits and landmark sets) and fetches it in parallel. It
has no retries, writes straight to the final path (an interrupted transfer
leaves a truncated file that "skip existing" later trusts) and never checks a
size. `ResumableDownloader` keeps its file selection and replaces only the
transfer of one file: a session with urllib3 retries and backoff, a `.part`
file renamed into place only when its size matches the announced
Content-Length, and metadata always fetched again (a new release changes it). Its
progress goes to the run's log, a line per tenth, instead of tqdm bars, which in a
Dagster compute log are a carriage-return stream nobody can read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from urllib3.util.retry import Retry

from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.errors import MlopsError
from mlops_assets.settings import env

METADATA_FILES = (
    "instances.csv",
    "instances_special.csv",
    "metadata/sign_to_index.csv",
    "metadata/sign_occurrences.csv",
    *(
        f"metadata/splits/{s}.json"
        for s in ("all", "mini_sample", "train", "test", *(f"fold_{k}" for k in range(5)))
    ),
)
INSTANCE_COLUMNS = ["id", "sign", "signer", "start", "end"]


class DownloadError(MlopsError, RuntimeError):
    """A file could not be fetched whole; the message names it and the URL."""


class MetadataError(MlopsError, ValueError):
    """A metadata file is missing or malformed; the message names the file."""


def source_url(config: LsfbData) -> str:
    return (env("MLOPS_LSFB_SOURCE") or config.source).rstrip("/")


def _session(retries: int):
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=0.2,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"),
        raise_on_status=False,
        redirect=0,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _downloader_class():
    from lsfb_dataset.download.downloader import Downloader

    class ResumableDownloader(Downloader):
        """The library's Downloader with a safe `_download_file` (see the module docstring)."""

        def __init__(
            self, *args, retries: int = 5, log: Callable[[str], None] | None = None, **kwargs
        ) -> None:
            super().__init__(*args, **kwargs)
            self.retries = retries
            self.log = log or (lambda message: None)
            self.fetched: list[str] = []
            self.skipped = 0
            self._local = threading.local()
            self._lock = threading.Lock()

        def _download_files(self, origins: list[str], title: str | None = None, unit="files"):
            """The library's parallel fetch (a thread pool of `max_parallel_connections`),
            reporting to the log rather than to a tqdm bar."""
            total, title = len(origins), title or "files"
            every = max(1, total // 10)
            with ThreadPoolExecutor(self.max_parallel_connections) as pool:
                for done, _ in enumerate(pool.map(self._download_file, origins), 1):
                    if done % every == 0 or done == total:
                        self.log(f"{title}: {done}/{total} {unit}")

        def _http(self):
            if not hasattr(self._local, "session"):
                self._local.session = _session(self.retries)
            return self._local.session

        def _download_file(self, origin: str) -> None:
            path = self.destination / origin
            if not path.resolve().is_relative_to(self.destination.resolve()):
                raise DownloadError(f"{origin!r} would be written outside {self.destination}")
            if origin not in METADATA_FILES and self.skip_existing_file and path.is_file():
                with self._lock:
                    self.skipped += 1
                return  # only whole files ever reach their final name
            url = urllib.parse.urljoin(f"{self.source}/", urllib.parse.quote(origin))
            part = path.with_name(path.name + ".part")
            path.parent.mkdir(parents=True, exist_ok=True)
            last_error = ""
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(min(0.2 * 2 ** (attempt - 1), 5.0))
                try:
                    last_error = self._fetch(origin, url, part)
                except OSError as error:  # requests' errors are OSErrors
                    last_error = f"{type(error).__name__}: {error}"
                if not last_error:
                    os.replace(part, path)
                    with self._lock:
                        self.fetched.append(origin)
                    return
                if last_error.startswith("HTTP 4"):
                    break
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"could not download {origin} from {url} after {attempt + 1} attempt(s): "
                f"{last_error}"
            )

        def _fetch(self, origin: str, url: str, part: Path) -> str:
            """'' when `part` holds the whole file, else why not."""
            with self._http().get(
                url, stream=True, allow_redirects=False, timeout=self.timeout, verify=self.check_ssl
            ) as response:
                if response.status_code != 200:
                    return f"HTTP {response.status_code}"
                if response.headers.get("Content-Type", "").startswith("text/html"):
                    # the LSFB server answers a missing file with an empty HTML page
                    return "HTTP 404 (the server answered an HTML page: no such file)"
                announced = response.headers.get("Content-Length")
                size = 0
                with open(part, "wb") as out:
                    for chunk in response.iter_content(chunk_size=1 << 20):
                        out.write(chunk)
                        size += len(chunk)
            if announced is not None and size != int(announced):
                return f"truncated: got {size} of {announced} bytes announced"
            return ""

    return ResumableDownloader


@dataclass
class DownloadResult:
    destination: Path
    fetched: int
    skipped: int
    instances: list[str]


def download(config: LsfbData, destination: Path, log=None) -> DownloadResult:
    """Fetch the configured splits and landmark sets into `destination` (resumable)."""
    destination.mkdir(parents=True, exist_ok=True)
    for stale in destination.rglob("*.part"):
        stale.unlink()  # a transfer cut short by a killed process
    downloader = _downloader_class()(
        dataset="isol",
        destination=str(destination),
        splits=config.splits,
        landmarks=list(config.landmarks),
        include_cleaned_poses=config.poses == "cleaned",
        include_raw_poses=config.poses == "raw",
        skip_existing_files=True,
        max_parallel_connections=config.max_parallel_connections,
        source=source_url(config),
        check_ssl=config.check_ssl,
        timeout=config.timeout_seconds,
        retries=config.retries,
        log=log,
    )
    try:
        downloader.download()
    except FileNotFoundError as error:  # the Downloader's own split files, read from disk
        raise MetadataError(f"{error.filename}: missing after the metadata download") from None
    except json.JSONDecodeError as error:
        raise MetadataError(f"a split file of {destination} is not JSON: {error}") from None
    if log:
        log(
            f"downloaded {len(downloader.fetched)} file(s) from {downloader.source}, "
            f"{downloader.skipped} already complete"
        )
    return DownloadResult(
        destination, len(downloader.fetched), downloader.skipped, sorted(downloader.instances)
    )


def snapshot_id(root: Path) -> str:
    """A content hash of the metadata: the same release always gets the same id."""
    digest = hashlib.sha256()
    for name in METADATA_FILES:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def read_metadata(root: Path) -> dict:
    """instances, sign_to_index and the folds, checked; a bad file is named in the error."""
    instances = _read_csv(root, "instances.csv", INSTANCE_COLUMNS)
    signs = _read_csv(root, "metadata/sign_to_index.csv", ["sign", "class"], exact=True)
    known = {row["sign"] for row in signs}
    folds: dict[str, int] = {}
    for k in range(5):
        for iid in _read_split(root, f"fold_{k}"):
            folds[iid] = k
    for number, row in enumerate(instances, start=2):
        if row["sign"] not in known:
            raise MetadataError(
                f"instances.csv row {number}: sign {row['sign']!r} is not in "
                "metadata/sign_to_index.csv"
            )
        try:
            int(row["signer"])
        except ValueError:
            raise MetadataError(
                f"instances.csv row {number}: signer {row['signer']!r} is not an integer"
            ) from None
    return {"instances": instances, "signs": signs, "folds": folds}


def _read_csv(root: Path, name: str, columns: list[str], exact: bool = False) -> list[dict]:
    path = root / name
    if not path.is_file():
        raise MetadataError(f"{name}: missing from the download in {root}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if (header != columns) if exact else not set(columns) <= set(header):
            raise MetadataError(
                f"{name}: columns {header} but expected "
                + ("exactly " if exact else "")
                + f"{columns}"
            )
        return list(reader)


def _read_split(root: Path, split: str) -> list[str]:
    name = f"metadata/splits/{split}.json"
    try:
        members = json.loads((root / name).read_text())
    except FileNotFoundError:
        raise MetadataError(f"{name}: missing from the download in {root}") from None
    except json.JSONDecodeError as error:
        raise MetadataError(f"{name}: not JSON ({error})") from None
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise MetadataError(f"{name}: must be a JSON list of instance ids")
    return members


def probe(url: str, timeout: float = 10.0) -> str:
    """A token that changes when the file at `url` changes: its ETag, else Last-Modified,
    else a hash of its content."""
    session = _session(2)
    head = session.head(url, timeout=timeout, allow_redirects=False)
    if head.status_code == 200:
        for header in ("ETag", "Last-Modified"):
            if head.headers.get(header):
                return f"{header.lower()}:{head.headers[header]}"
    response = session.get(url, timeout=timeout, allow_redirects=False)
    if response.status_code != 200:
        raise DownloadError(f"{url} answered HTTP {response.status_code}")
    return "sha256:" + hashlib.sha256(response.content).hexdigest()[:16]
