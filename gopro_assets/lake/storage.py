"""Files on a local folder or on ``s3://``, behind one interface (pyarrow.fs).

The landing zone and the finance exports are plain files; this module is the only
place that knows whether a root is local or S3. Delta tables go through
:mod:`gopro_assets.lake.delta_store`, which shares :func:`storage_options_for`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import PurePosixPath

import pyarrow.fs as pafs

# Settings read from the environment for S3 roots; secrets are never logged.
_S3_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


def is_s3(root: str) -> bool:
    return root.startswith("s3://")


def storage_options_for(root: str) -> dict[str, str]:
    """deltalake storage options for ``root`` (empty for local folders)."""
    if not is_s3(root):
        return {}
    opts = {k: os.environ[k] for k in _S3_ENV if os.environ.get(k)}
    opts.setdefault("AWS_REGION", "us-east-1")
    endpoint = opts.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        opts["AWS_ALLOW_HTTP"] = "true"
    return opts


def _s3_filesystem() -> pafs.S3FileSystem:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict = {"region": os.environ.get("AWS_REGION", "us-east-1")}
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        kwargs["access_key"] = os.environ["AWS_ACCESS_KEY_ID"]
        kwargs["secret_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs["endpoint_override"] = host
        kwargs["scheme"] = scheme
    return pafs.S3FileSystem(**kwargs)


@dataclass(frozen=True)
class FileInfo:
    rel_path: str  # path relative to the root, always with forward slashes
    size: int
    mtime_ns: int | None = None  # last modification (local mtime, S3 LastModified), when known


class FileRoot:
    """A folder of files, local or ``s3://bucket/prefix``.

    Relative paths use ``/`` and never leave the root: :meth:`resolve` refuses
    absolute paths and ``..`` (contract §3, path traversal).
    """

    def __init__(self, root: str):
        self.root = root.rstrip("/") if is_s3(root) else os.path.abspath(root)
        if is_s3(root):
            self.fs: pafs.FileSystem = _s3_filesystem()
            self._base = self.root[len("s3://") :]
        else:
            self.fs = pafs.LocalFileSystem()
            self._base = self.root

    def __repr__(self) -> str:  # no credentials in here, safe to log
        return f"FileRoot({self.root!r})"

    def uri(self, rel_path: str) -> str:
        return f"{self.root}/{self.safe_rel_path(rel_path)}"

    @staticmethod
    def safe_rel_path(rel_path: str) -> str:
        p = PurePosixPath(rel_path)
        if p.is_absolute() or rel_path.startswith("\\") or ".." in p.parts or rel_path == "":
            raise ValueError(f"path {rel_path!r} is absolute or leaves its folder")
        return str(p)

    def full_path(self, rel_path: str) -> str:
        """The path inside ``self.fs`` (no scheme)."""
        return f"{self._base}/{self.safe_rel_path(rel_path)}"

    def list(self, prefix: str, suffixes: tuple[str, ...] = ()) -> list[FileInfo]:
        """Files under ``prefix`` (recursively), sorted lexically by path (contract §2)."""
        selector = pafs.FileSelector(f"{self._base}/{prefix}".rstrip("/"), recursive=True, allow_not_found=True)
        out = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            rel = info.path[len(self._base) + 1 :]
            if suffixes and not rel.lower().endswith(suffixes):
                continue
            out.append(FileInfo(rel, info.size or 0, info.mtime_ns))
        return sorted(out, key=lambda f: f.rel_path)

    def exists(self, rel_path: str) -> bool:
        return self.fs.get_file_info(self.full_path(rel_path)).type == pafs.FileType.File

    def is_inside(self, rel_path: str) -> bool:
        """False when a local path is a symlink that resolves outside the root."""
        if is_s3(self.root):
            return True
        real = os.path.realpath(self.full_path(rel_path))
        return real == self._base or real.startswith(os.path.realpath(self._base) + os.sep)

    def read_bytes(self, rel_path: str) -> bytes:
        with self.fs.open_input_stream(self.full_path(rel_path)) as f:
            return f.read()

    def open(self, rel_path: str):
        """A seekable binary file object (for PyAV and partial reads)."""
        return self.fs.open_input_file(self.full_path(rel_path))

    def write_bytes(self, rel_path: str, data: bytes, private: bool = False) -> str:
        """Write atomically (temp + rename locally; S3 PUTs are atomic) and return the URI.

        ``private`` files (personal data) get owner-only permissions locally.
        """
        full = self.full_path(rel_path)
        parent = full.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        if is_s3(self.root):
            with self.fs.open_output_stream(full) as f:
                f.write(data)
        else:
            _remove_stale_temps(full)
            tmp = _temp_name(full, os.getpid())
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o600 if private else 0o644)
            os.replace(tmp, full)
        return self.uri(rel_path)


def _temp_name(full: str, pid: int) -> str:
    # hidden, next to the target (same filesystem: the rename is atomic)
    directory, name = os.path.split(full)
    return os.path.join(directory, f".{name}.tmp-{pid}")


def _remove_stale_temps(full: str) -> None:
    """Remove temp files of ``full`` left by writers that died before their rename (a
    SIGKILLed run): nobody else would ever clean them up. A live writer's are kept."""
    directory, name = os.path.split(full)
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return
    for entry in entries:
        for prefix in (f".{name}.tmp-", f"{name}.tmp-"):  # the second: older versions
            if entry.startswith(prefix) and entry[len(prefix) :].isdigit():
                pid = int(entry[len(prefix) :])
                try:
                    if pid != os.getpid():
                        os.kill(pid, 0)
                        continue  # its writer is alive (or the pid was reused): leave it
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue
                try:
                    os.remove(os.path.join(directory, entry))
                except FileNotFoundError:
                    pass


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
