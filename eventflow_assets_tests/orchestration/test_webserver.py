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
from pathlib import Path

import pytest

from eventflow_assets.local.dagster_instance import instance_env, write_instance
from eventflow_assets.local.processes import free_port

TABLES = ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min", "rejected_events")
REPO = Path(__file__).resolve().parents[2]
WORKSPACE = REPO / "workspace.yaml"
LOCATION = "eventflow_assets.definitions"
GRAPH_SIZE = "1600,2400"  # the storage group with its analytics neighbours, all in view
# The numbers of a sink table's materialization (sink_table_materializations), one plot each.
PLOTTED = ("rows_written", "rows_per_s", "period_s", "batches", "batches_with_rows", "input_rows", "late_rows",
           "rejected_rows", "lag", "batch_duration_s_avg", "batch_duration_s_max", "watermark_delay_s",
           "table_size_bytes", "dagster/row_count")


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


def assert_plots(asset_url: str, labels, screenshot: Path | None = None) -> None:
    """The asset page's Metadata section shows a table first; its Plots tab draws one chart per
    number in ``labels``, each labelled once."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(asset_url, timeout=120_000)
            page.get_by_text(labels[0], exact=True).first.wait_for(timeout=60_000)
            assert page.locator("canvas").count() == 0
            page.get_by_text("Plots", exact=True).click(timeout=60_000)
            page.locator("canvas").nth(len(labels) - 1).wait_for(timeout=60_000)
            assert page.locator("canvas").count() == len(labels)
            for label in labels:
                assert page.get_by_text(label, exact=True).count() == 1, label
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()


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


def test_a_sink_table_plots_what_the_stream_assets_sensor_reported(webserver, tmp_path, pg_url, postgres_server,
                                                                   monkeypatch):
    """Two reports of sink_table_materializations, stored as the daemon stores them, drawn by the
    asset page's Plots (Overview > Metadata) in a real browser."""
    import uuid
    from datetime import timedelta

    import dagster as dg
    import psycopg

    from eventflow_assets.orchestration.resources import EventFlowEndpoints
    from eventflow_assets.orchestration.sensors import materializations as stream_assets
    from eventflow_assets.processing.progress import record_progress
    from eventflow_assets.storage.schema import apply_schema

    # The stream's database (not Dagster's): two minutes of orders batches, one report per minute.
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    stream_db = postgres_server.url(name)
    apply_schema(stream_db)
    for var in ("EVENTFLOW_HOME", "EVENTFLOW_POSTGRES_URL", "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", stream_db)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    for var, value in instance_env(tmp_path / "dagster", pg_url).items():
        monkeypatch.setenv(var, value)
    with psycopg.connect(stream_db) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]

    def batch(batch_id: int, ago: float, rows: int) -> None:  # the sink's ledger row, then the listener's
        with psycopg.connect(stream_db) as conn:
            conn.execute("INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count, table_rows) "
                         "VALUES ('orders', 'ck', %s, %s, %s)", (batch_id, rows, json.dumps({"orders_raw": rows})))
        record_progress(stream_db, {"query_name": "orders", "checkpoint_id": "ck", "batch_id": batch_id,
                                    "watermark": now - timedelta(minutes=11), "input_rows": rows, "late_rows": 0,
                                    "rejected_rows": 0, "duration_ms": 1500, "lag": {"orders:0": batch_id},
                                    "read_offsets": {}})
        with psycopg.connect(stream_db) as conn:
            conn.execute("UPDATE stream_progress SET recorded_at = %s WHERE batch_id = %s",
                         (now - timedelta(seconds=ago), batch_id))

    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    cursor = None
    for tick, (batch_id, ago, rows) in enumerate([(0, 70, 600), (1, 10, 900)]):
        batch(batch_id, ago, rows)
        monkeypatch.setattr(stream_assets, "_clock", lambda tick=tick: 1_000_000.0 + 60 * tick)
        result = stream_assets.sink_table_materializations(dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"eventflow": EventFlowEndpoints()}))
        assert [e.asset_key for e in result.asset_events] == [dg.AssetKey(["postgres", "orders_raw"])]
        for event in result.asset_events:
            instance.report_runless_asset_event(event)  # what the daemon does with a sensor's asset events
        cursor = result.cursor
    instance.dispose()

    assert_plots(f"{webserver}/assets/postgres/orders_raw", PLOTTED, screenshot=tmp_path / "plots.png")
    assert (tmp_path / "plots.png").stat().st_size > 10_000


def test_the_postgres_server_plots_its_observations(webserver, tmp_path, pg_url, monkeypatch):
    """Observations (not materializations) are drawn too: two of postgres_observations' reports on
    postgres_server, stored as the daemon stores them, one plot per number."""
    import dagster as dg

    from eventflow_assets.orchestration.resources import EventFlowEndpoints
    from eventflow_assets.orchestration.sensors.observations import postgres_observations

    for var in ("EVENTFLOW_HOME", "EVENTFLOW_POSTGRES_URL", "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)  # the instance's own database: any will do
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    for var, value in instance_env(tmp_path / "dagster", pg_url).items():
        monkeypatch.setenv(var, value)
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    for _ in range(2):
        result = postgres_observations(dg.build_sensor_context(resources={"eventflow": EventFlowEndpoints()}))
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
    plotted = sorted(result.asset_events[0].metadata)
    instance.dispose()
    assert plotted == sorted(("connections", "connections_this_database", "connections_active", "max_connections",
                              "superuser_reserved_connections", "database_size_bytes", "connections_used_share"))

    assert_plots(f"{webserver}/assets/postgres_server", plotted)
