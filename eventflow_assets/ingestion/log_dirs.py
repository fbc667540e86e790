"""Bytes on disk of topic partitions, from each broker's DescribeLogDirs answer.

confluent-kafka 2.16 (librdkafka) has no DescribeLogDirs, so this sends Kafka's request itself:
API key 35, version 1 (the oldest Kafka 4 still serves, the last before the compact "flexible"
encoding), one request per broker since each answers for its own log directories only. The
sizes are those of the partitions' log segments, as the broker counts them (what
``kafka-log-dirs.sh --describe`` prints). Only PLAINTEXT listeners are spoken to: a SASL or TLS
login is librdkafka's job and is not redone here, so those clusters raise :class:`EventFlowError`.
"""

from __future__ import annotations

import socket
import struct
import time

from eventflow_assets.errors import EventFlowError

API_KEY = 35
API_VERSION = 1
CLIENT_ID = b"eventflow-log-dirs"


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def encode_request(correlation_id: int, partitions: dict[str, list[int]]) -> bytes:
    """A framed DescribeLogDirs v1 request for ``partitions`` ({topic: [partition, ...]})."""
    body = struct.pack(">hhih", API_KEY, API_VERSION, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    body += struct.pack(">i", len(partitions))
    for topic, parts in partitions.items():
        body += _string(topic) + struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts)
    return struct.pack(">i", len(body)) + body


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def string(self) -> str:
        n = self.take(">h")
        value = self.data[self.at:self.at + n].decode()
        self.at += n
        return value


def decode_response(data: bytes) -> list[tuple[int, str, dict[tuple[str, int], int]]]:
    """[(error code, log dir, {(topic, partition): bytes})] from a response body (after its size)."""
    r = _Reader(data)
    r.take(">i")  # correlation id, checked by the caller
    r.take(">i")  # throttle time
    results = []
    for _ in range(r.take(">i")):
        error, log_dir = r.take(">h"), r.string()
        sizes: dict[tuple[str, int], int] = {}
        for _ in range(r.take(">i")):
            topic = r.string()
            for _ in range(r.take(">i")):
                partition, size, _lag, _future = r.take(">iqq?")
                sizes[(topic, partition)] = sizes.get((topic, partition), 0) + size
        results.append((error, log_dir, sizes))
    return results


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def broker_log_sizes(host: str, port: int, partitions: dict[str, list[int]],
                     timeout: float = 3.0) -> dict[tuple[str, int], int]:
    """{(topic, partition): bytes} of the replicas that the broker at host:port keeps (summed over
    its log directories); partitions it holds no replica of are absent."""
    correlation_id = int(time.monotonic() * 1000) & 0x7FFFFFFF
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(encode_request(correlation_id, partitions))
            size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
            data = _recv_exactly(sock, size)
    except OSError as exc:
        raise EventFlowError(f"no DescribeLogDirs answer from the broker at {host}:{port}: {exc}") from None
    if struct.unpack_from(">i", data)[0] != correlation_id:
        raise EventFlowError(f"the broker at {host}:{port} answered another request")
    sizes: dict[tuple[str, int], int] = {}
    for error, log_dir, found in decode_response(data):
        if error:
            raise EventFlowError(f"the broker at {host}:{port} could not describe {log_dir} (Kafka error {error})")
        for tp, n in found.items():
            sizes[tp] = sizes.get(tp, 0) + n
    return sizes


def log_sizes(kafka_config: dict, metadata, topics, timeout: float = 3.0) -> dict[tuple[str, int], int]:
    """{(topic, partition): bytes on disk over all its replicas} for ``topics`` that exist, asked of
    every broker in ``metadata`` (an AdminClient ``list_topics`` answer, which lists the live brokers
    only: a broker that is down is not counted). Measured on 3 brokers with replication 3, the sum
    is 3 times each node's segment files; with one node killed, the two others' share."""
    protocol = kafka_config.get("security.protocol", "PLAINTEXT").upper()
    if protocol != "PLAINTEXT":
        raise EventFlowError(f"log sizes are read over PLAINTEXT only (this cluster uses {protocol}; "
                             "confluent-kafka has no DescribeLogDirs)")
    wanted = {t: sorted(metadata.topics[t].partitions) for t in topics if t in metadata.topics}
    totals = {(t, p): 0 for t, parts in wanted.items() for p in parts}
    if not wanted:
        return totals
    for broker in metadata.brokers.values():
        for tp, n in broker_log_sizes(broker.host, broker.port, wanted, timeout).items():
            if tp in totals:
                totals[tp] += n
    return totals
