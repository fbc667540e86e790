"""The Dash app: its layout, and one callback that re-reads a snapshot of the tables on a timer.

The page is static until that callback answers (on load, then every ``refresh_seconds``): all
figures of a refresh come from one :func:`~eventflow_assets.dashboard.queries.read_snapshot`. If
PostgreSQL cannot be read, the page keeps the last figures and says why in a banner.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import dash
import psycopg
from dash import dcc, html
from dash.dependencies import Input, Output

from eventflow_assets.dashboard import figures
from eventflow_assets.dashboard.queries import HEALTH_SPAN, REJECTED_SPAN, WINDOW_SPAN, Snapshot, read_snapshot
from eventflow_assets.dashboard.sections import anchor
from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.storage.postgres import connect
from eventflow_assets.storage.tables import CONVERSION_TABLE, FUNNEL, REVENUE, SEGMENTS_TABLE

DEFAULT_REFRESH_SECONDS = 5.0

CSS = """
body { margin: 0; background: #f1f5f9; color: #0f172a;
       font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.page { max-width: 1440px; margin: 0 auto; padding: 0 20px 40px; }
.header { display: flex; align-items: baseline; gap: 16px; padding: 18px 0 10px; flex-wrap: wrap; }
.header h1 { margin: 0; font-size: 24px; }
.header .sub { color: #64748b; font-size: 14px; flex: 1; }
.header a { color: #2563eb; font-weight: 600; text-decoration: none; }
.error { background: #fee2e2; color: #991b1b; border: 1px solid #fecaca; border-radius: 8px; padding: 10px 14px;
         margin: 8px 0; }
h2 { font-size: 18px; margin: 26px 0 10px; display: flex; gap: 12px; align-items: baseline; }
h2 a { font-size: 13px; font-weight: 500; color: #2563eb; text-decoration: none; }
.note { color: #64748b; font-size: 13px; font-weight: 400; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 14px; }
.grid3 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
.card { background: #fff; border-radius: 10px; box-shadow: 0 1px 3px rgba(15, 23, 42, .08); padding: 10px 12px;
        min-width: 0; overflow-x: auto; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; }
.kpi .label { color: #64748b; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.kpi .value { font-size: 22px; font-weight: 650; margin-top: 4px; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th { text-align: left; color: #64748b; font-weight: 600; font-size: 12px; text-transform: uppercase;
     border-bottom: 1px solid #e2e8f0; padding: 6px 6px; }
td { border-bottom: 1px solid #f1f5f9; padding: 6px 6px; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
.card h3 { font-size: 15px; margin: 4px 4px 8px; font-weight: 600; }
"""

INDEX = """<!DOCTYPE html>
<html>
<head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}<style>""" + CSS + """</style></head>
<body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body>
</html>"""


def money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def seconds(value: float | Decimal | None) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value:,.0f} s" if abs(value) < 120 else f"{value / 60:,.1f} min"


def span_text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def table(columns: list[tuple[str, bool]], rows: list[list], table_id: str | None = None,
          empty: str = "") -> html.Table:
    """``columns``: (header, numeric) pairs; numeric cells align right."""
    head = html.Thead(html.Tr([html.Th(name, className="num" if num else None) for name, num in columns]))
    body = [html.Tr([html.Td(cell, className="num" if num else None) for cell, (_, num) in zip(row, columns, strict=True)])
            for row in rows]
    if not rows and empty:
        body = [html.Tr(html.Td(empty, colSpan=len(columns), className="note"))]
    return html.Table([head, html.Tbody(body)], id=table_id)


def kpi(label: str, value: str, kpi_id: str) -> html.Div:
    return html.Div([html.Div(label, className="label"), html.Div(value, className="value", id=kpi_id)],
                    className="card kpi")


def totals_table(snap: Snapshot) -> html.Table:
    """The all-time revenue and orders per currency: the text the start page promises."""
    return table([("Currency", False), ("Total revenue", True), ("Orders", True)],
                 [[r["currency"], money(r["total_revenue"]), count(r["order_count"])] for r in snap.totals],
                 "currency-totals", "no orders yet")


def kpis(snap: Snapshot) -> list[html.Div]:
    views, orders, rate = snap.conversion
    eps = {}
    for r in snap.throughput:
        eps[r["topic"]] = r["events_per_s"]  # rows are oldest first: the latest step wins
    lags = [r["lag_records"] for r in snap.latest if r["lag_records"] is not None]
    rejected, records = snap.rejected["rejected"], snap.rejected["records"]
    return [
        kpi(f"Orders ({span_text(WINDOW_SPAN)})", count(snap.recent_orders), "kpi-orders"),
        kpi(f"Revenue USD ({span_text(WINDOW_SPAN)})", money(snap.recent_revenue_usd), "kpi-revenue"),
        kpi("Avg order USD", money(snap.recent_avg_order_usd), "kpi-aov"),
        kpi("Conversion", "-" if rate is None else f"{rate}%", "kpi-conversion"),
        kpi("Events/s", money(sum(eps.values(), Decimal(0))) if eps else "-", "kpi-eps"),
        kpi("Max lag (records)", count(max(lags)) if lags else "-", "kpi-lag"),
        kpi(f"Rejected ({span_text(REJECTED_SPAN)})",
            f"{Decimal(rejected * 100) / records:.2f}%" if records else "-", "kpi-rejected"),
    ]


def top_users_table(snap: Snapshot) -> html.Table:
    return table([("User", False), ("Views", True), ("Orders", True), ("Conversion %", True)],
                 [[r["user_id"], count(r["view_count"]), count(r["order_count"]), money(r["conversion_rate"])]
                  for r in snap.top_users], "top-users", "no conversion rates yet: run the analytics")


def segments_table(snap: Snapshot) -> html.Table:
    return table([("Segment", False), ("Users", True), ("Revenue USD", True), ("Avg spend USD", True),
                  ("Orders", True)],
                 [[r["segment"], count(r["users"]), money(r["revenue_usd"]), money(r["avg_spend_usd"]),
                   count(r["orders"])] for r in snap.segments], "segments", "no segments yet: run the analytics")


def queries_table(snap: Snapshot) -> html.Table:
    def age(at: datetime | None) -> str:
        return "never" if at is None else f"{seconds((snap.read_at - at).total_seconds())} ago"

    return table([("Query", False), ("Batch", True), ("Last batch", True), ("Watermark", False),
                  ("Watermark delay", True), ("Lag", True), ("Rows", True), ("Took", True)],
                 [[r["query_name"], count(r["batch_id"]), age(r["recorded_at"]),
                   f"{r['watermark']:%H:%M:%S}" if r["watermark"] else "-",
                   seconds(r["watermark_delay_s"]), count(r["lag_records"]), count(r["input_rows"]),
                   "-" if r["duration_ms"] is None else f"{r['duration_ms']:,} ms"] for r in snap.latest],
                 "stream-queries")


def reasons_table(snap: Snapshot) -> html.Table:
    return table([("Topic", False), ("Reason", False), ("Records", True)],
                 [[r["topic"], r["reason"], count(r["n"])] for r in snap.reasons], "rejected-reasons",
                 f"nothing rejected in the last {span_text(REJECTED_SPAN)}")


def computed_note(rows: list[dict]) -> str:
    times = [r["computed_at"] for r in rows if r.get("computed_at")]
    return f"analytics computed {max(times):%Y-%m-%d %H:%M} UTC" if times else "analytics not computed yet"


def _section(title: str, links: list[tuple[str, str]], note_id: str | None = None) -> html.H2:
    parts: list = [title]
    parts += [html.A(text, href=href, target="_blank") for text, href in links]
    if note_id:
        parts.append(html.Span(id=note_id, className="note"))
    return html.H2(parts, id=anchor(title))


def _graph(graph_id: str) -> html.Div:
    return html.Div(dcc.Graph(id=graph_id, config={"displaylogo": False}, figure=figures.empty("", "loading...")),
                    className="card")


# (component id, property) of every output the refresh callback sets, in its return order.
OUTPUTS = [
    ("currency-totals-card", "children"), ("kpis", "children"),
    ("revenue-usd", "figure"), ("revenue-currency", "figure"), ("orders-aov", "figure"),
    ("funnel", "figure"), ("conversion", "figure"), ("top-users-card", "children"), ("conversion-note", "children"),
    ("segments-graph", "figure"), ("segments-card", "children"), ("segments-note", "children"),
    ("throughput", "figure"), ("lag", "figure"), ("watermark", "figure"), ("stream-queries-card", "children"),
    ("rejected-card", "children"), ("refreshed", "children"),
]


def render(snap: Snapshot) -> list:
    views, orders, rate = snap.conversion
    rejected, records = snap.rejected["rejected"], snap.rejected["records"]
    health = span_text(HEALTH_SPAN)
    return [
        [html.H3("All-time revenue by currency"), totals_table(snap)],
        kpis(snap),
        figures.revenue_usd(snap.revenue), figures.revenue_per_currency(snap.revenue),
        figures.orders_and_average(snap.revenue),
        figures.funnel(views, orders), figures.conversion_per_window(snap.funnel),
        [html.H3("Top converting users"), top_users_table(snap)], computed_note(snap.top_users),
        figures.segments(snap.segments), [html.H3("Segments"), segments_table(snap)], computed_note(snap.segments),
        figures.throughput(snap.throughput, health), figures.lag(snap.history, health),
        figures.watermark_delay(snap.history, health),
        [html.H3("Streaming queries"), queries_table(snap)],
        [html.H3(f"Rejected records, last {span_text(REJECTED_SPAN)}"),
         html.P(f"{count(rejected)} of {count(records)} records read"
                + (f" ({Decimal(rejected * 100) / records:.2f}%)" if records else ""), id="rejected-rate"),
         reasons_table(snap)],
        f"updated {snap.read_at:%H:%M:%S} UTC",
    ]


def build_layout(dagster_url: str, refresh_seconds: float) -> html.Div:
    dagster_url = dagster_url.rstrip("/")

    def asset(table_name: str) -> str:
        return f"{dagster_url}/assets/postgres/{table_name}"

    return html.Div(className="page", children=[
        html.Div(className="header", children=[
            html.H1("EventFlow"),
            html.Span([f"live from PostgreSQL, every {refresh_seconds:g} s \u00b7 ", html.Span(id="refreshed")],
                      className="sub"),
            html.A("Dagster UI \u2197", href=dagster_url, target="_blank", id="dagster-link"),
        ]),
        html.Div(id="error", className="error", style={"display": "none"}),
        _section("Revenue", [(f"{REVENUE} in Dagster", asset(REVENUE))]),
        html.Div(className="grid3", children=[
            html.Div(id="currency-totals-card", className="card"),
            html.Div(id="kpis", className="kpis"),
        ]),
        html.Div(className="grid", style={"marginTop": "14px"},
                 children=[_graph("revenue-usd"), _graph("revenue-currency")]),
        html.Div(_graph("orders-aov"), style={"marginTop": "14px"}),
        _section("Conversion", [(f"{FUNNEL} in Dagster", asset(FUNNEL)),
                                (CONVERSION_TABLE, asset(CONVERSION_TABLE))],
                 "conversion-note"),
        html.Div(className="grid3", children=[_graph("funnel"), _graph("conversion"),
                                              html.Div(id="top-users-card", className="card")]),
        _section("Segments", [(f"{SEGMENTS_TABLE} in Dagster", asset(SEGMENTS_TABLE))],
                 "segments-note"),
        html.Div(className="grid", children=[_graph("segments-graph"), html.Div(id="segments-card", className="card")]),
        _section("Stream health", [("runs in Dagster", f"{dagster_url}/runs")]),
        html.Div(className="grid3", children=[_graph("throughput"), _graph("lag"), _graph("watermark")]),
        html.Div(className="grid", style={"marginTop": "14px"},
                 children=[html.Div(id="stream-queries-card", className="card"),
                           html.Div(id="rejected-card", className="card")]),
        dcc.Interval(id="tick", interval=int(refresh_seconds * 1000)),
    ])


def build_app(read_url: str, dagster_url: str, refresh_seconds: float = DEFAULT_REFRESH_SECONDS) -> dash.Dash:
    app = dash.Dash(__name__, title="EventFlow dashboard", update_title=None, serve_locally=True)
    app.index_string = INDEX
    app.layout = build_layout(dagster_url, refresh_seconds)

    @app.callback([Output(i, p) for i, p in OUTPUTS] + [Output("error", "children"), Output("error", "style")],
                  Input("tick", "n_intervals"))
    def refresh(_n):
        try:
            snap = read_snapshot(read_url)
        except (EventFlowError, psycopg.Error) as exc:
            return [dash.no_update] * len(OUTPUTS) + [f"Cannot read the tables: {first_line(exc)}", {}]
        return render(snap) + ["", {"display": "none"}]

    @app.server.route("/health")
    def health():
        """200 when PostgreSQL answers: for a container's health check."""
        try:
            with connect(read_url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except (EventFlowError, psycopg.Error) as exc:
            return f"cannot read PostgreSQL: {first_line(exc)}\n", 503
        return "ok\n", 200

    return app
