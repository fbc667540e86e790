"""Ingestion layer: the event contract, the generator/producer, and the Kafka topics."""
