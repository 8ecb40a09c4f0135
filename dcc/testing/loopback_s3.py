"""A real S3-compatible server on 127.0.0.1 for the team-cache tests: moto's standalone server.

moto's `ThreadedMotoServer` speaks the S3 HTTP API (it is what s3fs's own tests run against),
so `dcc --remote-cache s3://...` in a child process goes through the same s3fs, aiobotocore
and HTTP code as against AWS. The credentials are fake and exist only in the environment this
helper hands to the child processes (`env`); the endpoint reaches the child through
`AWS_ENDPOINT_URL`, the standard botocore setting, so dcc itself needs no test hook.
`fs` is an s3fs filesystem on the same server for the test's own looks at the bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

FAKE_KEY = "testing-key"
FAKE_SECRET = "testing-secret"


@dataclass
class LoopbackS3:
    server: Any
    endpoint: str
    bucket: str
    fs: Any

    def url(self, prefix: str = "cache") -> str:
        return f"s3://{self.bucket}/{prefix}"

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """The environment of a child `dcc`: fake credentials, this endpoint (or another,
        such as a proxy in front of it), no user configuration files, few retries."""
        return {
            "AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_MAX_ATTEMPTS": "2", "AWS_EC2_METADATA_DISABLED": "true",
        }


@contextmanager
def loopback_s3() -> Iterator[LoopbackS3]:
    """Start moto's S3 server on a free loopback port with a new empty bucket; stop it after.
    (moto keeps buckets in process-wide state, so each server gets a bucket of its own.)"""
    import secrets

    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        fs = s3fs.S3FileSystem(key=FAKE_KEY, secret=FAKE_SECRET, endpoint_url=endpoint,
                               client_kwargs={"region_name": "us-east-1"},
                               skip_instance_cache=True, use_listings_cache=False)
        bucket = f"team-{secrets.token_hex(4)}"
        fs.call_s3("create_bucket", Bucket=bucket)
        yield LoopbackS3(server, endpoint, bucket, fs)
    finally:
        server.stop()


__all__ = ["FAKE_KEY", "FAKE_SECRET", "LoopbackS3", "loopback_s3"]
