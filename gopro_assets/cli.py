"""gopro-lake: demo landing zone, materialize (through Dagster), export, explain.

Every table is built by Dagster's own execution against the instance in DAGSTER_HOME,
as runs of named jobs (defs/operations/materialize_jobs.py), so each CLI run appears in
the Dagster UI under its job; the CLI prints each run's link.

Exit codes (docs/CLI.md): 0 done, 1 refused or failed, 2 usage (a malformed or unusable
argument), 3 another run is in progress. Every error is one line on stderr saying what
to do; GOPRO_DEBUG=1 shows the traceback of an unexpected one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from gopro_assets import settings

# Dagster's system tags for a single run over a partition range (public tag names,
# spelled out to avoid importing dagster's private modules).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3
# Where the printed run links point: the Dagster UI of `dagster dev` by default.
UI_URL_ENV, DEFAULT_UI_URL = "DAGSTER_UI_URL", "http://127.0.0.1:3000"
# Written by `gopro-lake demo` at the root of the landing zone: the demo's last day, the
# default --through of `gopro-lake materialize` there. Ingestion never reads it.
DEMO_MANIFEST = "demo_manifest.json"
HEARTBEAT_S = 10.0  # a progress line this often while a run goes on
# The terminal shows our own lines (progress, each warning on one line, failures); the
# run's full event stream is in the UI.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class CliError(Exception):
    """A refusal or a usage error: printed as one line on stderr, exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def ui_url(run_id: str | None = None) -> str:
    """The Dagster UI's page of a run (its full id), or its Runs page."""
    base = (os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")
    return f"{base}/runs/{run_id}" if run_id else f"{base}/runs"


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME defaults to ./.dagster_home (contract §1), with telemetry off and the
    lake_writer pool limited to one slot (gopro_assets/shared/concurrency.py). A dagster.yaml
    written by hand is left alone; one written by an older CLI is upgraded."""
    from gopro_assets.shared.concurrency import DAGSTER_YAML, OLD_DAGSTER_YAMLS

    home = Path(os.environ.get("DAGSTER_HOME") or "./.dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in OLD_DAGSTER_YAMLS:
        tmp = home / f".dagster.yaml.tmp-{os.getpid()}"  # atomic: a killed CLI never leaves half a file
        tmp.write_text(DAGSTER_YAML)
        os.replace(tmp, config)
    return home


def _progress(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", flush=True)


def plan_stages(defs):
    """Split the asset graph into runs: consecutive layers with one partitions definition.

    A run can only cover one partition range, so the plan alternates between
    unpartitioned, daily and monthly assets in dependency order.
    """
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    known = set(keys)

    def together(key):
        """Keys that execute in one step with ``key`` (a multi-asset that is not subsettable)."""
        return [k for k in graph.get(key).execution_set_asset_keys if k in known] or [key]

    # An unpartitioned asset computed in the same step as a partitioned one (footage_quarantine
    # with footage_inventory) runs in that asset's partition-range run, where it is recorded once.
    pdef_of = {}
    for key in keys:
        pdef = graph.get(key).partitions_def
        if pdef is None:
            pdef = next(
                (graph.get(k).partitions_def for k in together(key) if graph.get(k).partitions_def is not None), None
            )
        pdef_of[key] = pdef
    # a stage after its parents' (a new run when the partitions definition changes), the same
    # for every key of one step
    stage = dict.fromkeys(keys, 0)
    changed = True
    while changed:
        changed = False
        for key in keys:
            s = max(
                [stage[p] + (0 if pdef_of[p] == pdef_of[key] else 1) for p in graph.get(key).parent_keys if p in known]
                + [stage[k] for k in together(key)]
            )
            if s != stage[key]:
                stage[key], changed = s, True
    groups: dict[tuple, list] = {}
    for key in keys:
        groups.setdefault((stage[key], id(pdef_of[key])), []).append(key)
    return [(pdef_of[ks[0]], ks) for (_, _), ks in sorted(groups.items(), key=lambda kv: kv[0][0])]


class _StageWatch:
    """Follows one run in this process (``instance.add_event_listener``): a progress line
    every HEARTBEAT_S while the run goes on, and the run's warnings, one line each."""

    def __init__(self, echo, total_steps: int):
        self.echo, self.total = echo, total_steps
        self.lock = threading.Lock()
        self.running: dict[str, None] = {}
        self.done = 0
        self.warnings: list[tuple[str | None, str]] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="gopro-progress", daemon=True)

    def __call__(self, entry) -> None:
        """Called on the run's thread for every event it stores: quick, and never raises."""
        try:
            event = entry.dagster_event
            with self.lock:
                if event is None:
                    if entry.level >= logging.WARNING and entry.user_message:
                        warning = (entry.step_key, " ".join(entry.user_message.split()))
                        if warning not in self.warnings:
                            self.warnings.append(warning)
                elif event.event_type_value == "STEP_START":
                    self.running[event.step_key] = None
                elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
                    self.running.pop(event.step_key, None)
                    self.done += 1
        except Exception:  # noqa: BLE001 - progress display must never break a run
            pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self.lock:
                running, done = list(self.running), self.done
            what = f"{', '.join(running)} running" if running else "between steps"
            self.echo(f"      {time.monotonic() - self.started:.0f}s: {what}, {done} of {self.total} steps done")


