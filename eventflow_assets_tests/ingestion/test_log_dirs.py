"""The librdkafka settings translated for kafka-python's admin client (its DescribeLogDirs
against real brokers, PLAINTEXT, SCRAM and three nodes, is tested in orchestration/test_sensors.py
and local/test_kafka_cluster.py)."""

import pytest

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.log_dirs import admin_settings


def test_sasl_ssl_settings_become_kafka_python_arguments():
    librdkafka = {"bootstrap.servers": "k1:9093, k2:9093", "security.protocol": "sasl_ssl",
                  "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "eventflow", "sasl.password": "pw",
                  "ssl.ca.location": "/etc/kafka/ca.pem", "ssl.certificate.location": "/etc/kafka/client.pem",
                  "ssl.key.location": "/etc/kafka/client.key", "ssl.endpoint.identification.algorithm": "none",
                  "acks": "all"}
    assert admin_settings(librdkafka, 2.5) == {
        "bootstrap_servers": ["k1:9093", "k2:9093"], "client_id": "eventflow-log-dirs",
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "eventflow", "sasl_plain_password": "pw", "ssl_cafile": "/etc/kafka/ca.pem",
        "ssl_certfile": "/etc/kafka/client.pem", "ssl_keyfile": "/etc/kafka/client.key",
        "ssl_check_hostname": False, "bootstrap_timeout_ms": 2500, "request_timeout_ms": 2500}


def test_plaintext_needs_only_the_servers():
    assert admin_settings({"bootstrap.servers": "127.0.0.1:9092", "client.id": "probe"}, 3) == {
        "bootstrap_servers": ["127.0.0.1:9092"], "client_id": "probe", "security_protocol": "PLAINTEXT",
        "bootstrap_timeout_ms": 3000, "request_timeout_ms": 3000}


@pytest.mark.parametrize("mechanism, named", [(None, "GSSAPI"), ("OAUTHBEARER", "OAUTHBEARER")])
def test_a_login_kafka_python_is_not_given_is_refused_by_name(mechanism, named):
    librdkafka = {"bootstrap.servers": "k1:9093", "security.protocol": "SASL_SSL",
                  **({"sasl.mechanism": mechanism} if mechanism else {})}
    with pytest.raises(EventFlowError) as refused:
        admin_settings(librdkafka, 3)
    assert str(refused.value) == ("the log sizes' client (kafka-python) is given a PLAIN, SCRAM-SHA-256, "
                                  f"SCRAM-SHA-512 login only, not {named}")
