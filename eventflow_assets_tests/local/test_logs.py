"""`eventflow logs`: where each service's log is, reading the end of a file, following it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

from eventflow_assets.local.logs import follow, log_files, service_log, tail


def test_tail_reads_the_last_lines_of_a_file_larger_than_one_read(tmp_path):
    lines = [f"line {i} " + "x" * (i % 97) for i in range(5000)]  # ~270 KB: several 64 KiB reads
    path = tmp_path / "big.log"
    path.write_text("\n".join(lines) + "\n")
    assert tail(path, 3) == lines[-3:]
    assert tail(path, 1200) == lines[-1200:]
    assert tail(path, 10_000) == lines
    assert tail(path, 0) == []
    no_newline = tmp_path / "partial.log"
    no_newline.write_text("a\nb\nc")
    assert tail(no_newline, 2) == ["b", "c"]
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert tail(empty, 5) == []


def test_follow_prints_complete_appended_lines_and_rereads_a_rotated_file(tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("old a\n")
    b.write_text("")
    seen, stop = [], threading.Event()
    worker = threading.Thread(target=follow, args=([a, b], seen.append, stop, 0.05))
    worker.start()
    try:
        time.sleep(0.2)
        with open(a, "a") as fh:
            fh.write("a1\na2\npart")
        _wait(lambda: len(seen) == 2)
        with open(b, "a") as fh:
            fh.write("b1\n")
        _wait(lambda: len(seen) == 3)
        with open(a, "a") as fh:
            fh.write("ial\n")
        _wait(lambda: len(seen) == 4)
        a.write_text("new\n")  # rotated: shorter than what was read
        _wait(lambda: len(seen) == 5)
    finally:
        stop.set()
        worker.join(5)
    assert seen == ["a.log: a1", "a.log: a2", "b.log: b1", "a.log: partial", "a.log: new"]


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_service_log_keeps_eventflow_records_only_while_open(tmp_path):
    with service_log(tmp_path, "stream") as path:
        logging.getLogger("eventflow.sinks").info("orders batch %d committed", 7)
        logging.getLogger("py4j").warning("not ours")
    logging.getLogger("eventflow.sinks").info("after the block")
    assert path == tmp_path / "logs" / "stream.log"
    text = path.read_text().splitlines()
    assert len(text) == 1 and text[0].endswith(" eventflow.sinks INFO orders batch 7 committed")
    assert log_files(tmp_path, "stream") == [path]


def _cli(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env["EVENTFLOW_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "eventflow_assets.cli", "logs", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_the_logs_command_lists_shows_and_says_what_is_missing(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "postgres").mkdir()
    (tmp_path / "logs" / "kafka-1.log").write_text("k1 a\nk1 b\nk1 c\n")
    (tmp_path / "logs" / "kafka-2.log").write_text("k2 a\n")
    (tmp_path / "logs" / "kafka-1.log.1").write_text("rotated copy\n")
    (tmp_path / "postgres" / "postgres.log").write_text("ready\n")
    listing = _cli(tmp_path)
    assert listing.returncode == 0
    assert listing.stdout.splitlines() == [
        f"dagster    (no log yet under {tmp_path})", f"dashboard  (no log yet under {tmp_path})",
        f"kafka      {tmp_path}/logs/kafka-1.log  (15 bytes)", f"kafka      {tmp_path}/logs/kafka-2.log  (5 bytes)",
        f"postgres   {tmp_path}/postgres/postgres.log  (6 bytes)",
        f"spark      (no log yet under {tmp_path})", f"stream     (no log yet under {tmp_path})"]
    kafka = _cli(tmp_path, "kafka", "-n", "2")
    assert kafka.returncode == 0
    assert kafka.stdout.splitlines() == [f"==> {tmp_path}/logs/kafka-1.log <==", "k1 b", "k1 c",
                                         f"==> {tmp_path}/logs/kafka-2.log <==", "k2 a"]
    assert _cli(tmp_path, "postgres").stdout == "ready\n"
    missing = _cli(tmp_path, "stream")
    assert missing.returncode == 2
    assert missing.stderr == (f"eventflow: error: no stream log under {tmp_path}: is it running on this "
                              "EVENTFLOW_HOME?\n")
    assert _cli(tmp_path, "nosuch").returncode == 2
