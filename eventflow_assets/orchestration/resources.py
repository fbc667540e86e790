"""Dagster resources: where Kafka and PostgreSQL are, from the environment at run time."""

from __future__ import annotations

import dagster as dg

from eventflow_assets.local.stack import Endpoints, resolve_endpoints
from eventflow_assets.settings import Settings


class EventFlowEndpoints(dg.ConfigurableResource):
    """Kafka and PostgreSQL as configured by EVENTFLOW_* variables, else the running local stack."""

    def endpoints(self) -> Endpoints:
        return resolve_endpoints(Settings.from_env())
