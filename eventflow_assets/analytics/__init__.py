"""Batch analytics: the four analyses over the streaming tables,
read through Spark's JDBC source and written back to the ``analytics_*`` tables."""
