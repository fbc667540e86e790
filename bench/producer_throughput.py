"""Producer throughput: events/s acknowledged by the broker from one process, unpaced.

    python bench/producer_throughput.py [--count 500000] [--bootstrap HOST:PORT]

Without --bootstrap it starts an embedded broker on a free port (and stops it afterwards).
Prints one line: events, seconds, events/s, failures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.kafka_broker import EmbeddedKafka
from eventflow_assets.local.processes import free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: start an embedded one)")
    args = parser.parse_args()
    broker = None
    if args.bootstrap is None:
        broker = EmbeddedKafka(Path(tempfile.mkdtemp(prefix="eventflow-bench-")), free_port())
        broker.start()
    try:
        config = {"bootstrap.servers": args.bootstrap or broker.bootstrap_servers}
        provision_topics(config)
        stats = produce(config, EventGenerator(seed=1), count=args.count)
        print(f"events={stats.delivered} seconds={stats.elapsed:.2f} events_per_s={stats.rate:,.0f} "
              f"failed={stats.failed}")
        return 1 if stats.failed else 0
    finally:
        if broker:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
