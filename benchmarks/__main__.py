"""``python -m benchmarks run --scale tiny|small|medium|large [--only probe money incremental demo]``

Generates the synthetic data of the scale in a work folder, runs the benchmarks, prints
every figure beside its reference and target, and writes ``benchmarks/results/<scale>.json``
(with the machine, its load average before and after, and the command line).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import RESULTS, SCALES, log, machine

BENCHES = ["probe", "money", "incremental", "demo"]


def _table(figures: list[dict]) -> str:
    rows = [("bench", "figure", "value", "reference", "target", "met")]
    for f in figures:
        ref = "" if f["reference_value"] is None else f"{f['reference_value']:g} ({f['reference']})"
        met = {True: "yes", False: "NO", None: "-"}[f["ok"]]
        rows.append((f["bench"], f["name"], f"{f['value']:g} {f['unit']}", ref, f["target"], met))
    widths = [min(60, max(len(r[i]) for r in rows)) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c[: widths[i]].ljust(widths[i]) for i, c in enumerate(r)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="generate data and run the benchmarks")
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    p.add_argument(
        "--only",
        nargs="+",
        choices=BENCHES,
        default=None,
        help="run only these benchmarks (default: all; tiny skips demo)",
    )
    p.add_argument("--workdir", default=None, help="where the data goes (default: a temporary folder, removed after)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--out", default=None, help="result JSON (default: benchmarks/results/<scale>.json)")
    args = parser.parse_args(argv)

    scale = SCALES[args.scale]
    benches = args.only or [b for b in BENCHES if b != "demo" or scale.demo]
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix=f"gopro-bench-{scale.name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    before = machine()
    log(f"scale {scale.name}: {', '.join(benches)} in {workdir} (load average {before['loadavg']})")
    started = time.monotonic()
    figures, raw, durations = [], {}, {}
    try:
        for bench in benches:
            t = time.monotonic()
            module = __import__(f"benchmarks.{bench}_bench", fromlist=["run"])
            figs, details = module.run(scale, workdir / bench)
            durations[bench] = round(time.monotonic() - t, 1)
            figures.extend(f.as_dict() for f in figs)
            raw[bench] = details
            log(f"{bench}: done in {durations[bench]:.0f}s")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    after = machine()
    result = {
        "scale": scale.name,
        "scale_params": scale.__dict__,
        "command": " ".join(["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (time.monotonic() - started))),
        "total_s": round(time.monotonic() - started, 1),
        "bench_s": durations,
        "machine": before,
        "loadavg_after": after["loadavg"],
        "figures": figures,
        "raw": raw,
    }
    out = Path(args.out) if args.out else RESULTS / f"{scale.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print(_table(figures))
    print(
        f"\nmachine: {before['nproc']} CPU ({before.get('cpu_model')}), {before.get('mem_total_gb')} GB; "
        f"load average {before['loadavg'][0]:.2f} before, {after['loadavg'][0]:.2f} after; results in {out}"
    )
    return 0 if all(f["ok"] is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
