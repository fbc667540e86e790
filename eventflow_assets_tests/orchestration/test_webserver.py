"""The Dagster UI as a browser shows it: dagster-webserver on the repo's workspace.yaml and an
instance configured like `eventflow up`'s, rendered by headless Chromium."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from eventflow_assets.local.processes import free_port
from eventflow_assets.orchestration.dev_server import REPO
from eventflow_assets.orchestration.instance import instance_env, write_instance

TABLES = ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min", "rejected_events")
WORKSPACE = REPO / "workspace.yaml"
LOCATION = "eventflow_assets.definitions"
GRAPH_SIZE = "1600,2400"  # the storage group with its analytics neighbours, all in view


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("`chromium` is not installed: install the Debian packages chromium and chromium-driver "
                    "(scripts/setup.sh does this); the UI test renders the Dagster UI with it.")
    return exe


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


@pytest.fixture
def webserver(tmp_path, pg_url):
    home = tmp_path / "dagster"
    write_instance(home, pg_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    env.update(instance_env(home, pg_url))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "webserver.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-w", str(WORKSPACE), "-h", "127.0.0.1",
                             "-p", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # up, and the code location loaded
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "webserver.log").read_text()
            try:
                if graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def render(url: str, tmp_path, screenshot: str | None = None, size: str = "1400,900") -> str:
    """The DOM after the single-page app has rendered (15 s of virtual time), or a screenshot.

    The asset graph only renders the nodes inside the viewport: `size` must fit the graph."""
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000", f"--window-size={size}"]
    args += [f"--screenshot={tmp_path / screenshot}"] if screenshot else ["--dump-dom"]
    result = subprocess.run(args + [url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_ui_shows_the_asset_graph_and_an_asset_page(webserver, tmp_path):
    graph_url = f"{webserver}/locations/{LOCATION}/asset-groups/storage"
    dom = render(graph_url, tmp_path, size=GRAPH_SIZE)
    for table in TABLES:
        assert f">{table}<" in dom, table
    assert 'title="orders"' in dom  # the upstream topic, linked from the group's graph
    assert ">analytics_revenue_trends<" in dom  # and the analytics computed from the group's tables
    render(graph_url, tmp_path, screenshot="asset-graph.png", size=GRAPH_SIZE)
    assert (tmp_path / "asset-graph.png").stat().st_size > 10_000

    page = render(f"{webserver}/assets/postgres/conversion_funnel_5min", tmp_path)
    assert "conversion_funnel_5min" in page and "External Asset" in page
    # Its lineage: both topics it is computed from, linked.
    assert 'title="kafka / orders"' in page and 'title="kafka / product-view"' in page
    assert 'href="/assets/kafka/product-view"' in page
