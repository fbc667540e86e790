"""The streaming job (`eventflow stream` runs the same): one query per topic into PostgreSQL.

    python jobs/streaming_app.py [--available-now] [options]
    spark-submit jobs/streaming_app.py [--available-now] [options]

See eventflow_assets/processing/app.py and docs/streaming.md.
"""

import sys

from eventflow_assets.entrypoints import script_main
from eventflow_assets.processing import app

if __name__ == "__main__":
    sys.exit(script_main(app, "streaming_app.py"))
