"""The one Dagster entry point: `dagster dev` (workspace.yaml) loads `defs` from here."""

import dagster as dg

from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.topic_assets import topic_assets

defs = dg.Definitions(
    assets=[*topic_assets],
    resources={"eventflow": EventFlowEndpoints()},
)
