"""Every sensor, one module per concern, all RUNNING by default:

- ``supervisor``: ``streaming_supervisor`` keeps one run of ``streaming_job`` going;
- ``observations``: ``topic_observations`` and ``postgres_observations`` (every 30 s);
- ``materializations``: ``sink_table_materializations`` reports the sink tables' materializations
  from ``stream_progress``;
- ``analytics``: ``finalized_windows`` (the trends' days as windows finalize) and
  ``analytics_automation`` (the global analyses' automation condition);
- ``alerts``: ``failure_alerts``, a run-failure sensor posting to EVENTFLOW_ALERT_WEBHOOK.
"""
