"""Asset keys: ``kafka/<topic>``, ``postgres/<table>`` and the server's. Every module names assets through these."""

import dagster as dg

SERVER_KEY = dg.AssetKey(["postgres_server"])  # outside postgres/<table>: connections belong to no one table


def topic_key(topic: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", topic])


def table_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["postgres", table])
