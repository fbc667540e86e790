"""producer_job on a real broker: exactly the events asked for, and a failure when deliveries fail."""

import dagster as dg
import pytest

from eventflow_assets.definitions import defs
from eventflow_assets.ingestion.producer import PRODUCER_CONFIG
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.ops import producer as producer_op
from eventflow_assets_tests.helpers import read_all

TOPICS = ("user-events", "product-view", "orders")


def produce_config(**config) -> dict:
    return {"ops": {"produce_events": {"config": config}}}


def test_producer_job_publishes_exactly_count_events(eventflow_env, kafka_broker):
    result = defs.get_job_def("producer_job").execute_in_process(
        run_config=produce_config(count=500, rate=None, seed=3))
    assert result.success
    records = read_all(kafka_broker.bootstrap_servers, TOPICS)
    by_topic = {t: sum(1 for r in records if r.topic() == t) for t in TOPICS}
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
    assert len(records) == 500
    assert {k: metadata[k] for k in ("delivered", "failed", "error_rate")} == {
        "delivered": 500, "failed": 0, "error_rate": 0.0}
    assert {t: metadata[f"delivered_{t}"] for t in TOPICS} == by_topic
    p50, p95, top = (metadata[f"ack_latency_ms_{q}"] for q in ("p50", "p95", "max"))
    assert 0 < p50 <= p95 <= top <= metadata["elapsed_s"] * 1000
    # Per topic, as observations of the topic assets (what their Plots tab draws).
    observed = {e.asset_key.path[1]: {k: v.value for k, v in e.event_specific_data.asset_observation.metadata.items()}
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert {t: (m["producer_sent"], m["producer_delivered"], m["producer_error_rate"])
            for t, m in observed.items()} == {t: (n, n, 0.0) for t, n in by_topic.items()}
    for m in observed.values():
        assert 0 < m["producer_ack_latency_ms_p50"] <= m["producer_ack_latency_ms_p95"] <= top


def test_producer_job_fails_when_a_delivery_fails(eventflow_env, own_kafka_broker, monkeypatch):
    # The broker goes away right after the op provisioned the topics: no event can be delivered.
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", own_kafka_broker.bootstrap_servers)

    def provision_then_lose_the_broker(config):
        provision_topics(config)
        own_kafka_broker.stop()

    monkeypatch.setattr(producer_op, "provision_topics", provision_then_lose_the_broker)
    monkeypatch.setitem(PRODUCER_CONFIG, "message.timeout.ms", 3000)
    result = defs.get_job_def("producer_job").execute_in_process(
        run_config=produce_config(count=50, rate=None), raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "Failure: 50 of 50 deliveries failed: 50 x " in failure.step_failure_data.error.message
    reported = {k: v.value for k, v in failure.step_failure_data.user_failure_data.metadata.items()}
    assert {k: reported[k] for k in ("delivered", "failed", "error_rate")} == {
        "delivered": 0, "failed": 50, "error_rate": 1.0}
    assert not any(k.startswith("ack_latency") for k in reported)  # nothing was acknowledged
    observed = [e.event_specific_data.asset_observation for e in result.all_events
                if e.event_type_value == "ASSET_OBSERVATION"]
    assert sum(o.metadata["producer_sent"].value for o in observed) == 50
    assert {o.metadata["producer_error_rate"].value for o in observed} == {1.0}


def test_producer_job_refuses_to_run_unbounded(eventflow_env):
    result = defs.get_job_def("producer_job").execute_in_process(
        run_config=produce_config(count=None, duration_seconds=None), raise_on_error=False)
    assert not result.success
    with pytest.raises(dg.Failure, match="runs are bounded"):
        defs.get_job_def("producer_job").execute_in_process(run_config=produce_config(count=None))
