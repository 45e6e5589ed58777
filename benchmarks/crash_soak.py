"""Crash soak: SIGKILL ``gopro-lake materialize`` at many random moments and check that
the lake always opens, never shows a partial write, and converges to the clean run.

    python -m benchmarks.crash_soak --kills 200 [--per-lake 10] [--workers 2] [--seed 1]

One clean run gives the reference lake and the run's duration. Then lakes are crashed in
chains: each attempt starts ``gopro-lake materialize`` on the same lake and Dagster
instance and is SIGKILLed (with its process group: probe workers are children) after a
delay drawn from the clean run's duration (stratified, so every stage gets kill points).
After every kill, every Delta table must open and hold no row a finished run would not
hold. After ``--per-lake`` kills, a last attempt runs to the end: it must succeed and
leave every table and file identical to the clean run (recorded Delta versions must name
snapshots with the same rows). Prints the tally; exits 1 on any finding.

The same checks run in CI with 20 kill points: tests/test_crash_safety.py.
Results: docs/RELIABILITY.md ("Crash safety").
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import crash_harness as ch  # noqa: E402


def stage_at_kill(log: str) -> str:
    """The last progress line the CLI printed before it was killed."""
    lines = [ln for ln in log.splitlines() if ln.startswith("[") and "] [" in ln]
    if not lines:
        return "start-up (before the first run)"
    last = lines[-1].split("] ", 1)[1]
    return last.split(":", 1)[0] if ("done" not in last) else last.split(" done", 1)[0] + " done"


def crash_lake(lake: ch.Lake, clean_lake: ch.Lake, clean: dict, clean_seconds: float, kills: int, rng: random.Random,
               tally: Counter, findings: list[str], lock: threading.Lock, verbose: bool) -> None:
    delays = ch.kill_delays(kills, clean_seconds, rng)
    for n, delay in enumerate(delays, 1):
        attempt = ch.run(lake, kill_after=delay)
        where = stage_at_kill(attempt.log)
        problems = ch.check_intermediate(clean, lake)
        with lock:
            if attempt.killed_after is None:
                tally["attempts that finished before their kill"] += 1
                if attempt.returncode != 0:
                    findings.append(f"{lake.root.name}: an attempt exited {attempt.returncode} before its kill:\n"
                                    + attempt.log[-3000:])
            else:
                tally["kills"] += 1
                tally[f"killed during: {where}"] += 1
            findings.extend(f"{lake.root.name} after kill at {delay:.1f}s ({where}): {p}" for p in problems)
            if verbose:
                print(f"  {lake.root.name} #{n}: kill at {delay:5.1f}s during {where}: "
                      f"{'OK' if not problems else 'PROBLEMS'}", flush=True)
    final = ch.run(lake)
    got = ch.snapshot(lake)
    problems = [] if final.returncode == 0 else [f"the converging run exited {final.returncode}:\n{final.log[-3000:]}"]
    problems += ch.diff(clean, got)
    if not problems:
        problems += ch.check_recorded_versions(clean_lake, lake)
        stuck = {s: n for s, n in ch.dagster_runs(lake).items() if s not in ("SUCCESS", "FAILURE", "CANCELED")}
        if stuck:
            problems.append(f"Dagster runs left unfinished: {stuck}")
    with lock:
        tally["lakes converged"] += not problems
        findings.extend(f"{lake.root.name} after the converging run: {p}" for p in problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crash_soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200, help="kill points in total (default 200)")
    parser.add_argument("--per-lake", type=int, default=10, help="kills on one lake before it must converge (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="lakes crashed in parallel (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary folder, on /dev/shm when present)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="crash_soak_", dir=args.dir or ("/dev/shm" if Path("/dev/shm").is_dir() else None)))
    print(f"work folder: {base}", flush=True)
    landing = ch.build_landing(base / "landing")
    clean_lake = ch.Lake(base / "clean", landing)
    t0 = time.monotonic()
    clean_run = ch.run(clean_lake)
    if clean_run.returncode != 0:
        print(f"the clean run failed:\n{clean_run.log[-5000:]}")
        return 1
    clean_seconds = clean_run.seconds
    clean = ch.snapshot(clean_lake)
    print(f"clean run: {clean_seconds:.1f}s, {sum(1 for k in clean if k != '__files__')} tables, "
          f"{len(clean['__files__'])} files", flush=True)

    rng = random.Random(args.seed)
    n_lakes = max(1, -(-args.kills // args.per_lake))
    plan = [min(args.per_lake, args.kills - i * args.per_lake) for i in range(n_lakes)]
    tally: Counter = Counter()
    findings: list[str] = []
    lock = threading.Lock()
    queue = list(enumerate(plan))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i, kills = queue.pop(0)
                seed = rng.randrange(2**32)
            crash_lake(ch.Lake(base / f"lake{i:03d}", landing), clean_lake, clean, clean_seconds, kills, random.Random(seed),
                       tally, findings, lock, not args.quiet)

    threads = [threading.Thread(target=worker) for _ in range(max(1, args.workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    elapsed = time.monotonic() - t0
    print(f"\n== crash soak: {tally['kills']} kills on {n_lakes} lakes in {elapsed / 60:.1f} min "
          f"(clean run {clean_seconds:.1f}s) ==")
    for key, value in sorted(tally.items()):
        if key.startswith("killed during"):
            print(f"  {key}: {value}")
    print(f"  attempts that finished before their kill: {tally['attempts that finished before their kill']}")
    print(f"  lakes that converged to the clean run: {tally['lakes converged']} of {n_lakes}")
    print(f"  findings: {len(findings)}")
    for f in findings[:50]:
        print(f"   - {f}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
