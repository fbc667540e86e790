"""Where each part of the local platform writes its log, under ``$EVENTFLOW_HOME`` (read by
`eventflow logs`), and the stream's own log file."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOGS_DIR = "logs"
# service -> file name patterns under $EVENTFLOW_HOME; the writers: local/kafka_broker.py,
# local/postgres_server.py, local/spark_cluster.py, local/dagster_dev.py (`dg dev`),
# dashboard/server.py, and service_log() below (the streaming job wherever it runs here).
SERVICES = {
    "kafka": ("logs/kafka-*.log",),
    "postgres": ("postgres/postgres.log",),
    "dagster": ("logs/dagster.log",),
    "dashboard": ("logs/dashboard.log",),
    "spark": ("logs/spark-*.log",),
    "stream": ("logs/stream.log",),
}
ROTATE_BYTES = 20 * 1024 * 1024
ROTATE_KEEP = 3


def log_files(home: Path, service: str) -> list[Path]:
    """The service's current log files (rotated copies left out), in name order."""
    return sorted(p for pattern in SERVICES[service] for p in home.glob(pattern) if p.is_file())


@contextmanager
def service_log(home: Path, service: str) -> Iterator[Path]:
    """Also write EventFlow's log records to ``$EVENTFLOW_HOME/logs/<service>.log`` (rotated at
    20 MB, 3 kept) while the block runs, so that `eventflow logs <service>` finds them whoever
    started the process (`eventflow stream`, spark-submit, Dagster's op)."""
    path = home / LOGS_DIR / f"{service}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=ROTATE_BYTES, backupCount=ROTATE_KEEP)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("eventflow")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a file, reading only as much of its end as needed."""
    if lines <= 0:
        return []
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        end = pos = fh.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(64 * 1024, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:] if end else []


def follow(paths: list[Path], write, stop, interval: float = 0.5) -> None:
    """Write what is appended to the files until ``stop`` is set; a file that shrank (rotated or
    truncated) is read again from its start. Each line is prefixed with the file's name when
    there is more than one file."""
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in paths}
    partial = {p: b"" for p in paths}
    while not stop.is_set():
        for p in paths:
            size = p.stat().st_size if p.exists() else 0
            if size < offsets[p]:
                offsets[p], partial[p] = 0, b""
            if size == offsets[p]:
                continue
            with open(p, "rb") as fh:
                fh.seek(offsets[p])
                chunk = partial[p] + fh.read(size - offsets[p])
            offsets[p] = size
            *complete, partial[p] = chunk.split(b"\n")
            for raw in complete:
                line = raw.decode("utf-8", errors="replace")
                write(f"{p.name}: {line}" if len(paths) > 1 else line)
        stop.wait(interval)