def _failure_lines(result) -> list[str]:
    """One line per failed step (its innermost error) and failed check of a run."""
    lines = []
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            error = ev.event_specific_data.error if ev.event_specific_data else None
            while error is not None and error.cause is not None:
                error = error.cause  # the asset's own exception, not Dagster's wrapper
            text = " ".join((f"{error.cls_name}: {error.message}" if error else ev.message or "").split())
            lines.append(f"{ev.step_key} failed: {text[:400]}")
        elif ev.event_type_value == "PIPELINE_FAILURE" or (
            ev.event_type_value == "ASSET_CHECK_EVALUATION" and not ev.event_specific_data.passed
        ):
            lines.append(" ".join((ev.message or "").split())[:400])
    return lines


def materialize(
    through: date,
    defs=None,
    resources: dict | None = None,
    instance=None,
    echo=None,
    run_tags: dict | None = None,
    demo: bool = False,
    failures: list | None = None,
) -> bool:
    """Materialize every asset and partition through ``through`` (contract §6), one
    Dagster run per stage of :func:`plan_stages`: a run of the stage's named job
    (defs/operations/materialize_jobs.py), tagged with ``run_tags`` too. Returns False
    when a run failed (appending "stage i/n (job), <run link>" to ``failures``)."""
    import dagster as dg

    from gopro_assets.defs.operations.materialize_jobs import MATERIALIZE_JOB_DEFS
    from gopro_assets.shared.partitions import THROUGH_TAG

    if defs is None:
        from gopro_assets.definitions import defs
    echo = echo or _progress
    instance = instance or dg.DagsterInstance.get()
    resources = resources if resources is not None else defs.resources
    run_defs = dg.Definitions(
        assets=[*(defs.assets or []), *(defs.asset_checks or [])], jobs=list(MATERIALIZE_JOB_DEFS), resources=resources
    )
    jobs = {}
    for unresolved in MATERIALIZE_JOB_DEFS:
        job = run_defs.resolve_job_def(unresolved.name)
        jobs[frozenset(job.asset_layer.selected_asset_keys)] = job
    stages = plan_stages(defs)
    for i, (pdef, keys) in enumerate(stages, 1):
        names = ", ".join(k.to_user_string() for k in keys)
        job = jobs.get(frozenset(keys))
        if job is None:  # the graph changed and the jobs' selections no longer follow it
            raise RuntimeError(f"no job of defs/operations/materialize_jobs.py selects exactly stage {i}: {names}")
        tags = {**(run_tags or {}), THROUGH_TAG: through.isoformat()}
        label = "unpartitioned"
        if pdef is not None:
            keys_through = pdef.get_partition_keys(dynamic_partitions_store=instance, current_time=_end_of(through))
            if not keys_through:
                echo(f"[{i}/{len(stages)}] skip {job.name}: no partition of {names} complete by {through}")
                continue
            tags |= {RANGE_START_TAG: keys_through[0], RANGE_END_TAG: keys_through[-1]}
            label = f"{len(keys_through)} partition(s) {keys_through[0]}..{keys_through[-1]}"
        run_id = str(uuid.uuid4())
        echo(f"[{i}/{len(stages)}] {job.name}, {label}: {names}")
        echo(f"      {ui_url(run_id)}")
        started = time.monotonic()
        with _StageWatch(echo, len(job.graph.nodes)) as watch:
            instance.add_event_listener(run_id, watch)
            result = job.execute_in_process(
                run_config=QUIET_CONSOLE, instance=instance, raise_on_error=False, run_id=run_id, tags=tags
            )
        took = time.monotonic() - started
        for step, message in watch.warnings:
            on_purpose = (
                " (the demo's landing zone has such files on purpose)" if demo and "quarantine" in message else ""
            )
            echo(f"      warning from {step or 'the run'}: {message[:400]}{on_purpose}")
        if not result.success:
            echo(f"[{i}/{len(stages)}] FAILED after {took:.1f}s: {job.name}, run {ui_url(result.run_id)}")
            for line in _failure_lines(result):
                echo(f"      {line}")
            if failures is not None:
                failures.append(f"stage {i}/{len(stages)} ({job.name}), {ui_url(result.run_id)}")
            return False
        echo(f"[{i}/{len(stages)}] done in {took:.1f}s")
    return True


