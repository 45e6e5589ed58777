"""Crash soak: SIGKILL ``gopro-lake materialize`` at many random moments and check that
the lake always opens, never shows a partial write, and converges to the clean run.

    python -m benchmarks.crash_soak --kills 200 [--per-lake 10] [--workers 2] [--seed S]

One clean run gives the reference lake and the run's duration. Then lakes are crashed in
chains: each attempt starts ``gopro-lake materialize`` on the same lake and Dagster
instance and is SIGKILLed (with its process group: probe workers are children) after a
delay drawn over the clean run's duration (stratified, so every stage gets kill points).
After every kill, every Delta table must open and hold no row a finished run would not
hold, and every other file must be absent or hold its final bytes. After ``--per-lake``
kills, a last attempt runs to the end: it must succeed and leave every table and file
identical to the clean run, with no Dagster run left unfinished. Prints the tally; exits 1
on any finding.

The same machinery runs in CI with 20 kill points (tests/test_crash_safety.py, helpers in
gopro_tools/crash_harness.py). Results: docs/RELIABILITY.md ("Crash safety").
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from gopro_tools import crash_harness as ch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.crash_soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kills", type=int, default=200, help="kill points in total (default 200)")
    parser.add_argument(
        "--per-lake", type=int, default=10, help="kills on one lake before it must converge (default 10)"
    )
    parser.add_argument("--workers", type=int, default=2, help="lakes crashed in parallel (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the kill moments (default: random, printed)")
    parser.add_argument(
        "--dir", default=None, help="work folder (default: a temporary folder, on /dev/shm when present)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.randrange(2**31)
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    base = Path(tempfile.mkdtemp(prefix="crash_soak_", dir=args.dir or shm))
    print(f"seed {seed}, work folder {base}", flush=True)
    t0 = time.monotonic()
    landing = ch.build_landing(base / "landing")
    clean_lake = ch.Lake(base / "clean", landing)
    clean_run = ch.run(clean_lake)
    if clean_run.returncode != 0:
        print(f"the clean run failed:\n{clean_run.log[-5000:]}")
        return 1
    clean = ch.snapshot(clean_lake)
    print(
        f"clean run: {clean_run.seconds:.1f}s (first Dagster run after {clean_run.first_run_at:.1f}s), "
        f"{sum(1 for k in clean if k != '__files__')} tables, {len(clean['__files__'])} other files",
        flush=True,
    )

    rng = random.Random(seed)
    plan = [min(args.per_lake, args.kills - i) for i in range(0, args.kills, args.per_lake)]
    queue = [(i, kills, rng.randrange(2**31)) for i, kills in enumerate(plan)]
    lock = threading.Lock()
    total = ch.ChainResult()

    def on_kill(lake, delay, attempt, problems):
        if not args.quiet:
            what = "finished first" if attempt.killed_after is None else f"killed at {delay:5.1f}s"
            with lock:
                print(
                    f"  {lake.root.name}: {what} during {attempt.where}: {'OK' if not problems else 'PROBLEMS'}",
                    flush=True,
                )

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i, kills, lake_seed = queue.pop(0)
            lake = ch.Lake(base / f"lake{i:03d}", landing)
            result = ch.crash_chain(lake, clean_lake, clean, clean_run, kills, random.Random(lake_seed), on_kill)
            with lock:
                total.kills += result.kills
                total.finished_early += result.finished_early
                total.where.update(result.where)
                total.problems += result.problems
                total.converged += result.converged  # counts lakes here
                if not args.quiet:
                    print(f"  {lake.root.name}: converged {'OK' if result.converged else 'NO'}", flush=True)
            if result.converged and not args.keep:
                shutil.rmtree(lake.root, ignore_errors=True)

    threads = [threading.Thread(target=worker) for _ in range(max(1, args.workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    elapsed = time.monotonic() - t0
    print(
        f"\n== crash soak: {total.kills} SIGKILLs on {len(plan)} lakes in {elapsed / 60:.1f} min, seed {seed} "
        f"(clean run {clean_run.seconds:.1f}s) =="
    )
    for where, n in sorted(total.where.items()):
        print(f"  killed during {where}: {n}")
    print(f"  attempts that finished before their kill moment: {total.finished_early}")
    print(f"  lakes identical to the clean run after the re-run: {int(total.converged)} of {len(plan)}")
    print(f"  findings: {len(total.problems)}")
    for p in total.problems[:50]:
        print(f"   - {p}")
    if not total.problems and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if total.problems else 0


if __name__ == "__main__":
    sys.exit(main())
