"""One lake, one writer at a time: Dagster's own mechanisms, used by ``gopro-lake materialize``.

* **Pool** ``lake_writer``: the assets that write the landing tables and the money
  (``ingest_landing``, ``deal_deliveries``, every SQL model) declare ``pool="lake_writer"``.
  The instance limits it to one slot (``concurrency: pools: default_limit: 1`` in the
  ``dagster.yaml`` the CLI writes), so a scheduled run and a manual run that overlap run
  those steps one after the other, in-process executor included.
* **Run tags**: every run of the CLI carries ``gopro/materialize=cli`` and
  ``gopro/cli_process`` (``pid 123 on host, started 1796586312.75``: the CLI's process id,
  host and process start time). Before it starts, the CLI asks the
  instance for runs in progress and refuses while one exists, or while another live CLI
  is between two of its runs.
* **Recovery**: a CLI killed with SIGKILL (or a crashed machine) leaves its run STARTED
  and its pool slot claimed forever; the next run would wait for that slot endlessly.
  The next CLI finds such runs by their tags, sees that the process is gone, marks them
  failed and frees their slots (what Dagster's run monitoring daemon does for runs it
  launched itself).

See docs/RELIABILITY.md ("Concurrent runs").
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

LAKE_WRITER_POOL = "lake_writer"
MATERIALIZE_TAG = "gopro/materialize"
# One tag, readable in the UI; the start time tells the CLI from a later process that
# reused its pid.
PROCESS_TAG = "gopro/cli_process"
_PROCESS = re.compile(r"^pid (\d+) on (.+), started ([0-9.]+)$")
# The three tags older CLIs wrote instead: still read, so their runs are recovered too.
HOST_TAG, PID_TAG, PROCESS_STARTED_TAG = "gopro/host", "gopro/pid", "gopro/process_started"
POOL_LIMIT = 1
DAGSTER_YAML = f"""\
telemetry:
  enabled: false
# One lake writer at a time (gopro_assets/shared/concurrency.py): steps in the lake_writer pool
# of overlapping runs (a schedule tick and a manual materialize) run one after the other.
concurrency:
  pools:
    default_limit: {POOL_LIMIT}
"""
# What older versions of the CLI wrote: upgraded in place, anything else is left alone.
OLD_DAGSTER_YAMLS = {"telemetry:\n  enabled: false\n"}


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def process_tag(pid: int) -> str:
    """The value of PROCESS_TAG for process ``pid`` on this host."""
    return f"pid {pid} on {socket.gethostname()}, started {_process_started(pid) or 0:.2f}"


def session_tags() -> dict[str, str]:
    """Tags identifying this CLI process on every run it starts."""
    return {MATERIALIZE_TAG: "cli", PROCESS_TAG: process_tag(os.getpid())}


def cli_process(tags: dict) -> tuple[str, int, float] | None:
    """(host, pid, process start time) of the CLI that started a run, from its tags."""
    found = _PROCESS.match(tags.get(PROCESS_TAG, ""))
    try:
        if found:
            return found[2], int(found[1]), float(found[3])
        return tags[HOST_TAG], int(tags[PID_TAG]), float(tags[PROCESS_STARTED_TAG])
    except (KeyError, ValueError):
        return None


def _who(tags: dict) -> str:
    host, pid, _ = cli_process(tags) or ("an unknown host", "unknown", 0)
    return f"pid {pid} on {host}"


def owner_state(tags: dict) -> str:
    """'me', 'alive', 'dead', or 'unknown' (not a CLI run, or a CLI on another host)."""
    process = cli_process(tags) if tags.get(MATERIALIZE_TAG) == "cli" else None
    if process is None or process[0] != socket.gethostname():
        return "unknown"
    _, pid, started = process
    if pid == os.getpid() and abs((_process_started(pid) or 0) - started) < 1:
        return "me"
    import psutil

    actual = _process_started(pid)
    if actual is None or abs(actual - started) >= 1:  # gone, or the pid was reused
        return "dead"
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return "dead"
    except psutil.Error:
        return "dead"
    return "alive"


def _in_progress():
    import dagster as dg

    return [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]


def ensure_pool_limit(instance) -> None:
    """The lake_writer pool has a limit even when dagster.yaml sets no default (a home
    written by hand or by an older CLI): set it with Dagster's own API, as
    ``dagster instance concurrency set lake_writer 1`` would."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    if storage.get_pool_config().default_pool_limit is not None:
        return
    if LAKE_WRITER_POOL not in {p.name for p in storage.get_pool_limits()}:
        storage.set_concurrency_slots(LAKE_WRITER_POOL, POOL_LIMIT)