# -- the demo's manifest -----------------------------------------------------------


def read_demo_manifest(landing: str) -> dict | None:
    """The manifest `gopro-lake demo` wrote in the landing zone (``last_day`` as a date),
    or None when the landing zone is not a demo's."""
    from gopro_assets.lake.storage import FileRoot

    where = f"{landing.rstrip('/')}/{DEMO_MANIFEST}"
    try:
        root = FileRoot(landing)
        if not root.exists(DEMO_MANIFEST):
            return None
        manifest = json.loads(root.read_bytes(DEMO_MANIFEST))
        manifest["last_day"] = date.fromisoformat(manifest["last_day"])
    except Exception as exc:  # noqa: BLE001 - unreadable, not JSON, no last_day, S3 errors: all the same to the user
        raise CliError(
            f"cannot read the demo manifest {where} ({type(exc).__name__}: {exc}): delete it, "
            "or pass --through YYYY-MM-DD"
        ) from None
    return manifest


def write_demo_manifest(out: str, manifest: dict) -> Path:
    path = Path(out) / DEMO_MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


# -- refusals: dates and folders -----------------------------------------------------


def _today_utc() -> date:
    return settings.yesterday_utc() + timedelta(days=1)


def _last_month_over() -> str:
    """The latest statement month that is over (UTC), YYYY-MM."""
    return (_today_utc().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def _check_day(day: date, what: str) -> None:
    """Refuse a --through after yesterday (UTC) or before the program's start."""
    start, last = settings.start_date(), settings.yesterday_utc()
    if day > last:
        raise CliError(
            f"{what} {day} is after yesterday ({last}, UTC): only days that are over can be materialized; "
            f"give --through {last} or earlier"
        )
    if day < start:
        raise CliError(
            f"{what} {day} is before the program's start ({start}, GOPRO_START_DATE): there is nothing to build; "
            f"give --through between {start} and {last}"
        )


def _check_month(month: str) -> None:
    """Refuse a statement month before the program's start or not over yet (UTC)."""
    start, last = settings.start_date(), _last_month_over()
    first = start.strftime("%Y-%m")
    if month < first:
        raise CliError(
            f"--month {month} is before the program's start ({start}, GOPRO_START_DATE): it has no statements; "
            f"give a month from {first} to {last}"
        )
    if month > last:
        raise CliError(f"--month {month} is not over yet (UTC): give a month from {first} to {last}")


def _check_tax_year(year: int) -> None:
    start, last_over = settings.start_date(), _today_utc().year - 1
    if year < start.year:
        raise CliError(
            f"--tax-year {year} is before the program's start ({start}, GOPRO_START_DATE): it has no royalties; "
            f"give a year from {start.year} to {last_over}"
        )
    if year > last_over:
        raise CliError(f"--tax-year {year} is not over yet (UTC): give a year from {start.year} to {last_over}")


def _check_folder(path: str, what: str, create_parents: bool = False) -> None:
    """Refuse (exit 2) a local output folder that cannot be used: a regular file, a
    missing parent (unless ``create_parents``), or a place that cannot be written.
    Checked by writing there, so nothing is left behind."""
    from gopro_assets.lake.storage import is_s3

    if is_s3(path):
        return
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{what} {path} is a file, not a folder: give a folder (it is created if missing)", EXIT_USAGE)
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CliError(f"{what} {path}: {existing} is a file, not a folder: give another folder", EXIT_USAGE)
    if existing != folder and existing != folder.parent and not create_parents:
        raise CliError(
            f"{what} {path}: the folder above it, {folder.parent}, does not exist: create it first, or give "
            "another folder",
            EXIT_USAGE,
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".gopro-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CliError(
            f"{what} {path} cannot be written ({exc.strerror or exc}): give a folder you can write to", EXIT_USAGE
        ) from None


# -- next steps -------------------------------------------------------------------


def _command(name: str) -> str:
    """How to type a program of this environment here: relative when it is under the
    current folder (``.venv/bin/dagster``), else its bare name or absolute path."""
    import shutil

    path = Path(sys.executable).parent / name
    if not path.exists():
        return name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return name if shutil.which(name) == str(path) else str(path)


def _suggestion(lake: str) -> tuple[str, str] | None:
    """(month, subscriber) worth a look: the latest statement month with a payout, and
    its largest payout (the latest month and its first subscriber when nothing is paid)."""
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_assets.lake.storage import is_s3

    store = DeltaStore(lake if is_s3(lake) else os.path.abspath(lake))
    if not store.exists("revenue_share_statements"):
        return None
    rows = store.read(
        "revenue_share_statements", columns=["statement_month", "subscriber_id", "payable_cents"]
    ).to_pylist()
    paid = [r for r in rows if (r["payable_cents"] or 0) > 0] or rows
    if not paid:
        return None
    month = max(r["statement_month"] for r in paid)
    best = min(
        (r for r in paid if r["statement_month"] == month),
        key=lambda r: (-(r["payable_cents"] or 0), r["subscriber_id"]),
    )
    return month, best["subscriber_id"]


def _print_next_steps() -> None:
    env = {"DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
    env |= {k: os.environ[k] for k in settings.DEFAULTS if os.environ.get(k) and os.environ[k] != settings.DEFAULTS[k]}
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    where = "-w workspace.yaml" if Path("workspace.yaml").is_file() else "-m gopro_assets.definitions"
    print("Next:")
    print(f"  the Dagster UI:      {prefix} {_command('dagster')} dev {where}   then open {ui_url()}")
    try:
        found = _suggestion(settings.env("GOPRO_LAKE"))
    except Exception:  # noqa: BLE001 - only a hint
        found = None
    if found:
        month, subscriber = found
        cli = _command("gopro-lake")
        print(f"  export a month:      {cli} export --month {month}")
        print(f"  explain a payout:    {cli} explain --subscriber {subscriber} --month {month}")
    sys.stdout.flush()


def _open_instance():
    """The instance in DAGSTER_HOME, opened under an exclusive file lock.

    Dagster's SQLite storage creates and migrates its schema when first opened, and two
    processes doing that at once fail ("table alembic_version already exists") or leave a
    home that never opens again ("more than one head present"), as two CLIs started
    together on a fresh home did. The lock covers only the opening; the OS releases it if
    the process dies.
    """
    import fcntl

    import dagster as dg

    home = Path(os.environ["DAGSTER_HOME"])
    with open(home / ".gopro-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)  # every storage created and migrated before the lock is released
        instance.event_log_storage.get_pool_limits()
    return instance


def _end_of(day: date):
    return settings.end_of_day(day)


# -- the command line ---------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line (exit 2), pointing at --help."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def _day_arg(text: str) -> date:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a day: expected YYYY-MM-DD, e.g. 2025-07-31")


def _month_arg(text: str) -> str:
    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not a month: expected YYYY-MM, e.g. 2025-06")


def _year_arg(text: str) -> int:
    if re.fullmatch(r"\d{4}", text):
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a year: expected YYYY, e.g. 2025")


def _int_arg(minimum: int, why: str = ""):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {minimum}{why}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gopro-lake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,materialize,export,explain}")

    p_demo = sub.add_parser(
        "demo",
        help="write a demo landing zone with real MP4 files",
        description="Write a realistic demo landing zone (data from 2025-01-01 to 2025-07-31, real MP4 files, and "
        "deliberately bad files and rows; docs/DEMO_DATA.md) and record its last day in demo_manifest.json, "
        "so that `gopro-lake materialize` there builds the lake through that day. The same options write "
        "byte-identical files.",
    )
    p_demo.add_argument("--out", default=None, help="folder to write (default: $GOPRO_LANDING, ./data/landing)")
    p_demo.add_argument(
        "--subscribers",
        type=_int_arg(8, " (the first eight subscribers have fixed roles)"),
        default=40,
        metavar="N",
        help="subscribers to invent, at least 8 (default: 40)",
    )
    p_demo.add_argument(
        "--clips",
        type=_int_arg(6, " (the first five cover 4K, vertical, drone, HEVC and 120 fps footage)"),
        default=120,
        metavar="M",
        help="distinct valid recordings to encode, at least 6; duplicates, broken files and bad rows "
        "come on top (default: 120)",
    )
    p_demo.add_argument(
        "--seed",
        type=_int_arg(0),
        default=7,
        metavar="S",
        help="random seed: the same seed writes the same bytes (default: 7)",
    )

    p_mat = sub.add_parser(
        "materialize",
        help="materialize every asset and partition through a day",
        description="Build the lake through a day, as four Dagster runs of named jobs "
        "(materialize_1_ingest_job ... materialize_4_monthly_job) recorded in $DAGSTER_HOME; prints each run's "
        f"link in the Dagster UI (base URL ${UI_URL_ENV}, default {DEFAULT_UI_URL}). Exit 3 while another run "
        "is in progress.",
    )
    p_mat.add_argument(
        "--through",
        type=_day_arg,
        default=None,
        metavar="YYYY-MM-DD",
        help="inclusive day, between GOPRO_START_DATE and yesterday (UTC); default: the demo's last day when the "
        "landing zone is the demo's (demo_manifest.json), else yesterday (UTC)",
    )

    p_exp = sub.add_parser(
        "export",
        help="finance exports of a statement month and/or a tax year "
        "(refused when a blocking check fails; docs/EXPORTS.md)",
        description="Finance exports of a statement month (payout CSV, workbook, HTML report) and/or the year-end "
        "tax summary; refused, nothing written, when a blocking check fails on the lake (docs/EXPORTS.md).",
    )
    p_exp.add_argument(
        "--month", type=_month_arg, default=None, help="statement month, YYYY-MM: payout CSV, workbook, HTML report"
    )
    p_exp.add_argument("--tax-year", type=_year_arg, default=None, help="calendar year, YYYY: year-end tax summary CSV")
    p_exp.add_argument("--out", default=None, help="folder or s3:// prefix (default: $GOPRO_EXPORTS)")

    p_explain = sub.add_parser(
        "explain",
        help="explain one subscriber's monthly statement line by line, from the lake",
        description="One subscriber's monthly statement line by line, from the lake, at the Delta versions it was "
        "computed from.",
    )
    p_explain.add_argument("--subscriber", required=True, help="subscriber_id, e.g. sub-0001")
    p_explain.add_argument("--month", required=True, type=_month_arg, help="statement month, YYYY-MM")
    p_explain.add_argument(
        "--as-of-version",
        type=_int_arg(0),
        default=None,
        metavar="N",
        help="Delta version of revenue_share_statements to explain (default: latest)",
    )
    return parser


def _cmd_demo(args) -> int:
    from gopro_assets.lake.storage import is_s3

    out = args.out or settings.env("GOPRO_LANDING")
    what = "--out" if args.out else "GOPRO_LANDING"
    if is_s3(out):
        raise CliError(f"{what} {out}: the demo writes a local folder; write it there and copy it to S3", EXIT_USAGE)
    _check_folder(out, what, create_parents=True)
    from gopro_tools.demo_landing import SETTLE_THROUGH, T_START, generate_demo

    _progress(
        f"writing the demo landing zone to {out}: {args.subscribers} subscribers, {args.clips} clips, seed "
        f"{args.seed} (encoding the MP4 files takes a while) ..."
    )
    started = time.monotonic()
    try:
        counts = generate_demo(out, subscribers=args.subscribers, clips=args.clips, seed=args.seed)
    except FileExistsError:
        raise CliError(
            f"{out} already holds landing data: give an empty or new folder with --out, or delete that one first"
        ) from None
    first, last = T_START.date(), SETTLE_THROUGH
    bad_videos, bad_rows = len(counts["expected"]["footage"]), len(counts["expected"]["bad_rows"])
    write_demo_manifest(
        out,
        {
            "written_by": "gopro-lake demo",
            "about": "The demo's data ends on last_day: `gopro-lake materialize` without --through builds the lake "
            "through that day. Not a landing file; ingestion never reads it.",
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "subscribers": args.subscribers,
            "clips": args.clips,
            "seed": args.seed,
            "deliberately_bad": {"video_files": bad_videos, "rows_or_files": bad_rows},
        },
    )
    _progress(
        f"demo landing zone written in {time.monotonic() - started:.1f}s: {counts['subscribers']} subscribers, "
        f"{counts['clips']} clips in {counts['footage_files']} video files, {counts['deals']} deals, "
        f"{counts['buyer_payments']} buyer payments, {counts['payouts']} payouts, dated {first} to {last}"
    )
    _progress(
        f"      on purpose, {bad_videos} broken video files and {bad_rows} bad rows or files: the lake quarantines "
        "them (tables footage_quarantine and quarantine_rows; docs/DEMO_DATA.md lists each)"
    )
    same = Path(out).resolve() == Path(settings.env("GOPRO_LANDING")).resolve()
    env = "" if same else f"GOPRO_LANDING={shlex.quote(out)} "
    _progress(
        f"      next: {env}{_command('gopro-lake')} materialize   (builds the lake through {last}, the demo's "
        f"last day, recorded in {DEMO_MANIFEST})"
    )
    return EXIT_OK


def _cmd_materialize(args) -> int:
    landing = settings.env("GOPRO_LANDING")
    try:
        demo = read_demo_manifest(landing)
    except CliError:
        if args.through is None:  # the manifest decides the day: it must be readable
            raise
        demo = None  # only a note depends on it
    if args.through is not None:
        through, what, why = args.through, "--through", ""
    elif demo is not None:
        through, what, why = demo["last_day"], "the demo's last day", f", the demo's last day ({DEMO_MANIFEST})"
    else:
        through, what, why = settings.yesterday_utc(), "yesterday", " (yesterday, UTC)"
    _check_day(through, what)  # refused before anything is written
    ensure_dagster_home()
    # A catch-up is one run per stage over ~700 daily partitions. By default Dagster's
    # SQLite event log records one ASSET_MATERIALIZATION_PLANNED event per partition and
    # asset before the run starts (about 1,400 events, tens of seconds of SQLite commits);
    # this Dagster setting records one planned event per asset carrying the partition
    # range instead. The materializations themselves are still recorded per partition.
    # Trade-off (Dagster's own note): while such a run is going, or if it fails, its
    # partitions show as missing rather than in progress/failed; the run shows its
    # status. Scheduled one-day runs are not affected (docs/PERFORMANCE.md).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    _progress(f"materializing through {through}{why} (landing={landing}, lake={settings.env('GOPRO_LAKE')})")

    _progress(f"loading the code location and the Dagster instance in {os.environ['DAGSTER_HOME']} ...")
    from gopro_assets.shared import concurrency

    started = time.monotonic()
    failures: list[str] = []
    with _open_instance() as instance:
        # docs/RELIABILITY.md: runs of killed CLIs are closed and their pool slots freed;
        # while another run is in progress this one refuses (exit code 3).
        concurrency.ensure_pool_limit(instance)
        for line in concurrency.recover_abandoned_runs(instance):
            _progress(line)
        busy = concurrency.busy_runs(instance)
        if busy:
            raise CliError(busy[0].message(), EXIT_BUSY)
        ok = materialize(
            through, instance=instance, run_tags=concurrency.session_tags(), demo=demo is not None, failures=failures
        )
    if not ok:
        raise CliError(f"{failures[0] if failures else 'a run'} failed: the lines above say why; fix it and run again")
    _progress(f"done in {time.monotonic() - started:.1f}s: the lake is built through {through}")
    _print_next_steps()
    return EXIT_OK


def _cmd_export(args) -> int:
    from gopro_assets.defs.finance.export import cli_export

    if args.month is None and args.tax_year is None:
        raise CliError("give --month YYYY-MM and/or --tax-year YYYY", EXIT_USAGE)
    if args.month is not None:
        _check_month(args.month)
    if args.tax_year is not None:
        _check_tax_year(args.tax_year)
    _check_folder(args.out or settings.env("GOPRO_EXPORTS"), "--out" if args.out else "GOPRO_EXPORTS")
    return cli_export(args.month, args.tax_year, args.out, echo=_progress)


def _cmd_explain(args) -> int:
    from gopro_assets.domain.finance.explain import ExplainError, explain, render_text
    from gopro_assets.lake.delta_store import DeltaStore
    from gopro_assets.lake.storage import is_s3

    _check_month(args.month)
    lake = settings.env("GOPRO_LAKE")
    try:
        e = explain(
            DeltaStore(lake if is_s3(lake) else os.path.abspath(lake)),
            args.subscriber,
            args.month,
            args.as_of_version,
        )
    except ExplainError as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(render_text(e))
    return EXIT_OK


COMMANDS = {"demo": _cmd_demo, "materialize": _cmd_materialize, "export": _cmd_export, "explain": _cmd_explain}


def _error(command: str | None, message: str) -> None:
    prog = f"gopro-lake {command}" if command else "gopro-lake"
    print(f"{prog}: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``gopro-lake`` (argv None: this process's own arguments, and the process ends here)."""
    code = _main(argv)
    if argv is None:
        _leave(code)
    return code


def _leave(code: int) -> None:
    """End the ``gopro-lake`` process with ``code``, its output flushed. deltalake's native
    threads sometimes abort the interpreter's own shutdown after the work is done (SIGABRT,
    "terminate called without an active exception"; about one exit in two after a table
    read), which would turn a finished command into exit 134: os._exit skips that shutdown."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`gopro-lake ... | head`)
            pass
    os._exit(code)


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error already printed on one line (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except CliError as exc:
        _error(args.command, str(exc))
        return exc.code
    except KeyboardInterrupt:
        _error(args.command, "interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("GOPRO_DEBUG"):
            raise
        _error(args.command, f"failed: {type(exc).__name__}: {exc} (GOPRO_DEBUG=1 shows the traceback)")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
