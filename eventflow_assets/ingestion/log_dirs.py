"""Bytes on disk of topics, from each broker's DescribeLogDirs answer (kafka-python's admin client).

confluent-kafka 2.16 (librdkafka) has no DescribeLogDirs; kafka-python's ``KafkaAdminClient`` sends
it to each broker, over the same listener and login as our other clients: its settings are
translated here from the librdkafka ones (``EVENTFLOW_KAFKA_*``). The sizes are those of the
partitions' log segments as each broker counts them (what ``kafka-log-dirs.sh --describe`` prints).
"""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, for_code

from eventflow_assets.errors import EventFlowError, first_line

CLIENT_ID = "eventflow-log-dirs"

# kafka-python logs each connection (and, at DEBUG, its whole configuration with the SASL
# password); on a SASL_PLAINTEXT listener it warns on every login, and a failed bootstrap takes
# several ERROR lines per attempt. Every 30 s from the sensor, that would bury the one line the
# sensor logs from the exception it gets, so only CRITICAL passes unless the application set a
# level itself, and only to handlers it configured (the NullHandler keeps logging.lastResort off
# stderr).
_library_log = logging.getLogger("kafka")
if _library_log.level == logging.NOTSET:
    _library_log.setLevel(logging.CRITICAL)
_library_log.addHandler(logging.NullHandler())

# librdkafka property -> KafkaAdminClient argument, same value.
_SAME_MEANING = {"client.id": "client_id", "sasl.username": "sasl_plain_username",
                 "sasl.password": "sasl_plain_password", "ssl.ca.location": "ssl_cafile",
                 "ssl.certificate.location": "ssl_certfile", "ssl.key.location": "ssl_keyfile",
                 "ssl.key.password": "ssl_password"}
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class _AdminClient(KafkaAdminClient):
    """``KafkaAdminClient`` whose IO thread also stops when the constructor fails: in kafka-python
    3.0.12 a bootstrap that times out leaves it running, one more thread per sensor tick."""

    def __init__(self, **settings):
        try:
            super().__init__(**settings)
        except BaseException:
            if hasattr(self, "_net"):  # started: let close() stop it (it skips clients not marked open)
                self._closed = False
                self.close()
            raise


def admin_settings(librdkafka: dict, timeout: float) -> dict:
    """``KafkaAdminClient`` arguments from librdkafka properties: bootstrap servers, security
    protocol, SASL PLAIN/SCRAM login, CA file (and a client certificate), hostname verification;
    connecting and each request give up after ``timeout`` seconds."""
    out = {"bootstrap_servers": [s.strip() for s in librdkafka["bootstrap.servers"].split(",")],
           "client_id": CLIENT_ID,
           "security_protocol": librdkafka.get("security.protocol", "PLAINTEXT").upper(),
           "bootstrap_timeout_ms": int(timeout * 1000), "request_timeout_ms": int(timeout * 1000)}
    out.update({arg: librdkafka[name] for name, arg in _SAME_MEANING.items() if name in librdkafka})
    mechanism = librdkafka.get("sasl.mechanism", librdkafka.get("sasl.mechanisms"))
    if out["security_protocol"].startswith("SASL_"):
        mechanism = (mechanism or "GSSAPI").upper()  # librdkafka's default mechanism
        if mechanism not in _MECHANISMS:
            raise EventFlowError(f"the log sizes' client (kafka-python) is given a {', '.join(_MECHANISMS)} "
                                 f"login only, not {mechanism}")
        out["sasl_mechanism"] = mechanism
    if librdkafka.get("ssl.endpoint.identification.algorithm") == "none":
        out["ssl_check_hostname"] = False
    return out


def _broker_sizes(answer: dict, totals: dict[str, int]) -> None:
    """Adds one broker's answer ({"broker": id, "log_dirs": [...]}) to ``totals``."""
    if not answer["log_dirs"]:  # how Kafka answers a client without DESCRIBE on the cluster
        raise EventFlowError(f"broker {answer['broker']} described no log directory "
                             "(DESCRIBE on the cluster is needed where ACLs are on)")
    for log_dir in answer["log_dirs"]:
        if log_dir["error_code"]:
            raise EventFlowError(f"broker {answer['broker']} could not describe {log_dir['log_dir']} "
                                 f"({for_code(log_dir['error_code']).__name__})")
        for topic in log_dir["topics"]:
            if topic["name"] in totals:
                totals[topic["name"]] += sum(p["partition_size"] for p in topic["partitions"])


def log_sizes(kafka_config: dict, metadata, topics, timeout: float = 3.0) -> dict[str, int]:
    """{topic: bytes on disk over all its partitions and replicas} for ``topics`` that exist, asked
    of every broker in ``metadata`` (an AdminClient ``list_topics`` answer, which lists the live
    brokers only: a broker that is down is not counted). On 3 brokers with replication 3 the sum is
    3 times each node's segment files; with one node down and fenced, the two others' share."""
    wanted = {t: sorted(metadata.topics[t].partitions) for t in topics if t in metadata.topics}
    totals = dict.fromkeys(wanted, 0)
    if not wanted:
        return totals
    servers = kafka_config["bootstrap.servers"]
    try:
        admin = _AdminClient(**admin_settings(kafka_config, timeout))
    except (KafkaError, OSError) as exc:
        raise EventFlowError(f"kafka-python got no answer from Kafka at {servers} within {timeout:g}s: "
                             f"{first_line(exc)}") from None
    with admin:
        for node, broker in sorted(metadata.brokers.items()):  # one by one, to name the one that fails
            try:
                answer, = admin.describe_log_dirs(wanted, brokers=[node])
            except (KafkaError, OSError) as exc:
                raise EventFlowError(f"no DescribeLogDirs answer from broker {node} at {broker.host}:{broker.port} "
                                     f"within {timeout:g}s: {first_line(exc)}") from None
            _broker_sizes(answer, totals)
    return totals
