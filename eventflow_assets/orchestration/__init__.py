"""Orchestration layer: the Dagster asset graph, its resources, sensors and schedules."""
