"""The S3 adapter: boto3 with a configurable endpoint, region and addressing style.

Every call runs inside :func:`errors_as` so that botocore's exceptions become a
:class:`TaskError` naming the object and field the user wrote.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from datapipeline.core.task import AwsSpec
from datapipeline.runner.errors import InvalidTask, TaskError

MiB = 1024 * 1024
# Multipart sizes: memory in flight is about chunksize * max_concurrency per transfer,
# which keeps the runner well under its 200 MiB budget whatever the object size.
TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4,
                          io_chunksize=MiB, use_threads=True)
# A streamed (non-seekable) upload buffers whole parts; s3transfer's default of 10 parts in memory
# would be 80 MiB. Five keep the pipeline busy at 40 MiB.
TRANSFER.max_in_memory_upload_chunks = 5
# A server-side copy holds no data here, so its parts can be large: the store's work per part (a request,
# a part file, its metadata) is paid 16 times per GiB instead of 128, which made MinIO spend about a fifth
# less CPU on a 1 GiB copy than with 8 MiB parts. The threshold stays at 8 MiB: a single CopyObject keeps
# the source's metadata and a multipart copy does not, and which one an object gets must not change.
COPY_TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=64 * MiB, max_concurrency=8,
                               use_threads=True)


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str

    @staticmethod
    def parse(value: Any, where: str) -> S3Url:
        text = str(value or "")
        if not text.startswith("s3://") or len(text) <= 5:
            raise InvalidTask(f"{where}: {text!r} is not an s3://bucket/key URI", "Task.InvalidS3Uri")
        bucket, _, key = text[5:].partition("/")
        if not bucket:
            raise InvalidTask(f"{where}: {text!r} has no bucket", "Task.InvalidS3Uri")
        return S3Url(bucket, key)

    def child(self, name: str) -> S3Url:
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Url(self.bucket, prefix + name)

    @property
    def dir_prefix(self) -> str:
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


_MESSAGES = {
    "NoSuchBucket": "bucket '{bucket}' does not exist",
    "NoSuchKey": "object {url} does not exist",
    "404": "object {url} does not exist",
    "NotFound": "object {url} does not exist",
    "InvalidAccessKeyId": "the S3 access key is not valid (check the AWS_ACCESS_KEY_ID credentials)",
    "SignatureDoesNotMatch": "the S3 secret key does not match the access key "
                             "(check the AWS_SECRET_ACCESS_KEY credentials)",
    "AccessDenied": "access to {url} is denied",
    "403": "access to {url} is denied",
    "InvalidBucketName": "'{bucket}' is not a valid bucket name",
}


@contextmanager
def errors_as(where: str, url: S3Url | None, endpoint: str | None) -> Iterator[None]:
    """Turns botocore exceptions raised inside into TaskErrors that name ``where``."""
    bucket = url.bucket if url else "?"
    shown = str(url) if url else "?"
    try:
        yield
    except ClientError as e:
        raise _client_error(e, where, bucket, shown) from None
    except S3UploadFailedError as e:
        # upload_file/upload_fileobj wrap the ClientError (as the exception's context) in this one.
        if isinstance(e.__context__, ClientError):
            raise _client_error(e.__context__, where, bucket, shown) from None
        raise TaskError("S3.UploadFailed", f"{where}: {e}") from None
    except (EndpointConnectionError, ConnectTimeoutError) as e:
        target = endpoint or "the AWS S3 endpoint"
        raise TaskError("S3.EndpointUnreachable", f"{where}: cannot connect to the S3 endpoint {target} "
                        f"({type(e).__name__})") from None
    except ReadTimeoutError:
        raise TaskError("S3.Timeout", f"{where}: the S3 endpoint {endpoint or ''} stopped answering") from None
    except NoCredentialsError:
        raise TaskError("S3.NoCredentials", f"{where}: no S3 credentials (set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY from a Secret)") from None
    except BotoCoreError as e:
        raise TaskError("S3.Error", f"{where}: {type(e).__name__}: {e}") from None


def _client_error(e: ClientError, where: str, bucket: str, shown: str) -> TaskError:
    code = str(e.response.get("Error", {}).get("Code", "Unknown"))
    template = _MESSAGES.get(code)
    if template:
        error_id = {"404": "NoSuchKey", "NotFound": "NoSuchKey", "403": "AccessDenied"}.get(code, code)
        return TaskError(f"S3.{error_id}", f"{where}: " + template.format(bucket=bucket, url=shown))
    detail = e.response.get("Error", {}).get("Message") or str(e)
    return TaskError(f"S3.{code}", f"{where}: S3 refused the request for {shown}: {code}: {detail}")


class _BodyReader(io.RawIOBase):
    """Adapts a botocore StreamingBody to io so gzip/TextIOWrapper can sit on top of it."""

    def __init__(self, body: Any, where: str, url: S3Url, endpoint: str | None, counter: list[int]) -> None:
        self._body = body
        self._where, self._url, self._endpoint = where, url, endpoint
        self._counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with errors_as(self._where, self._url, self._endpoint):
            data = self._body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._counter[0] += n
        return n

    def close(self) -> None:
        self._body.close()
        super().close()


def client_config(aws: AwsSpec, service: str = "s3") -> Config:
    kwargs: dict[str, Any] = {
        "region_name": aws.region,
        "retries": {"max_attempts": int(os.environ.get("DATAPIPELINE_AWS_MAX_ATTEMPTS", "4")), "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 60,
    }
    if service == "s3":
        kwargs["s3"] = {"addressing_style": "path" if aws.s3_path_style else "auto"}
        kwargs["signature_version"] = "s3v4"
    return Config(**kwargs)


class S3:
    def __init__(self, aws: AwsSpec) -> None:
        self.endpoint = aws.s3_endpoint_url
        self.client = boto3.session.Session().client("s3", endpoint_url=aws.s3_endpoint_url,
                                                     config=client_config(aws))
        self.bytes_read = [0]

    def errors(self, where: str, url: S3Url | None) -> Any:
        return errors_as(where, url, self.endpoint)

    def head(self, url: S3Url, where: str) -> dict[str, Any] | None:
        """The object's metadata, or None when the key is missing (a missing bucket is an error)."""
        with self.errors(where, url):
            try:
                return dict(self.client.head_object(Bucket=url.bucket, Key=url.key))
            except ClientError as e:
                if str(e.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey", "NotFound"):
                    raise
        # HEAD cannot tell a missing key from a missing bucket: ask the bucket.
        if not self.bucket_exists(url, where):
            raise TaskError("S3.NoSuchBucket", f"{where}: bucket '{url.bucket}' does not exist")
        return None

    def bucket_exists(self, url: S3Url, where: str) -> bool:
        with self.errors(where, url):
            try:
                self.client.head_bucket(Bucket=url.bucket)
                return True
            except ClientError as e:
                if str(e.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket", "NotFound"):
                    return False
                raise

    def list(self, url: S3Url, where: str, limit: int | None = None) -> Iterator[tuple[S3Url, int]]:
        """Objects under the directory ``url`` in key order, skipping folder markers."""
        prefix = url.dir_prefix
        found = 0
        with self.errors(where, url):
            paginator = self.client.get_paginator("list_objects_v2")
            kwargs: dict[str, Any] = {"Bucket": url.bucket, "Prefix": prefix}
            if limit:
                kwargs["PaginationConfig"] = {"MaxItems": limit + 10}
            for page in paginator.paginate(**kwargs):
                for item in page.get("Contents", ()):
                    if item["Key"].endswith("/"):
                        continue
                    yield S3Url(url.bucket, item["Key"]), int(item["Size"])
                    found += 1
                    if limit and found >= limit:
                        return

    def open(self, url: S3Url, where: str) -> IO[bytes]:
        with self.errors(where, url):
            body = self.client.get_object(Bucket=url.bucket, Key=url.key)["Body"]
        return io.BufferedReader(_BodyReader(body, where, url, self.endpoint, self.bytes_read), MiB)

    def read_text(self, url: S3Url, where: str, limit: int = 16 * MiB) -> str:
        with self.open(url, where) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise TaskError("S3.TooLarge", f"{where}: {url} is larger than {limit // MiB} MiB")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise TaskError("Format.Encoding", f"{where}: {url} is not UTF-8 text") from None

    def upload(self, stream: IO[bytes], url: S3Url, where: str) -> None:
        """Streams ``stream`` to ``url`` (multipart above 8 MiB; aborted on failure, so no partial object)."""
        with self.errors(where, url):
            self.client.upload_fileobj(stream, url.bucket, url.key, Config=TRANSFER)

    def upload_file(self, path: str, url: S3Url, where: str) -> None:
        with self.errors(where, url):
            self.client.upload_file(path, url.bucket, url.key, Config=TRANSFER)

    def download_file(self, url: S3Url, path: str, where: str) -> int:
        with self.errors(where, url):
            self.client.download_file(url.bucket, url.key, path, Config=TRANSFER)
        return os.path.getsize(path)

    def copy(self, src: S3Url, dst: S3Url, where: str) -> None:
        """Server-side copy (multipart UploadPartCopy for large objects): no data passes through the runner."""
        with self.errors(where, src):
            self.client.copy({"Bucket": src.bucket, "Key": src.key}, dst.bucket, dst.key, Config=COPY_TRANSFER)

    def delete(self, url: S3Url) -> None:
        with suppress(ClientError, BotoCoreError):  # best-effort cleanup of a failed attempt's outputs
            self.client.delete_object(Bucket=url.bucket, Key=url.key)
