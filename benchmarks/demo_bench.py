"""The demo end to end from an empty lake, Dagster included: ``gopro-lake demo`` then
``gopro-lake materialize`` (through the default day, yesterday UTC: about 690 daily
partitions since 2025-01-01), exactly as a user runs them, each a fresh process with a
fresh ``DAGSTER_HOME``.

Beside it, the same work without Dagster (``lib.pipeline.run_all`` on the same landing zone
into another lake) and, from the run's own event log, where Dagster's time goes: how many
events each run recorded and how long the event storage took to record the per-partition
materializations (and planned events) of the catch-up run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

from benchmarks import Figure, Scale, emit, log, run_worker


def _cli() -> list[str]:
    exe = Path(sys.executable).parent / "gopro-lake"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gopro_assets.cli"]


def _env(workdir: Path) -> dict:
    return {
        **os.environ,
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "GOPRO_LANDING": str(workdir / "landing"),
        "GOPRO_LAKE": str(workdir / "lake"),
        "GOPRO_EXPORTS": str(workdir / "exports"),
    }


def _timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout + proc.stderr


def run(scale: Scale, workdir: Path) -> tuple[list[Figure], dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    env = _env(workdir)
    log("demo: gopro-lake demo")
    demo_s, demo_out = _timed([*_cli(), "demo"], env, workdir)
    log(f"demo: written in {demo_s:.1f}s; gopro-lake materialize")
    mat_s, mat_out = _timed([*_cli(), "materialize"], env, workdir)
    stages = [
        {"stage": m.group(1), "what": m.group(2).strip()}
        for m in re.finditer(r"\[(\d+/\d+)\] (.*)", mat_out)
        if "done in" not in m.group(2) and "FAILED" not in m.group(2)
    ]
    done = {m.group(1): float(m.group(2)) for m in re.finditer(r"\[(\d+/\d+)\] done in ([\d.]+)s", mat_out)}
    for s in stages:
        s["seconds"] = done.get(s["stage"])
    log(f"demo: materialized in {mat_s:.1f}s; event log analysis and the same work without Dagster")
    events = run_worker("benchmarks.demo_bench", {"task": "events", "home": env["DAGSTER_HOME"]}, log=log)
    from gopro_assets.settings import yesterday_utc

    through = yesterday_utc()
    plain = run_worker(
        "benchmarks.demo_bench",
        {
            "task": "plain",
            "landing": env["GOPRO_LANDING"],
            "lake": str(workdir / "lake_plain"),
            "through": through.isoformat(),
        },
        log=log,
    )
    total = demo_s + mat_s
    daily = next((s for s in stages if "footage_inventory" in s["what"]), None)
    recording = sum(r["recording_s"] for r in events["runs"])
    figures = [
        Figure(
            "demo",
            "demo end to end (gopro-lake demo + materialize)",
            round(total, 1),
            "s",
            "same work without Dagster (demo + lib.pipeline.run_all)",
            round(demo_s + plain["wall_s"], 1),
            "< 90 s on 2 cores",
            total < 90,
            note=f"demo {demo_s:.1f}s + materialize {mat_s:.1f}s; {events['partitions']} daily partitions",
            detail={"stages": stages},
        ),
        Figure(
            "demo",
            "materialize alone",
            round(mat_s, 1),
            "s",
            "lib.pipeline.run_all",
            round(plain["wall_s"], 1),
            "",
            None,
            note=f"Dagster overhead {mat_s - plain['wall_s']:.1f}s",
        ),
    ]
    if daily is not None:
        figures.append(
            Figure(
                "demo",
                "daily-partition stage",
                daily["seconds"] or 0,
                "s",
                "time recording per-partition events",
                round(recording, 1),
                "",
                None,
                note=daily["what"],
            )
        )
    return figures, {
        "demo_s": demo_s,
        "materialize_s": mat_s,
        "stages": stages,
        "events": events,
        "plain": plain,
        "materialize_output_tail": mat_out[-4000:],
    }


# -- worker side ----------------------------------------------------------------------------------


def _events(args: dict) -> dict:
    """Per run: events by type, and the time spent writing the per-partition asset events
    (the span of the ASSET_MATERIALIZATION[_PLANNED] events of each step)."""
    os.environ["DAGSTER_HOME"] = args["home"]
    import dagster as dg

    instance = dg.DagsterInstance.get()
    runs = []
    partitions = 0
    for run in sorted(instance.get_runs(), key=lambda r: r.run_id):
        records = instance.all_logs(run.run_id)
        kinds = Counter(e.dagster_event.event_type_value if e.dagster_event else "log" for e in records)
        spans = {}
        for e in records:
            if e.dagster_event and e.dagster_event.event_type_value in (
                "ASSET_MATERIALIZATION",
                "ASSET_MATERIALIZATION_PLANNED",
            ):
                key = (e.dagster_event.event_type_value, e.step_key)
                lo, hi = spans.get(key, (e.timestamp, e.timestamp))
                spans[key] = (min(lo, e.timestamp), max(hi, e.timestamp))
        recording = sum(hi - lo for lo, hi in spans.values())
        start = min(e.timestamp for e in records) if records else 0
        end = max(e.timestamp for e in records) if records else 0
        tags = run.tags
        if tags.get("dagster/asset_partition_range_start", "").count("-") == 2:
            first = date.fromisoformat(tags["dagster/asset_partition_range_start"])
            last = date.fromisoformat(tags["dagster/asset_partition_range_end"])
            partitions = max(partitions, (last - first).days + 1)
        runs.append(
            {
                "run_id": run.run_id[:8],
                "events": len(records),
                "by_type": dict(kinds),
                "span_s": round(end - start, 2),
                "recording_s": round(recording, 2),
            }
        )
    return {"runs": runs, "partitions": partitions}


def _plain(args: dict) -> dict:
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_tools.pipeline import run_all

    started = time.monotonic()
    run_all(DeltaStore(args["lake"]), args["landing"], date(2025, 1, 1), date.fromisoformat(args["through"]))
    return {"wall_s": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    args = json.loads(parser.parse_args().worker)
    task = {"events": _events, "plain": _plain}[args["task"]]
    emit(task(args))


if __name__ == "__main__":
    main()
