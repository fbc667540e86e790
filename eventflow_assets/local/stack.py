"""Bring up what the environment does not configure, and tell other commands where it is.

``eventflow up`` (and ``eventflow services``) holds an exclusive lock on ``EVENTFLOW_HOME/stack.lock`` for as long as it
runs, so a second ``up`` on the same state fails instead of starting a second broker or server.
While it runs, ``stack.json`` (mode 0600: it holds the database password) names the endpoints,
which ``eventflow produce``/``status`` and the tests read through :func:`resolve_endpoints`.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.kafka_broker import EmbeddedKafka, ScramUser
from eventflow_assets.local.postgres_server import EmbeddedPostgres
from eventflow_assets.local.spark_cluster import DEFAULT_MASTER_PORT, SparkCluster
from eventflow_assets.settings import (
    BOOTSTRAP_VAR,
    KAFKA_PREFIX,
    POSTGRES_VAR,
    SPARK_MASTER_VAR,
    Endpoints,
    Settings,
)

DEFAULT_KAFKA_PORT = 9092
DEFAULT_POSTGRES_PORT = 5432


class LocalStack:
    """The embedded services the settings leave unconfigured; ``kafka_scram`` puts a SCRAM-SHA-512
    login on the embedded Kafka's client listener (tests of the security settings use it)."""

    def __init__(self, settings: Settings, kafka_port: int = DEFAULT_KAFKA_PORT,
                 postgres_port: int = DEFAULT_POSTGRES_PORT, kafka_brokers: int = 1,
                 kafka_scram: ScramUser | None = None, spark_workers: int = 0,
                 spark_master_port: int = DEFAULT_MASTER_PORT):
        self.settings = settings
        self.kafka = (EmbeddedKafka(settings.home / "kafka", kafka_port, kafka_brokers, settings.home / "logs",
                                    kafka_scram) if settings.uses_embedded_kafka else None)
        self.postgres = (EmbeddedPostgres(settings.home / "postgres", postgres_port)
                         if settings.uses_embedded_postgres else None)
        self.spark = (SparkCluster(settings.home / "spark", settings.home / "logs", spark_workers, spark_master_port)
                      if spark_workers else None)
        self._lock_file = None
        self.endpoints: Endpoints | None = None

    @property
    def state_file(self) -> Path:
        return self.settings.home / "stack.json"

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Endpoints:
        home = self.settings.home
        home.mkdir(parents=True, exist_ok=True)
        self._lock_file = _acquire_lock(home / "stack.lock")
        try:
            for service in self._services():
                service.start()
        except BaseException:
            self.stop()
            raise
        postgres_url = self.postgres.url("eventflow") if self.postgres else self.settings.postgres_url
        kafka_properties = dict(self.settings.kafka_properties)
        if self.kafka and self.kafka.scram_user:
            kafka_properties.update(self.kafka.scram_user.librdkafka())
        self.endpoints = Endpoints(
            kafka_bootstrap_servers=(self.kafka.bootstrap_servers if self.kafka
                                     else self.settings.kafka_bootstrap_servers),
            postgres_url=postgres_url,
            dagster_postgres_url=self.postgres.url("dagster") if self.postgres else postgres_url,
            kafka_properties=kafka_properties,
            spark_kafka_properties=dict(self.settings.spark_kafka_properties),
        )
        fd = os.open(self.state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "kafka_bootstrap_servers": self.endpoints.kafka_bootstrap_servers,
                       "kafka_properties": kafka_properties if self.kafka else {},
                       "spark_master": self.spark.master_url if self.spark else None,
                       "postgres_url": self.endpoints.postgres_url,
                       "dagster_postgres_url": self.endpoints.dagster_postgres_url}, fh)
        return self.endpoints

    def dead_services(self) -> list[str]:
        """Names of embedded services whose process has exited."""
        dead = [f"Kafka node {n}" for n, proc in (self.kafka.procs.items() if self.kafka else ())
                if proc.poll() is not None]
        if self.postgres is not None and self.postgres.proc is not None and self.postgres.proc.poll() is not None:
            dead.append("PostgreSQL")
        if self.spark is not None and any(p.poll() is not None for p in self.spark.procs):
            dead.append("a Spark daemon")
        return dead

    def _services(self) -> list:
        """The embedded services, in the order they start (PostgreSQL, Kafka, Spark); they stop in reverse."""
        return [s for s in (self.postgres, self.kafka, self.spark) if s is not None]

    def stop(self) -> None:
        for service in reversed(self._services()):
            service.stop()
        if self._lock_file is not None:
            self.state_file.unlink(missing_ok=True)
            self._lock_file.close()  # releases the flock
            self._lock_file = None


def _acquire_lock(path: Path):
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        raise EventFlowError(
            f"another `eventflow up` or `eventflow services` (pid {holder}) is already running on "
            f"EVENTFLOW_HOME={path.parent}; "
            "use it, stop it, or choose another EVENTFLOW_HOME"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _stack_running(home: Path) -> bool:
    lock = home / "stack.lock"
    if not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def running_stack_state(home: Path) -> dict | None:
    """What the `up` or `services` running on ``home`` wrote to ``stack.json``; None if none runs."""
    state = home / "stack.json"
    if not (_stack_running(home) and state.exists()):
        return None
    return json.loads(state.read_text())


def env_exports(state: dict) -> list[tuple[str, str]]:
    """(variable, value) pairs that point another process at a running stack's services."""
    pairs = [(BOOTSTRAP_VAR, state["kafka_bootstrap_servers"]), (POSTGRES_VAR, state["postgres_url"])]
    pairs += [(KAFKA_PREFIX + name.upper().replace(".", "_"), value)
              for name, value in sorted(state.get("kafka_properties", {}).items())]
    if state.get("spark_master"):
        pairs.append((SPARK_MASTER_VAR, state["spark_master"]))
    return pairs


def spark_master(settings: Settings) -> str | None:
    """EVENTFLOW_SPARK_MASTER, else the master of a local cluster running on this home, else None."""
    if settings.spark_master:
        return settings.spark_master
    state = running_stack_state(settings.home)
    return state.get("spark_master") if state else None


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Configured services, else those of the running local stack, else a clear error."""
    local: dict = {}
    if settings.uses_embedded_kafka or settings.uses_embedded_postgres:
        state = running_stack_state(settings.home)
        if state is None:
            missing = [v for v, unset in ((BOOTSTRAP_VAR, settings.uses_embedded_kafka),
                                           (POSTGRES_VAR, settings.uses_embedded_postgres)) if unset]
            raise EventFlowError(
                f"no local stack is running on EVENTFLOW_HOME={settings.home} and {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set: start `eventflow up` or `eventflow services` "
                "in another terminal, or point the variables at your Kafka and PostgreSQL"
            )
        local = state
    postgres_url = settings.postgres_url or local["postgres_url"]
    kafka_properties = {**local.get("kafka_properties", {}), **settings.kafka_properties} \
        if settings.uses_embedded_kafka else dict(settings.kafka_properties)
    return Endpoints(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers or local["kafka_bootstrap_servers"],
        postgres_url=postgres_url,
        dagster_postgres_url=local.get("dagster_postgres_url", postgres_url) if settings.uses_embedded_postgres
        else postgres_url,
        kafka_properties=kafka_properties,
        spark_kafka_properties=dict(settings.spark_kafka_properties),
    )
