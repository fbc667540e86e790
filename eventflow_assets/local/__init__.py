"""The local stack: embedded Kafka-protocol broker and PostgreSQL, on loopback, under EVENTFLOW_HOME."""
