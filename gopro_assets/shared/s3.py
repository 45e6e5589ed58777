"""S3 in the Dagster layer, through dagster-aws's ``S3Resource``.

Two clients talk to S3 in this code location, on purpose, both configured by the same
``AWS_*`` environment variables (README, docs/DEPLOYMENT.md):

* the **lib layer** (no Dagster) reads landing files and videos with ``pyarrow.fs``
  (:mod:`gopro_assets.lake.storage`; seekable ranged reads for the PyAV probe, in spawned
  worker processes that inherit the environment) and writes Delta tables with
  deltalake's ``storage_options`` (:mod:`gopro_assets.lake.delta_store`);
* the **Dagster layer** uses the ``s3`` resource (``dagster_aws.s3.S3Resource``) for
  object-level work: finding the lake's Delta tables for the weekly maintenance job, and
  uploading a local folder to an ``s3://`` root (a demo landing zone, test fixtures).

Secrets never enter run config: the resource is built from ``dg.EnvVar`` references (the
UI shows the variable's name, not its value), and when a variable is unset boto3's own
chain applies (an instance or task role in production).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from gopro_assets.lake.storage import is_s3


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``); the prefix has no trailing slash."""
    if not is_s3(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def s3_resource_from_env() -> S3Resource:
    """The code location's ``s3`` resource: every setting is an ``EnvVar`` reference
    when set, so endpoint and keys are resolved at run time and never shown."""
    kwargs: dict = {"region_name": dg.EnvVar("AWS_REGION") if os.environ.get("AWS_REGION") else "us-east-1"}
    if os.environ.get("AWS_ENDPOINT_URL"):
        kwargs["endpoint_url"] = dg.EnvVar("AWS_ENDPOINT_URL")
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        kwargs["aws_access_key_id"] = dg.EnvVar("AWS_ACCESS_KEY_ID")
        kwargs["aws_secret_access_key"] = dg.EnvVar("AWS_SECRET_ACCESS_KEY")
    if os.environ.get("AWS_SESSION_TOKEN"):
        kwargs["aws_session_token"] = dg.EnvVar("AWS_SESSION_TOKEN")
    return S3Resource(**kwargs)


def s3_client_from_env():
    """A boto3 S3 client from the same resource, outside a Dagster run (the CLI, tests):
    the resource's ``EnvVar`` references are resolved the way Dagster resolves them."""
    return s3_resource_from_env().process_config_and_initialize().get_client()


@dataclass(frozen=True)
class ObjectInfo:
    rel_path: str  # key relative to the root URI
    size: int
    etag: str


def list_objects(client, root_uri: str, prefix: str = "") -> list[ObjectInfo]:
    """Every object under ``root_uri/prefix``, sorted by key (paginated listing)."""
    bucket, base = split_uri(root_uri)
    full = "/".join(p for p in (base, prefix.strip("/")) if p)
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{full}/" if full else ""):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(base) + 1 :] if base else obj["Key"]
            out.append(ObjectInfo(rel, int(obj["Size"]), obj.get("ETag", "").strip('"')))
    return sorted(out, key=lambda o: o.rel_path)


def list_folders(client, root_uri: str) -> list[str]:
    """The immediate "folders" (common prefixes) under ``root_uri``."""
    bucket, base = split_uri(root_uri)
    out = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{base}/" if base else "", Delimiter="/"):
        for cp in page.get("CommonPrefixes", []):
            out.append(cp["Prefix"][len(base) + 1 if base else 0 :].rstrip("/"))
    return sorted(out)


def delta_tables(client, lake_uri: str) -> list[str]:
    """Names of the Delta tables directly under an ``s3://`` lake (folders with a
    ``_delta_log/``)."""
    bucket, base = split_uri(lake_uri)
    tables = []
    for name in list_folders(client, lake_uri):
        key = "/".join(p for p in (base, name, "_delta_log/") if p)
        if client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0):
            tables.append(name)
    return tables


def upload_tree(client, local_dir: Path | str, root_uri: str) -> int:
    """Upload every file under ``local_dir`` to ``root_uri`` keeping relative paths;
    returns the number of files. Symlinks are not followed (nothing outside the folder
    is uploaded)."""
    bucket, base = split_uri(root_uri)
    local_dir = Path(local_dir)
    count = 0
    for dirpath, _dirs, files in os.walk(local_dir):
        for name in sorted(files):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(local_dir).as_posix()
            client.upload_file(str(path), bucket, "/".join(p for p in (base, rel) if p))
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m gopro_assets.shared.s3 upload LOCAL_DIR s3://bucket/prefix``: put a local
    landing zone (e.g. from ``gopro-lake demo``) on S3, with the code location's S3Resource."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gopro_assets.shared.s3")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="upload every file under LOCAL_DIR to an s3:// root")
    up.add_argument("local_dir")
    up.add_argument("uri")
    args = parser.parse_args(argv)
    client = s3_client_from_env()
    count = upload_tree(client, args.local_dir, args.uri)
    print(f"uploaded {count} file(s) to {args.uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
