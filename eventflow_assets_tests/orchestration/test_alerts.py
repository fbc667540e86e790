"""The failure_alerts sensor: a failed run of the stream or the analytics is posted as JSON to
EVENTFLOW_ALERT_WEBHOOK (a real HTTP server on 127.0.0.1 here); nothing is posted without the
variable, and an unreachable webhook does not fail the tick."""

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from eventflow_assets.definitions import defs
from eventflow_assets.orchestration.sensors.alerts import ALERT_VAR, alert_payload, failure_alerts


@pytest.fixture
def webhook():
    """A local HTTP server that records each POST's path and JSON body."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/secret-token", received
    server.shutdown()


def _failed_run(instance, job_name: str, tags=None):
    job = defs.resolve_implicit_global_asset_job_def() if job_name == "__ASSET_JOB" else defs.resolve_job_def(job_name)
    run = instance.create_run_for_job(job_def=job, tags=tags or {})
    instance.report_run_failed(run, message="boom: streaming query orders_raw failed\nstack trace line")
    run = instance.get_run_by_id(run.run_id)
    (event,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.PIPELINE_FAILURE)
    return run, event.dagster_event


def _evaluate(instance, run, event):
    context = dg.build_run_status_sensor_context(sensor_name="failure_alerts", dagster_instance=instance,
                                                 dagster_run=run, dagster_event=event)
    return failure_alerts(context.for_run_failure())


def test_a_failed_stream_run_is_posted(webhook, monkeypatch):
    url, received = webhook
    monkeypatch.setenv(ALERT_VAR, url)
    with dg.instance_for_test() as instance:
        run, event = _failed_run(instance, "streaming_job", {"dagster/sensor_name": "streaming_supervisor"})
        _evaluate(instance, run, event)
    assert len(received) == 1
    path, content_type, body = received[0]
    assert (path, content_type) == ("/hooks/secret-token", "application/json")
    failed_at = datetime.fromisoformat(body.pop("failed_at"))
    assert abs((datetime.now(timezone.utc) - failed_at).total_seconds()) < 60
    assert body == {"event": "eventflow_run_failed", "job": "streaming_job", "run_id": run.run_id,
                    "error": "boom: streaming query orders_raw failed", "launched_by": "streaming_supervisor"}


def test_a_failed_automated_refresh_is_posted_and_other_jobs_are_not(webhook, monkeypatch):
    url, received = webhook
    monkeypatch.setenv(ALERT_VAR, url)
    with dg.instance_for_test() as instance:
        # The global analyses' runs, launched by their automation condition, run the implicit asset job.
        run, event = _failed_run(instance, "__ASSET_JOB", {"dagster/sensor_name": "analytics_automation"})
        _evaluate(instance, run, event)
        for job in ("producer_job", "sink_checks_job"):
            _evaluate(instance, *_failed_run(instance, job))
    assert [(body["job"], body["run_id"], body["launched_by"]) for _, _, body in received] == [
        ("__ASSET_JOB", run.run_id, "analytics_automation")]


def test_without_the_variable_nothing_is_posted(webhook, monkeypatch):
    _, received = webhook
    monkeypatch.delenv(ALERT_VAR, raising=False)
    with dg.instance_for_test() as instance:
        run, event = _failed_run(instance, "global_analytics_job")
        _evaluate(instance, run, event)
    assert received == []


def test_an_unreachable_webhook_does_not_fail_the_tick(monkeypatch):
    from eventflow_assets.local.processes import free_port

    monkeypatch.setenv(ALERT_VAR, f"http://127.0.0.1:{free_port()}/nobody")
    with dg.instance_for_test() as instance:
        run, event = _failed_run(instance, "revenue_trends_job")
        _evaluate(instance, run, event)  # logs the failure, raises nothing


def test_payload_carries_the_first_line_only():
    run = dg.DagsterRun(job_name="streaming_job", run_id="r1", tags={})
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert alert_payload(run, "first\nsecond", at) == {
        "event": "eventflow_run_failed", "job": "streaming_job", "run_id": "r1",
        "failed_at": "2026-12-01T00:00:00+00:00", "error": "first", "launched_by": "manual"}
