"""The embedded Apache Kafka: one KRaft node (broker and controller in one JVM), or three.

The broker's jars come from Maven Central on first use (:mod:`eventflow_assets.maven`), with a
log4j binding of their own (Kafka's POM brings none), on a classpath of their own: never mixed
with Spark's. Storage is formatted once under ``state_dir`` and reused, so topics and their data
survive a restart. Every node listens on 127.0.0.1 only:

| listener   | port                          | for                                              |
|------------|-------------------------------|--------------------------------------------------|
| CLIENT     | ``port`` + node index         | clients; PLAINTEXT, or SASL_PLAINTEXT with SCRAM |
| INTERNAL   | any free port                 | replication between the nodes                    |
| CONTROLLER | any free port                 | the KRaft quorum                                 |
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from eventflow_assets import maven
from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.processes import (
    die_with_parent,
    free_port,
    require_free_port,
    stop_process,
    wait_for_port,
)
from eventflow_assets.processing.java import java_binary

HOST = "127.0.0.1"
KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
ARTIFACTS = (
    f"org.apache.kafka:kafka_{SCALA_VERSION}:{KAFKA_VERSION}",
    # Kafka 4.1 logs through SLF4J 1.7; the release tarball adds this binding, the POM does not.
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
    f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
)
SCRAM_MECHANISM = "SCRAM-SHA-512"
START_TIMEOUT_S = 90.0


def heap_mb(brokers: int) -> int:
    """Heap per node: enough for EventFlow's three topics, small enough for a 2-core laptop."""
    return 512 if brokers == 1 else 384


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM-SHA-512 user; when given, the CLIENT listener requires it (SASL_PLAINTEXT)."""

    username: str
    password: str

    def librdkafka(self) -> dict[str, str]:
        return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": SCRAM_MECHANISM,
                "sasl.username": self.username, "sasl.password": self.password}


def broker_jars() -> list[Path]:
    return maven.resolve(f"kafka-{KAFKA_VERSION}", ARTIFACTS)


class EmbeddedKafka:
    def __init__(self, state_dir: Path, port: int, brokers: int = 1, logs_dir: Path | None = None,
                 scram_user: ScramUser | None = None):
        if brokers not in (1, 3):
            raise EventFlowError(f"the embedded Kafka runs 1 or 3 brokers, not {brokers}")
        self.state_dir = state_dir
        self.port = port
        self.brokers = brokers
        self.logs_dir = logs_dir or state_dir / "logs"
        self.scram_user = scram_user
        self.procs: dict[int, subprocess.Popen] = {}
        self._internal_ports: dict[int, int] = {}
        self._controller_ports: dict[int, int] = {}

    @property
    def node_ids(self) -> range:
        return range(1, self.brokers + 1)

    def client_port(self, node: int) -> int:
        return self.port + node - 1

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{self.client_port(n)}" for n in self.node_ids)

    @property
    def replication_factor(self) -> int:
        return min(3, self.brokers)

    def client_config(self) -> dict[str, str]:
        """librdkafka settings that reach this cluster (with its SCRAM user, if any)."""
        return {"bootstrap.servers": self.bootstrap_servers, **(self.scram_user.librdkafka() if self.scram_user else {})}

    def log_path(self, node: int = 1) -> Path:
        return self.logs_dir / f"kafka-{node}.log"

    def start(self) -> None:
        for node in self.node_ids:
            require_free_port(
                HOST, self.client_port(node), "embedded Kafka broker",
                "stop what uses it, pass --kafka-port, or set EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS",
            )
        classpath = maven.classpath(broker_jars())
        cluster_id = self._cluster_id()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for node in self.node_ids:
            self._internal_ports[node] = free_port()
            self._controller_ports[node] = free_port()
        try:
            for node in self.node_ids:
                config = self._write_config(node)
                if not (self._data_dir(node) / "meta.properties").exists():
                    self._format(node, config, cluster_id, classpath)
            for node in self.node_ids:
                self.procs[node] = self._launch(node, classpath)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in self.procs.values():  # all at once: nodes shut down in parallel
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            stop_process(proc, timeout=30)
        self.procs = {}

    def kill(self, node: int) -> None:
        """SIGKILL one node (fault drills); :meth:`restart` brings it back."""
        self.procs[node].kill()
        self.procs[node].wait(10)

    def restart(self, node: int) -> None:
        stop_process(self.procs[node], timeout=30)
        self.procs[node] = self._launch(node, maven.classpath(broker_jars()))
        if not wait_for_port(HOST, self.client_port(node), START_TIMEOUT_S, self.procs[node]):
            raise EventFlowError(f"Kafka node {node} did not come back; see {self.log_path(node)}")

    def _data_dir(self, node: int) -> Path:
        return self.state_dir / f"node-{node}" / "data"

    def _cluster_id(self) -> str:
        """The cluster's id, made on first start; refuses a home formatted for another node count."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = self.state_dir / "cluster.json"
        if record.exists():
            saved = json.loads(record.read_text())
            if saved["brokers"] != self.brokers:
                raise EventFlowError(
                    f"{self.state_dir} holds a {saved['brokers']}-broker Kafka cluster, not {self.brokers}: "
                    f"run with --kafka-brokers {saved['brokers']}, or use another EVENTFLOW_HOME")
            return saved["cluster_id"]
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        record.write_text(json.dumps({"cluster_id": cluster_id, "brokers": self.brokers,
                                      "kafka_version": KAFKA_VERSION}))
        return cluster_id

    def _write_config(self, node: int) -> Path:
        n = self.brokers
        isr = min(2, n)
        client_protocol = "SASL_PLAINTEXT" if self.scram_user else "PLAINTEXT"
        voters = ",".join(f"{v}@{HOST}:{self._controller_ports[v]}" for v in self.node_ids)
        props = {
            "process.roles": "broker,controller",
            "node.id": node,
            "controller.quorum.voters": voters,
            "listeners": f"CLIENT://{HOST}:{self.client_port(node)},INTERNAL://{HOST}:{self._internal_ports[node]},"
                         f"CONTROLLER://{HOST}:{self._controller_ports[node]}",
            "advertised.listeners": f"CLIENT://{HOST}:{self.client_port(node)},"
                                    f"INTERNAL://{HOST}:{self._internal_ports[node]}",
            "listener.security.protocol.map": f"CLIENT:{client_protocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": self._data_dir(node),
            "num.network.threads": 2,
            "num.io.threads": 2,
            "num.partitions": 3,
            "default.replication.factor": n,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": n,
            "offsets.topic.num.partitions": 6,
            "transaction.state.log.replication.factor": n,
            "transaction.state.log.min.isr": isr,
            "transaction.state.log.num.partitions": 6,
            "share.coordinator.state.topic.replication.factor": n,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "false",
            "unclean.leader.election.enable": "false",
        }
        if self.scram_user:
            props["sasl.enabled.mechanisms"] = SCRAM_MECHANISM
            props[f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config"] = \
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        path = self.state_dir / f"node-{node}" / "server.properties"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (path.parent / "log4j2.properties").write_text(_log4j_config(self.log_path(node)))
        return path

    def _java(self, node: int) -> list[str]:
        heap = heap_mb(self.brokers)
        return [java_binary() or "java", f"-Xms{min(heap, 128)}m", f"-Xmx{heap}m", "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
                "-Djava.net.preferIPv4Stack=true",  # plain IPv4 loopback sockets, not ::ffff:127.0.0.1
                f"-Dlog4j2.configurationFile={self.state_dir / f'node-{node}' / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.logs_dir}"]

    def _format(self, node: int, config: Path, cluster_id: str, classpath: str) -> None:
        cmd = [*self._java(node), "-cp", classpath, "kafka.tools.StorageTool", "format",
               f"--cluster-id={cluster_id}",  # one argument: an id may start with "-"
               "-c", str(config), "--ignore-formatted"]
        if self.scram_user:
            cmd += ["--add-scram",
                    f"{SCRAM_MECHANISM}=[name={self.scram_user.username},password={self.scram_user.password}]"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise EventFlowError(f"formatting Kafka storage in {self._data_dir(node)} failed: "
                                 f"{detail[-1] if detail else 'no output'}")

    def _launch(self, node: int, classpath: str) -> subprocess.Popen:
        config = self.state_dir / f"node-{node}" / "server.properties"
        out = open(self.logs_dir / f"kafka-{node}.out", "ab")  # the JVM's own stdout/stderr (crashes)
        with out:
            return subprocess.Popen([*self._java(node), "-cp", classpath, "kafka.Kafka", str(config)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    preexec_fn=die_with_parent())

    def _wait_ready(self) -> None:
        """Every node's client port answers and the cluster's metadata lists every broker."""
        deadline = time.monotonic() + START_TIMEOUT_S
        for node in self.node_ids:
            if not wait_for_port(HOST, self.client_port(node), max(1.0, deadline - time.monotonic()),
                                 self.procs[node]):
                raise EventFlowError(f"the embedded Kafka (node {node}) did not start; see {self.log_path(node)}")
        from eventflow_assets.ingestion.kafka_clients import admin_client

        admin = admin_client(self.client_config())
        seen = 0
        while time.monotonic() < deadline:
            try:
                seen = len(admin.list_topics(timeout=5).brokers)
            except Exception:  # noqa: BLE001 - not answering yet; the deadline decides
                seen = 0
            if seen == self.brokers:
                return
            time.sleep(0.2)
        raise EventFlowError(f"the embedded Kafka has {seen} of {self.brokers} brokers up after "
                             f"{START_TIMEOUT_S:.0f}s; see {self.logs_dir}")


def _log4j_config(log_file: Path) -> str:
    """log4j2 for one node: INFO to a rolling file (3 x 50 MB), nothing on the terminal."""
    return f"""status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.filePattern = {log_file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
"""
