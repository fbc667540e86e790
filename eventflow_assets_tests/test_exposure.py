"""The full-stack tests' detectors find what they look for: a socket listening on every interface,
a secret in a file or in a table."""

import socket

import psutil
import psycopg

from eventflow_assets_tests.exposure import files_containing, is_loopback, listening_beyond_loopback, tables_containing


def test_is_loopback_reads_the_forms_the_services_use():
    assert all(map(is_loopback, ["127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.1.1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.2", "::ffff:192.0.2.2", "10.0.0.5"]))


def test_a_socket_on_every_interface_is_reported_and_one_on_loopback_is_not():
    me = psutil.Process()
    with socket.socket() as local, socket.socket() as everywhere, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagrams:
        local.bind(("127.0.0.1", 0))
        local.listen()
        assert listening_beyond_loopback([me]) == []
        everywhere.bind(("0.0.0.0", 0))
        everywhere.listen()
        datagrams.bind(("0.0.0.0", 0))
        assert sorted(listening_beyond_loopback([me])) == sorted(
            f"{me.pid} {me.name()} 0.0.0.0:{s.getsockname()[1]}" for s in (everywhere, datagrams))


def test_a_secret_is_found_in_files_and_tables(tmp_path, pg_url):
    (tmp_path / "logs" / "deep").mkdir(parents=True)
    (tmp_path / "logs" / "deep" / "run.err").write_bytes(b"\x00binary\xff connecting with s3cr3t-pw\n")
    (tmp_path / "logs" / "clean.log").write_text("postgresql://postgres:***@127.0.0.1/db\n")
    assert files_containing("s3cr3t-pw", [tmp_path / "logs", tmp_path / "missing"]) == [
        tmp_path / "logs" / "deep" / "run.err"]
    with psycopg.connect(pg_url) as conn:
        conn.execute('CREATE TABLE "Event Logs" (id int, body jsonb)')
        conn.execute('CREATE TABLE runs (id int, body text)')
        conn.execute("""INSERT INTO "Event Logs" VALUES (1, '{"msg": "url s3cr3t-pw"}'), (2, '{}')""")
        conn.execute("INSERT INTO runs VALUES (1, 'nothing here')")
    assert tables_containing(pg_url, "s3cr3t-pw") == {"Event Logs": 1}
