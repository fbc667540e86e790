"""EventFlow: real-time event analytics on Kafka, Spark Structured Streaming and PostgreSQL."""
