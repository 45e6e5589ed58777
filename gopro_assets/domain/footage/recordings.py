"""Recordings (contract R15): which chapter of which recording a clip is, from its file name,
and the ``footage_recordings`` table built from the inventory.

A GoPro camera splits a long recording into chapter files named by the camera:

* ``GH<CC><NNNN>.MP4`` (AVC) and ``GX<CC><NNNN>.MP4`` (HEVC): chapter ``CC`` (01-99) of
  file number ``NNNN``; family ``H`` or ``X``;
* the older naming ``GOPR<NNNN>.MP4`` (chapter 1) then ``GP<CC><NNNN>.MP4`` (chapter
  ``CC + 1``); family ``P``.

:func:`chapter_of` is the rule (pure: no Dagster, no I/O); :func:`is_complete` says when a
recording's counted chapters are exactly 1..n. :func:`refresh_recordings` writes the table
from the whole inventory with ``dbt_like_sql/queries/footage_recordings.sql``.

Choices where the contract is silent (docs/FOOTAGE.md):

* The **folder** is the directory part of ``object_key`` as the probe opens it
  (``PurePosixPath``: ``a//b/./c`` is ``a/b/c``), kept case-sensitive (folders are, on S3
  and Linux); only the file name is compared without regard to case. A key without a
  folder has the folder ``""``, so its ``recording_id`` is ``<subscriber_id>:/GX0500``.
  Every chaptered ``recording_id`` therefore holds a ``/`` and no ``<subscriber_id>:<clip_id>``
  id can (ids never hold ``/``, contract §2 / docs/LANDING_RULES.md): the two forms never collide.
* Chapter ``00`` (``GH00xxxx``, ``GP00xxxx``) is not a camera name: the file is a
  one-chapter recording of its own, like any other name. So are other extensions
  (``.LRV`` proxies, ``.MOV``, ``.THM``) and names with anything around the pattern
  (``GX010500 (1).MP4``, ``copy_GX010500.MP4``).
* ``recording_id`` spells the family in upper case and ``NNNN`` as written (digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from gopro_assets.domain.footage.tables import FOOTAGE_RECORDINGS, INVENTORY, INVENTORY_SCHEMA, RECORDINGS_SCHEMA

__all__ = ["Chapter", "chapter_of", "is_complete", "recording_rows", "refresh_recordings"]

# The camera's names (R15), matched on the whole file name, ignoring case. ASCII digits
# only ([0-9], not \d, which also takes other scripts' digits such as "٠١").
_GH_GX = re.compile(r"G([HX])([0-9]{2})([0-9]{4})\.MP4", re.IGNORECASE | re.ASCII)
_GOPR = re.compile(r"GOPR([0-9]{4})\.MP4", re.IGNORECASE | re.ASCII)
_GP = re.compile(r"GP([0-9]{2})([0-9]{4})\.MP4", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class Chapter:
    """Where one clip belongs (R15): its recording and its chapter number in it."""

    recording_id: str
    chapter: int


def _folder(object_key: str) -> str:
    parent = str(PurePosixPath(object_key).parent)
    return "" if parent == "." else parent


def chapter_of(subscriber_id: str, clip_id: str, object_key: str) -> Chapter:
    """R15: the recording and chapter of a clip, from the last part of its ``object_key``.

    >>> chapter_of("S1", "c9", "100GOPRO/GX020500.MP4")
    Chapter(recording_id='S1:100GOPRO/GX0500', chapter=2)
    >>> chapter_of("S1", "c7", "100GOPRO/gp010007.mp4")
    Chapter(recording_id='S1:100GOPRO/GP0007', chapter=2)
    >>> chapter_of("S1", "c3", "100GOPRO/DJI_0001.MP4")
    Chapter(recording_id='S1:c3', chapter=1)
    """
    name = object_key.rsplit("/", 1)[-1]
    family = number = None
    chapter = 0
    if m := _GH_GX.fullmatch(name):
        family, chapter, number = m.group(1).upper(), int(m.group(2)), m.group(3)
    elif m := _GOPR.fullmatch(name):
        family, chapter, number = "P", 1, m.group(1)
    elif m := _GP.fullmatch(name):
        cc = int(m.group(1))
        family, chapter, number = "P", cc + 1 if cc else 0, m.group(2)
    if family is None or chapter < 1:  # another name, or chapter 00: a recording of one chapter
        return Chapter(f"{subscriber_id}:{clip_id}", 1)
    return Chapter(f"{subscriber_id}:{_folder(object_key)}/G{family}{number}", chapter)


def is_complete(chapters: list[int]) -> bool:
    """R15: the counted chapters of a recording (probed, not quarantined, not duplicates)
    are exactly 1..n, each once. No chapter at all is not a complete recording."""
    return bool(chapters) and sorted(chapters) == list(range(1, len(chapters) + 1))


def recording_rows(chapters: list[dict]) -> list[dict]:
    """The ``footage_recordings`` rows of inventory rows (each with ``recording_id``,
    ``subscriber_id``, ``chapter``, ``clip_id``, ``duration_s``, ``billable_seconds`` and
    ``counted``: probed, not quarantined, not a duplicate), by recording_id.

    The reference the SQL of :func:`refresh_recordings` is tested against (small inputs):
    ``chapters`` counts the counted chapters, ``complete`` is :func:`is_complete` of their
    numbers, the durations are their sums (billable seconds are summed per chapter, as R6
    and R7 sum them), ``first_clip_id`` is the counted chapter 1 (null without one)."""
    by_id: dict[str, list[dict]] = {}
    for r in chapters:
        by_id.setdefault(r["recording_id"], []).append(r)
    out = []
    for rid in sorted(by_id):
        rows = by_id[rid]
        counted = sorted((r for r in rows if r["counted"]), key=lambda r: (r["chapter"], r["clip_id"]))
        duration = 0.0
        for r in counted:
            duration += r["duration_s"]
        firsts = [r["clip_id"] for r in counted if r["chapter"] == 1]
        out.append(
            {
                "recording_id": rid,
                "subscriber_id": min(r["subscriber_id"] for r in rows),
                "chapters": len(counted),
                "complete": is_complete([r["chapter"] for r in counted]),
                "recording_duration_s": duration,
                "billable_seconds": sum(r["billable_seconds"] for r in counted),
                "first_clip_id": min(firsts) if firsts else None,
            }
        )
    return out


def refresh_recordings(store) -> dict:
    """Rewrite ``footage_recordings`` from the whole inventory (R15); a table that would not
    change is left at its version. Returns figures for the asset's metadata.

    Unpartitioned on purpose: a later chapter may arrive on a later upload day and changes
    a recording first seen days before, so the table is recomputed from every partition of
    the inventory (one GROUP BY in DuckDB: about 3 s for a million clips, docs/FOOTAGE.md).

    Inventory rows without a ``recording_id`` (written before R15 and not re-probed since,
    docs/FOOTAGE.md "Existing lakes") belong to no recording and are counted in
    ``inventory_rows_without_recording``. An inventory that lacks the column altogether
    raises: the footage step adds it, so it runs first."""
    from gopro_assets.sql_engine.runner import connect, fetch_arrow, query_text

    dt = store.table(INVENTORY)
    if dt is not None and "recording_id" not in dt.schema().to_arrow().names:
        raise RuntimeError(
            f"{INVENTORY} in {store.root} has no recording_id column: it was written before R15. Materialize "
            f"{INVENTORY} first (it adds the columns and re-probes the days it runs), then {FOOTAGE_RECORDINGS.name}"
        )
    con = connect(store, [INVENTORY], {}, empty_schemas={INVENTORY: INVENTORY_SCHEMA})
    try:
        table = fetch_arrow(con, query_text(FOOTAGE_RECORDINGS.name))
        unassigned = con.execute(f"SELECT count(*) FROM {INVENTORY} WHERE recording_id IS NULL").fetchone()[0]
    finally:
        con.close()
    table = table.select(RECORDINGS_SCHEMA.names).cast(RECORDINGS_SCHEMA)
    written = store.overwrite(FOOTAGE_RECORDINGS.name, table)
    complete = sum(table.column("complete").to_pylist())
    return {
        "recordings": table.num_rows,
        "complete": complete,
        "incomplete": table.num_rows - complete,
        "written": written,
        "inventory_rows_without_recording": unassigned,
    }
