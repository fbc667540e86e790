"""A Spark standalone cluster on this machine, from the pyspark wheel: one master, N workers.

The wheel has Spark's classes but not its start scripts, so the daemons are started as
``$SPARK_HOME/bin/spark-class org.apache.spark.deploy.master.Master`` (and ``...worker.Worker``),
each on 127.0.0.1, each dying with its parent. Drivers reach it as ``spark://127.0.0.1:<port>``;
executors run on this host, so a local checkpoint path is visible to all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.processes import (
    die_with_parent,
    free_port,
    require_free_port,
    stop_process,
    wait_for_port,
)

HOST = "127.0.0.1"
DEFAULT_MASTER_PORT = 7077
WORKER_MEMORY = "2g"  # what each worker offers executors (one executor of 1 GiB by default)
START_TIMEOUT_S = 90.0


def spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


class SparkCluster:
    def __init__(self, state_dir: Path, logs_dir: Path, workers: int, master_port: int = DEFAULT_MASTER_PORT,
                 cores_per_worker: int = 1):
        if workers < 1:
            raise EventFlowError(f"a Spark cluster needs at least one worker, not {workers}")
        self.state_dir = state_dir
        self.logs_dir = logs_dir
        self.workers = workers
        self.master_port = master_port
        self.cores_per_worker = cores_per_worker
        self.master_ui_port = 0
        self.worker_ui_ports: list[int] = []
        self.procs: list[subprocess.Popen] = []
        self._worker_args: dict[int, tuple[str, ...]] = {}

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def master_ui(self) -> str:
        return f"http://{HOST}:{self.master_ui_port}"

    @property
    def worker_uis(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.worker_ui_ports]

    def start(self) -> None:
        require_free_port(HOST, self.master_port, "Spark master",
                          "stop what uses it, pass --spark-master-port, or set EVENTFLOW_SPARK_MASTER")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.master_ui_port = free_port()
        try:
            self._launch("spark-master", "org.apache.spark.deploy.master.Master", "--host", HOST,
                         "--port", str(self.master_port), "--webui-port", str(self.master_ui_port))
            if not wait_for_port(HOST, self.master_port, START_TIMEOUT_S, self.procs[0]):
                raise EventFlowError(f"the Spark master did not start; see {self.logs_dir / 'spark-master.log'}")
            for n in range(1, self.workers + 1):
                port = free_port()
                self.worker_ui_ports.append(port)
                work = self.state_dir / f"worker-{n}"
                work.mkdir(parents=True, exist_ok=True)
                self._worker_args[n] = (self.master_url, "--host", HOST, "--cores", str(self.cores_per_worker),
                                        "--memory", WORKER_MEMORY, "--webui-port", str(port), "--work-dir", str(work))
                self._launch(f"spark-worker-{n}", "org.apache.spark.deploy.worker.Worker", *self._worker_args[n])
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, then the master
            stop_process(proc, timeout=30)
        self.procs = []

    def kill_worker(self, n: int) -> None:
        """SIGKILL worker ``n`` (1-based; fault drills). Its executors exit when they lose it."""
        self.procs[n].kill()
        self.procs[n].wait(10)

    def restart_worker(self, n: int) -> None:
        """Start worker ``n`` again (call from the main thread: it dies with the thread that forks it)."""
        stop_process(self.procs[n], timeout=30)
        self.procs[n] = self._spawn(f"spark-worker-{n}", "org.apache.spark.deploy.worker.Worker",
                                    *self._worker_args[n])

    def alive_workers(self) -> int:
        with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=3) as response:
            return int(json.loads(response.read()).get("aliveworkers", 0))

    def _launch(self, name: str, main_class: str, *args: str) -> None:
        self.procs.append(self._spawn(name, main_class, *args))

    def _spawn(self, name: str, main_class: str, *args: str) -> subprocess.Popen:
        home = spark_home()
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_NO_DAEMONIZE": "1",
               "SPARK_LOCAL_IP": HOST, "SPARK_WORKER_DIR": str(self.state_dir)}
        with open(self.logs_dir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [str(home / "bin" / "spark-class"), main_class, *args], env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        alive = 0
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise EventFlowError(f"a Spark daemon exited at start; see {self.logs_dir}/spark-*.log")
            try:
                alive = self.alive_workers()
            except OSError:
                alive = 0
            if alive >= self.workers:
                return
            time.sleep(0.5)
        raise EventFlowError(f"{alive} of {self.workers} Spark workers registered with the master after "
                             f"{START_TIMEOUT_S:.0f}s; see {self.logs_dir}/spark-*.log")
