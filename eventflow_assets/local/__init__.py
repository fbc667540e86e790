"""The local stack on loopback, under EVENTFLOW_HOME: embedded Apache Kafka, PostgreSQL and a Spark cluster, and the
`dg dev` runtime and Dagster instance of `eventflow up`."""
