"""Plotly figures from a :class:`~eventflow_assets.dashboard.queries.Snapshot`'s rows."""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from eventflow_assets.ingestion.events import WINDOW, WINDOW_LABEL

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16")
# Fixed colours for the contract's currencies, so a currency keeps its colour as others appear.
CURRENCY_COLORS = {"USD": PALETTE[0], "EUR": PALETTE[1], "GBP": PALETTE[2], "CAD": PALETTE[3], "AUD": PALETTE[4]}
SEGMENT_COLORS = {"VIP": "#7c3aed", "Premium": "#2563eb", "Regular": "#10b981", "New": "#94a3b8"}
TOPIC_COLORS = {"orders": PALETTE[0], "product-view": PALETTE[2], "user-events": PALETTE[4]}
QUERY_COLORS = TOPIC_COLORS  # one streaming query per topic, named after it
BAR_WIDTH_MS = 0.8 * WINDOW.total_seconds() * 1000  # a bar covers most of its window, however few are shown


def color(name: str, fixed: dict[str, str] | None = None) -> str:
    if fixed and name in fixed:
        return fixed[name]
    return PALETTE[sum(map(ord, name)) % len(PALETTE)]


def _layout(fig: go.Figure, title: str, *, y: str = "", height: int = 320, barmode: str | None = None,
            times: bool = True) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01, "font": {"size": 15}}, template="plotly_white",
                      height=height, margin={"l": 56, "r": 16, "t": 48, "b": 40}, barmode=barmode,
                      legend={"orientation": "h", "y": -0.18, "x": 0}, hovermode="x unified")
    if y:
        fig.update_yaxes(title_text=y, title_font={"size": 12})
    if times:
        fig.update_xaxes(tickformat="%H:%M")
    return fig


def _windows_axis(fig: go.Figure, rows: list[dict]) -> go.Figure:
    """A window's width of margin on both sides: one window alone is not zoomed to milliseconds."""
    starts = [r["window_start"] for r in rows]
    return fig.update_xaxes(range=[min(starts) - WINDOW, max(starts) + WINDOW])


