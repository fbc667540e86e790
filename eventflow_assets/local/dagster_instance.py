"""The local Dagster instance of `eventflow up`: DAGSTER_HOME = $EVENTFLOW_HOME/dagster.

Runs, event logs and schedule/sensor state live in PostgreSQL (the embedded server's ``dagster``
database, or the configured one). ``dagster.yaml`` holds no secret: every connection value is an
``env:`` reference to a ``DAGSTER_PG_*`` variable, which `up` passes to the Dagster processes
(the same variables as deploy/dagster.yaml in docker-compose).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from eventflow_assets.errors import EventFlowError, first_line

MAX_CONCURRENT_RUNS = 4
STREAM_TAG = "eventflow/stream"  # runs with this tag (streaming_job's) are admitted one at a time
# postgres_db key -> variable, as in deploy/dagster.yaml.
ENV_VARS = {"username": "DAGSTER_PG_USERNAME", "password": "DAGSTER_PG_PASSWORD", "hostname": "DAGSTER_PG_HOST",
            "db_name": "DAGSTER_PG_DB", "port": "DAGSTER_PG_PORT"}
UNFINISHED = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def instance_config(postgres_url: str) -> dict:
    params = dict(parse_qsl(urlsplit(postgres_url).query))
    postgres_db: dict = {key: {"env": var} for key, var in ENV_VARS.items()}
    # A bare postgresql:// URL lets SQLAlchemy pick psycopg 3 (installed for EventFlow's own
    # code), with which dagster-postgres fails (dagster-io/dagster#33958).
    postgres_db["scheme"] = "postgresql+psycopg2"
    if params:
        postgres_db["params"] = params
    return {
        "storage": {"postgres": {"postgres_db": postgres_db}},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": {
            # Never two streams at once, whoever launches them (orchestration/jobs.py tags streaming_job).
            "runs": {"max_concurrent_runs": MAX_CONCURRENT_RUNS,
                     "tag_concurrency_limits": [{"key": STREAM_TAG, "limit": 1}]},
            # One run at a time per pool: the analytics assets' pool (each run starts a Spark JVM,
            # see orchestration/assets/analytics.py), whether a sensor, a schedule or the UI
            # launched it. Enforced when runs are dequeued, so waiting runs stay QUEUED.
            "pools": {"granularity": "run", "default_limit": 1},
        },
        # Detects runs stuck STARTING or CANCELING. No max_runtime: the stream runs until stopped.
        "run_monitoring": {"enabled": True},
        # Runs tagged dagster/max_retries (the analytics jobs' runs) are relaunched when they fail.
        "run_retries": {"enabled": True},
        # The daemon evaluates the automation condition sensors (analytics_automation: the global
        # analyses) and the analytics' freshness policies (orchestration/automation.py).
        "auto_materialize": {"enabled": True, "use_sensors": True},
        "freshness": {"enabled": True},
        # Sensor ticks pile up (six sensors, every 15-60 s: ~20,000 a day): skipped ones are kept
        # a week, failed ones a month; schedule ticks 90 days.
        "retention": {"schedule": {"purge_after_days": 90},
                      "sensor": {"purge_after_days": {"skipped": 7, "failure": 30, "success": 30}}},
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


def instance_env(dagster_home: Path, postgres_url: str) -> dict[str, str]:
    """DAGSTER_HOME and the DAGSTER_PG_* variables dagster.yaml refers to."""
    parts = urlsplit(postgres_url)
    return {
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_USERNAME": unquote(parts.username or ""),
        "DAGSTER_PG_PASSWORD": unquote(parts.password or ""),
        "DAGSTER_PG_HOST": parts.hostname or "localhost",
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_DB": unquote(parts.path.lstrip("/")),
    }


def write_instance(dagster_home: Path, postgres_url: str) -> Path:
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text("# Written by `eventflow up`; connection values come from the environment it passes.\n"
                    + yaml.safe_dump(instance_config(postgres_url), sort_keys=False))
    return path


def open_instance(dagster_home: Path, env: dict[str, str]):
    """The instance as `up`'s own process sees it (for cleaning up and stopping runs).

    dagster.yaml resolves its ``env:`` references from this process's environment, so ``env``
    (the DAGSTER_* variables) is added to it.
    """
    from dagster import DagsterInstance

    os.environ.update(env)
    try:
        return DagsterInstance.from_config(str(dagster_home))
    except Exception as exc:  # noqa: BLE001 - any storage error: one line for the user
        raise EventFlowError(f"cannot open the Dagster instance in {dagster_home}: {first_line(exc)}") from None


def unfinished_runs(instance) -> list:
    from dagster import DagsterRunStatus, RunsFilter

    statuses = [DagsterRunStatus[s] for s in UNFINISHED]
    return [r.dagster_run for r in instance.get_run_records(RunsFilter(statuses=statuses))]


def cancel_leftover_runs(instance) -> list[str]:
    """Mark runs an earlier `up` left unfinished (killed with it) as canceled; nothing runs them now.

    Without this, a streaming_job run recorded as STARTED by a killed `up` would keep the
    supervisor from ever launching the stream again.
    """
    leftovers = unfinished_runs(instance)
    for run in leftovers:
        instance.report_run_canceled(run, message="left unfinished by an earlier `eventflow up` that did not stop it")
    return [run.run_id for run in leftovers]


def terminate_runs(instance, timeout: float) -> list[str]:
    """Ask every unfinished run to stop, as the UI's Terminate does; wait until they have ended.

    Returns the ids of runs still unfinished after ``timeout``.
    """
    for run in unfinished_runs(instance):
        try:
            instance.run_coordinator.cancel_run(run.run_id)
        except Exception:  # noqa: BLE001 - its code server may be gone; the caller kills what is left
            pass
    deadline = time.monotonic() + timeout
    while True:
        left = unfinished_runs(instance)
        if not left or time.monotonic() >= deadline:
            return [run.run_id for run in left]
        time.sleep(0.5)
