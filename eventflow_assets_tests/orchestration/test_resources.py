"""The resources' settings are fields: bound to the EVENTFLOW_* variables that are set when the
Definitions load (the UI shows the variable's name, never a value), left unset otherwise (the local
stack's services, the defaults). The Definitions are loaded as a code server loads them: in a new
process, with and without the variables, and a topic asset is materialized through them on the
real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from confluent_kafka.admin import AdminClient

from eventflow_assets.local.stack import LocalStack
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ENDPOINT_FIELDS = {
    "kafka_bootstrap_servers": "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS",
    "kafka_security_protocol": "EVENTFLOW_KAFKA_SECURITY_PROTOCOL",
    "kafka_sasl_mechanism": "EVENTFLOW_KAFKA_SASL_MECHANISM",
    "kafka_sasl_username": "EVENTFLOW_KAFKA_SASL_USERNAME",
    "kafka_sasl_password": "EVENTFLOW_KAFKA_SASL_PASSWORD",
    "postgres_url": "EVENTFLOW_POSTGRES_URL",
    "postgres_read_url": "EVENTFLOW_POSTGRES_READ_URL",
    "home": "EVENTFLOW_HOME",
    "checkpoint_location": "EVENTFLOW_CHECKPOINT_LOCATION",
}

# Loads the Definitions, writes what the UI receives about the code location (the repository
# snapshot, serialized) and the resources' configured values, then materializes kafka/orders
# through the Definitions' own resource binding.
_LOAD = """
import json, sys
import dagster as dg
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from eventflow_assets.definitions import defs

repo = defs.get_repository_def()
snapshot = serialize_value(RepositorySnap.from_def(repo))
resources = {r.name: {k: (v if isinstance(v, str) else {"env": v.name}) for k, v in r.configured_values.items()}
             for r in RepositorySnap.from_def(repo).resources}
result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
    asset_selection=[dg.AssetKey(["kafka", "orders"])])
outcome = result.asset_materializations_for_node("kafka__orders")[0].metadata["outcome"].value
eventflow = defs.resources["eventflow"]
json.dump({"snapshot": snapshot, "resources": resources, "outcome": outcome,
           "checkpoint_root": eventflow.checkpoint_root(),
           "endpoints": eventflow.endpoints().kafka_bootstrap_servers}, open(sys.argv[1], "w"))
"""


def load_definitions(tmp_path: Path, env: dict[str, str], cwd: Path) -> dict:
    """What a new process that loads the Definitions with exactly ``env``'s EVENTFLOW_* reports."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    out = tmp_path / "loaded.json"
    result = subprocess.run([sys.executable, "-c", _LOAD, str(out)], cwd=cwd, env={**base, **env,
                            "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def topics(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def test_set_variables_are_bound_by_name_and_their_values_never_shown(kafka_broker, pg_url, tmp_path):
    password = "kafka-pw-never-shown"
    env = {"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers, "EVENTFLOW_POSTGRES_URL": pg_url,
           "EVENTFLOW_POSTGRES_READ_URL": pg_url,  # the database read as its own replica: only the binding matters
           # PLAINTEXT, as the test broker speaks it: the SASL settings are carried but not used.
           "EVENTFLOW_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "EVENTFLOW_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "EVENTFLOW_KAFKA_SASL_USERNAME": "eventflow", "EVENTFLOW_KAFKA_SASL_PASSWORD": password,
           "EVENTFLOW_HOME": str(tmp_path / "home"), "EVENTFLOW_CHECKPOINT_LOCATION": "file:///var/tmp/ck",
           "EVENTFLOW_SPARK_MASTER": "local[1]"}
    loaded = load_definitions(tmp_path, env, cwd=tmp_path)

    assert loaded["resources"]["eventflow"] == {field: {"env": var} for field, var in ENDPOINT_FIELDS.items()}
    assert loaded["resources"]["pyspark"]["spark_master"] == {"env": "EVENTFLOW_SPARK_MASTER"}
    # Nothing the UI receives holds a secret (the database's password is the fixture's generated one).
    pg_password = pg_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(pg_password) >= 16
    for secret in (password, pg_password, pg_url):
        assert secret not in loaded["snapshot"]
    # The run read the variables' values: the topic was created on this test's broker.
    assert loaded["outcome"] == "created"
    assert "orders" in topics(kafka_broker.bootstrap_servers)
    assert loaded["checkpoint_root"] == "file:///var/tmp/ck"
    assert loaded["endpoints"] == kafka_broker.bootstrap_servers


def test_without_variables_the_definitions_load_and_use_the_local_stack(kafka_broker, pg_url, tmp_path):
    """No EVENTFLOW_* at all: nothing is bound, and a run finds the services through the running
    local stack (`eventflow up`'s stack.json under ./.eventflow), as before fields existed."""
    home = tmp_path / ".eventflow"
    stack = LocalStack(Settings(kafka_bootstrap_servers=kafka_broker.bootstrap_servers, postgres_url=pg_url,
                                home=home))
    stack.start()  # services configured: it starts none, it only publishes where they are
    try:
        loaded = load_definitions(tmp_path, {}, cwd=tmp_path)
    finally:
        stack.stop()
    assert loaded["resources"]["eventflow"] == {field: "null" for field in ENDPOINT_FIELDS}  # JSON null: unset
    assert "spark_master" not in loaded["resources"]["pyspark"]  # unset: not configured
    assert loaded["outcome"] == "created"
    assert "orders" in topics(kafka_broker.bootstrap_servers)
    assert loaded["endpoints"] == kafka_broker.bootstrap_servers
    assert loaded["checkpoint_root"] == str(home / "checkpoints")


def test_fields_stand_in_for_their_variables(monkeypatch, tmp_path):
    for var in ENDPOINT_FIELDS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "env-broker:9092")
    monkeypatch.setenv("EVENTFLOW_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem")  # a property without a field
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    resource = EventFlowEndpoints(postgres_url="postgresql://u:p@db:5432/eventflow", kafka_security_protocol="SASL_SSL",
                                  kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u", kafka_sasl_password="p",
                                  checkpoint_location="s3a://bucket/checkpoints")
    endpoints = resource.endpoints()
    assert endpoints.kafka_config() == {"bootstrap.servers": "env-broker:9092", "ssl.ca.location": "/etc/ca.pem",
                                        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                                        "sasl.username": "u", "sasl.password": "p"}
    assert endpoints.postgres_url == "postgresql://u:p@db:5432/eventflow"
    replica = "postgresql://u:p@replica:5432/eventflow"
    assert EventFlowEndpoints(postgres_read_url=replica).settings().read_url("postgresql://u:p@db/eventflow") == replica
    assert resource.checkpoint_root() == "s3a://bucket/checkpoints"
    assert EventFlowEndpoints(home="/srv/eventflow").checkpoint_root() == "/srv/eventflow/checkpoints"
    # An EnvVar field used outside a run reads its variable then.
    monkeypatch.setenv("EVENTFLOW_CHECKPOINT_LOCATION", "hdfs://nn/ck")
    assert EventFlowEndpoints(checkpoint_location=dg.EnvVar("EVENTFLOW_CHECKPOINT_LOCATION")).checkpoint_root() \
        == "hdfs://nn/ck"
    # from_env binds only what is set.
    assert EventFlowEndpoints.from_env().kafka_bootstrap_servers == dg.EnvVar("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS")
    assert EventFlowEndpoints.from_env().postgres_url is None
