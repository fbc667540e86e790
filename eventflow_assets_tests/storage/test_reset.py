"""`eventflow reset` and checkpoint locations: it deletes the checkpoints of a local path or a
``file:`` URI, and refuses any other file system before it changes anything."""

from pathlib import Path

import psycopg
import pytest

from eventflow_assets.errors import EventFlowError
from eventflow_assets.storage.reset import local_checkpoints
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.test_cli import run


def test_local_checkpoints_of_paths_and_file_uris():
    assert local_checkpoints("/var/lib/eventflow/checkpoints") == Path("/var/lib/eventflow/checkpoints")
    assert local_checkpoints("relative/checkpoints") == Path("relative/checkpoints")
    assert local_checkpoints("file:///var/lib/event%20flow/chk") == Path("/var/lib/event flow/chk")
    assert local_checkpoints("file:/var/lib/eventflow/chk") == Path("/var/lib/eventflow/chk")
    assert local_checkpoints("file://localhost/var/chk") == Path("/var/chk")


@pytest.mark.parametrize("location", ["s3a://bucket/checkpoints", "hdfs://namenode:8020/chk", "file://otherhost/chk"])
def test_local_checkpoints_refuses_other_file_systems(location):
    with pytest.raises(EventFlowError) as refused:
        local_checkpoints(location)
    assert str(refused.value).startswith(f"the checkpoints are at {location}, which reset can only delete on this "
                                         "machine's file system")


def _env(pg_url, tmp_path, location) -> dict:
    # Nothing here talks to Kafka (no --topics): any bootstrap address does.
    return {"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "EVENTFLOW_POSTGRES_URL": pg_url,
            "EVENTFLOW_HOME": str(tmp_path / "home"), "EVENTFLOW_CHECKPOINT_LOCATION": location}


def test_reset_deletes_checkpoints_at_a_file_uri(pg_url, tmp_path):
    checkpoints = tmp_path / "check points"
    (checkpoints / "orders" / "offsets").mkdir(parents=True)
    (checkpoints / "orders" / "offsets" / "0").write_text("v1\n")
    apply_schema(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count) "
                     "VALUES ('orders', 'c1', 0, 1)")
    done = run("reset", "--yes", env=_env(pg_url, tmp_path, checkpoints.as_uri()))
    assert done.returncode == 0, done.stderr
    assert f"checkpoints: {checkpoints} deleted" in done.stdout.splitlines()
    assert not checkpoints.exists()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM stream_batches").fetchone()[0] == 0


def test_reset_refuses_a_remote_location_and_changes_nothing(pg_url, tmp_path):
    apply_schema(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count) "
                     "VALUES ('orders', 'c1', 0, 1)")
    refused = run("reset", "--yes", env=_env(pg_url, tmp_path, "s3a://bucket/checkpoints"))
    assert refused.returncode == 2
    assert refused.stderr.startswith("eventflow: error: the checkpoints are at s3a://bucket/checkpoints, which reset "
                                     "can only delete on this machine's file system")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM stream_batches").fetchone()[0] == 1
