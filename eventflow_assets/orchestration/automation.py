"""When the analytics run by themselves and when they count as stale, in Dagster's own terms.

The global analyses (top revenue, conversion, segments) read all the data: each run is a Spark
application of 30-60 s on a small machine, so they follow the data at a cadence rather than at
every change. The sink tables they read get a materialization at most once a minute per table
while the stream writes (``sink_table_materializations``): ``eager()`` would run Spark every
minute, and ``on_cron()`` would wait for every input, ``currency_rates`` included, which only
changes with a migration. Their condition is therefore: a new ``GLOBAL_REFRESH_CRON`` period
has begun since the last request, at least one input got new rows since that period began, and
no run of the asset is in progress. They refresh within about a minute of each period's first
new rows, at most once a period, and never while the stream is idle (nothing to recompute).

The trends are driven by ``finalized_windows`` (a window is final when the stream's watermark
passes it, which no automation condition can see), so they have no automation condition.

Freshness policies (evaluated by the daemon's freshness loop, enabled in dagster.yaml) turn an
asset WARN, then FAIL, when its last materialization is older than what its driver promises:
a trends run every window (5 minutes) while events flow, a global refresh every period.
"""

from datetime import timedelta

import dagster as dg

from eventflow_assets.ingestion.events import WINDOW

GLOBAL_REFRESH_CRON = "*/15 * * * *"
GLOBAL_REFRESH_PERIOD = timedelta(minutes=15)
WINDOW_PERIOD = WINDOW  # a window finalizes every window length while events flow
# Slack for the sink sensor's minute, the queue (one Spark run at a time) and the run itself.
SLACK = timedelta(minutes=5)


def global_refresh() -> dg.AutomationCondition:
    """Once per refresh period, as soon as an input has new rows in it, never while running."""
    period_began = dg.AutomationCondition.cron_tick_passed(GLOBAL_REFRESH_CRON, "UTC")
    new_rows = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.newly_updated().since(period_began) | dg.AutomationCondition.will_be_requested(),
    ).with_label("an input updated this period")
    return (period_began.since_last_handled() & new_rows & ~dg.AutomationCondition.in_progress()).with_label(
        f"refresh once per period ({GLOBAL_REFRESH_CRON} UTC) after new rows")


# One window missed warns, three fail (the stream stopped, is far behind, or the runs fail).
TRENDS_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=3 * WINDOW_PERIOD + SLACK,
                                                  warn_window=WINDOW_PERIOD + SLACK)
# One period missed warns, two fail.
GLOBAL_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=2 * GLOBAL_REFRESH_PERIOD + SLACK,
                                                  warn_window=GLOBAL_REFRESH_PERIOD + SLACK)
