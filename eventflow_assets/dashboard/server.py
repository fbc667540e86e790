"""Serving the dashboard: which database it reads, the HTTP server, and the child process of `eventflow up`."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.processes import die_with_parent, require_free_port, stop_process, wait_for_port
from eventflow_assets.local.stack import resolve_endpoints
from eventflow_assets.settings import Settings
from eventflow_assets.storage.schema import apply_schema

HOST = "127.0.0.1"


def read_url(settings: Settings) -> str:
    """The database the dashboard reads, as :meth:`Settings.read_url` chooses: the read replica
    when one is set, else the one EventFlow writes (EVENTFLOW_POSTGRES_URL, or the running local
    stack's), with its schema applied.

    A replica is read as it is: its schema follows the primary's, where the writers apply it; the
    primary is not needed to find it."""
    if settings.postgres_read_url:
        return settings.postgres_read_url
    url = settings.postgres_url or resolve_endpoints(settings).postgres_url
    apply_schema(url)
    return url


def start_server(app, port: int, host: str = HOST) -> BaseWSGIServer:
    """Serve the Dash app from a daemon thread until ``shutdown()``; threaded, so one slow refresh
    does not hold up another browser."""
    require_free_port(host, port, "dashboard", "stop what uses it or pass another --port")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per refresh
    server = make_server(host, port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    return server


class DashboardProcess:
    """`eventflow dashboard` as a child of `eventflow up`: it gets SIGTERM when up dies, even by SIGKILL."""

    def __init__(self, port: int, dagster_url: str, log_path: Path):
        self.port = port
        self.dagster_url = dagster_url
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def check_port(self) -> None:
        require_free_port(HOST, self.port, "dashboard", "stop what uses it or pass --dashboard-port")

    def start(self, env: dict[str, str]) -> None:
        """Start it and return at once; :meth:`wait_ready` waits for its port."""
        self.check_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eventflow_assets.cli", "dashboard", "--port", str(self.port),
                 "--dagster-url", self.dagster_url],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not wait_for_port(HOST, self.port, timeout, self.proc):
            status = self.proc.poll()
            what = f"exited with status {status}" if status is not None else f"did not open port {self.port}"
            raise EventFlowError(f"the dashboard {what} at start; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=10.0)
