"""The Dagster UI as an analyst sees it: the real webserver on this code location, driven
by Debian's headless Chromium over the DevTools protocol.

Checks that the global lineage graph draws the money path's assets, that an asset page
shows its column schema, and saves a screenshot of the lineage (a non-empty PNG). A
`gopro-lake materialize` run first prints its runs' links (DAGSTER_UI_URL pointing at this
webserver): the browser opens one by that very link and finds the run under its job name.
`scripts/test.sh` installs Chromium with apt-get when it is missing; without it this test
fails with a message saying so, it does not skip.
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from itertools import count
from pathlib import Path

import dagster as dg
import pytest
from conftest import free_port, graphql
from test_automation import build_tiny_landing, defs_on, lakehouse_at

from gopro_assets.shared.automation import MATERIALIZE_JOBS

pytestmark = [pytest.mark.browser, pytest.mark.system]  # a real webserver and Chromium

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# shared/FIELD_NOTES.md: the headless flags that work on these machines
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,1000",
    "--remote-debugging-port=0",
]
GROUPS = ["ingestion", "footage", "consent", "licensing", "finance", "valuation"]
MAIN_ASSETS = [
    "footage_inventory",
    "deal_deliveries",
    "batch_revenue",
    "revenue_share_statements",
    "payout_reconciliation",
]
SERVER_TIMEOUT_S = 150  # cold start is about 20 s alone; the shared CI cores can be much slower
PAGE_TIMEOUT_S = 60


LOCATION_STATUS = """{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def wait_for_code_location(base: str, server: subprocess.Popen, log: Path) -> None:
    """Poll until the webserver answers and has loaded the gopro_assets location."""
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            entries = graphql(base, LOCATION_STATUS)["data"]["workspaceOrError"]["locationEntries"]
        except (OSError, KeyError, TypeError, ValueError):
            time.sleep(0.5)
            continue
        entry = next((e for e in entries if e["name"] == "gopro_assets"), None)
        if entry and entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"] or {}
            assert loaded.get("__typename") == "RepositoryLocation", f"code location failed to load: {loaded}"
            return
        time.sleep(0.5)
    pytest.fail(f"dagster-webserver not ready after {SERVER_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, profile: Path):
        from websockets.sync.client import connect

        self.process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                pytest.fail("headless chromium did not open its DevTools port")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.loads(response.read()) if t["type"] == "page")
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        self.ids = count(1)

    def call(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, what: str, timeout_s: float = PAGE_TIMEOUT_S):
        """Poll a JS expression until it is truthy (the UI loads data and lays out the graph
        asynchronously, in a web worker)."""
        deadline, value = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 1500) : ''")
        pytest.fail(f"timed out waiting for {what}; page text:\n{text}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "_stack", None) is not None:
                self._stack.close()
        finally:
            self.process.kill()
            self.process.wait(10)


GRAPH_SIZE = """(() => {
  const v = document.querySelector('[data-svg-viewport]');
  const svg = v && v.querySelector('svg');
  return svg && svg.getAttribute('width')
    ? [v.clientWidth, v.clientHeight, +svg.getAttribute('width'), +svg.getAttribute('height'), innerWidth, innerHeight]
    : null;
})()"""


def graph_draws(names: list[str]) -> str:
    """JS: true once every name is drawn as a node of the graph canvas (not the sidebar's
    list). Zoomed out, the UI shortens long names in the middle (`revenu…_statements`)."""
    return """(names => {
  const labels = Array.from(document.querySelectorAll('[data-svg-viewport] svg foreignObject *'))
    .filter(e => e.children.length === 0).map(e => e.textContent.trim());
  const shows = (label, name) => label === name ||
    (label.includes('…') && name.startsWith(label.split('…')[0]) && name.endsWith(label.split('…')[1]));
  return names.every(name => labels.some(label => shows(label, name)));
})(%s)""" % json.dumps(names)


def show_whole_graph(browser: "Browser") -> None:
    """Make the window big enough for the whole graph at a scale where the UI still draws
    asset nodes (it draws only group outlines below 0.15, and only what is on screen), then
    double-click the background: the UI's own "fit the graph" gesture."""
    vw, vh, gw, gh, iw, ih = browser.wait_for(GRAPH_SIZE, "the asset graph layout")
    scale = max(vw / gw, 0.2)  # the explorer fits the graph's width
    width = max(iw, int(gw * scale) + (iw - vw) + 1)
    height = max(ih, int(gh * scale * 1.05) + (ih - vh) + 1)
    browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    time.sleep(0.5)  # let the viewport observe its new size
    browser.evaluate(
        "document.querySelector('[data-svg-viewport]').dispatchEvent(new MouseEvent('dblclick', {bubbles: true}))"
    )


def lineage_query() -> str:
    """The global graph draws each group as one box when there are several; `expanded`
    opens them (the UI's own query parameter, group ids as in ui-core asset-graph/Utils.tsx:
    `global@global:<group>`, or `<repo>@<location>:<group>` behind a feature flag)."""
    ids = [f"global@global:{g}" for g in GROUPS] + [f"__repository__@gopro_assets:{g}" for g in GROUPS]
    return urllib.parse.urlencode({"expanded": ",".join(ids)})


def page_text_has(names: list[str]) -> str:
    return f"(() => {{ const t = document.body ? document.body.innerText : ''; return {json.dumps(names)}.every(n => t.includes(n)); }})()"


@pytest.fixture
def lake_and_home(tmp_path):
    """A Dagster home (telemetry off) in which a real ingestion_job run has ingested a tiny
    landing zone into a lake: the UI shows those assets materialized, with row counts."""
    build_tiny_landing(tmp_path / "landing")
    lakehouse = lakehouse_at(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = (
            defs_on(lakehouse)
            .resolve_job_def("ingestion_job")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
    assert result.success
    return Path(lakehouse.landing), Path(lakehouse.lake), home


def test_lineage_and_column_schema_in_the_ui(tmp_path, lake_and_home):
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, as root). "
            "scripts/test.sh does this by itself when it runs as root on a machine with apt-get."
        )
    landing, lake, home = lake_and_home
    started = time.monotonic()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "GOPRO_LANDING": str(landing),
        "GOPRO_LAKE": str(lake),
        "GOPRO_EXPORTS": str(tmp_path / "exports"),
    }
    log = tmp_path / "webserver.log"
    webserver = shutil.which("dagster-webserver", path=str(Path(sys.executable).parent))
    with open(log, "w") as log_file:
        # signals at their defaults (FIELD_NOTES): SIGINT stops it cleanly
        server = subprocess.Popen(
            [webserver, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    browser = None
    try:
        wait_for_code_location(base, server, log)
        ready = time.monotonic() - started
        assert graphql(base, "mutation { setNuxSeen }")["data"]["setNuxSeen"] is True  # no community dialog
        browser = Browser(tmp_path / "chromium-profile")
        browser.call("Page.enable")

        # the global lineage: the money path, drawn as graph nodes
        browser.open(f"{base}/asset-groups?{lineage_query()}")
        show_whole_graph(browser)
        browser.wait_for(graph_draws(MAIN_ASSETS), "the main assets in the global asset lineage graph")
        time.sleep(1.0)  # the fit is animated
        shot = browser.screenshot(tmp_path / "lineage.png")
        assert shot.stat().st_size > 10_000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        browser.call("Emulation.clearDeviceMetricsOverride")

        # the money path alone, readable: everything upstream of the payout reconciliation
        browser.open(f"{base}/assets/payout_reconciliation?view=lineage&lineageScope=upstream&lineageDepth=10")
        browser.wait_for(graph_draws([*MAIN_ASSETS, "uploads", "consent_snapshots"]), "the money path's lineage")
        time.sleep(1.0)
        browser.screenshot(tmp_path / "money_path.png")

        # an asset page: its column schema, with the SQL model's column names
        browser.open(f"{base}/assets/batch_revenue")
        browser.wait_for(page_text_has(["gross_cents", "pool_cents", "platform_cents"]), "batch_revenue's columns")
        browser.wait_for(page_text_has(["batch_revenue.sql"]), "batch_revenue's link to its SQL file")
        browser.screenshot(tmp_path / "batch_revenue.png")
        # a Python asset: the columns declared from its Arrow schema, and its source file
        browser.open(f"{base}/assets/deal_deliveries")
        browser.wait_for(page_text_has(["selection_rank", "tier_price_cents", "assets.py"]), "deal_deliveries' columns")
        # `gopro-lake materialize` builds the lake through the tiny landing zone's last day while
        # the UI is up (after the checks above, which want deal_deliveries not materialized yet)
        # and prints each run's link, DAGSTER_UI_URL pointing at this webserver
        cli_run = subprocess.run(
            [sys.executable, "-m", "gopro_assets.cli", "materialize", "--through", "2025-02-28"],
            cwd=ROOT,
            env={**env, "DAGSTER_UI_URL": base},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert cli_run.returncode == 0, cli_run.stdout[-3000:] + cli_run.stderr[-3000:]
        links = re.findall(rf"{re.escape(base)}/runs/[0-9a-f]{{8}}-[0-9a-f-]{{27}}\b", cli_run.stdout)
        assert len(links) == len(MATERIALIZE_JOBS), cli_run.stdout
        # a CLI run, opened by the link the CLI printed (its full run id), under its job's name
        run_id = links[-1].rsplit("/", 1)[1]
        browser.open(links[-1])
        browser.wait_for(
            page_text_has([MATERIALIZE_JOBS[-1], run_id[:8]]), "the CLI's run, opened by the link the CLI printed"
        )
        assert "No run found" not in browser.evaluate("document.body.innerText")
        browser.screenshot(tmp_path / "cli_run.png")
        # the Runs page tells what each CLI run was: its job's name
        browser.open(f"{base}/runs")
        browser.wait_for(page_text_has(list(MATERIALIZE_JOBS)), "the CLI's runs under their job names on the Runs page")
        # the schedules and the sensor are registered (docs/AUTOMATION.md)
        browser.open(f"{base}/automation")
        browser.wait_for(
            page_text_has(["nightly_schedule", "monthly_close_schedule", "landing_sensor"]),
            "the schedules and the sensor on the Automation page",
        )
        print(
            f"\nwebserver ready in {ready:.1f}s, whole UI test {time.monotonic() - started:.1f}s; "
            f"screenshots in {tmp_path}"
        )
    finally:
        if browser is not None:
            browser.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    # the code location loads without a warning or an error in the server's log
    noisy = [
        line
        for line in log.read_text().splitlines()
        if any(word in line for word in ("Warning", "WARNING", "ERROR", "Error", "Traceback"))
    ]
    assert not noisy, "\n".join(noisy)
