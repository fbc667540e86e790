-- Dagster's own storage (runs, event log, schedules) lives beside the EventFlow database,
-- owned by POSTGRES_USER. The postgres image runs this once, when its data volume is empty.
CREATE DATABASE dagster;
