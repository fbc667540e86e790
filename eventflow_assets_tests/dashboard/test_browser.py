"""`eventflow dashboard` as a browser shows it: the command serving dataset.py's busy stream,
opened in headless Chromium (Playwright driving the system's browser). The run saves the
screenshot the README shows, docs/dashboard.png."""

import os
import shutil
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from eventflow_assets.dashboard.server import DashboardProcess
from eventflow_assets.local.processes import free_port
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.dashboard.dataset import WINDOW, load_demo

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "dashboard.png"
DAGSTER_URL = "http://127.0.0.1:3999"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
FIGURES = ("revenue-usd", "revenue-currency", "orders-aov", "funnel", "conversion", "segments-graph", "throughput",
           "lag", "watermark")


def chromium() -> str:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.fail("`chromium` is not installed: install the Debian package chromium (scripts/setup.sh does this)")
    return exe


@pytest.fixture
def demo(pg_url):
    apply_schema(pg_url)
    return pg_url, load_demo(pg_url)


@pytest.fixture
def dashboard(demo, tmp_path):
    url, _ = demo
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    env.update(EVENTFLOW_POSTGRES_READ_URL=url, EVENTFLOW_HOME=str(tmp_path / "home"))
    server = DashboardProcess(free_port(), DAGSTER_URL, tmp_path / "dashboard.log")
    server.start(env)
    try:
        server.wait_ready(timeout=120)
        yield server
    finally:
        server.stop()
        print((tmp_path / "dashboard.log").read_text()[-3000:])
    assert server.proc.returncode == 0  # SIGTERM stops it cleanly


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1440, "height": 1000})
        finally:
            browser.close()


def totals_text(totals: dict[str, tuple[Decimal, int]]) -> list[list[str]]:
    return [[currency, f"{revenue:,.2f}", f"{orders:,}"] for currency, (revenue, orders) in sorted(totals.items())]


def shown_totals(page) -> list[list[str]]:
    return [[cell.inner_text() for cell in row.locator("td").all()]
            for row in page.locator("#currency-totals tbody tr").all()]


def test_start_page_shows_the_tables_figures_and_refreshes_itself(dashboard, demo, page):
    url, totals = demo
    with urllib.request.urlopen(f"{dashboard.url}/health", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"ok\n")

    page.goto(dashboard.url + "/")
    page.wait_for_selector("#currency-totals tbody td.num", timeout=60_000)
    # The all-time totals per currency, as text with 2 decimals: the dataset's exact sums.
    assert shown_totals(page) == totals_text(totals)
    assert len(totals) == 5 and all(n > 0 for _, n in totals.values())
    assert page.locator("#error").is_hidden()
    assert page.locator("#dagster-link").get_attribute("href") == DAGSTER_URL
    assert page.locator("#kpi-orders").inner_text() != "-"
    assert [row.locator("td").first.inner_text() for row in page.locator("#segments tbody tr").all()] == \
        ["VIP", "Premium", "Regular", "New"]
    assert page.locator("#stream-queries tbody tr").count() == 3  # one per query (= topic)
    assert page.locator("#rejected-reasons tbody tr").count() == 5
    for figure in FIGURES:  # every chart drawn, with data
        page.wait_for_selector(f"#{figure} .main-svg", timeout=30_000)
        assert page.locator(f"#{figure} .trace").count() > 0, figure

    page.wait_for_timeout(1000)  # the charts' transitions
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 50_000

    # New windows while the page is open: it shows them without a reload.
    with psycopg.connect(url) as conn:
        start = conn.execute("SELECT max(window_start) FROM revenue_by_currency_5min").fetchone()[0] + WINDOW
        conn.execute("INSERT INTO revenue_by_currency_5min (window_start, window_end, currency, total_revenue, "
                     "order_count, avg_order_value) VALUES (%(s)s, %(e)s, 'USD', 1234.56, 3, 411.52), "
                     "(%(s)s, %(e)s, 'JPY', 5000.00, 1, 5000.00)", {"s": start, "e": start + WINDOW})
    usd_revenue, usd_orders = totals["USD"]
    totals.update(USD=(usd_revenue + Decimal("1234.56"), usd_orders + 3), JPY=(Decimal("5000.00"), 1))
    deadline = time.monotonic() + 30
    while shown_totals(page) != totals_text(totals) and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert shown_totals(page) == totals_text(totals)


def test_unreadable_database_is_reported_on_the_page(tmp_path, page):
    """A database that cannot be read: the page says so instead of failing, and /health is 503."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    env.update(EVENTFLOW_POSTGRES_READ_URL=f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none",
               EVENTFLOW_HOME=str(tmp_path / "home"))
    server = DashboardProcess(port, DAGSTER_URL, tmp_path / "dashboard.log")
    server.start(env)
    try:
        server.wait_ready(timeout=120)
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"{server.url}/health", timeout=10)
        assert failed.value.code == 503
        page.goto(server.url)
        page.wait_for_selector("#error:visible", timeout=60_000)
        text = page.locator("#error").inner_text()
        assert "Cannot read the tables: cannot connect to PostgreSQL" in text and "secret" not in text
    finally:
        server.stop()
