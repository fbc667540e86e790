"""The three Kafka topics as assets: materializing one provisions and verifies it."""

import dagster as dg

from eventflow_assets.ingestion.kafka_clients import admin_client
from eventflow_assets.ingestion.offsets import partition_ranges
from eventflow_assets.ingestion.topics import TOPICS, TopicSpec, configured_topics, provision_topics
from eventflow_assets.orchestration.assets.keys import topic_key
from eventflow_assets.orchestration.catalog import INGESTION
from eventflow_assets.orchestration.resources import EventFlowEndpoints


def topic_asset(spec: TopicSpec) -> dg.AssetsDefinition:
    @dg.asset(key=topic_key(spec.name), group_name=INGESTION, kinds={"kafka"},
              description=f"Kafka topic `{spec.name}`: keyed by userId, created with EVENTFLOW_TOPIC_PARTITIONS "
                          f"partitions (default 3), retention {spec.retention_ms // 86_400_000} days.")
    def _topic(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints) -> dg.MaterializeResult:
        config = eventflow.endpoints().kafka_config()
        wanted = next(s for s in configured_topics() if s.name == spec.name)
        outcome = provision_topics(config, specs=(wanted,))[spec.name]
        # What the topic has: more than configured when partitions were added to scale out.
        partitions = sorted(admin_client(config).list_topics(spec.name, timeout=15).topics[spec.name].partitions)
        ranges = partition_ranges(config, [(spec.name, p) for p in partitions])
        context.log.info(f"{spec.name}: {outcome}")
        return dg.MaterializeResult(metadata={
            "outcome": outcome,
            "partitions": len(partitions),
            "retention_ms": spec.retention_ms,
            "records": sum(hi - lo for lo, hi in ranges.values()),
            **{f"end_offset_p{p}": hi for (_, p), (_, hi) in sorted(ranges.items())},
        })

    return _topic


topic_assets = [topic_asset(spec) for spec in TOPICS]