def recover_abandoned_runs(instance) -> list[str]:
    """Mark failed the runs of CLI processes that no longer exist, and free every pool
    slot held by a run that is over. Returns what was done, one line each."""
    import dagster as dg

    done = []
    for run in instance.get_runs(
        filters=dg.RunsFilter(statuses=_in_progress(), tags={MATERIALIZE_TAG: "cli"}), limit=200
    ):
        if owner_state(run.tags) != "dead":
            continue
        instance.report_run_failed(
            run,
            (
                f"gopro-lake materialize ({_who(run.tags)}) is gone: it was killed "
                f"or crashed during this run. Marked failed by the next gopro-lake materialize (pid {os.getpid()}); "
                "its writes are single Delta commits and the next run redoes whatever it did not finish."
            ),
        )
        done.append(f"run {run.run_id} of a CLI process that is gone ({_who(run.tags)}): marked failed")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for pool in storage.get_concurrency_keys():
            holders = {s.run_id for s in storage.get_concurrency_info(pool).claimed_slots}
            holders |= {p.run_id for p in storage.get_concurrency_info(pool).pending_steps}
            for run_id in sorted(holders):
                run = instance.get_run_by_id(run_id)
                if run is None or run.is_finished:
                    storage.free_concurrency_slots_for_run(run_id)
                    done.append(
                        f"pool {pool}: freed the slot(s) of run {run_id} ({'deleted' if run is None else run.status.value})"
                    )
    return done


@dataclass
class Busy:
    run_id: str
    job_name: str
    status: str
    owner: str

    def message(self) -> str:
        return (
            f"another materialize run is in progress (run id {self.run_id}, {self.job_name}, {self.status}, "
            f"{self.owner}); refusing to start a second one on the same lake. Try again when it has finished "
            "(see it in the Dagster UI). If it is stuck, terminate it there first."
        )


def busy_runs(instance) -> list[Busy]:
    """Runs that write the lake right now (call :func:`recover_abandoned_runs` first):
    every queued or running run of this instance, and every other live CLI, even between
    two of its runs."""
    import dagster as dg

    found: dict[str, Busy] = {}

    def owner(run) -> str:
        if run.tags.get(MATERIALIZE_TAG) == "cli":
            return f"gopro-lake materialize, {_who(run.tags)}"
        for tag in ("dagster/schedule_name", "dagster/sensor_name", "dagster/backfill"):
            if tag in run.tags:
                return f"{tag.split('/')[1].replace('_name', '')} {run.tags[tag]}"
        return "started from the UI or the API"

    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_in_progress()), limit=50):
        if owner_state(run.tags) != "me":
            found[run.run_id] = Busy(run.run_id, run.job_name, run.status.value, owner(run))
    # A CLI between two of its runs has none in progress: find it by its process.
    seen_pids = set()
    for run in instance.get_runs(filters=dg.RunsFilter(tags={MATERIALIZE_TAG: "cli"}), limit=20):
        process = cli_process(run.tags)
        key = process[:2] if process else run.run_id
        if key in seen_pids or run.run_id in found:
            continue
        seen_pids.add(key)
        if owner_state(run.tags) == "alive":
            found[run.run_id] = Busy(run.run_id, run.job_name, f"{run.status.value}, its CLI still running", owner(run))
    return list(found.values())
