"""The batch analytics application's side of Dagster Pipes.

Launched by Dagster (the analytics assets run ``spark-submit jobs/batch_analytics_app.py`` through
``PipesSubprocessClient``), the application reports each table it wrote as a materialization of
that table's asset, its ``eventflow`` log records go to the run's log, and an error that ends it is
sent back before the process exits. Launched any other way, it is the plain command line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from dagster_pipes import PipesContext, PipesEnvVarParamsLoader, open_dagster_pipes

from eventflow_assets.analytics.metadata import table_metadata

log = logging.getLogger("eventflow")


class _ToDagster(logging.Handler):
    def __init__(self, pipes: PipesContext) -> None:
        super().__init__(logging.INFO)
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        self.pipes.log.log(record.levelno, record.getMessage())


@contextmanager
def dagster_pipes() -> Iterator[PipesContext | None]:
    """The Pipes context when Dagster launched this process, else None (a plain run)."""
    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        yield None
        return
    # Leaving the block with an exception reports it to Dagster (the run's event log shows it).
    with open_dagster_pipes() as pipes:
        handler = _ToDagster(pipes)
        log.addHandler(handler)
        try:
            yield pipes
        finally:
            log.removeHandler(handler)


def report(pipes: PipesContext, results: dict, window_range=None) -> None:
    """One materialization per table written whose asset is part of this step, with its metadata."""
    keys = {key.split("/")[-1]: key for key in pipes.asset_keys}
    for analysis, result in results.items():
        for table, metadata in table_metadata(analysis, result.tables, window_range).items():
            if table in keys:
                pipes.report_asset_materialization(metadata=metadata, asset_key=keys[table])
