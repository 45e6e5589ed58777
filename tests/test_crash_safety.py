"""Crash safety (contract §6 and R12): `gopro-lake materialize` killed with SIGKILL at 20
random moments never leaves a table that does not open or a partial write in sight, and
the next run converges to exactly the tables and files of a run that was never killed.

The soak version with hundreds of kill points: ``python -m benchmarks.crash_soak``.
Helpers (and what "identical" means for version columns): gopro_tools/crash_harness.py.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from gopro_tools import crash_harness as ch

pytestmark = [pytest.mark.integration, pytest.mark.system]  # minutes: 20 SIGKILLed CLI runs

KILLS = int(os.environ.get("GOPRO_CRASH_KILLS", "20"))
LAKES = 2  # crashed in parallel, one per core


@pytest.fixture
def workdir(tmp_path):
    # tmpfs when there is one: a killed process loses nothing the kernel already holds, so
    # it is as faithful as a disk for process crashes, and SQLite/Delta fsyncs cost nothing.
    if Path("/dev/shm").is_dir():
        path = Path(tempfile.mkdtemp(prefix="gopro_crash_", dir="/dev/shm"))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path


def test_sigkill_at_random_moments_then_rerun_converges_to_a_clean_run(workdir):
    seed = int(os.environ.get("GOPRO_CRASH_SEED", random.randrange(2**31)))
    started = time.monotonic()
    landing = ch.build_landing(workdir / "landing")
    clean_lake = ch.Lake(workdir / "clean", landing)
    clean_run = ch.run(clean_lake)
    assert clean_run.returncode == 0, clean_run.log[-4000:]
    clean = ch.snapshot(clean_lake)
    assert {"deal_deliveries", "delivered_batches", "revenue_share_statements", "payout_reconciliation"} <= set(clean)
    assert clean["__files__"], "the clean run wrote no exports"

    rng = random.Random(seed)
    results: dict[int, ch.ChainResult] = {}
    errors: list[BaseException] = []

    def crash(i: int, kills: int, lake_seed: int) -> None:
        try:
            lake = ch.Lake(workdir / f"lake{i}", landing)
            results[i] = ch.crash_chain(lake, clean_lake, clean, clean_run, kills, random.Random(lake_seed))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [
        threading.Thread(target=crash, args=(i, KILLS // LAKES + (i < KILLS % LAKES), rng.randrange(2**31)))
        for i in range(LAKES)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]

    kills = sum(r.kills for r in results.values())
    where = sum((r.where for r in results.values()), start=ch.Counter())
    problems = [p for r in results.values() for p in r.problems]
    print(
        f"\nseed {seed}: {kills} SIGKILLs in {time.monotonic() - started:.0f}s (clean run {clean_run.seconds:.1f}s); "
        f"killed during: {dict(sorted(where.items()))}; "
        f"finished before the kill: {sum(r.finished_early for r in results.values())}"
    )
    assert not problems, f"seed {seed}:\n" + "\n".join(problems[:20])
    assert kills >= KILLS
    assert all(r.converged for r in results.values())
    # the kills landed in the runs that write, not only in start-up
    assert sum(n for w, n in where.items() if "/" in w) >= KILLS // 2, where
