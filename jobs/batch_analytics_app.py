"""The batch analytics job (`eventflow analytics` runs the same): the four analyses.

    python jobs/batch_analytics_app.py [--top N] [--trends-from TS --trends-to TS]
    spark-submit jobs/batch_analytics_app.py [options]

See eventflow_assets/analytics/app.py.
"""

import sys

from eventflow_assets.analytics import app
from eventflow_assets.entrypoints import script_main

if __name__ == "__main__":
    sys.exit(script_main(app, "batch_analytics_app.py"))
