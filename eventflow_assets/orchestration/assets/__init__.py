"""The asset graph by kind: Kafka topics, the stream's PostgreSQL tables (and the server), the analytics."""
