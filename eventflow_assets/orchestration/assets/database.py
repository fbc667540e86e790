"""The PostgreSQL server as an asset of its own, observed every 30 s: connections in use against
``max_connections``, and the database's size.

An external asset (``AssetSpec``) with observations reported by a sensor (``postgres_observations``),
like the topics: not an ``observable_source_asset``, whose every observation would be a run of its
own (a run every 30 s in the Runs page for a few numbers). Its own asset because connections belong to the server,
not to any one table; keyed ``postgres_server``, outside ``postgres/<table>`` (the contract's
table keys), in the storage group.
"""

from __future__ import annotations

import dagster as dg

from eventflow_assets.orchestration.assets.keys import SERVER_KEY
from eventflow_assets.orchestration.catalog import STORAGE

OBSERVER = "postgres_observations"  # the sensor that observes it (orchestration/sensors/observations.py)
INTERVAL_S = 30

postgres_server = dg.AssetSpec(
    SERVER_KEY, group_name=STORAGE, kinds={"postgres"},
    description="The PostgreSQL server that holds EventFlow's tables (EVENTFLOW_POSTGRES_URL). Observed every "
                f"{INTERVAL_S} s by the {OBSERVER} sensor: client connections (all databases, this database, "
                "active) against max_connections, and this database's size.")


def observation(figures: dict[str, int]) -> dg.AssetObservation:
    """The server's observation; ``connections_used_share``: connections over what non-superusers may
    open (max_connections less the superuser reserve), 0-1."""
    usable = figures["max_connections"] - figures["superuser_reserved_connections"]
    share = round(figures["connections"] / usable, 4) if usable > 0 else None
    return dg.AssetObservation(asset_key=SERVER_KEY, metadata={
        **figures, **({"connections_used_share": share} if share is not None else {})})