def empty(title: str, message: str) -> go.Figure:
    fig = _layout(go.Figure(), title, times=False)
    fig.update_layout(hovermode=False, xaxis={"visible": False}, yaxis={"visible": False},
                      annotations=[{"text": message, "showarrow": False, "font": {"size": 14, "color": "#64748b"},
                                    "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}])
    return fig


def _by(rows: list[dict], key: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    return dict(sorted(groups.items()))


def revenue_usd(revenue: list[dict]) -> go.Figure:
    title = f"Revenue per {WINDOW_LABEL} window, in USD (stacked by currency)"
    rated = [r for r in revenue if r["total_revenue_usd"] is not None]
    if not rated:
        return empty(title, "no orders in the stream's windows yet")
    fig = go.Figure([go.Bar(x=[r["window_start"] for r in rows], y=[float(r["total_revenue_usd"]) for r in rows],
                            name=currency, marker_color=color(currency, CURRENCY_COLORS), width=BAR_WIDTH_MS)
                     for currency, rows in _by(rated, "currency").items()])
    return _windows_axis(_layout(fig, title, y="USD", barmode="stack"), rated)


def revenue_per_currency(revenue: list[dict]) -> go.Figure:
    title = f"Revenue per {WINDOW_LABEL} window, in each currency"
    if not revenue:
        return empty(title, "no orders in the stream's windows yet")
    fig = go.Figure([go.Scatter(x=[r["window_start"] for r in rows], y=[float(r["total_revenue"]) for r in rows],
                                name=currency, mode="lines+markers", line={"color": color(currency, CURRENCY_COLORS)})
                     for currency, rows in _by(revenue, "currency").items()])
    return _windows_axis(_layout(fig, title, y="amount (own currency)"), revenue)


def orders_and_average(revenue: list[dict]) -> go.Figure:
    title = "Orders per window (bars) and average order value in USD (line)"
    if not revenue:
        return empty(title, "no orders in the stream's windows yet")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for currency, rows in _by(revenue, "currency").items():
        fig.add_trace(go.Bar(x=[r["window_start"] for r in rows], y=[r["order_count"] for r in rows], name=currency,
                             marker_color=color(currency, CURRENCY_COLORS), opacity=0.85, width=BAR_WIDTH_MS),
                      secondary_y=False)
    usd: dict = defaultdict(float)
    rated: dict = defaultdict(int)
    for r in revenue:
        if r["total_revenue_usd"] is not None:
            usd[r["window_start"]] += float(r["total_revenue_usd"])
            rated[r["window_start"]] += r["order_count"]
    windows = sorted(w for w in rated if rated[w])
    fig.add_trace(go.Scatter(x=windows, y=[round(usd[w] / rated[w], 2) for w in windows], name="avg order (USD)",
                             mode="lines+markers", line={"color": "#0f172a", "width": 2}), secondary_y=True)
    _layout(fig, title, barmode="stack")
    fig.update_yaxes(title_text="orders", secondary_y=False)
    fig.update_yaxes(title_text="USD per order", secondary_y=True, showgrid=False)
    return _windows_axis(fig, revenue)


def funnel(views: int, orders: int) -> go.Figure:
    title = "Conversion funnel: product views -> orders"
    if not views and not orders:
        return empty(title, "no product views or orders in the windows yet")
    fig = go.Figure(go.Funnel(y=["Product views", "Orders"], x=[views, orders], textinfo="value+percent initial",
                              marker={"color": [PALETTE[0], PALETTE[2]]}))
    return _layout(fig, title, height=280, times=False)


def conversion_per_window(rows: list[dict]) -> go.Figure:
    title = "Conversion rate per window (orders / views x 100)"
    rows = [r for r in rows if r["views"]]
    if not rows:
        return empty(title, "no product views in the windows yet")
    fig = go.Figure(go.Scatter(x=[r["window_start"] for r in rows],
                               y=[round(100 * r["orders"] / r["views"], 2) for r in rows],
                               mode="lines+markers", name="conversion %", line={"color": PALETTE[2]}))
    return _windows_axis(_layout(fig, title, y="%", height=280), rows)


def segments(rows: list[dict]) -> go.Figure:
    title = "Customer segments: users and revenue (USD)"
    if not rows:
        return empty(title, "no segments yet: run the analytics (Dagster, or `python jobs/batch_analytics_app.py`)")
    names = [r["segment"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("users", "revenue (USD)"))
    colors = [color(n, SEGMENT_COLORS) for n in names]
    fig.add_trace(go.Bar(x=names, y=[r["users"] for r in rows], marker_color=colors, showlegend=False,
                         text=[r["users"] for r in rows], textposition="auto", textangle=0), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[float(r["revenue_usd"]) for r in rows], marker_color=colors, showlegend=False,
                         text=[f"{r['revenue_usd']:,.0f}" for r in rows], textposition="auto", textangle=0),
                  row=1, col=2)
    return _layout(fig, title, height=300, times=False).update_layout(hovermode="closest")


def _lines(rows: list[dict], by: str, y: str, colors: dict[str, str]) -> list[go.Scatter]:
    return [go.Scatter(x=[r["recorded_at"] for r in group], y=[float(r[y]) for r in group], name=name, mode="lines",
                       line={"color": color(name, colors)})
            for name, group in _by(rows, by).items()]


def throughput(rows: list[dict], span: str) -> go.Figure:
    title = "Events/s per topic (read by the stream)"
    if not rows:
        return empty(title, f"no micro-batches in the last {span}")
    return _layout(go.Figure(_lines(rows, "topic", "events_per_s", TOPIC_COLORS)), title, y="events/s", height=280)


def lag(history: list[dict], span: str) -> go.Figure:
    title = "Lag per query (records not yet read)"
    if not history:
        return empty(title, f"no micro-batches in the last {span}")
    return _layout(go.Figure(_lines(history, "query_name", "lag_records", QUERY_COLORS)), title, y="records",
                   height=280)


def watermark_delay(history: list[dict], span: str) -> go.Figure:
    title = "Watermark delay per query (batch time - watermark)"
    rows = [r for r in history if r["watermark_delay_s"] is not None]
    if not rows:
        return empty(title, f"no watermark in the last {span}")
    return _layout(go.Figure(_lines(rows, "query_name", "watermark_delay_s", QUERY_COLORS)), title, y="seconds",
                   height=280)
