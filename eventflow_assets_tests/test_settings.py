"""Configuration from the environment (docs/contracts.md)."""

from pathlib import Path

import pytest

from eventflow_assets.errors import EventFlowError
from eventflow_assets.settings import Settings, redact_properties, redact_url


def test_defaults_use_embedded_services_and_local_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.uses_embedded_kafka and s.uses_embedded_postgres
    assert s.home == tmp_path / ".eventflow"
    assert s.kafka_properties == {}


def test_kafka_properties_pass_through():
    s = Settings.from_env({
        "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "EVENTFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EVENTFLOW_KAFKA_SASL_MECHANISM": "PLAIN",
        "EVENTFLOW_KAFKA_SASL_PASSWORD": "s3cret",
        "EVENTFLOW_POSTGRES_URL": "postgresql://u:p@db:5432/eventflow",
        "EVENTFLOW_HOME": "/var/lib/eventflow",
        "OTHER": "x",
    })
    assert s.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert dict(s.kafka_properties) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                                        "sasl.password": "s3cret"}
    assert redact_properties(s.kafka_properties)["sasl.password"] == "***"
    assert s.home == Path("/var/lib/eventflow")
    assert not s.uses_embedded_kafka and not s.uses_embedded_postgres


@pytest.mark.parametrize("url, message", [
    ("mysql://u@h/db", "must be a libpq URI"),
    ("postgresql://u@h:5432/", "names no database"),
    ("postgresql://u@h:notaport/db", "invalid port"),
])
def test_bad_postgres_urls_are_refused(url, message):
    with pytest.raises(EventFlowError, match=message):
        Settings.from_env({"EVENTFLOW_POSTGRES_URL": url})


def test_passwords_never_appear_in_redacted_urls():
    assert redact_url("postgresql://alice:hunter2@db:5432/x") == "postgresql://alice:***@db:5432/x"
    assert redact_url("postgresql://alice@db/x") == "postgresql://alice@db/x"


def test_partition_counts_default_and_come_from_the_environment():
    assert (Settings.from_env({}).topic_partitions, Settings.from_env({}).shuffle_partitions) == (3, 2)
    s = Settings.from_env({"EVENTFLOW_TOPIC_PARTITIONS": "12", "EVENTFLOW_SPARK_SHUFFLE_PARTITIONS": " 8 "})
    assert (s.topic_partitions, s.shuffle_partitions) == (12, 8)
    assert Settings.from_env({"EVENTFLOW_TOPIC_PARTITIONS": ""}).topic_partitions == 3


@pytest.mark.parametrize("var", ["EVENTFLOW_TOPIC_PARTITIONS", "EVENTFLOW_SPARK_SHUFFLE_PARTITIONS"])
@pytest.mark.parametrize("value", ["0", "-3", "six", "2.5", "²"])
def test_bad_partition_counts_are_one_clear_line(var, value):
    with pytest.raises(EventFlowError) as refused:
        Settings.from_env({var: value})
    assert str(refused.value) == f"{var} must be a whole number of at least 1, got {value!r}"


def test_the_analytics_and_the_dashboard_read_the_replica_when_one_is_set():
    primary, replica = "postgresql://u:p@db:5432/eventflow", "postgresql://u:p@replica:5432/eventflow"
    assert Settings.from_env({"EVENTFLOW_POSTGRES_URL": primary}).read_url(primary) == primary
    both = Settings.from_env({"EVENTFLOW_POSTGRES_URL": primary, "EVENTFLOW_POSTGRES_READ_URL": replica})
    assert (both.postgres_url, both.read_url(primary)) == (primary, replica)
    with pytest.raises(EventFlowError, match=r"^EVENTFLOW_POSTGRES_READ_URL names no database: "
                                             r"postgresql://u:\*\*\*@replica:5432/$"):
        Settings.from_env({"EVENTFLOW_POSTGRES_READ_URL": "postgresql://u:p@replica:5432/"})
