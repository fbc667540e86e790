"""Processing layer: Spark Structured Streaming over the Kafka topics."""
