"""librdkafka settings translated for Spark's Java Kafka client."""

from eventflow_assets.ingestion.kafka_clients import jvm_properties


def test_scram_login_becomes_a_jaas_config():
    assert jvm_properties({"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                           "sasl.username": "ev", "sasl.password": 'p"w\\d'}) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            'username="ev" password="p\\"w\\\\d";'}


def test_plain_login_and_pem_ca_and_hostname_check():
    assert jvm_properties({"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN", "sasl.username": "u",
                           "sasl.password": "p", "ssl.ca.location": "/etc/ca.pem",
                           "ssl.endpoint.identification.algorithm": "none"}) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                            'username="u" password="p";',
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/etc/ca.pem",
        "ssl.endpoint.identification.algorithm": ""}


def test_verbatim_properties_override_and_librdkafka_only_ones_are_dropped():
    assert jvm_properties({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
                           "sasl.username": "ignored-for-oauth", "linger.ms": "20"},
                          {"sasl.jaas.config": "custom;", "security.protocol": "SSL"}) == {
        "security.protocol": "SSL", "sasl.mechanism": "OAUTHBEARER", "sasl.jaas.config": "custom;"}


def test_settings_read_spark_kafka_variables_verbatim():
    from eventflow_assets.settings import Settings

    settings = Settings.from_env({"EVENTFLOW_SPARK_KAFKA_SASL_JAAS_CONFIG": "x required;",
                                  "EVENTFLOW_KAFKA_SASL_USERNAME": "u", "EVENTFLOW_SPARK_MASTER": "spark://h:7077"})
    assert settings.spark_kafka_properties == {"sasl.jaas.config": "x required;"}
    assert settings.kafka_properties == {"sasl.username": "u"}
    assert settings.spark_master == "spark://h:7077"
