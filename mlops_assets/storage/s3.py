"""Storage on S3 or any S3-compatible server (MinIO), through dagster-aws."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from mlops_assets.errors import MlopsError
from mlops_assets.storage.base import FileChangedError, ObjectInfo, ObjectStorage, bounded
from mlops_assets.storage.keys import safe_key

# What S3 answers when a conditional write loses to another writer.
_CONFLICT = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class S3StorageError(MlopsError, RuntimeError):
    """A permanent S3 failure; the message names the bucket and key."""


class S3Storage(ObjectStorage):
    """Objects under `s3://<bucket>/<prefix>/`.

    Transient errors are retried by botocore's standard retry mode (backoff with
    jitter, `s3.max_attempts` attempts); what is left is permanent and raised
    naming the bucket and key.
    """

    concurrent_reads: ClassVar[int] = 16  # hides S3's request latency

    s3: S3Resource
    bucket: str
    prefix: str = ""
    part_mb: int = 64
    """Part size of multipart uploads, downloads and copies (S3's floor is 5 MiB): what a
    transfer holds in memory per thread."""

    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def _key(self, key: str) -> str:
        return safe_key(self.prefix, key) if self.prefix else safe_key(key)

    def _fail(self, action: str, key: str, error: Exception) -> S3StorageError:
        return S3StorageError(
            f"S3 {action} failed for s3://{self.bucket}/{self._key(key)}: {error}"
        )

    def read_bytes(self, key: str, limit: int | None = None) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client().get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            with body:  # what is past the limit is never read
                data = body.read() if limit is None else body.read(limit + 1)
            return bounded(data, limit, self.uri(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"no object s3://{self.bucket}/{self._key(key)}") from None
            raise self._fail("read", key, error) from error
        except BotoCoreError as error:
            raise self._fail("read", key, error) from error

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self.client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
            return True
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if if_absent and code in _CONFLICT:
                return False
            raise self._fail("write", key, error) from error
        except BotoCoreError as error:
            raise self._fail("write", key, error) from error

    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        part = self.part_mb * 1024 * 1024
        return TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)

    @contextmanager
    def local_file(self, key: str, *, one_request: bool = False) -> Iterator[Path]:
        """boto3's managed download, in parts, to a temporary file (`one_request`: one GET,
        streamed to the file)."""
        from botocore.exceptions import BotoCoreError, ClientError

        with tempfile.TemporaryDirectory(prefix="mlops-") as folder:
            path = Path(folder) / "object"
            try:
                if one_request:
                    body = self.client().get_object(Bucket=self.bucket, Key=self._key(key))
                    with open(path, "wb") as out:
                        for chunk in body["Body"].iter_chunks(8 << 20):
                            out.write(chunk)
                else:
                    self.client().download_file(
                        self.bucket, self._key(key), str(path), Config=self._transfer()
                    )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    raise FileNotFoundError(f"no object {self.uri(key)}") from None
                raise self._fail("download", key, error) from error
            except BotoCoreError as error:
                raise self._fail("download", key, error) from error
            yield path

    def put_file(self, key: str, path: Path) -> None:
        """boto3's managed upload: multipart above `part_mb`."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().upload_file(
                str(path), self.bucket, self._key(key), Config=self._transfer()
            )
        except (ClientError, BotoCoreError, S3UploadFailedError) as error:
            raise self._fail("upload", key, error) from error

    def copy(self, source: str, target: str, version: str = "") -> None:
        """boto3's managed copy, server-side (UploadPartCopy above `part_mb`), of the source
        at `version` (its ETag) only."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"CopySourceIfMatch": f'"{version}"'} if version else {}
        try:
            self.client().copy(
                {"Bucket": self.bucket, "Key": self._key(source)},
                self.bucket,
                self._key(target),
                ExtraArgs=extra or None,
                Config=self._transfer(),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _CONFLICT:
                raise FileChangedError(f"{self.uri(source)} changed while it was copied") from None
            raise self._fail("copy", source, error) from error
        except (BotoCoreError, S3UploadFailedError) as error:
            raise self._fail("copy", source, error) from error

    def sha256(self, key: str, version: str = "") -> str:
        """One GET, streamed through the hash (If-Match: the version listed)."""
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"IfMatch": f'"{version}"'} if version else {}
        digest = hashlib.sha256()
        try:
            body = self.client().get_object(Bucket=self.bucket, Key=self._key(key), **extra)
            for chunk in body["Body"].iter_chunks(8 << 20):
                digest.update(chunk)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _CONFLICT:
                raise FileChangedError(f"{self.uri(key)} changed while it was read") from None
            raise self._fail("read", key, error) from error
        except BotoCoreError as error:
            raise self._fail("read", key, error) from error
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail("head", key, error) from error
        except BotoCoreError as error:
            raise self._fail("head", key, error) from error

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj = self.client().get_object(Bucket=self.bucket, Key=self._key(key))
            return obj["Body"].read(), obj["ETag"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._fail("read", key, error) from error
        except BotoCoreError as error:
            raise self._fail("read", key, error) from error

    def replace_if(self, key: str, data: bytes, token: str | None) -> bool:
        return self.swap(key, data, token) is not None

    def swap(self, key: str, data: bytes, token: str | None) -> str | None:
        """A conditional PUT: If-Match on the ETag read, or If-None-Match for the first; the
        ETag it answers is the next token."""
        from botocore.exceptions import BotoCoreError, ClientError

        condition = {"IfNoneMatch": "*"} if token is None else {"IfMatch": token}
        try:
            answer = self.client().put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **condition
            )
            return answer["ETag"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _CONFLICT:
                return None
            raise self._fail("conditional write", key, error) from error
        except BotoCoreError as error:
            raise self._fail("conditional write", key, error) from error

    def list(self, prefix: str) -> list[ObjectInfo]:
        return self.list_after(prefix)

    def folders(self, prefix: str) -> list[str]:
        """`Delimiter`: one LIST request per 1,000 folders, whatever they hold."""
        from botocore.exceptions import BotoCoreError, ClientError

        full_prefix = self._key(prefix) + "/"
        try:
            pages = (
                self.client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=full_prefix, Delimiter="/")
            )
            return sorted(
                common["Prefix"][len(full_prefix) :].rstrip("/")
                for page in pages
                for common in page.get("CommonPrefixes", [])
            )
        except (ClientError, BotoCoreError) as error:
            raise self._fail("list", prefix, error) from error

    def list_after(
        self, prefix: str, start_after: str = "", limit: int | None = None
    ) -> list[ObjectInfo]:
        """`StartAfter`: S3 lists keys in UTF-8 byte order, so a cursor at the newest key
        costs one LIST request per 1,000 new keys, whatever lies before it."""
        from botocore.exceptions import BotoCoreError, ClientError

        full_prefix = self._key(prefix) + "/"
        strip = len(self.prefix.strip("/")) + 1 if self.prefix else 0
        extra = {"StartAfter": self._key(start_after)} if start_after else {}
        try:
            pages = (
                self.client()
                .get_paginator("list_objects_v2")
                .paginate(
                    Bucket=self.bucket,
                    Prefix=full_prefix,
                    PaginationConfig={"MaxItems": limit} if limit else {},
                    **extra,
                )
            )
            return [_object_info(obj, strip) for page in pages for obj in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as error:
            raise self._fail("list", prefix, error) from error

    def info(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client().head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("head", key, error) from error
        except BotoCoreError as error:
            raise self._fail("head", key, error) from error
        return ObjectInfo(
            key=safe_key(key),
            size=int(head["ContentLength"]),
            version=str(head.get("ETag", "")).strip('"'),
            modified_ns=int(head["LastModified"].timestamp() * 1_000_000_000),
        )

    def full_key(self, key: str) -> str:
        """The key in the bucket (with the storage's prefix), as S3 events name it."""
        return self._key(key)

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as error:
            raise self._fail("delete", key, error) from error

    def delete_many(self, keys: list[str]) -> None:
        """`DeleteObjects`: one request per 1,000 keys."""
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            objects = [{"Key": self._key(key)} for key in chunk]
            try:
                answer = self.client().delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as error:
                raise self._fail("delete", chunk[0], error) from error
            if answer.get("Errors"):
                failed = answer["Errors"][0]
                raise self._fail("delete", failed.get("Key", chunk[0]), RuntimeError(failed))

    def list_modified_since(self, prefix: str, since_ns: int) -> list[ObjectInfo]:
        """Through dagster-aws's own `get_objects`, which pages through any number of keys."""
        from dagster_aws.s3.sensor import get_objects

        since = None
        if since_ns:
            # get_objects keeps objects strictly after `since`; S3 times have 1 s resolution,
            # so step back a microsecond to keep objects written in the cursor's own second.
            since = datetime.fromtimestamp(since_ns / 1e9, tz=UTC) - timedelta(microseconds=1)
        strip = len(self.prefix.strip("/")) + 1 if self.prefix else 0
        try:
            objects = get_objects(
                self.bucket,
                self._key(prefix) + "/",
                since_last_modified=since,
                client=self.client(),
            )
        except Exception as error:
            raise self._fail("list", prefix, error) from error
        return [_object_info(obj, strip) for obj in objects]

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key) if key else self.prefix}".rstrip("/")


def _object_info(obj: dict[str, Any], strip: int) -> ObjectInfo:
    modified = obj["LastModified"]
    return ObjectInfo(
        key=obj["Key"][strip:],
        size=int(obj["Size"]),
        version=str(obj.get("ETag", "")).strip('"'),
        modified_ns=int(modified.timestamp() * 1_000_000_000),
    )
